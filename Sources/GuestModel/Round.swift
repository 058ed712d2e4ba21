/// The values one round passes from step to step (see `Arbitration.step`): bounds → share → moves → decision.

/// One guest's bounds for a round (step 1): what it may have, what it asks for, and the facts they
/// came from. Values, built once per round.
struct GuestBounds {
    var domid: DomID
    var status: ReportStatus
    /// Static-max as Xen has it (or the most the domain holds, when Xen shows none).
    var staticMax: KiB
    var weight: Double
    var actual: KiB
    var previousTarget: KiB
    /// Since when the guest's shrink allowance accrues.
    var shrinkSince: TimePoint?
    /// Since when its target has been held short of its allocation inside the grow band.
    var shortSince: TimePoint? = nil
    var floor: KiB
    var floorKind: FloorKind
    /// The part of the floor that holds whatever the guest reports (see `DomainOutcome.staticFloor`).
    var staticFloor: KiB
    /// Which rule set `staticFloor` (the floor's kind again if a working-set floor gives way to it).
    var staticFloorKind: FloorKind
    var demand: KiB
    /// The demand with idle memory taxed, counted under contention.
    var idleTaxed: KiB
    var ceiling: KiB
    var workingSet: KiB?
    var cheapShrinkEdge: KiB
    var stall: Double?
    var critical: Bool
    var givable: KiB? = nil
    var quarantined = false
    var uncooperative = false
}

/// A guest's bounds and the solver's allocation (step 2).
struct Allotment {
    var bounds: GuestBounds
    var allocation: KiB
    var basis: ShareBasis
}

/// The split of a round (step 2): each guest's bounds (the working-set floors may have given way) and
/// the solver's allocation for it.
struct Share {
    var bounds: [GuestBounds]
    var result: FairShareResult
    var phase: SharePhase { result.phase }
    var count: Int { bounds.count }

    /// Guest `k`'s bounds with its allocation.
    @inline(__always) func allotment(_ k: Int) -> Allotment {
        Allotment(bounds: bounds[k], allocation: result.allocations[k], basis: result.basis[k])
    }
}

/// Where pacing moves a guest's target this round (step 3).
struct Move {
    var target: KiB
    var reason: Reason
    /// True when pacing (rate limit, free memory) kept the target short of the allocation.
    var paced = false
    /// True when the target was held under the allocation inside the grow band (as estimate noise).
    var short = false
}

extension DomainOutcome {
    init(_ a: Allotment, _ m: Move) {
        let b = a.bounds
        self.init(domid: b.domid, status: b.status, floor: b.floor, floorKind: b.floorKind, demand: b.demand, ceiling: b.ceiling,
                  weight: b.weight, workingSet: b.workingSet, cheapShrinkEdge: b.cheapShrinkEdge, stall: b.stall, critical: b.critical,
                  allocation: a.allocation, basis: a.basis, actual: b.actual, previousTarget: b.previousTarget, target: m.target,
                  reason: m.reason, paced: m.paced, quarantined: b.quarantined, uncooperative: b.uncooperative)
        staticFloor = b.staticFloor
        givable = b.givable
    }
}
