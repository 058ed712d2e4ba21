/// The values a round produces. Each per-domain outcome carries the inputs that led to it and one
/// reason code, so `explain DOMAIN` can answer from stored facts.

/// An admin's limits for one domain (`arbiter set`, a scenario's guest, the store's `domain_settings`):
/// each key optional, unset keys fall back to the next source.
public struct AdminSetting: Sendable, Equatable {
    /// The floor the admin set.
    public var min: KiB?
    /// The ceiling the admin set.
    public var max: KiB?
    public var weight: Double?

    public init(min: KiB? = nil, max: KiB? = nil, weight: Double? = nil) {
        self.min = min
        self.max = max
        self.weight = weight
    }

    /// These settings over `base`, key by key (an unset key takes the base's).
    public func over(_ base: AdminSetting?) -> AdminSetting {
        AdminSetting(min: min ?? base?.min, max: max ?? base?.max, weight: weight ?? base?.weight)
    }
}

/// Trusted facts about one domain, from Xen (libxl domain info, xenstore `memory/*`) and the admin's
/// per-domain settings.
public struct DomainFacts: Sendable, Equatable {
    public var domid: DomID
    /// `memory/static-max`: libxl refuses targets above it.
    public var staticMax: KiB
    /// The domain's current allocation as Xen counts it (libxl `current_memkb`).
    public var actual: KiB
    /// `memory/target` as it stands now (ours from an earlier round, or the toolstack's).
    public var target: KiB
    public var admin: AdminSetting
    public var adminMin: KiB? { admin.min }
    public var adminMax: KiB? { admin.max }
    public var weight: Double? { admin.weight }

    public init(domid: DomID, staticMax: KiB, actual: KiB, target: KiB, admin: AdminSetting) {
        self.domid = domid
        self.staticMax = staticMax
        self.actual = actual
        self.target = target
        self.admin = admin
    }

    public init(domid: DomID, staticMax: KiB, actual: KiB, target: KiB,
                adminMin: KiB? = nil, adminMax: KiB? = nil, weight: Double? = nil) {
        self.init(domid: domid, staticMax: staticMax, actual: actual, target: target,
                  admin: AdminSetting(min: adminMin, max: adminMax, weight: weight))
    }
}

/// One consistent look at the host.
public struct HostSnapshot: Sendable, Equatable {
    /// Memory Xen can hand out right now (physinfo free, less outstanding claims).
    public var free: KiB
    /// The managed domains (dom0 and other unmanaged domains are left out: their memory is neither
    /// free nor ours to move).
    public var domains: [DomainFacts]
    /// Memory held out of the budget for domains about to be built (reservations for VM starts and
    /// restarts), on top of the host reserve: never handed to a guest while held.
    public var held: KiB
    /// A reservation is waiting for memory: shrinks go at the fast pace all the way to the allocation
    /// (never below a floor), not slowly through the guest's working set.
    public var urgent: Bool
    public init(free: KiB, domains: [DomainFacts], held: KiB = .zero, urgent: Bool = false) {
        self.free = free
        self.domains = domains
        self.held = held
        self.urgent = urgent
    }
}

/// What we know of a guest's reports this round.
public enum ReportStatus: UInt8, Sendable, Equatable, CustomStringConvertible {
    /// A recent accepted report: the estimate is used.
    case fresh
    /// The last accepted report is older than the staleness limit.
    case stale
    /// Never reported (or not since the arbiter started).
    case none
    /// The latest report was rejected.
    case rejected

    public var description: String {
        switch self {
        case .fresh: "fresh"
        case .stale: "stale"
        case .none: "none"
        case .rejected: "rejected"
        }
    }
}

/// Which rule set the floor.
public enum FloorKind: UInt8, Sendable, Equatable, CustomStringConvertible {
    case admin, absolute, selfballoon, workingSet, hold, ceiling
    public var description: String {
        switch self {
        case .admin: "admin"
        case .absolute: "absolute"
        case .selfballoon: "selfballoon"
        case .workingSet: "working-set"
        case .hold: "hold"
        case .ceiling: "ceiling"
        }
    }
}

/// Why a domain's target is what it is after this round. One per domain per round.
public enum Reason: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// Within the deadband of the decision: nothing pushed.
    case steady = "steady"
    /// Raised towards its demand (pressure, growing working set).
    case growDemand = "grow:demand"
    /// Below its floor: raised at once (floors are hard).
    case growFloor = "grow:floor"
    /// Critical pressure: raised at once to what it recently had.
    case growCritical = "grow:critical"
    /// Given a weighted share of spare memory above its demand.
    case growSurplus = "grow:surplus"
    /// Wanted more than Xen has free: given part now, the rest as shrinks elsewhere free memory.
    case growPartial = "grow:partial"
    /// Wanted to grow but nothing is free yet (two-phase: shrinks first).
    case heldNoFree = "held:no-free-memory"
    /// Lowered towards a demand below its allocation (idle memory), at the paced rate.
    case shrinkIdle = "shrink:idle"
    /// Lowered towards its fair share under contention, at the paced rate.
    case shrinkContention = "shrink:contention"
    /// Lowered towards a ceiling the admin set below its allocation, at the paced rate.
    case shrinkCeiling = "shrink:ceiling"
    /// Its target was above static-max (libxl refuses those): clamped.
    case clampStaticMax = "clamp:static-max"
    /// Lowered a grow target the guest had not reached: takes no memory from it.
    case trimGrow = "trim:unreached-grow"
    /// A shrink was due but the guest's stall pressure is too high.
    case heldPressure = "held:pressure"
    /// A shrink was due but the last one is still being reached.
    case heldConverging = "held:converging"
    /// A shrink was due but the pace allows nothing this round.
    case heldRateLimit = "held:rate-limit"
    /// A shrink was due but the guest (without free swap) reports nothing more it could give back.
    case heldNoAvailable = "held:guest-full"
    /// At its floor.
    case heldFloor = "held:floor"
    /// Wants more, but under contention this is its weighted fair share.
    case heldFairShare = "held:fair-share"
    /// Its last report is too old: held, never shrunk on old data.
    case heldStale = "held:stale-report"
    /// It has never reported: held.
    case heldNoReport = "held:no-report"
    /// Its latest report was rejected: held.
    case heldRejected = "held:rejected-report"
    /// A report of its was rejected recently: it may not grow yet.
    case heldQuarantine = "held:quarantine"
    /// Its balloon gave back too little for too long: held at what it really has, not asked again yet.
    case fencedUncooperative = "fenced:uncooperative"
    /// Floors exceed the host: everyone at their floor; an alert is raised.
    case infeasible = "held:floors-exceed-host"
    /// Raised by the rule of the peer policy the daemon runs (`[daemon] policy`), or would be (a shadow).
    case policyGrow = "policy:grow"
    /// Lowered by the rule of the peer policy the daemon runs, or would be (a shadow).
    case policyShrink = "policy:shrink"

    public var description: String { rawValue }

    /// The reason in a sentence, for `arbiter explain`.
    public var explanation: String {
        switch self {
        case .steady: "its target is within the deadband of what it should have: nothing was pushed"
        case .growDemand: "raised towards its estimated demand (pressure or a growing working set)"
        case .growFloor: "it was below its floor, which is hard: raised at once"
        case .growCritical: "critical memory pressure: given back what it recently had, at once"
        case .growSurplus: "given a weighted share of spare memory above its demand"
        case .growPartial: "wanted more than Xen had free: given part now, the rest as shrinks elsewhere free memory"
        case .heldNoFree: "wants to grow, but nothing is free yet: shrinks elsewhere go first"
        case .shrinkIdle: "its demand is below what it has: lowered at the paced rate"
        case .shrinkContention: "the host is short and this is its fair share: lowered at the paced rate"
        case .shrinkCeiling: "above the ceiling set for it: lowered at the paced rate"
        case .clampStaticMax: "its target was above static-max, which libxl refuses: clamped"
        case .trimGrow: "a grow it had not reached was lowered: nothing taken from it"
        case .heldPressure: "a shrink was due, but it is stalling: not squeezed"
        case .heldConverging: "a shrink was due, but its balloon has not reached the last one yet"
        case .heldRateLimit: "a shrink was due, but the pace allows nothing yet"
        case .heldNoAvailable: "a shrink was due, but without free swap it has nothing more to give back: the balloon would take the memory its kernel needs"
        case .heldFloor: "at its floor"
        case .heldFairShare: "wants more, but under contention this is its weighted fair share"
        case .heldStale: "its last report is too old: held, never shrunk on old data"
        case .heldNoReport: "it has never reported: held, never shrunk without data"
        case .heldRejected: "its latest report was rejected: held"
        case .heldQuarantine: "a report of it was rejected recently: it may not grow yet"
        case .fencedUncooperative: "its balloon gave back too little for too long: held at what it really has"
        case .infeasible: "the floors exceed the host: everyone is held at their floor"
        case .policyGrow: "raised by the rule of the policy that decided (see the round's policy)"
        case .policyShrink: "lowered by the rule of the policy that decided (see the round's policy)"
        }
    }
}

/// The outcome for one domain.
public struct DomainOutcome: Sendable, Equatable {
    public var domid: DomID
    public var status: ReportStatus
    public var floor: KiB
    public var floorKind: FloorKind
    /// The part of the floor that holds whatever the guest reports and whatever the host needs (admin,
    /// absolute, selfballoon's, or what a guest without usable reports holds). Above it, the working-set
    /// floor gives way to the weighted split under contention and to reservations for VM starts.
    public var staticFloor: KiB = .zero
    public var demand: KiB
    public var ceiling: KiB
    public var weight: Double
    public var workingSet: KiB?
    /// Above this the guest can give memory back cheaply (free memory and cold cache): its working set
    /// now, with the floor padding. Pacing shrinks fast above it and slowly below it.
    public var cheapShrinkEdge: KiB
    /// PSI some share of the last accepted report, if any.
    public var stall: Double?
    /// What the guest can give back now without swapping (its MemAvailable at the last report, less what
    /// its balloon gave since); nil when it has free swap or no fresh report. No shrink takes more.
    public var givable: KiB? = nil
    public var critical: Bool
    /// The solver's allocation and why.
    public var allocation: KiB
    public var basis: ShareBasis
    public var actual: KiB
    public var previousTarget: KiB
    /// The target after pacing (equal to previousTarget when nothing is pushed).
    public var target: KiB
    public var reason: Reason
    /// True when pacing (rate limit, free memory) kept the target short of the allocation.
    public var paced: Bool
    /// A recent rejected report keeps it from growing.
    public var quarantined = false
    /// Its balloon is marked uncooperative.
    public var uncooperative = false
    public var changed: Bool { target != previousTarget }

    public init(domid: DomID, status: ReportStatus, floor: KiB, floorKind: FloorKind, demand: KiB, ceiling: KiB, weight: Double,
                workingSet: KiB?, cheapShrinkEdge: KiB, stall: Double?, critical: Bool, allocation: KiB, basis: ShareBasis,
                actual: KiB, previousTarget: KiB, target: KiB, reason: Reason, paced: Bool,
                quarantined: Bool = false, uncooperative: Bool = false) {
        self.domid = domid; self.status = status; self.floor = floor; self.floorKind = floorKind; self.demand = demand
        self.ceiling = ceiling; self.weight = weight; self.workingSet = workingSet; self.cheapShrinkEdge = cheapShrinkEdge
        self.stall = stall; self.critical = critical; self.allocation = allocation; self.basis = basis; self.actual = actual
        self.previousTarget = previousTarget; self.target = target; self.reason = reason; self.paced = paced
        self.quarantined = quarantined; self.uncooperative = uncooperative
    }
}

/// Something an admin must hear about.
public struct Alert: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The floors alone need more memory than the host has (reserve aside).
        case floorsExceedHost = "floors-exceed-host"
    }
    public var kind: Kind
    public var shortfall: KiB
    public var domains: [DomID]
    public var description: String {
        switch kind {
        case .floorsExceedHost:
            "floors exceed host memory by \(shortfall) across \(domains.count) domains: all held at their floors"
        }
    }
}

/// One round's decision.
public struct Decision: Sendable, Equatable {
    public var at: TimePoint
    /// Σ allocations + Xen free − reserve: what the solver shared out.
    public var budget: KiB
    public var free: KiB
    /// What was kept free this round: the host reserve, the start reserve and memory held for starts.
    public var reserve: KiB
    /// The part of `reserve` held for domains about to be built.
    public var held: KiB = .zero
    /// Free memory the grows of this round could use (free − reserve − grows still outstanding).
    public var growBudget: KiB
    public var phase: SharePhase
    public var level: Double?
    public var shortfall: KiB
    public var outcomes: [DomainOutcome]
    public var alerts: [Alert]

    public init(at: TimePoint, budget: KiB, free: KiB, reserve: KiB, held: KiB = .zero, growBudget: KiB, phase: SharePhase,
                level: Double?, shortfall: KiB, outcomes: [DomainOutcome], alerts: [Alert]) {
        self.at = at; self.budget = budget; self.free = free; self.reserve = reserve; self.held = held
        self.growBudget = growBudget; self.phase = phase; self.level = level; self.shortfall = shortfall
        self.outcomes = outcomes; self.alerts = alerts
    }

    /// The targets to push: only the domains whose target changed.
    public var changes: [DomainOutcome] { outcomes.filter(\.changed) }
}
