import GuestModel

/// What a peer keeps of each guest's reports: the latest accepted one. Peers read
/// the same parsed reports as the arbiter (a report the parser refuses is refused for all of them), but
/// none of them keeps history beyond what its own source keeps.
struct ReportBook: Sendable {
    var latest = [DomID: GuestReport]()

    mutating func ingest(_ domid: DomID, _ parsed: Result<GuestReport, ReportRejection>) -> IngestOutcome {
        switch parsed {
        case .success(let r):
            if let old = latest[domid], old == r { return .unchanged }
            latest[domid] = r
            return .accepted
        case .failure(let why):
            return .rejected(why)
        }
    }

    subscript(_ d: DomID) -> GuestReport? { latest[d] }
    mutating func forget(_ d: DomID) { latest[d] = nil }
}

/// One domain's part of a peer's round, in the peer's own terms.
public struct PeerChoice: Sendable {
    /// What the peer sets (nil: leaves the target as it is).
    var target: KiB?
    /// The least the peer would ever set, its most, and what it aims for (its "preference").
    var floor: KiB
    var ceiling: KiB
    var demand: KiB
    /// The peer has a report of this guest it uses.
    var reported: Bool

    public init(target: KiB?, floor: KiB, ceiling: KiB, demand: KiB, reported: Bool) {
        self.target = target; self.floor = floor; self.ceiling = ceiling; self.demand = demand; self.reported = reported
    }
}

extension Decision {
    /// A peer's round as a `Decision`, so the daemon pushes, records and explains it like the arbiter's:
    /// targets page-aligned, positive and never above static-max (libxl refuses those), floors and
    /// ceilings as the peer holds them, the reason `policy:grow` / `policy:shrink` / `steady`.
    /// `reserve` is what the peer keeps free of Xen's memory.
    public static func peer(_ snapshot: HostSnapshot, now: TimePoint, choices: [PeerChoice], reserve: KiB, contended: Bool) -> Decision {
        var outcomes = [DomainOutcome]()
        outcomes.reserveCapacity(choices.count)
        var sumActual: Int64 = 0
        for (d, c) in zip(snapshot.domains, choices) {
            sumActual += d.actual.value
            let staticMax = d.staticMax.value > 0 ? d.staticMax : Swift.max(d.actual, d.target)
            let prev = d.target.value > 0 ? d.target : d.actual
            var target = prev
            if let t = c.target { target = Swift.min(Swift.max(t, KiB(4)), staticMax).pageFloor }
            let ceiling = Swift.min(Swift.max(c.ceiling, .zero), staticMax)
            let floor = Swift.min(c.floor, ceiling)
            let reason: Reason = target == prev ? .steady : (target > prev ? .policyGrow : .policyShrink)
            var o = DomainOutcome(
                domid: d.domid, status: c.reported ? .fresh : .none, floor: floor, floorKind: .hold,
                demand: clamp(c.demand, floor, ceiling), ceiling: ceiling, weight: d.weight ?? 1, workingSet: nil,
                cheapShrinkEdge: target, stall: nil, critical: false,
                allocation: clamp(target, floor, ceiling), basis: .demand, actual: d.actual, previousTarget: prev,
                target: target, reason: reason, paced: false)
            o.staticFloor = floor
            outcomes.append(o)
        }
        let budget = KiB(Swift.max(0, sumActual + snapshot.free.value - reserve.value))
        return Decision(at: now, budget: budget, free: snapshot.free, reserve: reserve, growBudget: KiB(Swift.max(0, snapshot.free.value)),
                        phase: contended ? .contended : .uncontended, level: nil, shortfall: .zero, outcomes: outcomes, alerts: [])
    }
}

/// Every policy the daemon can run or shadow, by the name `[daemon] policy` takes.
public enum PolicyKind: String, Sendable, CaseIterable {
    case arbiter, `static`, squeezed, mom, qmemman

    public func make(_ config: PolicyConfig) -> any RoundPolicy {
        switch self {
        case .arbiter: Arbitration(config: config)
        case .static: StaticPeer()
        case .squeezed: SqueezedPeer()
        case .mom: MoMPeer()
        case .qmemman: QmemmanPeer()
        }
    }
}
