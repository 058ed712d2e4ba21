/// Pacing: how far the targets move this round, given the solver's allocations.
///
/// Two phases (squeezed's rule): targets that free memory go out at once; targets that take memory
/// are granted only from memory Xen already shows free, less the host reserve and less grows still
/// outstanding (target above actual): critical guests first, then guests below their floor, then
/// everyone else in proportion to what they asked. A guest with no stall grows only when its share is
/// `calmGrowFraction` above its target. Shrinks are rate-limited, at two speeds:
///
///     base   = min(target, actual)                      (memory the guest holds or was promised)
///     relief = max(0, 1 − stall / shrinkStopPressure)
///     fast   = clamp(surplusShrinkFraction × base, minRate, maxRate) × relief × Δt
///     slow   = clamp(shrinkFraction × base, minRate, maxRate) × relief × Δt
///     new    = max(allocation, base − fast)    while above the guest's working set now (free memory and
///                                               cold cache: cheap to give back)
///              then max(allocation, edge − slow) below it, where edge = max(allocation, min(base, ws × (1 + padding)))
///
/// with Δt the time since the last shrink pushed (at most maxInterval): steps smaller than the
/// deadband wait and accrue. So the guest's memory never falls faster than the configured rates, the
/// part it needs goes slowly, shrinking slows as its stall rises and stops above the threshold. A
/// shrink already pushed but not yet reached by more than `maxShrinkLead` is not extended (never
/// fight a target that is still being reached); lowering a grow target the
/// guest has not reached takes nothing from it and is not paced. Changes inside the deadband are not
/// pushed, except to reach a floor or leave a target above static-max.
enum Pacer {
    /// Step 3: each guest's move from its current target towards its allocation, written into its
    /// outcome (with the allocation and its basis) in place. Shrinks first, then grows from free memory
    /// only. Returns the free memory the grows could use (free − reserve − grows still outstanding).
    /// (The steps below are inlined into this one: as calls, each was handed its own copy of the
    /// guest's values, several per guest per round.)
    @discardableResult
    static func pace(_ share: inout Share, free: KiB, reserve: KiB, now: TimePoint, config p: PacingConfig) -> KiB {
        let (allocations, basis, phase) = (share.result.allocations, share.result.basis, share.phase)
        let n = share.count
        var growers = [Int]()
        var promised: Int64 = 0
        share.facts.withUnsafeMutableBufferPointer { facts in
            share.outcomes.withUnsafeMutableBufferPointer { out in
                for i in 0..<n {
                    out[i].allocation = allocations[i]
                    out[i].basis = basis[i]
                    let (move, grows) = shrinkOrHold(out[i], facts[i], phase: phase, now: now, config: p)
                    (out[i].target, out[i].reason, out[i].paced) = (move.target, move.reason, move.paced)
                    facts[i].short = move.short
                    promised += Swift.max(0, move.target.value - out[i].actual.value)
                    if grows { growers.append(i) }
                }
            }
        }
        // Phase two: grows, from free memory only.
        let budget = Swift.max(0, free.value - reserve.value - promised)
        guard !growers.isEmpty else { return KiB(budget) }
        share.outcomes.withUnsafeMutableBufferPointer { out in
            // Critical guests first, then guests below their floor, each served in full while memory
            // lasts; everyone else gets the same fraction of what they asked for (no sort needed).
            // Ranks are taken before any grant: a guest raised to its floor is not served again (and its
            // reason overwritten) as an ordinary grower.
            let ranks = growers.map { rank(out[$0]) }
            var left = budget
            var rest: Int64 = 0
            for (k, i) in growers.enumerated() where ranks[k] == 0 { rest += need(out[i]) }
            for r in [2, 1] {
                for (k, i) in growers.enumerated() where ranks[k] == r {
                    let grant = KiB(Swift.min(need(out[i]), left)).pageFloor
                    left -= grant.value
                    grow(&out[i], by: grant, config: p)
                }
            }
            let fraction = rest > left ? Double(left) / Double(rest) : 1
            for (k, i) in growers.enumerated() where ranks[k] == 0 {
                let grant = KiB(Swift.min(Int64(Double(need(out[i])) * fraction), left)).pageFloor
                left -= grant.value
                grow(&out[i], by: grant, config: p)
            }
        }
        return KiB(budget)
    }

    /// Phase one for one guest (`o`: its bounds and allocation): a shrink (paced), a trimmed grow, or a
    /// hold with its reason; and whether it is a grower, served in phase two.
    @inline(__always)
    private static func shrinkOrHold(_ o: DomainOutcome, _ f: RoundFacts, phase: SharePhase, now: TimePoint,
                                     config p: PacingConfig) -> (Move, grows: Bool) {
        let cur = min(o.previousTarget, f.staticMax)
        let want = o.allocation
        let band = p.band(at: cur)
        var move = Move(target: cur, reason: holdReason(o, phase: phase))
        var grows = false
        // A calm guest (no stall at all) grows only for a real change, not for estimate noise: a grow
        // the guest does not need now, taken back next round, is a limit cycle (seen at 15 s rounds).
        let calm = (o.stall ?? 0) == 0 && !o.critical
        // But a full guest (without free swap, only its kernel's margin available) grows to its
        // allocation whatever the band: a workload that waits for memory instead of faulting shows no
        // stall, and a grow held inside the band holds it there for good (real Xen: a hog 7 MiB short
        // of its allocation for 300 s while the host had memory free). Its own use moves its demand, not
        // estimate noise, so it is no limit cycle.
        let full = o.givable.map { $0 <= givableMargin(o.actual) } ?? false
        // And a shortfall inside the band that lasts is no noise either (noise changes sign): an elastic
        // workload that grows only into memory it sees available, and waits otherwise, shows neither
        // stall nor a full guest (real Xen again: a hog keeping 24 MiB available, 7 MiB short for 300 s).
        let lasting = f.shortSince.map { now.seconds(since: $0) >= lastingShortfallSeconds } ?? false
        let growBand = full || lasting ? KiB(mib: 1).value
            : (calm ? Swift.max(band, Int64(Double(cur.value) * p.calmGrowFraction)) : band)
        if cur < o.floor || want.value - cur.value >= growBand {
            grows = want > cur || cur < o.floor
        } else if want.value - cur.value >= KiB(mib: 1).value {
            move.short = true
        } else if cur.value - want.value >= band || cur > o.ceiling {
            if want >= o.actual {
                move = Move(target: want, reason: .trimGrow)
            } else if (o.critical || (o.stall ?? 0) >= p.shrinkStopPressure) && !overShare(o, phase: phase) {
                // Stop a shrink in flight where it stands; never squeeze a stalling guest for idle memory.
                move = Move(target: cur < o.actual ? o.actual.pageCeil : cur, reason: .heldPressure)
            } else if o.actual.value - cur.value > p.maxShrinkLead.value {
                move.reason = .heldConverging
            } else {
                move = shrink(o, f, from: cur, band: band, phase: phase, now: now, config: p)
            }
        }
        if move.target == cur && o.previousTarget > f.staticMax { move.reason = .clampStaticMax }
        return (move, grows)
    }

    /// A shrink from `cur` towards the allocation, at the pace. `band`: the deadband at `cur`, already
    /// taken by the caller (two roundings per guest per round).
    @inline(__always)
    private static func shrink(_ o: DomainOutcome, _ f: RoundFacts, from cur: KiB, band: Int64, phase: SharePhase, now: TimePoint,
                               config p: PacingConfig) -> Move {
        let want = o.allocation
        let base = min(cur, o.actual)
        let dt = f.shrinkSince.map { clamp(now.seconds(since: $0), 0, p.maxIntervalSeconds) } ?? 0
        // Under contention a guest above its weighted share gives way even while it stalls (the
        // others stall too, or the first to grow would keep everything): at a quarter of the pace.
        var (paced, step) = shrinkStep(base: base, want: want, edge: o.cheapShrinkEdge, stall: o.stall ?? 0, dt: dt, config: p,
                                       minRelief: overShare(o, phase: phase) ? Self.contendedRelief : 0)
        // Without free swap a guest cannot give back more than it has available: the balloon would
        // take the free pages its own kernel needs (on real Xen a full guest died of it: OOM panic).
        // Half of what it has beyond the margin per step: it may have used some since it reported
        // (on real Xen a guest growing 8 MiB/s between its report and the push lost its reporter
        // to the OOM killer).
        var full = false
        if let g = o.givable {
            let lowest = KiB(o.actual.value - Swift.max(0, g.value - givableMargin(o.actual).value) / 2).pageCeil
            if paced < lowest {
                paced = Swift.min(cur, lowest)
                step = base.value - paced.value
                full = true
            }
        }
        // Steps under the deadband wait (their allowance accrues), unless they finish the move, or
        // the allowance has stopped accruing (waiting longer cannot make the step any bigger: a
        // stalling guest above its share under contention, paced at a quarter, would hold forever).
        let accrued = dt >= p.maxIntervalSeconds
        guard paced < cur && cur.value - paced.value >= KiB.page.value
                && (step >= band || paced == want || ((full || accrued) && step >= KiB(mib: 1).value)) else {
            return Move(target: cur, reason: full ? .heldNoAvailable : .heldRateLimit)
        }
        let reason: Reason = cur > o.ceiling ? .shrinkCeiling
            : (o.basis == .fairShare || o.basis == .floor ? .shrinkContention : .shrinkIdle)
        return Move(target: paced, reason: reason, paced: paced > want)
    }

    /// The paced shrink from `base` towards `want`: fast down to `edge` (what the guest can give back
    /// cheaply), slowly below it. Returns the new target and the size of the step.
    static func shrinkStep(base: KiB, want: KiB, edge cheap: KiB, stall: Double, dt: Double, config p: PacingConfig,
                           minRelief: Double = 0) -> (KiB, Int64) {
        let relief = Swift.max(minRelief, 1 - stall / p.shrinkStopPressure)
        let lo = p.minShrinkPerSecond.asDouble, hi = p.maxShrinkPerSecond.asDouble
        let fast = KiB.pageFloor(clamp(p.surplusShrinkFractionPerSecond * base.asDouble, lo, hi) * relief * dt)
        let slow = KiB.pageFloor(clamp(p.shrinkFractionPerSecond * base.asDouble, lo, hi) * relief * dt)
        let edge = max(want, min(base, cheap))
        var target = max(edge, base - fast)
        if target == edge && edge > want && fast.value > 0 {
            // Reached the edge within this interval: the time left goes at the slow rate, so the whole
            // step never exceeds the fast allowance.
            let left = 1 - Double(base.value - edge.value) / Double(fast.value)
            target = max(want, edge - KiB.pageFloor(slow.asDouble * Swift.max(0, left)))
        }
        return (target, base.value - target.value)
    }

    /// Memory a guest without free swap keeps available through any shrink: its kernel's own needs
    /// (page tables, a fork, the reporter) come from it.
    static func givableMargin(_ actual: KiB) -> KiB { KiB(Swift.max(KiB(mib: 16).value, actual.value / 50)) }

    /// How long a target may stay short of its allocation inside the grow band before the guest grows.
    static let lastingShortfallSeconds = 30.0

    /// The share of the pace at which a stalling guest above its weighted share gives way under contention.
    static let contendedRelief = 0.25

    /// Under contention, the guest holds more than its weighted share (the solver gave it less than it
    /// wants and less than its target): it gives way to the guests below theirs.
    @inline(__always)
    static func overShare(_ o: DomainOutcome, phase: SharePhase) -> Bool {
        phase == .contended && (o.basis == .fairShare || o.basis == .floor) && o.status == .fresh && !o.uncooperative
            && o.allocation < o.demand
    }

    /// Raising a target up to what the guest already has costs nothing; the rest needs free memory.
    @inline(__always)
    private static func start(_ o: DomainOutcome) -> KiB { max(o.target, min(o.actual, o.allocation)) }
    @inline(__always)
    private static func need(_ o: DomainOutcome) -> Int64 { Swift.max(0, o.allocation.value - start(o).value) }

    /// Applies a grant of free memory to a grower (its target, reason and pacing, in its outcome) and
    /// names the reason.
    @inline(__always)
    private static func grow(_ o: inout DomainOutcome, by grant: KiB, config p: PacingConfig) {
        let cur = o.target
        let want = o.allocation
        let newTarget = KiB(start(o).value + grant.value).pageFloor
        let band = p.band(at: cur)
        if newTarget <= cur || (newTarget.value - cur.value < band && newTarget < want && cur >= o.floor) {
            o.reason = .heldNoFree
            o.paced = true
            return
        }
        o.target = newTarget
        o.paced = newTarget < want
        if o.uncooperative { o.reason = .fencedUncooperative }
        else if newTarget < want { o.reason = .growPartial }
        else if o.critical { o.reason = .growCritical }
        else if cur < o.floor { o.reason = .growFloor }
        else if o.basis == .surplus || o.basis == .ceiling { o.reason = .growSurplus }
        else { o.reason = .growDemand }
    }

    /// The reason a domain keeps its target when nothing else applies.
    @inline(__always)
    static func holdReason(_ o: DomainOutcome, phase: SharePhase) -> Reason {
        if o.uncooperative { return .fencedUncooperative }
        switch o.status {
        case .stale: return .heldStale
        case .none: return .heldNoReport
        case .rejected: return .heldRejected
        case .fresh: break
        }
        if phase == .infeasible { return .infeasible }
        if o.quarantined { return .heldQuarantine }
        if phase == .contended && o.demand > o.allocation { return .heldFairShare }
        return o.previousTarget <= o.floor ? .heldFloor : .steady
    }

    @inline(__always)
    private static func rank(_ o: DomainOutcome) -> Int {
        o.critical ? 2 : (o.target < o.floor ? 1 : 0)
    }
}

extension PacingConfig {
    /// The pacing while memory is wanted for a start: no shrink waits in the deadband (the reservation
    /// needs every page of it).
    func urgent(_ urgent: Bool) -> PacingConfig {
        guard urgent else { return self }
        var p = self
        p.deadband = .zero
        p.deadbandFraction = 0
        return p
    }
}
