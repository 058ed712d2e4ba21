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
    /// Fills in `target`, `reason` and `paced` of each outcome. `shrinkSince` is when each guest's shrink
    /// allowance started accruing. Returns the grow budget it used.
    static func pace(_ out: inout [DomainOutcome], staticMax: [KiB], shrinkSince: [TimePoint?], free: KiB, reserve: KiB,
                     phase: SharePhase, now: TimePoint, config p: PacingConfig) -> KiB {
        var growers = [Int]()
        for i in out.indices {
            let o = out[i]
            let cur = min(o.previousTarget, staticMax[i])
            let want = o.allocation
            let band = p.band(at: cur)
            var newTarget = cur
            var reason = holdReason(o, phase: phase)

            // A calm guest (no stall at all) grows only for a real change, not for estimate noise: a grow
            // the guest does not need now, taken back next round, is a limit cycle (seen at 15 s rounds).
            let calm = (o.stall ?? 0) == 0 && !o.critical
            let growBand = calm ? Swift.max(band, Int64(Double(cur.value) * p.calmGrowFraction)) : band
            if cur < o.floor || want.value - cur.value >= growBand {
                if want > cur || cur < o.floor { growers.append(i) }
            } else if cur.value - want.value >= band || cur > o.ceiling {
                if want >= o.actual {
                    newTarget = want
                    reason = .trimGrow
                } else if (o.critical || (o.stall ?? 0) >= p.shrinkStopPressure) && !overShare(o, phase: phase) {
                    // Stop a shrink in flight where it stands; never squeeze a stalling guest for idle memory.
                    if cur < o.actual { newTarget = o.actual.pageCeil }
                    reason = .heldPressure
                } else if o.actual.value - cur.value > p.maxShrinkLead.value {
                    reason = .heldConverging
                } else {
                    let base = min(cur, o.actual)
                    let dt = shrinkSince[i].map { clamp(now.seconds(since: $0), 0, p.maxIntervalSeconds) } ?? 0
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
                    if paced < cur && cur.value - paced.value >= KiB.page.value
                        && (step >= band || paced == want || ((full || accrued) && step >= KiB(mib: 1).value)) {
                        newTarget = paced
                        out[i].paced = paced > want
                        reason = cur > o.ceiling ? .shrinkCeiling
                            : (o.basis == .fairShare || o.basis == .floor ? .shrinkContention : .shrinkIdle)
                    } else {
                        reason = full ? .heldNoAvailable : .heldRateLimit
                    }
                }
            }
            if newTarget == cur && o.previousTarget > staticMax[i] { reason = .clampStaticMax }
            out[i].target = newTarget
            out[i].reason = reason
        }

        // Phase two: grows, from free memory only.
        var promised: Int64 = 0
        for i in out.indices { promised += Swift.max(0, out[i].target.value - out[i].actual.value) }
        let budget = Swift.max(0, free.value - reserve.value - promised)
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
                let grant = Swift.min(need(out[i]), left) & ~3
                left -= grant
                grow(&out[i], by: grant, config: p)
            }
        }
        let fraction = rest > left ? Double(left) / Double(rest) : 1
        for (k, i) in growers.enumerated() where ranks[k] == 0 {
            let grant = Swift.min(Int64(Double(need(out[i])) * fraction), left) & ~3
            left -= grant
            grow(&out[i], by: grant, config: p)
        }
        return KiB(budget)
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

    /// The share of the pace at which a stalling guest above its weighted share gives way under contention.
    static let contendedRelief = 0.25

    /// Under contention, the guest holds more than its weighted share (the solver gave it less than it
    /// wants and less than its target): it gives way to the guests below theirs.
    static func overShare(_ o: DomainOutcome, phase: SharePhase) -> Bool {
        phase == .contended && (o.basis == .fairShare || o.basis == .floor) && o.status == .fresh && !o.uncooperative
            && o.allocation < o.demand
    }

    /// Raising a target up to what the guest already has costs nothing; the rest needs free memory.
    private static func start(_ o: DomainOutcome) -> KiB { max(o.target, min(o.actual, o.allocation)) }
    private static func need(_ o: DomainOutcome) -> Int64 { Swift.max(0, o.allocation.value - start(o).value) }

    /// Applies a grant of `grant` KiB of free memory to a grower and names the reason.
    private static func grow(_ o: inout DomainOutcome, by grant: Int64, config p: PacingConfig) {
        let cur = o.target
        let want = o.allocation
        let newTarget = KiB(start(o).value + grant).pageFloor
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

    private static func rank(_ o: DomainOutcome) -> Int {
        o.critical ? 2 : (o.target < o.floor ? 1 : 0)
    }

}
