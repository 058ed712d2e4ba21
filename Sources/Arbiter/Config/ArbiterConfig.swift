import GuestModel

/// Which host the daemon arbitrates.
public enum BackendKind: String, Sendable, Equatable, CaseIterable {
    /// The real Xen host through libxl/xenstore (a dom0).
    case xen
    /// The simulated host running a scenario (the embedded default without Xen).
    case sim
}

/// The daemon's own settings (`[daemon]` and `[sim]` in config.toml).
public struct DaemonSettings: Sendable, Equatable {
    public var backend: BackendKind = .sim
    /// The decision store (SQLite, WAL).
    public var database = "/var/lib/arbiter/decisions.sqlite"
    /// The control socket (mode 0600) for `list`, `top` and `set`.
    public var socket = "/run/arbiter.sock"
    /// A round runs at least this often even without reports: the periodic full pass.
    public var tickSeconds = 10.0
    /// Reports arriving closer together than this are coalesced into one round.
    public var minRoundIntervalSeconds = 1.0
    /// Every N rounds every domain is recorded; in between only the domains whose decision changed.
    public var snapshotEvery = 300
    /// Decide and record, push nothing.
    public var dryRun = false
    /// With backend = "xen": also arbitrate dom0 (off: dom0's memory is the admin's, as `dom0_mem` set it).
    public var includeDom0 = false
    /// Rounds older than this keep one full snapshot per `downsampleIntervalSeconds` (and rounds with alerts).
    public var downsampleAfterDays = 7.0
    public var downsampleIntervalSeconds = 600.0
    /// Everything older than this is deleted.
    public var retainDays = 90.0
    /// The simulated host's scenario: a shipped name or a file.
    public var simScenario = "default"
    /// Simulated seconds per wall-clock second.
    public var simSpeed = 1.0
    public init() {}

    public func problems() -> [String] {
        var p = [String]()
        if database.isEmpty { p.append("daemon.database must not be empty") }
        if socket.isEmpty || socket.utf8.count > 100 { p.append("daemon.socket must be a path of at most 100 bytes") }
        if !(tickSeconds > 0 && tickSeconds <= 3600) { p.append("daemon.tick_seconds must be between 0 and 3600") }
        if !(minRoundIntervalSeconds >= 0.05 && minRoundIntervalSeconds <= tickSeconds) {
            p.append("daemon.min_round_interval_seconds must be between 0.05 and daemon.tick_seconds")
        }
        if !(1...100_000).contains(snapshotEvery) { p.append("daemon.snapshot_every must be between 1 and 100000") }
        if !(simSpeed > 0 && simSpeed <= 10_000) { p.append("sim.speed must be between 0 and 10000") }
        if !(downsampleAfterDays > 0 && downsampleAfterDays <= retainDays) {
            p.append("daemon.downsample_after_days must be positive and at most daemon.retain_days")
        }
        if !(retainDays > 0 && retainDays <= 36_500) { p.append("daemon.retain_days must be between 0 and 36500") }
        if !(downsampleIntervalSeconds >= 1 && downsampleIntervalSeconds <= 86_400) {
            p.append("daemon.downsample_interval_seconds must be between 1 and 86400")
        }
        return p
    }
}

/// Everything `config.toml` holds.
public struct ArbiterConfig: Sendable, Equatable {
    public var policy = PolicyConfig()
    public var daemon = DaemonSettings()
    public init() {}

    public func problems() -> [String] { policy.problems() + daemon.problems() }
}
