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
    /// How often every policy decides.
    public var roundSeconds = 2.0
    /// Host RAM, and what Xen and dom0 keep of it; guests share the rest (the pool).
    public var hostMemory: KiB
    public var xenReserve: KiB
    public var policy = PolicyConfig()
    public var guests: [GuestSpec]

    public init(name: String, description: String = "", hostMemory: KiB, xenReserve: KiB = .zero, guests: [GuestSpec]) {
        self.name = name
        self.description = description
        self.hostMemory = hostMemory
        self.xenReserve = xenReserve
        self.guests = guests
    }

    /// Memory Xen can give to guests.
    public var pool: KiB { KiB(Swift.max(0, hostMemory.value - xenReserve.value)) }

    /// Problems that make the scenario impossible to run.
    public func problems() -> [String] {
        var p = [String]()
        if guests.isEmpty { p.append("no guests") }
        if guests.count >= Int(DomID.firstReserved) - 1 { p.append("too many guests") }
        if !(hours > 0 && hours <= 24 * 31) { p.append("hours must be between 0 and 744") }
        if !(stepSeconds > 0 && stepSeconds <= 60) { p.append("step_seconds must be between 0 and 60") }
        if !(roundSeconds >= stepSeconds && roundSeconds <= 3600) { p.append("round_seconds must be at least step_seconds and at most 3600") }
        let boot = guests.reduce(Int64(0)) { $0 + Swift.min($1.boot, $1.staticMax).value }
        if boot > pool.value { p.append("guests boot with \(formatSize(KiB(boot))) but the host gives guests only \(formatSize(pool))") }
        for g in guests {
            if g.staticMax.value <= 0 { p.append("guest \(g.name): static_max must be positive") }
            if g.boot.value <= 0 { p.append("guest \(g.name): boot must be positive") }
            if !(g.anonFraction >= 0 && g.anonFraction <= 1) { p.append("guest \(g.name): anon_fraction must be 0-1") }
            if let w = g.weight, !(w > 0 && w.isFinite) { p.append("guest \(g.name): weight must be positive") }
            if !(g.reportInterval > 0) { p.append("guest \(g.name): report_interval must be positive") }
        }
        return p + policy.problems()
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

/// What the oracle (and in-guest policies such as selfballoon) may know that dom0 does not.
public struct GuestTruth: Sendable, Equatable {
    /// The working set now, and the largest over the look-ahead window, in KiB of allocation
    /// (kernel overhead included).
    public var workingSet: KiB
    public var peakAhead: KiB
    /// Committed_AS as the guest kernel counts it (guest terms).
    public var committedAS: KiB
    /// Allocation the guest kernel keeps for itself (allocation − MemTotal).
    public var overhead: KiB
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
    /// Current value of every guest-written key (what a xenstore read returns).
    public private(set) var store: [DomID: [String: String]] = [:]
    /// Oracle look-ahead: roughly how long a balloon takes to move a working set.
    public var lookAhead = 30.0

    public init(scenario: Scenario) {
        rng = SplitMix64(seed: scenario.seed)
        var gs = [SimGuest]()
        for (i, spec) in scenario.guests.enumerated() {
            let phase = Double(rng.next() % 2000) / 1000
            gs.append(SimGuest(spec: spec, domid: DomID(UInt16(i + 1)), reportPhase: phase))
        }
        guests = gs
        pool = scenario.pool.asDouble
        free = Swift.max(0, pool - gs.reduce(0) { $0 + $1.actual })
    }

    public func index(of domid: DomID) -> Int? {
        let i = Int(domid.raw) - 1
        return i >= 0 && i < guests.count ? i : nil
    }

    /// Advances the physics by `dt` seconds and lets guests write their reports.
    public mutating func step(_ dt: Double) {
        seconds += dt
        for i in guests.indices {
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
        for w in ready { store[w.domid, default: [:]][w.key.path] = w.value }
        return ready
    }

    /// A xenstore read of a guest key (relative to the domain's home, e.g. `data/pressure`).
    public func read(_ domid: DomID, _ key: String) -> String? { store[domid]?[key] }

    /// The trusted facts dom0 would read from Xen and libxl, with the admin settings of the scenario.
    public var snapshot: HostSnapshot {
        HostSnapshot(free: KiB(Int64(free)), domains: guests.map {
            DomainFacts(domid: $0.domid, staticMax: $0.spec.staticMax, actual: KiB(Int64($0.actual)), target: KiB(Int64($0.target)),
                        adminMin: $0.spec.adminMin, adminMax: $0.spec.adminMax, weight: $0.spec.weight)
        })
    }

    /// Sets a balloon target, with libxl's rules.
    public mutating func setTarget(_ domid: DomID, _ target: KiB) throws(SetTargetError) {
        guard let i = index(of: domid) else { throw .noSuchDomain(domid) }
        guard target.value > 0 else { throw .notPositive(domid) }
        guard target <= guests[i].spec.staticMax else {
            throw .aboveStaticMax(domid, target: target, staticMax: guests[i].spec.staticMax)
        }
        guests[i].target = target.asDouble
    }

    /// What only an oracle knows.
    public func truth() -> [GuestTruth] {
        guests.map { g in
            let w = g.spec.workload
            let ahead = w.peakWorkingSet(from: seconds, window: lookAhead)
            let now = g.workingSet + w.coldAnon(at: seconds)
            return GuestTruth(workingSet: KiB(Int64(now + g.overhead)), peakAhead: KiB(Int64(ahead + g.overhead)),
                              committedAS: KiB(Int64((g.workingSet * g.spec.anonFraction + w.coldAnon(at: seconds)) * 1.25 + 100 * 1024)),
                              overhead: KiB(Int64(g.overhead)))
        }
    }
}
