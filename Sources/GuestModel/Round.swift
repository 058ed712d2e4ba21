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

/// What the round keeps of a guest beside its outcome: the facts the pacer and the commit need that the
/// decision does not carry. Small, so that the steps after the bounds walk a dense array.
struct RoundFacts {
    /// Static-max as the bounds took it.
    var staticMax: KiB
    var shrinkSince: TimePoint?
    var shortSince: TimePoint?
    /// The guest's slot in `Arbitration`'s storage (−1: none, in tests).
    var slot: Int32
    var staticFloorKind: FloorKind
    /// Set by pacing: the target was held under the allocation inside the grow band.
    var short = false
}

/// The values of a round from step to step, one entry per domain of the snapshot: each guest's outcome
/// (its bounds from step 1, the solver's allocation from step 2, the move from step 3, written in place:
/// the decision carries these very values, so they are never copied from one struct into another) and
/// its round facts.
struct Share {
    var outcomes: [DomainOutcome]
    var facts: [RoundFacts]
    var result: FairShareResult
    var phase: SharePhase { result.phase }
    var count: Int { outcomes.count }
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
    /// A guest's outcome as its bounds leave it: the solver and the pacer fill in the rest (allocation,
    /// basis, target, reason, paced) for every guest.
    @inline(__always)
    init(_ b: GuestBounds) {
        self.init(domid: b.domid, status: b.status, floor: b.floor, floorKind: b.floorKind, demand: b.demand, ceiling: b.ceiling,
                  weight: b.weight, workingSet: b.workingSet, cheapShrinkEdge: b.cheapShrinkEdge, stall: b.stall, critical: b.critical,
                  allocation: .zero, basis: .floor, actual: b.actual, previousTarget: b.previousTarget, target: b.previousTarget,
                  reason: .steady, paced: false, quarantined: b.quarantined, uncooperative: b.uncooperative)
        staticFloor = b.staticFloor
        givable = b.givable
    }
}
