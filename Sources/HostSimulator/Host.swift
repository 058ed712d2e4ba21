import GuestModel

/// A scenario: the host, the policy's config and the guests. Scenario files (TOML) are read by
/// `Arbiter`; this is the value they become.
public struct Scenario: Sendable, Equatable {
    public var name: String
    public var description: String
    public var seed: UInt64 = 1
    public var hours: Double = 1
    /// Physics step.
    public var stepSeconds = 1.0
    /// Host RAM, and what Xen and dom0 keep of it; guests share the rest (the pool).
    public var hostMemory: KiB
    public var xenReserve: KiB
    public var policy = PolicyConfig()
    public var guests: [GuestSpec]
    /// VMs created, destroyed, restarted and started during the run (the daemon's simulated host acts on
    /// them; the policy comparison does not).
    public var events: [LifecycleEvent] = []

    public init(name: String, description: String = "", hostMemory: KiB, xenReserve: KiB = .zero, guests: [GuestSpec]) {
        self.name = name
        self.description = description
        self.hostMemory = hostMemory
        self.xenReserve = xenReserve
        self.guests = guests
    }

    /// Memory Xen can give to guests.
    public var pool: KiB { KiB(Swift.max(0, hostMemory.value - xenReserve.value)) }

    /// What the guests that boot with the host use on average over the run: working set, leaked anon
    /// and what each kernel keeps, time-averaged (sampled every minute).
    public var meanUse: KiB { KiB(Int64(guests.filter(\.autostart).reduce(0.0) { $0 + meanUse(of: $1) })) }

    /// One guest's mean use over the run (KiB).
    public func meanUse(of g: GuestSpec) -> Double {
        let horizon = Swift.max(60, hours * 3600)
        var sum = 0.0, n = 0.0, t = 0.0
        while t < horizon {
            sum += g.workload.workingSet(at: t) + g.workload.coldAnon(at: t)
            n += 1; t += 60
        }
        return sum / Swift.max(n, 1) + SimGuest.systemAnon + SimGuest.kernelOverhead(staticMax: g.staticMax)
    }

    /// Boots every guest at its share of `pool` by mean use (never above static-max), when the
    /// scenario's own boots do not fit: a host sized to its guests' use boots them at about that use.
    /// What each kernel keeps and its system's own memory come first (a guest booted below them has no
    /// memory to run in: a VM provisioned with 512G keeps 11G for its page structures alone); the rest
    /// is shared by the mean working set.
    public mutating func fitBoots(in pool: KiB) {
        let boot = guests.filter(\.autostart).reduce(0.0) { $0 + Swift.min($1.boot, $1.staticMax).asDouble }
        let room = pool.asDouble * 0.98
        guard boot > room else { return }
        let fixed = guests.map { SimGuest.kernelOverhead(staticMax: $0.staticMax) + SimGuest.systemAnon }
        let work = guests.indices.map { Swift.max(0, meanUse(of: guests[$0]) - fixed[$0]) }
        let sumFixed = guests.indices.filter { guests[$0].autostart }.reduce(0.0) { $0 + fixed[$1] }
        let sumWork = guests.indices.filter { guests[$0].autostart }.reduce(0.0) { $0 + work[$1] }
        let total = meanUse.asDouble
        for i in guests.indices {
            let share = sumFixed < room
                ? fixed[i] + (room - sumFixed) * work[i] / Swift.max(sumWork, 1)
                : room * meanUse(of: guests[i]) / Swift.max(total, 1)
            guests[i].boot = min(guests[i].staticMax, KiB.pageFloor(share))
        }
    }

    /// The same guests on a host that gives them `factor` × their mean use (Xen's own reserve kept),
    /// each booting at its share of that by mean use when the scenario's boots do not fit.
    public func scaled(host factor: Double) -> Scenario {
        var s = self
        let pool = KiB.pageFloor(meanUse.asDouble * factor)
        s.hostMemory = xenReserve + pool
        s.fitBoots(in: pool)
        s.name += " ×\(formatFixed(factor, decimals: 2)) mean use"
        return s
    }

    /// Problems that make the scenario impossible to run, each with the scenario key it is about.
    public func problems() -> [ConfigError] {
        var p = [ConfigError]()
        func add(_ key: String?, _ message: String) { p.append(ConfigError(key: key, message: message)) }
        if guests.isEmpty { add("guest", "no guests") }
        if guests.count >= Int(DomID.firstReserved) - 1 { add("guest", "too many guests") }
        if !(hours > 0 && hours <= 24 * 31) { add("hours", "must be between 0 and 744") }
        if !(stepSeconds > 0 && stepSeconds <= 60) { add("step_seconds", "must be between 0 and 60") }
        let boot = guests.filter(\.autostart).reduce(Int64(0)) { $0 + Swift.min($1.boot, $1.staticMax).value }
        if !guests.contains(where: \.autostart) { add("guest", "no guest boots with the host (every one has autostart = false)") }
        var names = Set<String>()
        for g in guests where !names.insert(g.name).inserted { add("guest[\(g.name)]", "two guests are named \(g.name)") }
        for e in events {
            if !names.contains(e.guest) { add("event", "at \(e.at) s: no guest named \(e.guest)") }
            if !(e.at >= 0 && e.at.isFinite) { add("event", "for \(e.guest): at must be a time in seconds") }
        }
        if boot > pool.value { add("host", "guests boot with \(formatSize(KiB(boot))) but the host gives guests only \(formatSize(pool))") }
        for g in guests {
            if g.staticMax.value <= 0 { add("guest[\(g.name)].static_max", "must be positive") }
            if g.boot.value <= 0 { add("guest[\(g.name)].boot", "must be positive") }
            if !(g.anonFraction >= 0 && g.anonFraction <= 1) { add("guest[\(g.name)].anon_fraction", "must be 0-1") }
            if let w = g.admin.weight, !(w > 0 && w.isFinite) { add("guest[\(g.name)].weight", "must be positive") }
            if !(g.reportInterval > 0) { add("guest[\(g.name)].report_interval", "must be positive") }
        }
        return p + policy.problems()
    }
}

/// Something an admin does to a VM at a given time of a scenario.
public struct LifecycleEvent: Sendable, Equatable {
    public enum Action: String, Sendable, Equatable, CaseIterable {
        /// `xl destroy`: the domain goes, its memory back to Xen.
        case destroy
        /// `xl create` as it is, without asking the arbiter: fails if Xen has too little free memory.
        case create
        /// `xl reboot` (on_reboot = "restart"): destroy, then create the same config at once.
        case restart
        /// `arbiter start`: reserve what the build needs, wait until it is free, then create.
        case start
    }
    public var at: Double
    public var action: Action
    public var guest: String
    public init(at: Double, action: Action, guest: String) {
        self.at = at
        self.action = action
        self.guest = guest
    }
}

/// Why a simulated `xl create` failed.
public enum CreateError: Error, Equatable, CustomStringConvertible {
    /// Xen had less free memory than the build needs (xc_dom_boot_mem_init: Out of memory).
    case outOfMemory(need: KiB, free: KiB)
    /// A domain of that name exists already.
    case nameInUse(String)
    public var description: String {
        switch self {
        case .outOfMemory(let need, let free): "cannot allocate memory for the domain: needs \(need), Xen has \(free) free (Out of memory)"
        case .nameInUse(let n): "domain \(n) already exists"
        }
    }
}

/// What a set-target call can fail with (the simulator enforces Xen's rules loudly).
public enum SetTargetError: Error, Equatable, CustomStringConvertible {
    case noSuchDomain(DomID)
    /// libxl refuses targets above static-max (ERROR_INVAL).
    case aboveStaticMax(DomID, target: KiB, staticMax: KiB)
    case notPositive(DomID)
    public var description: String {
        switch self {
        case .noSuchDomain(let d): "no domain \(d)"
        case .aboveStaticMax(let d, let t, let m): "dom\(d): target \(t) above static-max \(m)"
        case .notPositive(let d): "dom\(d): target must be positive"
        }
    }
}

/// What the clairvoyant reference may know that dom0 does not.
public struct GuestTruth: Sendable, Equatable {
    /// The working set now, and the largest over the look-ahead window, in KiB of allocation
    /// (kernel overhead included).
    public var workingSet: KiB
    public var peakAhead: KiB
    public init(workingSet: KiB, peakAhead: KiB) {
        self.workingSet = workingSet
        self.peakAhead = peakAhead
    }
}

/// The simulated Xen host: guests with memory physics, Xen's free memory, and a xenstore that
/// delivers guest writes after a small delay. Stepped on a virtual clock; no sleeping, no I/O.
public struct SimHost: Sendable {
    public private(set) var guests: [SimGuest]
    /// Xen free memory (KiB) in the pool.
    public private(set) var free: Double
    public let pool: Double
    public private(set) var seconds = 0.0
    var rng: SplitMix64
    var pending: [XenstoreWrite] = []
    /// Current value of every guest-written key (what a xenstore read returns): per guest (by index, as
    /// `index(of:)` finds it), per `ReportKey`.
    private var written: [[String?]] = []
    /// The clairvoyant reference's look-ahead: roughly how long a balloon takes to move a working set.
    public var lookAhead = 30.0
    /// Every guest's kernel runs xen-selfballoon (setting its own target).
    public var selfballooning = false

    public init(scenario: Scenario) {
        rng = SplitMix64(seed: scenario.seed)
        var gs = [SimGuest]()
        for spec in scenario.guests where spec.autostart {
            let phase = Double(rng.next() % 2000) / 1000
            gs.append(SimGuest(spec: spec, domid: DomID(UInt16(gs.count + 1)), reportPhase: phase))
        }
        guests = gs
        written = Array(repeating: Array(repeating: nil, count: ReportKey.allCases.count), count: gs.count)
        pool = scenario.pool.asDouble
        free = Swift.max(0, pool - gs.reduce(0) { $0 + $1.actual })
    }

    public func index(of domid: DomID) -> Int? {
        let i = Int(domid.raw) - 1
        return i >= 0 && i < guests.count ? i : nil
    }

    /// Free memory libxl says building `spec` needs (libxl_domain_need_memory for PV: the boot size plus
    /// 1 MiB, rounded up to 2 MiB).
    public static func buildNeed(_ spec: GuestSpec) -> KiB {
        let k = Swift.min(spec.boot, spec.staticMax).value + 1024
        return KiB((k + 2047) / 2048 * 2048)
    }

    /// `xl create`: a new domain (the next domid; Xen does not reuse them soon), built for `buildSeconds`
    /// during which its boot memory is taken from Xen and it has no `memory/target`. Fails like Xen when
    /// less than the build needs is free.
    public mutating func create(_ spec: GuestSpec, buildSeconds: Double = 2) throws(CreateError) -> DomID {
        if guests.contains(where: { $0.spec.name == spec.name && $0.life != .destroyed }) { throw .nameInUse(spec.name) }
        let need = Self.buildNeed(spec)
        guard free >= need.asDouble else { throw .outOfMemory(need: need, free: KiB(Int64(free))) }
        let phase = Double(rng.next() % 2000) / 1000
        var g = SimGuest(spec: spec, domid: DomID(UInt16(guests.count + 1)), reportPhase: phase, bornAt: seconds + buildSeconds)
        g.life = .building(until: seconds + buildSeconds)
        free -= g.actual
        guests.append(g)
        written.append(Array(repeating: nil, count: ReportKey.allCases.count))
        return g.domid
    }

    /// `xl destroy`: the domain's memory goes back to Xen at once; its keys and pending writes are gone.
    @discardableResult
    public mutating func destroy(_ domid: DomID) -> Bool {
        guard let i = index(of: domid), guests[i].life != .destroyed else { return false }
        free += guests[i].actual
        guests[i].actual = 0
        guests[i].target = 0
        guests[i].life = .destroyed
        written[i] = Array(repeating: nil, count: ReportKey.allCases.count)
        pending.removeAll { $0.domid == domid }
        return true
    }

    /// The live domain of that name (building or running).
    public func live(named name: String) -> DomID? {
        guests.last { $0.spec.name == name && $0.life != .destroyed }?.domid
    }

    /// Advances the physics by `dt` seconds and lets guests write their reports.
    public mutating func step(_ dt: Double) {
        seconds += dt
        for i in guests.indices {
            switch guests[i].life {
            case .destroyed: continue
            case .building(let until):
                if seconds + 1e-9 < until { continue }
                guests[i].life = .running
            case .running: break
            }
            if selfballooning { guests[i].selfballoon(at: seconds) }
            guests[i].step(dt: dt, t: seconds, hostFree: &free)
            let w = guests[i].writes(at: seconds, rng: &rng)
            if !w.isEmpty { pending.append(contentsOf: w) }
        }
    }

    /// The guest writes that dom0 has seen by time `t`, in the order they became visible.
    public mutating func drain(upTo t: Double) -> [XenstoreWrite] {
        guard !pending.isEmpty else { return [] }
        var ready = [XenstoreWrite](), later = [XenstoreWrite]()
        for w in pending { if w.visibleAt <= t { ready.append(w) } else { later.append(w) } }
        pending = later
        ready.sort { $0.visibleAt < $1.visibleAt }
        for w in ready { if let i = index(of: w.domid) { written[i][w.key.rawValue] = w.value } }
        return ready
    }

    /// A xenstore read of a guest key (relative to the domain's home, e.g. `data/pressure`).
    public func read(_ domid: DomID, _ key: String) -> String? {
        guard let i = index(of: domid), let k = ReportKey(path: key) else { return nil }
        return written[i][k.rawValue]
    }

    /// The trusted facts dom0 would read from Xen and libxl, with the admin settings of the scenario.
    public var snapshot: HostSnapshot {
        HostSnapshot(free: KiB(Int64(free)), domains: guests.filter { $0.life == .running }.map {
            DomainFacts(domid: $0.domid, staticMax: $0.spec.staticMax, actual: KiB(Int64($0.actual)), target: KiB(Int64($0.target)),
                        admin: $0.spec.admin)
        })
    }

    /// Sets a balloon target, with libxl's rules.
    public mutating func setTarget(_ domid: DomID, _ target: KiB) throws(SetTargetError) {
        // A domain under construction has no memory/target yet: libxl fails (errno 2), like a gone one.
        guard let i = index(of: domid), guests[i].life == .running else { throw .noSuchDomain(domid) }
        guard target.value > 0 else { throw .notPositive(domid) }
        guard target <= guests[i].spec.staticMax else {
            throw .aboveStaticMax(domid, target: target, staticMax: guests[i].spec.staticMax)
        }
        guests[i].target = target.asDouble
    }

    /// What only a clairvoyant knows.
    public func truth() -> [GuestTruth] {
        guests.map { g in
            let w = g.spec.workload
            let ahead = w.peakWorkingSet(from: seconds, window: lookAhead) + SimGuest.systemAnon
            let now = g.workingSet + w.coldAnon(at: seconds)
            return GuestTruth(workingSet: KiB(Int64(now + g.overhead)), peakAhead: KiB(Int64(ahead + g.overhead)))
        }
    }
}
