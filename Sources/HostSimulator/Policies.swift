import GuestModel

/// What every policy sees each round.
public struct PolicyInput: Sendable {
    public var snapshot: HostSnapshot
    public var now: TimePoint
    /// Only filled for policies that ask for it (`wantsTruth`): the oracle and in-guest selfballoon.
    public var truth: [GuestTruth]
    /// Memory Xen can give to guests.
    public var pool: KiB
}

/// What a policy decides: a target per domain (in snapshot order; the current target means "no
/// change") and, for policies that have them, the floors it promises.
public struct PolicyOutput: Sendable {
    public var targets: [KiB]
    public var floors: [KiB]?
    public init(targets: [KiB], floors: [KiB]? = nil) {
        self.targets = targets
        self.floors = floors
    }
}

/// A memory policy under evaluation: ours, a baseline written from a peer's public description, or
/// the oracle. Every policy sees the same host, the same guest writes and the same clock.
public protocol SimPolicy {
    var name: String { get }
    /// Guest writes the policy refused.
    var rejectedReports: Int { get }
    var wantsTruth: Bool { get }
    mutating func observe(_ write: XenstoreWrite, staticMax: KiB)
    mutating func decide(_ input: PolicyInput) -> PolicyOutput
}

extension SimPolicy {
    public var wantsTruth: Bool { false }
}

/// The names `--policy` accepts, in table order.
public enum PolicyName: String, Sendable, CaseIterable {
    case arbiter, `static`, squeezed, selfballoon, mom, qmemman, oracle

    public func make(_ scenario: Scenario) -> any SimPolicy {
        switch self {
        case .arbiter: ArbiterPolicy(config: scenario.policy)
        case .static: StaticPolicy()
        case .squeezed: SqueezedPolicy()
        case .selfballoon: SelfballoonPolicy()
        case .mom: MoMPolicy()
        case .qmemman: QmemmanPolicy()
        case .oracle: OraclePolicy(reserve: scenario.policy.share.hostReserve)
        }
    }
}

/// Latest parsed reports per domain, for baselines that read guest data. Legacy key pairs are joined.
struct ReportBook {
    var latest: [DomID: GuestReport] = [:]
    var legacyTotal: [DomID: String] = [:]
    var rejected = 0

    mutating func observe(_ w: XenstoreWrite) {
        switch w.key {
        case .pressure:
            switch ReportParser.parse(w.value) {
            case .success(let r): latest[w.domid] = r
            case .failure: rejected += 1
            }
        case .meminfoTotal:
            legacyTotal[w.domid] = w.value
        case .meminfoFree:
            guard let total = legacyTotal[w.domid] else { return }
            switch ReportParser.parseLegacy(total: total, free: w.value) {
            case .success(let r): latest[w.domid] = r
            case .failure: rejected += 1
            }
        }
    }
}

// MARK: - ours

/// The arbiter's own policy: the pure core, exactly as the daemon runs it.
public struct ArbiterPolicy: SimPolicy {
    public let name = "arbiter"
    public private(set) var arbitration: Arbitration
    public private(set) var rejectedReports = 0
    /// Invariant violations seen in any round (must stay empty).
    public private(set) var violations: [Violation] = []
    /// The last round's decision, for tests and explanations.
    public private(set) var lastDecision: Decision?
    var legacyTotal: [DomID: String] = [:]

    public init(config: PolicyConfig) { arbitration = Arbitration(config: config) }

    public mutating func observe(_ w: XenstoreWrite, staticMax: KiB) {
        let at = TimePoint(seconds: w.visibleAt)
        let outcome: IngestOutcome
        switch w.key {
        case .pressure:
            outcome = arbitration.ingest(w.domid, line: w.value, at: at, staticMax: staticMax)
        case .meminfoTotal:
            legacyTotal[w.domid] = w.value
            return
        case .meminfoFree:
            guard let total = legacyTotal[w.domid] else { return }
            outcome = arbitration.ingest(w.domid, parsed: ReportParser.parseLegacy(total: total, free: w.value), at: at, staticMax: staticMax)
        }
        if case .rejected = outcome { rejectedReports += 1 }
    }

    public mutating func decide(_ input: PolicyInput) -> PolicyOutput {
        let d = arbitration.step(input.snapshot, now: input.now)
        lastDecision = d
        if violations.count < 100 {
            violations += Invariants.violations(of: d, staticMax: input.snapshot.domains.map(\.staticMax))
        }
        return PolicyOutput(targets: d.outcomes.map(\.target), floors: d.outcomes.map(\.floor))
    }
}

// MARK: - baselines

/// Static partitioning: each guest gets a fixed share of host memory in proportion to its provisioned
/// size (static-max), set once and never ballooned again. What a host without any balancer does.
public struct StaticPolicy: SimPolicy {
    public let name = "static"
    public let rejectedReports = 0
    var shares: [KiB]?

    public mutating func observe(_ write: XenstoreWrite, staticMax: KiB) {}

    public mutating func decide(_ input: PolicyInput) -> PolicyOutput {
        if shares == nil {
            let total = input.snapshot.domains.reduce(0.0) { $0 + $1.staticMax.asDouble }
            shares = input.snapshot.domains.map {
                min($0.staticMax, KiB.pageFloor(input.pool.asDouble * $0.staticMax.asDouble / Swift.max(total, 1)))
            }
        }
        return PolicyOutput(targets: shares!)
    }
}

/// XenServer/XCP-ng squeezed (xapi-project/squeezed lib/squeeze.ml, `Proportional`; ../shared/PEERS.md §1):
/// no guest signal at all. Every guest sits at the same fraction γ of its [dynamic-min, dynamic-max]
/// range that fits the host, γ = clamp((free − host_target + Σ freeable) / Σ range, 0, 1), with a 9 MiB
/// host target. Two-phase: while any guest must free memory, guests that would grow wait.
/// dynamic-min is the admin min, else ¼ of static-max (XenServer's support rule); dynamic-max the admin
/// max, else static-max.
public struct SqueezedPolicy: SimPolicy {
    public let name = "squeezed"
    public let rejectedReports = 0
    static let hostTarget = KiB(mib: 9)

    public mutating func observe(_ write: XenstoreWrite, staticMax: KiB) {}

    public mutating func decide(_ input: PolicyInput) -> PolicyOutput {
        let ds = input.snapshot.domains
        let mins = ds.map { $0.adminMin ?? KiB($0.staticMax.value / 4) }
        let maxs = ds.map { min($0.adminMax ?? $0.staticMax, $0.staticMax) }
        let budget = ds.reduce(0.0) { $0 + $1.actual.asDouble } + input.snapshot.free.asDouble - Self.hostTarget.asDouble
        let sumMin = mins.reduce(0.0) { $0 + $1.asDouble }
        let sumRange = zip(mins, maxs).reduce(0.0) { $0 + Swift.max(0, $1.1.asDouble - $1.0.asDouble) }
        let gamma = sumRange > 0 ? clamp((budget - sumMin) / sumRange, 0, 1) : 0
        var targets = ds.indices.map { i in
            KiB.pageFloor(mins[i].asDouble + gamma * Swift.max(0, maxs[i].asDouble - mins[i].asDouble))
        }
        // Two-phase target setting: if anybody has to give memory back, nobody grows this round.
        let inaccuracy = KiB(mib: 1).value
        if ds.indices.contains(where: { targets[$0].value < ds[$0].actual.value - inaccuracy }) {
            for i in ds.indices where targets[i] > ds[i].target { targets[i] = ds[i].target }
        }
        return PolicyOutput(targets: targets)
    }
}

/// Linux xen-selfballoon (drivers/xen/xen-selfballoon.c; PEERS.md §3): each guest, on its own, every
/// 5 s targets Committed_AS (+ what the kernel keeps), shrinking 1/8 of the gap per tick and growing at
/// once, never below its piecewise floor. No host view: it asks for memory Xen may not have.
public struct SelfballoonPolicy: SimPolicy {
    public let name = "selfballoon"
    public let rejectedReports = 0
    public var wantsTruth: Bool { true }
    var nextTick = 0.0
    var last: [KiB] = []

    public mutating func observe(_ write: XenstoreWrite, staticMax: KiB) {}

    public mutating func decide(_ input: PolicyInput) -> PolicyOutput {
        let ds = input.snapshot.domains
        if last.count != ds.count { last = ds.map(\.target) }
        let now = Double(input.now.ms) / 1000
        guard now >= nextTick else { return PolicyOutput(targets: last) }
        nextTick = now + 5
        for (i, d) in ds.enumerated() {
            let goal = input.truth[i].committedAS.asDouble + input.truth[i].overhead.asDouble
            let cur = d.target.asDouble
            var t = cur > goal ? cur - (cur - goal) / 8 : goal
            t = Swift.max(t, Floors.selfballoon(d.staticMax).asDouble)
            last[i] = min(KiB.pageFloor(t), d.staticMax)
        }
        return PolicyOutput(targets: last)
    }
}

/// oVirt MoM's default balloon policy (vdsm 02-balloon.policy; PEERS.md §2), every 10 s: when host
/// free memory is under 20 %, shrink every guest with stats by 5 % towards a floor of
/// used + host_free% × current; otherwise grow guests by 5 % up to their max. Guests without stats
/// are skipped; a guest below its guaranteed minimum is raised to it. "Unused" is the guest's
/// MemAvailable (our reports carry no MemFree).
public struct MoMPolicy: SimPolicy {
    public let name = "mom"
    var book = ReportBook()
    var nextTick = 0.0
    public var rejectedReports: Int { book.rejected }

    public mutating func observe(_ write: XenstoreWrite, staticMax: KiB) { book.observe(write) }

    public mutating func decide(_ input: PolicyInput) -> PolicyOutput {
        let ds = input.snapshot.domains
        var targets = ds.map(\.target)
        let now = Double(input.now.ms) / 1000
        guard now >= nextTick else { return PolicyOutput(targets: targets) }
        nextTick = now + 10
        let hostFree = input.snapshot.free.asDouble / Swift.max(input.pool.asDouble, 1)
        let guestFree = hostFree <= 0.05 ? hostFree - 0.05 : hostFree
        for (i, d) in ds.enumerated() {
            let minimum = (d.adminMin ?? .zero).asDouble
            let cur = d.target.asDouble
            if cur < minimum { targets[i] = KiB.pageCeil(minimum); continue }
            guard let r = book.latest[d.domid] else { continue }
            let used = cur - r.memAvailable.asDouble
            let floor = Swift.max(minimum, used + guestFree * cur)
            let maxSize = min(d.adminMax ?? d.staticMax, d.staticMax).asDouble
            var size = cur
            if hostFree < 0.20 {
                size = Swift.max(cur * 0.95, floor)
                if size > cur { continue }
            } else {
                size = Swift.min(Swift.max(cur * 1.05, floor), maxSize)
            }
            if abs(size - cur) > 0.0025 * cur { targets[i] = KiB.pageFloor(size) }
        }
        return PolicyOutput(targets: targets)
    }
}

/// Qubes OS qmemman (qubes/qmemman/algo.py; PEERS.md §8.1), on every round: preference =
/// max(used × 1.3, 200 MiB) capped at max, used = MemTotal − MemAvailable + swap used (in Xen terms);
/// spare memory (Xen free − 50 MiB − Σ needs) split in proportion to preference; when short, donors
/// (above their preference) go to it first and acceptors share what that frees. Rebalances only when
/// the transfer is worth > 150 MiB. Guests that never reported are left alone.
public struct QmemmanPolicy: SimPolicy {
    public let name = "qmemman"
    var book = ReportBook()
    public var rejectedReports: Int { book.rejected }
    static let freeGoal = 50.0 * 1024, minPref = 200.0 * 1024

    public mutating func observe(_ write: XenstoreWrite, staticMax: KiB) { book.observe(write) }

    public mutating func decide(_ input: PolicyInput) -> PolicyOutput {
        let ds = input.snapshot.domains
        var targets = ds.map(\.target)
        var members = [Int](), pref = [Double]()
        for (i, d) in ds.enumerated() {
            guard let r = book.latest[d.domid] else { continue }
            let swapUsed = Swift.max(0, (r.swapTotal?.asDouble ?? 0) - (r.swapFree?.asDouble ?? 0))
            let overhead = Swift.max(0, d.actual.asDouble - r.memTotal.asDouble)
            let used = r.used.asDouble + swapUsed + overhead
            let maxMem = min(d.adminMax ?? d.staticMax, d.staticMax).asDouble
            members.append(i)
            pref.append(Swift.min(Swift.max(used * 1.3, Self.minPref), maxMem))
        }
        guard !members.isEmpty else { return PolicyOutput(targets: targets) }
        let xenFree = input.snapshot.free.asDouble
        let needs = members.indices.map { pref[$0] - ds[members[$0]].actual.asDouble }
        let totalAvail = (xenFree - Self.freeGoal) - needs.reduce(0, +)
        let sumPref = pref.reduce(0, +)
        var proposed = [Double](repeating: 0, count: members.count)
        if totalAvail > 0 {
            for k in members.indices {
                let maxMem = min(ds[members[k]].adminMax ?? ds[members[k]].staticMax, ds[members[k]].staticMax).asDouble
                proposed[k] = Swift.min(0.999 * (pref[k] + pref[k] / sumPref * totalAvail), maxMem)
            }
        } else {
            var donorSurplus = 0.0
            var acceptorPref = 0.0
            for k in members.indices {
                if needs[k] < 0 && -needs[k] >= 10 * 1024 { donorSurplus += -needs[k] } else if needs[k] > 0 { acceptorPref += pref[k] }
            }
            let squeezed = xenFree - donorSurplus      // sic: as in algo.py
            for k in members.indices {
                let actual = ds[members[k]].actual.asDouble
                if needs[k] < 0 && -needs[k] >= 10 * 1024 { proposed[k] = pref[k] }
                else if needs[k] > 0 && squeezed > 0 && acceptorPref > 0 { proposed[k] = actual + squeezed * pref[k] / acceptorPref }
                else { proposed[k] = ds[members[k]].target.asDouble }
            }
        }
        // Hysteresis: only worth it if more than 150 MiB moves (or free memory is far from its goal).
        let transfer = members.indices.reduce(0.0) { $0 + abs(proposed[$1] - ds[members[$1]].actual.asDouble) }
        guard transfer + abs(xenFree - Self.freeGoal) > 150 * 1024 else { return PolicyOutput(targets: targets) }
        for k in members.indices {
            targets[members[k]] = min(KiB.pageFloor(proposed[k]), ds[members[k]].staticMax)
        }
        return PolicyOutput(targets: targets)
    }
}

/// The oracle: knows each guest's true working set over the next look-ahead window, gives everyone
/// exactly that (plus 5 %) by weighted water-filling when it does not fit, keeps the rest free, and
/// moves targets at once. The bound the others are measured against.
public struct OraclePolicy: SimPolicy {
    public let name = "oracle"
    public let rejectedReports = 0
    public var wantsTruth: Bool { true }
    let reserve: KiB

    public init(reserve: KiB) { self.reserve = reserve }

    public mutating func observe(_ write: XenstoreWrite, staticMax: KiB) {}

    public mutating func decide(_ input: PolicyInput) -> PolicyOutput {
        let ds = input.snapshot.domains
        let ceilings = ds.map { min($0.adminMax ?? $0.staticMax, $0.staticMax) }
        let floors = ds.indices.map { min(max(input.truth[$0].workingSet, ds[$0].adminMin ?? .zero), ceilings[$0]).pageCeil }
        let demands = ds.indices.map { KiB.pageCeil(input.truth[$0].peakAhead.asDouble * 1.05) }
        let budget = KiB(ds.reduce(Int64(0)) { $0 + $1.actual.value } + input.snapshot.free.value - reserve.value)
        let share = FairShare.solve(floors: floors, demands: demands, ceilings: ceilings, weights: ds.map { $0.weight ?? 1 },
                                    budget: budget, surplus: .keepFree)
        return PolicyOutput(targets: share.allocations)
    }
}
