/// Pacing: how far the targets move this round, given the solver's allocations.
///
/// Two phases (squeezed's rule): targets that free memory go out at once; targets that take memory
/// are granted only from memory Xen already shows free, less the host reserve and less grows still
/// outstanding (target above actual), critical guests first, then guests below their floor, then by
/// relative shortfall. Shrinks are rate-limited:
///
///     base  = min(target, actual)                       (memory the guest holds or was promised)
///     rate  = clamp(shrinkFraction × base, minRate, maxRate) × max(0, 1 − stall / shrinkStopPressure)
///     new   = max(allocation, base − rate × min(Δt, maxInterval))
///
/// so the guest's memory never falls faster than the configured rate, slows as its stall rises and
/// stops above the threshold. A shrink already pushed but not yet reached by more than `maxShrinkLead`
/// is not extended (never fight a target that is still being reached); lowering a grow target the
/// guest has not reached takes nothing from it and is not paced. Changes inside the deadband are not
/// pushed, except to reach a floor or leave a target above static-max.
enum Pacer {
    /// Fills in `target`, `reason` and `paced` of each outcome. Returns the grow budget it used.
    static func pace(_ out: inout [DomainOutcome], staticMax: [KiB], lastRoundAt: [TimePoint?], free: KiB, reserve: KiB,
                     phase: SharePhase, now: TimePoint, config p: PacingConfig) -> KiB {
        var growers = [Int]()
        for i in out.indices {
            let o = out[i]
            let cur = min(o.previousTarget, staticMax[i])
            let want = o.allocation
            let band = Swift.max(p.deadband.value, Int64((Double(cur.value) * p.deadbandFraction).rounded()))
            var newTarget = cur
            var reason = holdReason(o, phase: phase)

            if cur < o.floor || want.value - cur.value >= band {
                if want > cur || cur < o.floor { growers.append(i) }
            } else if cur.value - want.value >= band || cur > o.ceiling {
                if want >= o.actual {
                    newTarget = want
                    reason = .trimGrow
                } else if o.critical || (o.stall ?? 0) >= p.shrinkStopPressure {
                    // Stop a shrink in flight where it stands; never squeeze a stalling guest.
                    if cur < o.actual { newTarget = o.actual }
                    reason = .heldPressure
                } else if o.actual.value - cur.value > p.maxShrinkLead.value {
                    reason = .heldConverging
                } else {
                    let base = min(cur, o.actual)
                    let dt = lastRoundAt[i].map { clamp(now.seconds(since: $0), 0, p.maxIntervalSeconds) } ?? 0
                    let relief = Swift.max(0, 1 - (o.stall ?? 0) / p.shrinkStopPressure)
                    let rate = clamp(p.shrinkFractionPerSecond * base.asDouble,
                                     p.minShrinkPerSecond.asDouble, p.maxShrinkPerSecond.asDouble) * relief
                    let step = KiB.pageFloor(rate * dt)
                    let paced = max(want, base - step)
                    if paced < cur && cur.value - paced.value >= KiB.page.value {
                        newTarget = paced
                        out[i].paced = paced > want
                        reason = cur > o.ceiling ? .shrinkCeiling
                            : (o.basis == .fairShare || o.basis == .floor ? .shrinkContention : .shrinkIdle)
                    } else {
                        reason = .heldRateLimit
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
        var left = budget
        var rest: Int64 = 0
        for i in growers where rank(out[i]) == 0 { rest += need(out[i]) }
        for r in [2, 1] {
            for i in growers where rank(out[i]) == r {
                let grant = Swift.min(need(out[i]), left) & ~3
                left -= grant
                grow(&out[i], by: grant, config: p)
            }
        }
        let fraction = rest > left ? Double(left) / Double(rest) : 1
        for i in growers where rank(out[i]) == 0 {
            let grant = Swift.min(Int64(Double(need(out[i])) * fraction), left) & ~3
            left -= grant
            grow(&out[i], by: grant, config: p)
        }
        return KiB(budget)
    }

    /// Raising a target up to what the guest already has costs nothing; the rest needs free memory.
    private static func start(_ o: DomainOutcome) -> KiB { max(o.target, min(o.actual, o.allocation)) }
    private static func need(_ o: DomainOutcome) -> Int64 { Swift.max(0, o.allocation.value - start(o).value) }

    /// Applies a grant of `grant` KiB of free memory to a grower and names the reason.
    private static func grow(_ o: inout DomainOutcome, by grant: Int64, config p: PacingConfig) {
        let cur = o.target
        let want = o.allocation
        let newTarget = KiB(start(o).value + grant)
        let band = Swift.max(p.deadband.value, Int64((Double(cur.value) * p.deadbandFraction).rounded()))
        if newTarget <= cur || (newTarget.value - cur.value < band && newTarget < want && cur >= o.floor) {
            o.reason = .heldNoFree
            o.paced = true
            return
        }
        o.target = newTarget
        o.paced = newTarget < want
        if newTarget < want { o.reason = .growPartial }
        else if o.critical { o.reason = .growCritical }
        else if cur < o.floor { o.reason = .growFloor }
        else if o.basis == .surplus || o.basis == .ceiling { o.reason = .growSurplus }
        else { o.reason = .growDemand }
    }

    /// The reason a domain keeps its target when nothing else applies.
    static func holdReason(_ o: DomainOutcome, phase: SharePhase) -> Reason {
        switch o.status {
        case .stale: return .heldStale
        case .none: return .heldNoReport
        case .rejected: return .heldRejected
        case .fresh: break
        }
        if phase == .infeasible { return .infeasible }
        if phase == .contended && o.demand > o.allocation { return .heldFairShare }
        return o.previousTarget <= o.floor ? .heldFloor : .steady
    }

    private static func rank(_ o: DomainOutcome) -> Int {
        o.critical ? 2 : (o.target < o.floor ? 1 : 0)
    }

}
