import GuestModel
import Peers

import Foundation

/// Which host the daemon arbitrates.
public enum BackendKind: String, Sendable, Equatable, CaseIterable {
    /// `xen` on a Xen control domain, `sim` where there is no Xen (the default).
    case auto
    /// The real Xen host through libxl/xenstore (a dom0).
    case xen
    /// The simulated host running a scenario.
    case sim
}

/// What this machine is, as far as the backend choice cares.
public enum XenRole: Sendable, Equatable {
    /// `/proc/xen/capabilities` says `control_d`: a dom0 (or a control domain).
    case controlDomain
    /// Xen is there but this is a guest: there is no host here to arbitrate.
    case guest
    /// Xen is there and the role cannot be read (xenfs not mounted): treated as a control domain.
    case unknown
    /// No Xen at all.
    case none

    /// Reads the role from xenfs (`/proc/xen`), as the Xen tools do.
    public static func detect(procXen: String = "/proc/xen") -> XenRole {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: procXen, isDirectory: &isDir), isDir.boolValue else { return .none }
        guard let data = FileManager.default.contents(atPath: procXen + "/capabilities") else { return .unknown }
        return String(decoding: data.prefix(4096), as: UTF8.self).contains("control_d") ? .controlDomain : .guest
    }
}

extension DaemonSettings {
    /// The backend to run on this machine, and a line to log when the choice was not spelled out:
    /// `auto` chosen by its Xen role, and `sim` refused on a control domain unless `sim.on_dom0` says
    /// so (a dom0 running a simulation records fake history where the admin looks for the real one).
    public func resolvedBackend(role: XenRole) throws(StartupError) -> (BackendKind, String?) {
        switch (backend, role) {
        case (.auto, .controlDomain), (.auto, .unknown):
            return (.xen, "backend auto: this is a Xen control domain (/proc/xen/capabilities), arbitrating the real host")
        case (.auto, .guest):
            return (.sim, "backend auto: this is a Xen guest, not a control domain: running the simulated host")
        case (.auto, .none):
            return (.sim, "backend auto: no Xen here (/proc/xen absent): running the simulated host")
        case (.sim, .controlDomain), (.sim, .unknown):
            guard simOnDom0 else {
                throw StartupError(description: "backend sim on a Xen control domain would record a simulation where the real host's "
                                   + "decisions belong: use backend = \"auto\" or \"xen\", or set [sim] on_dom0 = true (or --sim-on-dom0) to run it anyway",
                                   exitCode: 2)
            }
            return (.sim, "backend sim on a Xen control domain (sim.on_dom0): decisions recorded are simulated")
        case (.sim, _):
            return (.sim, nil)
        case (.xen, _):
            return (.xen, nil)
        }
    }
}

/// The daemon's own settings (`[daemon]` and `[sim]` in config.toml).
public struct DaemonSettings: Sendable, Equatable {
    public var backend: BackendKind = .auto
    /// Let `backend = "sim"` run on a Xen control domain (refused otherwise).
    public var simOnDom0 = false
    /// The policy whose targets are pushed, and those that only decide and are recorded.
    public var policy = PolicyKind.arbiter
    public var shadow = [PolicyKind]()
    /// The decision store (SQLite, WAL).
    public var database = "/var/lib/arbiter/decisions.sqlite"
    /// The control socket (mode 0600) for `top`, `set` and `reserve`; its folder is the unit's RuntimeDirectory=
    /// (the daemon makes it when run by hand).
    public var socket = "/run/arbiter/arbiter.sock"
    /// A round runs at least this often even without reports: the periodic full pass.
    public var tickSeconds = 10.0
    /// Rounds run at most this often (a report starts one at once unless the last was sooner than this).
    public var minRoundIntervalSeconds = 0.1
    /// One guest's reports start at most one round per this interval; what it writes in between is read
    /// by the next round, whoever started it (a guest that floods cannot make the others wait).
    public var guestRoundIntervalSeconds = 0.5
    /// Every N recorded rounds every domain is recorded; in between only the domains whose decision changed.
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
    /// The node_exporter textfile rewritten after every round ("" for none): Debian's
    /// prometheus-node-exporter reads *.prom from this folder.
    public var metricsTextfile = "/var/lib/prometheus/node-exporter/arbiter.prom"
    /// `GET /metrics` on 127.0.0.1 at this port; 0: off (no port is opened in dom0 by default).
    public var metricsPort = 0
    public init() {}

    public func problems() -> [ConfigError] {
        var p = [ConfigError]()
        if database.isEmpty { p.append(ConfigError(key: "daemon.database", message: "must not be empty")) }
        if shadow.contains(policy) { p.append(ConfigError(key: "daemon.shadow", message: "lists \(policy.rawValue), the policy that decides: it would shadow itself")) }
        if Set(shadow).count != shadow.count { p.append(ConfigError(key: "daemon.shadow", message: "lists a policy twice")) }
        if socket.isEmpty || socket.utf8.count > 100 { p.append(ConfigError(key: "daemon.socket", message: "must be a path of at most 100 bytes")) }
        if !(tickSeconds > 0 && tickSeconds <= 3600) { p.append(ConfigError(key: "daemon.tick_seconds", message: "must be between 0 and 3600")) }
        if !(minRoundIntervalSeconds >= 0.05 && minRoundIntervalSeconds <= tickSeconds) {
            p.append(ConfigError(key: "daemon.min_round_interval_seconds", message: "must be between 0.05 and daemon.tick_seconds"))
        }
        if !(guestRoundIntervalSeconds >= minRoundIntervalSeconds && guestRoundIntervalSeconds <= tickSeconds) {
            p.append(ConfigError(key: "daemon.guest_round_interval_seconds", message: "must be between daemon.min_round_interval_seconds and daemon.tick_seconds"))
        }
        if !(1...100_000).contains(snapshotEvery) { p.append(ConfigError(key: "daemon.snapshot_every", message: "must be between 1 and 100000")) }
        if !(simSpeed > 0 && simSpeed <= 10_000) { p.append(ConfigError(key: "sim.speed", message: "must be between 0 and 10000")) }
        if !(downsampleAfterDays > 0 && downsampleAfterDays <= retainDays) {
            p.append(ConfigError(key: "daemon.downsample_after_days", message: "must be positive and at most daemon.retain_days"))
        }
        if !(retainDays > 0 && retainDays <= 36_500) { p.append(ConfigError(key: "daemon.retain_days", message: "must be between 0 and 36500")) }
        if !(downsampleIntervalSeconds >= 1 && downsampleIntervalSeconds <= 86_400) {
            p.append(ConfigError(key: "daemon.downsample_interval_seconds", message: "must be between 1 and 86400"))
        }
        if !metricsTextfile.isEmpty && (!metricsTextfile.hasSuffix(".prom") || metricsTextfile.hasSuffix("/.prom") || metricsTextfile.utf8.count > 4000) {
            p.append(ConfigError(key: "metrics.textfile", message: "must name a file ending in .prom (node_exporter reads only those), or be \"\" for none"))
        }
        if !(0...65_535).contains(metricsPort) {
            p.append(ConfigError(key: "metrics.http_port", message: "must be a TCP port (1-65535), or 0 for no endpoint"))
        }
        return p
    }
}

/// Everything `config.toml` holds.
public struct ArbiterConfig: Sendable, Equatable {
    public var policy = PolicyConfig()
    public var daemon = DaemonSettings()
    public init() {}

    public func problems() -> [ConfigError] { policy.problems() + daemon.problems() }
}
