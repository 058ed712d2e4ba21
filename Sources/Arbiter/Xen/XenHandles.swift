import CXen
import Logging

/// The three Xen library handles the arbiter uses, each opened through one small call site whose
/// failure is a typed `XenError`. The full host backend (domain list, watches, targets) is built on
/// these; nothing outside `Arbiter/Xen/` sees a C type.

/// Where libxl's and libxenctrl's own messages go: swift-log, label "xen".
enum XenLogSink {
    static let logger = Logger(label: "xen")

    static let callback: cxen_log_fn = { level, context, message in
        let text = message.map { String(cString: $0) } ?? ""
        let ctx = context.map { String(cString: $0) } ?? ""
        let lvl: Logger.Level
        switch UInt32(level) {
        case XTL_CRITICAL.rawValue, XTL_ERROR.rawValue: lvl = .error
        case XTL_WARN.rawValue: lvl = .warning
        case XTL_NOTICE.rawValue: lvl = .notice
        case XTL_INFO.rawValue, XTL_PROGRESS.rawValue: lvl = .info
        default: lvl = .debug
        }
        XenLogSink.logger.log(level: lvl, "\(text)", metadata: ctx.isEmpty ? nil : ["context": "\(ctx)"])
    }
}

/// A libxentoollog logger that libxl and libxenctrl write through, routed into swift-log.
final class XenLogger {
    let pointer: UnsafeMutablePointer<xentoollog_logger>

    /// `quiet` raises the level to CRITICAL so that probing a machine without Xen prints nothing
    /// beyond our own one-line error.
    init?(quiet: Bool) {
        let level = quiet ? XTL_CRITICAL : XTL_WARN
        guard let p = cxen_callback_logger_new(XenLogSink.callback, Int32(level.rawValue)) else { return nil }
        pointer = p
    }

    deinit { xtl_logger_destroy(pointer) }
}

/// A connection to xenstored (libxenstore `xs_open`).
public final class XenstoreConnection {
    let handle: OpaquePointer

    public init() throws(XenError) {
        guard let h = xs_open(0) else { throw XenError(operation: "xs_open", code: -1, errno: cxen_errno()) }
        handle = h
    }

    /// Reads one key, bounded to `limit` bytes; nil if it does not exist.
    public func read(_ path: String, limit: Int = 4096) throws(XenError) -> [UInt8]? {
        var length: UInt32 = 0
        guard let raw = xs_read(handle, CXEN_XBT_NULL, path, &length) else {
            let e = cxen_errno()
            if e == 2 { return nil }
            throw XenError(operation: "xs_read \(path)", code: -1, errno: e)
        }
        defer { free(raw) }
        let n = min(Int(length), limit + 1)
        return Array(UnsafeRawBufferPointer(start: raw, count: n))
    }

    /// Writes one key (dom0 only writes toolstack keys: never under a guest's data/).
    public func write(_ path: String, _ value: String) throws(XenError) {
        let ok = value.withCString { xs_write(handle, CXEN_XBT_NULL, path, $0, UInt32(strlen($0))) }
        guard ok else { throw XenError(operation: "xs_write \(path)", code: -1, errno: cxen_errno()) }
    }

    /// Removes one key (absent is fine).
    public func remove(_ path: String) throws(XenError) {
        guard xs_rm(handle, CXEN_XBT_NULL, path) || cxen_errno() == 2 else {
            throw XenError(operation: "xs_rm \(path)", code: -1, errno: cxen_errno())
        }
    }

    deinit { xs_close(handle) }
}

/// A libxenlight context (`libxl_ctx_alloc`).
public final class LibxlContext {
    let ctx: OpaquePointer
    let logger: XenLogger

    public init(quiet: Bool = false) throws(XenError) {
        guard let logger = XenLogger(quiet: quiet) else { throw XenError(operation: "xtl_createlogger_stdiostream", code: -1, errno: cxen_errno()) }
        var ctx: OpaquePointer? = nil
        let rc = cxen_libxl_ctx_alloc(&ctx, logger.pointer)
        guard rc == 0, let ctx else { throw XenError(operation: "libxl_ctx_alloc", code: rc, errno: cxen_errno()) }
        self.ctx = ctx
        self.logger = logger
    }

    /// Free memory as libxl counts it (free + scrub pages), KiB.
    public func freeMemoryKiB() throws(XenError) -> UInt64 {
        var kib: UInt64 = 0
        let rc = libxl_get_free_memory(ctx, &kib)
        guard rc == 0 else { throw XenError(operation: "libxl_get_free_memory", code: rc, errno: cxen_errno()) }
        return kib
    }

    deinit { libxl_ctx_free(ctx) }
}

/// A libxenctrl interface (`xc_interface_open`), for physinfo and the domain list.
public final class XenControl {
    let xch: OpaquePointer
    let logger: XenLogger

    public init(quiet: Bool = false) throws(XenError) {
        guard let logger = XenLogger(quiet: quiet) else { throw XenError(operation: "xtl_createlogger_stdiostream", code: -1, errno: cxen_errno()) }
        guard let xch = xc_interface_open(logger.pointer, logger.pointer, 0) else {
            throw XenError(operation: "xc_interface_open", code: -1, errno: cxen_errno())
        }
        self.xch = xch
        self.logger = logger
    }

    /// Total, free and claimed (outstanding) host memory in KiB, from XEN_SYSCTL_physinfo.
    public func physinfo() throws(XenError) -> (totalKiB: UInt64, freeKiB: UInt64, outstandingKiB: UInt64) {
        var info = xc_physinfo_t()
        let rc = xc_physinfo(xch, &info)
        guard rc == 0 else { throw XenError(operation: "xc_physinfo", code: -1, errno: cxen_errno()) }
        let pageKiB = UInt64(1) << (UInt64(XC_PAGE_SHIFT) - 10)
        return (info.total_pages * pageKiB, info.free_pages * pageKiB, info.outstanding_pages * pageKiB)
    }

    /// One domain as the hypervisor lists it (XEN_SYSCTL_getdomaininfolist): what libxl_list_domain
    /// makes of it, without the per-domain security label lookup libxl adds (a hypercall each).
    public struct DomainRecord: Sendable, Equatable {
        public var domid: UInt32
        public var dying: Bool
        public var shutdown: Bool
        /// tot_pages and max_pages in KiB (libxl's current_memkb and max_memkb).
        public var currentKiB: UInt64
        public var maxKiB: UInt64
        /// The domain handle (its UUID), 16 bytes.
        public var handle: [UInt8]
    }

    /// Every domain, in domid order: batches of `batch` per hypercall (32 fit one page, which libxencall
    /// keeps cached instead of mapping a bounce buffer per call, as libxl's 1,024 need), until a batch
    /// comes back short (the hypervisor fills each batch while domains last).
    public func domains(batch: Int = 32) throws(XenError) -> [DomainRecord] {
        var out = [DomainRecord]()
        var buffer = [xc_domaininfo_t](repeating: xc_domaininfo_t(), count: batch)
        var first: UInt32 = 0
        let pageKiB = UInt64(1) << (UInt64(XC_PAGE_SHIFT) - 10)
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { xc_domain_getinfolist(xch, first, UInt32(batch), $0.baseAddress) }
            guard n >= 0 else { throw XenError(operation: "xc_domain_getinfolist", code: -1, errno: cxen_errno()) }
            for i in 0..<Int(n) {
                let d = buffer[i]
                out.append(DomainRecord(domid: UInt32(d.domain), dying: d.flags & XEN_DOMINF_dying != 0,
                                        shutdown: d.flags & XEN_DOMINF_shutdown != 0,
                                        currentKiB: d.tot_pages &* pageKiB, maxKiB: d.max_pages &* pageKiB,
                                        handle: withUnsafeBytes(of: d.handle) { Array($0) }))
            }
            guard Int(n) == batch else { return out }
            first = UInt32(buffer[Int(n) - 1].domain) + 1
        }
    }

    deinit { xc_interface_close(xch) }
}

/// Opens all three handles: what `arbiter xen-info` and, later, the daemon's `xen` backend do first.
public struct XenProbe {
    public var xenstore: XenstoreConnection
    public var libxl: LibxlContext
    public var control: XenControl

    public init(quiet: Bool) throws(XenError) {
        xenstore = try XenstoreConnection()
        control = try XenControl(quiet: quiet)
        libxl = try LibxlContext(quiet: quiet)
    }
}
