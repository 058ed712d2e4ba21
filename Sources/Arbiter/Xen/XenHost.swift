import CXen
import Foundation
import GuestModel
import Logging

/// The real Xen host behind `HostBackend`: libxenctrl for the domain list and physinfo, libxl for targets,
/// libxenstore for reads and watches. libxl contexts and xenstore handles are not for concurrent use,
/// so every call goes through one lock; watches run on their own thread and their own handle.
public final class XenHost: HostBackend, @unchecked Sendable {
    private let lock = NSLock()
    private let libxl: LibxlContext
    private let xs: XenstoreConnection
    private let control: XenControl
    private let watcher: XenWatcher
    private let includeDom0: Bool
    private let logger: Logger
    /// Names, static-max and targets between rounds, current while the watch sees no write to them.
    let facts = XenDomainFacts()
    /// The wall time of each kind of call into Xen (under `lock`), logged at `close`.
    private var calls = XenCallTimes()

    /// Opens everything or throws the first failure, typed (on a machine without Xen: xs_open, ENOENT).
    public init(includeDom0: Bool = false, logger: Logger) throws(XenError) {
        xs = try XenstoreConnection()
        control = try XenControl(quiet: false)
        libxl = try LibxlContext(quiet: false)
        watcher = try XenWatcher(facts: facts, logger: logger)
        self.includeDom0 = includeDom0
        self.logger = logger
    }

    public func domains() throws -> [DomainInfo] {
        lock.lock()
        defer { lock.unlock() }
        let started = ContinuousClock.now
        let list: [XenControl.DomainRecord]
        do { list = try control.domains() } catch { throw HostError.xen(error) }
        calls.add(.list, since: started)
        let managed = list.filter { $0.domid < UInt32(DomID.firstReserved) && ($0.domid != 0 || includeDom0) }
        let ids = managed.map { DomID(UInt16($0.domid)) }
        // Kept values older than the facts' maxAge are read again, a tenth of the domains a round at most.
        let due = facts.due(among: ids, limit: Swift.max(1, ids.count / 10))
        var out = [DomainInfo]()
        for (info, d) in zip(managed, ids) {
            let uuid = XenHost.uuidString(info.handle)
            let again = due.contains(d)
            let name = fact(d, uuid: uuid, .name, limit: 256, again: again) ?? "dom\(d.raw)"
            let current = KiB(Int64(clamping: info.currentKiB))
            // libxl writes memory/static-max and memory/target when the build is done (libxl__build_post):
            // until both are there the domain is under construction, and a target pushed now would fail
            // or be lost.
            let staticMaxKey = fact(d, uuid: uuid, .staticMax, limit: 20, again: again).flatMap { XenstorePaths.kib(Array($0.utf8)) }
            let targetKey = fact(d, uuid: uuid, .target, limit: 20, again: again).flatMap { XenstorePaths.kib(Array($0.utf8)) }
            let phase: DomainPhase
            if info.dying || info.shutdown { phase = .stopping }
            else if let s = staticMaxKey, let t = targetKey, s.value > 0, t.value > 0 { phase = .running }
            else { phase = .building }
            out.append(DomainInfo(domid: d, name: name, actual: current,
                                  staticMax: staticMaxKey ?? KiB(Int64(clamping: info.maxKiB)), target: targetKey ?? current,
                                  uuid: uuid, phase: phase))
        }
        facts.retain(Set(ids))
        return out
    }

    /// A toolstack-written key of a domain's home: as kept since the last write the watch saw, or read
    /// (and kept) when nothing is kept or it is read `again`. nil when missing or unreadable; a failed
    /// read is not kept.
    private func fact(_ d: DomID, uuid: String?, _ key: XenDomainFacts.Key, limit: Int, again: Bool) -> String? {
        if !again, let v = facts.kept(d, uuid: uuid, key) { return v }
        let ticket = facts.ticket()
        let started = ContinuousClock.now
        let raw = try? xs.read(XenstorePaths.home(d) + "/" + key.relativePath, limit: limit)
        calls.add(.fact, since: started)
        let value = raw.map { String(decoding: $0, as: UTF8.self) }
        facts.keep(d, uuid: uuid, key, value, ticket: ticket)
        return value
    }

    /// The canonical 8-4-4-4-12 text of a 16-byte UUID.
    static func uuidString(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 16 else { return nil }
        let hex = bytes.map { b -> String in let h = String(b, radix: 16); return h.count == 1 ? "0" + h : h }
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
    }

    public func memory() throws -> HostMemory {
        lock.lock()
        defer { lock.unlock() }
        do {
            let started = ContinuousClock.now
            defer { calls.add(.physinfo, since: started) }
            let p = try control.physinfo()
            let free = p.freeKiB > p.outstandingKiB ? p.freeKiB - p.outstandingKiB : 0
            return HostMemory(total: KiB(Int64(clamping: p.totalKiB)), free: KiB(Int64(clamping: free)))
        } catch {
            throw HostError.xen(error)
        }
    }

    public func readReport(_ domid: DomID, key: String, limit: Int) throws -> [UInt8]? {
        guard XenstorePaths.reportKeys.contains(key) else { return nil }
        lock.lock()
        defer { lock.unlock() }
        let started = ContinuousClock.now
        defer { calls.add(.report, since: started) }
        do { return try xs.read(XenstorePaths.home(domid) + "/" + key, limit: limit) } catch { throw HostError.xen(error) }
    }

    public func takeEvents() -> [HostEventChannel.TimedEvent] { watcher.channel.take() }

    public func waitForEvents(timeout: Duration) async { await watcher.channel.wait(timeout: timeout) }

    /// Stops the watch thread (the daemon's last step) and logs how many domain facts (name, static-max,
    /// target) were kept between rounds and how many were read from xenstore, and what each kind of call
    /// into Xen took.
    public func close() {
        watcher.stop()
        let c = facts.counted
        logger.notice("domain facts", metadata: ["kept": "\(c.kept)", "read": "\(c.read)"])
        logger.notice("xen calls", metadata: lock.withLock { calls.metadata })
    }

    /// `memory/uncooperative`, as squeezed writes it. (The fence itself is the target: enforced targets
    /// set maxmem, so a domain held at what it has cannot take back what it gave.)
    public func markUncooperative(_ domid: DomID, _ uncooperative: Bool) throws {
        lock.lock()
        defer { lock.unlock() }
        do {
            if uncooperative { try xs.write(XenstorePaths.uncooperative(domid), "1") } else { try xs.remove(XenstorePaths.uncooperative(domid)) }
        } catch {
            throw HostError.xen(error)
        }
    }

    /// libxl_set_memory_target, absolute and enforced (maxmem follows), as `xl mem-set` does.
    public func setTarget(_ domid: DomID, _ target: KiB) throws {
        lock.lock()
        defer { lock.unlock() }
        let started = ContinuousClock.now
        let rc = libxl_set_memory_target(libxl.ctx, UInt32(domid.raw), target.value, 0, 1)
        calls.add(.setTarget, since: started)
        guard rc == 0 else {
            let e = XenError(operation: "libxl_set_memory_target", domid: UInt32(domid.raw), code: rc, errno: cxen_errno())
            if rc == ERROR_DOMAIN_NOTFOUND.rawValue { throw HostError.noSuchDomain(domid) }
            if rc == ERROR_INVAL.rawValue { throw HostError.targetRefused(domid, e.description) }
            throw HostError.xen(e)
        }
    }
}

/// Wall time per kind of call into Xen: how many, mean and longest (ms).
struct XenCallTimes {
    enum Call: Int, CaseIterable {
        /// xc_domain_getinfolist; xc_physinfo; a domain fact read from xenstore; a report read; libxl_set_memory_target.
        case list, physinfo, fact, report, setTarget
    }
    private var count = [Int](repeating: 0, count: Call.allCases.count)
    private var total = [Duration](repeating: .zero, count: Call.allCases.count)
    private var longest = [Duration](repeating: .zero, count: Call.allCases.count)

    mutating func add(_ c: Call, since started: ContinuousClock.Instant) {
        let d = ContinuousClock.now - started
        count[c.rawValue] += 1
        total[c.rawValue] += d
        longest[c.rawValue] = max(longest[c.rawValue], d)
    }

    /// `name=count/mean/max` (ms) for each kind of call.
    var metadata: Logger.Metadata {
        func ms(_ d: Duration) -> String { formatFixed(d.seconds * 1000, decimals: 1) }
        var m = Logger.Metadata()
        for c in Call.allCases {
            let k = c.rawValue
            m["\(c)"] = "\(count[k])/\(ms(count[k] > 0 ? total[k] / count[k] : .zero))/\(ms(longest[k]))"
        }
        return m
    }
}

/// Xenstore watches on their own handle and thread (xs_read_watch blocks; the concurrency pool has
/// only as many threads as cores). A lost connection is logged and re-established with all watches,
/// followed by a `.resync` so that nothing missed meanwhile stays missed. `stop()` ends the thread.
final class XenWatcher: @unchecked Sendable {
    let channel = HostEventChannel()
    private let logger: Logger
    /// Guards `handle` and `stopping`: `stop()` runs on another thread than the watch loop.
    private let lock = NSLock()
    private var handle: OpaquePointer?
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    /// Told of every write under /local/domain that is not a report.
    private let facts: XenDomainFacts

    init(facts: XenDomainFacts, logger: Logger) throws(XenError) {
        self.facts = facts
        self.logger = logger
        handle = try Self.open()
        let thread = Thread { [self] in self.run() }
        thread.name = "xenstore-watch"
        thread.start()
    }

    /// Ends the watch thread and closes its handle; waits up to two seconds for it. A new watch fires
    /// once as it is set, which wakes the thread from xs_read_watch.
    func stop() {
        lock.withLock {
            stopping = true
            if let h = handle { _ = xs_watch(h, XenstorePaths.release, Self.stopToken) }
        }
        if finished.wait(timeout: .now() + 2) == .timedOut { logger.warning("xenstore watch thread did not stop within 2 s") }
    }

    private static let stopToken = "stop"

    private static func open() throws(XenError) -> OpaquePointer {
        guard let h = xs_open(0) else { throw XenError(operation: "xs_open (watch)", code: -1, errno: cxen_errno()) }
        for (path, token) in [(XenstorePaths.introduce, "introduce"), (XenstorePaths.release, "release"), (XenstorePaths.domains, "data")] {
            guard xs_watch(h, path, token) else {
                let e = XenError(operation: "xs_watch \(path)", code: -1, errno: cxen_errno())
                xs_close(h)
                throw e
            }
        }
        return h
    }

    private func run() {
        defer { finished.signal() }
        while true {
            let (h, stop) = lock.withLock { (handle, stopping) }
            if stop {
                lock.withLock { if let h = handle { xs_close(h) }; handle = nil }
                return
            }
            guard let h else {
                Thread.sleep(forTimeInterval: 1)
                do {
                    let opened = try Self.open()
                    lock.withLock { handle = opened }
                    facts.forgetAll()
                    logger.notice("xenstore watches re-established")
                    channel.send(.resync)
                } catch {
                    logger.error("xenstore watch connection: \(error); retrying")
                }
                continue
            }
            var n: UInt32 = 0
            guard let ev = xs_read_watch(h, &n) else {
                if lock.withLock({ stopping }) { continue }
                logger.error("xenstore watch connection lost (errno \(cxen_errno())); reconnecting")
                lock.withLock { xs_close(h); handle = nil }
                continue
            }
            take(ev, count: n)
            // Then whatever else has arrived, without blocking, and a short rest: a guest flooding its
            // key wakes this thread about 20 times a second, not once per write. (The loop looks for
            // events 4 times a second; 50 ms more is nothing to a report.)
            while let more = xs_check_watch(h) { take(more, count: 2) }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// One watch event, passed on (and freed).
    private func take(_ ev: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, count n: UInt32) {
        defer { free(ev) }
        guard n >= 2, let p = ev[Int(XS_WATCH_PATH.rawValue)], let t = ev[Int(XS_WATCH_TOKEN.rawValue)] else { return }
        let path = String(cString: p), token = String(cString: t)
        switch token {
        case Self.stopToken:
            break
        case "introduce", "release":
            channel.send(.resync)
        default:
            if let (domid, key) = XenstorePaths.reportKey(fromWatchPath: path) {
                channel.send(.reportWritten(domid, key: key))
            } else {
                facts.written(path)
            }
        }
    }
}
