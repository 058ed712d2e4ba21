import GuestModel

/// How a simulated guest's reporter and balloon behave.
public enum Behaviour: String, Sendable, Equatable, CaseIterable {
    /// Runs our reporter (`~/data/pressure`) every report interval.
    case reporter
    /// Only a XenServer-style agent: `~/data/meminfo_total` and `meminfo_free` every 60 s.
    case legacy
    /// Writes nothing.
    case silent
    /// Runs the reporter, then stops reporting after `staleAfter` seconds.
    case stale
    /// Writes garbage, absurd values, floods of writes and lies about its pressure, in turn.
    case hostile
    /// Reports, but its balloon ignores every target.
    case uncooperative
    /// Reports, but its balloon moves at 1 MiB/s.
    case slowBalloon = "slow-balloon"
}

/// One guest of a scenario, as written in the scenario file.
public struct GuestSpec: Sendable, Equatable {
    public var name: String
    public var workload: Workload
    public var staticMax: KiB
    public var boot: KiB
    /// The admin's floor, ceiling and weight for it.
    public var admin: AdminSetting
    public var behaviour: Behaviour
    /// Share of the working set that is anonymous memory (the rest is hot page cache).
    public var anonFraction = 0.6
    /// Swap space; zero for none.
    public var swap = KiB.zero
    /// Booted with the host (false: only a scenario event creates it).
    public var autostart = true
    public var reportInterval = 2.0
    public var legacyInterval = 60.0
    /// For `.stale`: seconds after which the reporter stops.
    public var staleAfter = 600.0
    /// Balloon speed, KiB/s (Linux PV guests manage several hundred MiB/s).
    public var balloonSpeed = KiB(mib: 256)

    public init(name: String, workload: Workload, staticMax: KiB, boot: KiB, behaviour: Behaviour = .reporter,
                adminMin: KiB? = nil, adminMax: KiB? = nil, weight: Double? = nil) {
        self.name = name
        self.workload = workload
        self.staticMax = staticMax
        self.boot = boot
        self.behaviour = behaviour
        self.admin = AdminSetting(min: adminMin, max: adminMax, weight: weight)
    }
}

/// The xenstore keys a guest writes.
public enum ReportKey: Int, Sendable, Equatable, CaseIterable {
    case pressure, meminfoTotal, meminfoFree
    /// The key of a xenstore path relative to the domain's home (`data/pressure`), if a guest writes it.
    public init?(path: String) {
        guard let k = Self.allCases.first(where: { $0.path == path }) else { return nil }
        self = k
    }
    public var path: String {
        switch self {
        case .pressure: "data/pressure"
        case .meminfoTotal: "data/meminfo_total"
        case .meminfoFree: "data/meminfo_free"
        }
    }
}

/// One guest write, visible to dom0 from `visibleAt` (xenstore and watch delivery take time).
public struct XenstoreWrite: Sendable, Equatable {
    public var domid: DomID
    public var key: ReportKey
    public var value: String
    public var visibleAt: Double
}
