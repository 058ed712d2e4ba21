#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import GuestModel

/// One notification to the service manager, in sd_notify(3)'s words (`READY=1`, `STATUS=…`,
/// `WATCHDOG=1`, `STOPPING=1`): a value, so when the daemon says what is tested without a socket.
public struct ServiceNotice: Sendable, Equatable {
    public var ready = false
    public var stopping = false
    public var watchdog = false
    public var status: String?

    public init(ready: Bool = false, stopping: Bool = false, watchdog: Bool = false, status: String? = nil) {
        self.ready = ready
        self.stopping = stopping
        self.watchdog = watchdog
        self.status = status
    }

    /// The datagram: one NAME=value per line. A status is one line (newlines would start new fields).
    public var message: String {
        var lines = [String]()
        if ready { lines.append("READY=1") }
        if stopping { lines.append("STOPPING=1") }
        if let status { lines.append("STATUS=" + status.split(whereSeparator: \.isNewline).joined(separator: " ")) }
        if watchdog { lines.append("WATCHDOG=1") }
        return lines.joined(separator: "\n")
    }
}

/// Where the daemon's notices go: systemd's notify socket (`NotifySocket`) when a service manager asked
/// for them, nowhere otherwise. The daemon's loop only composes `ServiceNotice`s (`ServiceReadiness`).
public protocol ServiceNotifier: Sendable {
    func send(_ notice: ServiceNotice)
}

/// What one round left behind, for the service manager's STATUS= line (`systemctl status arbiter`).
public struct RoundSummary: Sendable, Equatable {
    public var round: Int
    public var domains: Int
    public var free: KiB
    public var phase: SharePhase
    /// Targets this round changed (pushed, unless a dry run).
    public var changes: Int
    /// Whether this round is in the decision store.
    public var recorded: Bool
    /// Rounds not recorded since the daemon started.
    public var lost: Int

    public init(round: Int, domains: Int, free: KiB, phase: SharePhase, changes: Int, recorded: Bool, lost: Int) {
        self.round = round
        self.domains = domains
        self.free = free
        self.phase = phase
        self.changes = changes
        self.recorded = recorded
        self.lost = lost
    }

    public var status: String {
        let phase = switch self.phase {
        case .uncontended: "uncontended"
        case .contended: "contended"
        case .infeasible: "floors exceed the host"
        }
        let store = recorded ? "recorded" : "NOT recorded"
        return "round \(round) \(store): \(domains) domains, \(formatSize(free)) free, \(phase), \(changes) target change(s); "
            + "\(lost) round(s) not recorded since start"
    }
}

/// The daemon's side of systemd's Type=notify, as a state machine with time passed in:
/// - READY=1 once, with the first round that ran (decided, pushed and recorded; a first round the store
///   could not take still counts: the daemon arbitrates without its store, as it does later, and says so
///   in STATUS). A round that could not read the host is no round: no READY until one can.
/// - STATUS= after every round: its summary, or why it was skipped.
/// - WATCHDOG=1 (only when the manager set a watchdog) after every round that ran, and from the waiting
///   loop when no round is due for half the interval (a long `tick_seconds` is no hang: the loop's wait
///   ends by then, `secondsUntilPing`). A round that
///   cannot read the host sends none, nor does a round stuck in libxl, xenstored or the store: after
///   WatchdogSec of that, systemd restarts the daemon, with fresh libxl and xenstore handles.
/// - STOPPING=1 when graceful shutdown begins (before the last round is recorded).
public struct ServiceReadiness: Sendable {
    public let watchdog: Duration?
    public private(set) var ready = false
    var lastPing: ContinuousClock.Instant?

    public init(watchdog: Duration?) { self.watchdog = watchdog }

    /// After a round: `summary` nil when the host could not be read.
    public mutating func afterRound(_ summary: RoundSummary?, at now: ContinuousClock.Instant) -> ServiceNotice {
        guard let summary else { return ServiceNotice(status: "round skipped: cannot read the host (see the log)") }
        let n = ServiceNotice(ready: !ready, watchdog: watchdog != nil, status: summary.status)
        ready = true
        if n.watchdog { lastPing = now }
        return n
    }

    /// While no round is due: a watchdog ping when half the interval passed since the last one.
    public mutating func idle(at now: ContinuousClock.Instant) -> ServiceNotice? {
        guard let watchdog, ready, let last = lastPing, now - last >= watchdog / 2 else { return nil }
        lastPing = now
        return ServiceNotice(watchdog: true)
    }

    /// Seconds until `idle` would ping (0: now): how long the waiting loop may sleep. Nil without a
    /// watchdog, or before READY (until then only rounds ping).
    public func secondsUntilPing(at now: ContinuousClock.Instant) -> Double? {
        guard let watchdog, ready, let last = lastPing else { return nil }
        let left = last + watchdog / 2 - now
        return Swift.max(0, left.seconds)
    }

    public func stopping() -> ServiceNotice {
        ServiceNotice(stopping: true, status: "stopping: recording a last round")
    }
}

/// systemd's notify socket: `$NOTIFY_SOCKET`, an AF_UNIX datagram socket given as a path or, with a
/// leading '@', an abstract-namespace name. Written to directly (no libsystemd): one datagram per notice,
/// never blocking (MSG_DONTWAIT: a notice the manager's queue cannot take is dropped; the next round
/// sends another).
public final class NotifySocket: ServiceNotifier {
    public let address: String
    private let fd: Int32
    /// The sockaddr_un bytes and their length (an abstract name's length counts no trailing NUL).
    private let addressBytes: [UInt8]

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(address: String) throws {
        self.address = address
        addressBytes = try NotifySocket.sockaddrBytes(address)
        let s = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        fd = s
    }

    deinit { close(fd) }

    /// The socket the service manager named in `env`, or nil when there is none (not run by systemd,
    /// or not as Type=notify).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> NotifySocket? {
        guard let a = env["NOTIFY_SOCKET"], !a.isEmpty else { return nil }
        return try NotifySocket(address: a)
    }

    /// The watchdog interval systemd asked for (`WATCHDOG_USEC`), if it is for this process (`WATCHDOG_PID`,
    /// when set, names it).
    public static func watchdogInterval(_ env: [String: String] = ProcessInfo.processInfo.environment,
                                        pid: Int32 = getpid()) -> Duration? {
        guard let s = env["WATCHDOG_USEC"], let usec = UInt64(s), usec > 0 else { return nil }
        if let p = env["WATCHDOG_PID"], Int32(p) != pid { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// sockaddr_un for `address`: "/path" (NUL-terminated in sun_path) or "@name" (abstract: sun_path
    /// starts with NUL, the name follows, and the length ends with the name).
    static func sockaddrBytes(_ address: String) throws -> [UInt8] {
        let bytes = Array(address.utf8)
        var path: [UInt8]
        switch bytes.first {
        case UInt8(ascii: "/"): path = bytes + [0]
        case UInt8(ascii: "@"): path = [0] + bytes.dropFirst()
        default: throw Failure(description: "NOTIFY_SOCKET \(address): neither a path nor an abstract (@) name")
        }
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        guard path.count <= capacity, bytes.count > 1 else {
            throw Failure(description: "NOTIFY_SOCKET \(address): not a usable socket address (\(capacity) bytes at most)")
        }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        var out = withUnsafeBytes(of: &addr) { Array($0.prefix(offset)) }
        out += path
        return out
    }

    public func send(_ notice: ServiceNotice) {
        let text = notice.message
        guard !text.isEmpty else { return }
        _ = addressBytes.withUnsafeBytes { a in
            text.utf8CString.withUnsafeBytes { m in
                sendto(fd, m.baseAddress, m.count - 1, Int32(MSG_DONTWAIT | MSG_NOSIGNAL),
                       a.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(a.count))
            }
        }
    }
}
