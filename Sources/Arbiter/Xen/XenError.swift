import CXen

/// A failure at the Xen boundary: which operation, for which domain, and the libxl/xenstore/xenctrl
/// return code and errno, mapped once where the C call is made.
public struct XenError: Error, Equatable, CustomStringConvertible {
    public var operation: String
    public var domid: UInt32?
    /// libxl's ERROR_* code, or -1 for calls that only set errno.
    public var code: Int32
    public var errno: Int32

    public init(operation: String, domid: UInt32? = nil, code: Int32, errno: Int32) {
        self.operation = operation
        self.domid = domid
        self.code = code
        self.errno = errno
    }

    /// True when the failure means "this machine is not a Xen dom0" rather than a fault.
    public var meansNoXen: Bool { errno == 2 /* ENOENT */ || errno == 19 /* ENODEV */ || errno == 6 /* ENXIO */ }

    public var description: String {
        var s = operation
        if let domid { s += " (domid \(domid))" }
        s += " failed: "
        if code != -1, let name = Self.libxlCodeName(code) { s += name + ", " }
        s += "errno \(errno) (\(Self.errnoName(errno)))"
        return s
    }

    /// libxl's error codes (libxl_types.idl `libxl_error`), for messages.
    static func libxlCodeName(_ code: Int32) -> String? {
        switch code {
        case ERROR_NONSPECIFIC.rawValue: "ERROR_NONSPECIFIC"
        case ERROR_VERSION.rawValue: "ERROR_VERSION"
        case ERROR_FAIL.rawValue: "ERROR_FAIL"
        case ERROR_NI.rawValue: "ERROR_NI"
        case ERROR_NOMEM.rawValue: "ERROR_NOMEM"
        case ERROR_INVAL.rawValue: "ERROR_INVAL"
        case ERROR_BADFAIL.rawValue: "ERROR_BADFAIL"
        case ERROR_NOT_READY.rawValue: "ERROR_NOT_READY"
        case ERROR_ABORTED.rawValue: "ERROR_ABORTED"
        case ERROR_LOCK_FAIL.rawValue: "ERROR_LOCK_FAIL"
        case ERROR_DOMAIN_NOTFOUND.rawValue: "ERROR_DOMAIN_NOTFOUND"
        case ERROR_TIMEDOUT.rawValue: "ERROR_TIMEDOUT"
        default: nil
        }
    }

    static func errnoName(_ e: Int32) -> String {
        guard let p = strerror(e) else { return "unknown" }
        return String(cString: p)
    }
}
