/// Demand and working-set estimation: from a guest's accepted reports to two numbers in Xen's terms
/// (KiB of domain allocation). The maths, in full (all KiB unless marked):
///
///     overhead   = min(o, maxOverheadFraction × allocation), o from seen = allocation − MemTotal:
///                  what the kernel keeps for itself (its image, the memmap of static-max), invisible to
///                  the guest, real to Xen, and nearly constant: 45 MiB + 2.2 % of static-max on Debian's
///                  6.1 PV kernel (59 MiB of a 160 MiB guest). A report and Xen's allocation are read at
///                  different moments, so while the balloon moves `seen` is off by the move (too low in a
///                  shrink: the guest would look smaller than it is). So o = seen only while the balloon
///                  is at rest, and is learned then; while it moves, o = max(learned, seen).
///     hot        = w × Active(file)                                (recently reused page cache)
///                  w starts at activeFileWeight and is learned: a deficit over 1 % of the allocation
///                  (evicted memory needed again) means we cut too deep, so w += 0.1 (up to 1); calm
///                  reports pull it back towards activeFileWeight with ten times the slow half-life (a
///                  kernel demotes hot pages to the inactive list whenever it runs short, so what was
///                  learned stays true long after the faults stop: forgetting it sooner re-probed a
///                  steady guest into its working set every few minutes), unless what the guest uses
///                  (MemTotal − MemAvailable) falls below half of what it used when w was last raised:
///                  then the workload the faults came with is gone (a spike that squeezed its own cache
///                  and ended) and w returns to activeFileWeight at once
///                  or, without Active(file) (legacy agents), blindAvailableWeight × MemAvailable
///     faults     = max(refaults/s, major faults/s, swap-ins/s)     (pages/s, from counter deltas)
///     deficit    = min(faults × 4 KiB × refaultWindow, maxBoost × allocation)
///                  (memory evicted and needed again within the window: the guest is short of it)
///     ws         = (MemTotal − MemAvailable) + hot + overhead
///                  (memory the guest holds and uses: never more than about its allocation, so a guest
///                  cannot raise its floor by claiming faults)
///     s          = PSI some share (0–1) over the report interval
///     boost      = maxBoost × min(1, (s / pressureTarget / boostCoefficient)²)    if s > pressureTarget
///                  (senpai's quadratic back-off: small stalls nudge, large stalls ask for a lot)
///     critical   = s ≥ criticalPressure or PSI full ≥ criticalFullPressure
///     need       = max((ws + deficit) × (1 + headroom), allocation × (1 + boost) if s > target, peak if critical)
///     need       ≤ max(allocation × (1 + maxBoost), peak if critical)     (a guest cannot raise its own
///                  demand faster than that per report; peak is the most it recently had, a Xen fact)
///
/// `need` goes through two averages with half-lives `fast` and `slow`; the fast one jumps up at once.
/// Demand is max(fast, slow): it rises at once and falls slowly (ESX); under contention the part only
/// the slow average remembers is taxed (`taxedDemand`). The working set (what floors protect) is the
/// fast average alone: a floor must follow what the guest uses now, or memory a spike once needed stays
/// locked behind a hard floor; but on a report that shows stall (s > pressureTarget) it falls only at
/// the slow half-life (a guest squeezed below its working set loses cache to the squeeze, and its
/// Active(file) — and with it the estimate and the floor — would fall with the squeeze). For
/// `pressureHold` seconds after a report with s > pressureTarget, no estimate falls at all.
/// `peak` decays towards the allocation with the slow half-life.
public struct EstimatorState: Sendable, Equatable {
    public var demandFast = 0.0
    public var demandSlow = 0.0
    public var wsFast = 0.0
    /// The working set of the last report alone (no averaging): what the guest needs right now.
    public var wsNow = 0.0
    /// The most memory the guest recently had (KiB), decaying with the slow half-life.
    public var peak = 0.0
    /// Kernel overhead (KiB): allocation − MemTotal, learned while the balloon is at rest (see `Estimator`);
    /// negative until then (a sentinel, not an optional: this state is walked for every domain each round).
    public var overhead = -1.0
    public var lastAt: TimePoint?
    public var lastSource: ReportSource = .reporter
    /// Stall shares of the last accepted report (nil: no PSI).
    public var stall: Double?
    public var fullStall: Double?
    public var critical = false
    /// The learned share of Active(file) that is working set (nil: not learned yet).
    public var fileWeight: Double?
    /// What the guest used (MemTotal − MemAvailable, KiB) when faults last raised `fileWeight`, at most
    /// (0: nothing learned since the last reset).
    public var learnedAtUsed = 0.0
    /// When the guest last stalled above the pressure target.
    public var lastPressureAt: TimePoint?
    /// What the guest could give back without swapping at its last report (MemAvailable, KiB), and its
    /// allocation then; negative when it has free swap to give back through (or has not reported).
    public var givable = -1.0
    public var givableAllocation = 0.0
    /// The last interval and its averaging weights: reporters run on a fixed period, so the same
    /// interval recurs and the exponentials need not be recomputed.
    var lastDt = -1.0
    /// The interval `lastDt` was taken from, in ms (−1: none yet), and alphaSlow / 10 (cached with it).
    var lastDtMs: Int64 = -1
    var alphaSlowTenth = 0.0
    var alphaFast = 0.0
    var alphaSlow = 0.0
    public init() {}

    /// Whether the estimate has been fed at all.
    @inlinable public var isPrimed: Bool { lastAt != nil }
    /// Demand estimate, KiB (rises at once, falls slowly).
    @inlinable public var demand: Double { Swift.max(demandFast, demandSlow) }
    /// Demand with ESX's idle memory tax τ: what the slow average remembers beyond the fast one is
    /// memory the guest is not using now, and counts only (1 − τ) under contention.
    @inlinable public func taxedDemand(_ tax: Double) -> Double {
        demandFast + (1 - tax) * Swift.max(0, demandSlow - demandFast)
    }
    /// Working-set estimate, KiB: the fast average (rises at once, falls with the fast half-life).
    @inlinable public var workingSet: Double { wsFast }
}

public enum Estimator {
    /// Folds one accepted report (read at `at`, with `rates` since the previous one) into `state`.
    /// `allocation` is the domain's current memory as Xen reports it (trusted); pass the report's
    /// MemTotal when Xen has not been read yet. `atRest`: the allocation has not moved for longer than a
    /// report interval, so the report and the allocation describe the same memory.
    public static func update(_ state: inout EstimatorState, with r: GuestReport, rates: ReportRates?, at: TimePoint,
                              allocation: KiB, atRest: Bool = true, config c: EstimatorConfig) {
        update(&state, with: r, rates: rates ?? ReportRates(seconds: 0), hasRates: rates != nil, at: at, allocation: allocation,
               atRest: atRest, config: c)
    }

    /// `update`, with the rates given apart from whether there are any (`hasRates`): the arbiter's
    /// ingest passes its own rates in place, never wrapped in an optional (a copy of 104 bytes).
    static func update(_ state: inout EstimatorState, with r: GuestReport, rates: borrowing ReportRates, hasRates: Bool, at: TimePoint,
                       allocation: KiB, atRest: Bool, config c: EstimatorConfig) {
        let alloc = Swift.max(allocation.asDouble, 1)
        var faults = 0.0
        if hasRates {
            faults = Swift.max(rates.refaults ?? 0, Swift.max(rates.majorFaults ?? 0, rates.swapIns ?? 0))
        }
        // Averaging weights for this interval (cached: reporters run on a fixed period).
        // Keyed on the interval in ms first: the same interval is the same dt, without a division per
        // report (max(0, Δ/1000) is max(0, Δ)/1000, to the last bit).
        let dtMs = state.lastAt.map { Swift.max(0, at.ms &- $0.ms) } ?? 0
        if dtMs != state.lastDtMs {
            state.lastDtMs = dtMs
            let dt = Double(dtMs) / 1000
            if dt != state.lastDt {
                state.lastDt = dt
                state.alphaFast = decay(dt, halfLife: c.fastHalfLifeSeconds)
                state.alphaSlow = decay(dt, halfLife: c.slowHalfLifeSeconds)
                state.alphaSlowTenth = state.alphaSlow / 10
            }
        }
        let deficit = Swift.min(faults * 4 * c.refaultWindowSeconds, c.maxBoost * alloc)
        let ws = workingSet(&state, r, allocation: alloc, atRest: atRest, deficit: deficit, config: c)

        // Without free swap, what a guest can give back is what it has available; with it, more.
        let swapFree = r.swapFree?.asDouble ?? 0
        state.givable = swapFree >= 64 * 1024 ? -1 : r.memAvailable.asDouble
        state.givableAllocation = alloc
        // (`r.stall(rates)`, `r.fullStall(rates)`, on the rates in place.)
        let stall = (hasRates ? rates.psiSome : nil) ?? r.psiSomeAvg10.map { $0 / 100 }
        let fullStall = (hasRates ? rates.psiFull : nil) ?? r.psiFullAvg10.map { $0 / 100 }
        let s = stall ?? 0
        let critical = s >= c.criticalPressure || (fullStall ?? 0) >= c.criticalFullPressure
        // Peak decays towards the allocation; it never drops below what the guest has now.
        state.peak = state.isPrimed ? Swift.max(alloc, state.peak + state.alphaSlow * (alloc - state.peak)) : alloc
        let need = demand(workingSet: ws, deficit: deficit, stall: s, critical: critical, allocation: alloc, peak: state.peak, config: c)

        if s > c.pressureTarget { state.lastPressureAt = at }
        let holding = state.lastPressureAt.map { at.seconds(since: $0) < c.pressureHoldSeconds } ?? false
        if state.isPrimed {
            // Up: jump (or move) to x; down: move, unless a recent stall holds it. Chosen by bit masks, not
            // jumps: whether a report is above or below the average is a coin toss to the branch
            // predictor, three times per report (the same values as the `if`s, to the last bit).
            func follow(_ avg: inout Double, _ x: Double, _ alpha: Double, jumpUp: Bool) {
                let moved = avg + alpha * (x - avg)
                avg = select(x > avg, jumpUp ? x : moved, select(holding, avg, moved))
            }
            follow(&state.demandFast, need, state.alphaFast, jumpUp: true)
            follow(&state.demandSlow, need, state.alphaSlow, jumpUp: false)
            // Stall says the guest uses at least what it has: its working set is not believed to fall
            // faster than the slow average while it stalls (its cache shrinks because it is squeezed).
            follow(&state.wsFast, ws, select(s > c.pressureTarget, state.alphaSlow, state.alphaFast), jumpUp: true)
        } else {
            state.demandFast = need
            state.demandSlow = need
            state.wsFast = ws
        }
        state.wsNow = ws
        state.lastAt = at
        state.lastSource = r.source
        state.stall = stall
        state.fullStall = fullStall
        state.critical = critical
    }

    /// The working set now, KiB: what the guest uses (MemTotal − MemAvailable), the part of its file
    /// cache counted hot (the learned Active(file) weight), and the domain's overhead beyond MemTotal
    /// (measured at rest, capped). Faults that show more than 1 % of the allocation missing raise the
    /// learned weight; without them it drifts back to the configured one.
    static func workingSet(_ state: inout EstimatorState, _ r: GuestReport, allocation alloc: Double, atRest: Bool, deficit: Double,
                           config c: EstimatorConfig) -> Double {
        let seen = Swift.max(0, alloc - r.memTotal.asDouble)
        if atRest { state.overhead = seen }
        let overhead = Swift.min(atRest ? seen : Swift.max(state.overhead, seen), c.maxOverheadFraction * alloc)
        var w = state.fileWeight ?? c.activeFileWeight
        let used = r.used.asDouble
        if deficit > 0.01 * alloc {
            // The cache we counted cold was not. (Learning on the same signal that raises demand ends
            // the shrink → fault → grow cycle.)
            w = Swift.min(1, w + 0.1)
            state.learnedAtUsed = Swift.max(state.learnedAtUsed, used)
        } else if state.learnedAtUsed > 0 && used < 0.5 * state.learnedAtUsed {
            // The workload the faults were seen with is gone (what the guest uses has halved since):
            // what they taught of its cache is of that workload, not of this one.
            w = c.activeFileWeight
            state.learnedAtUsed = 0
        } else {
            w += state.alphaSlowTenth * (c.activeFileWeight - w)   // (alphaSlow / 10, cached with it)
        }
        state.fileWeight = w
        let hot = r.activeFile.map { w * $0.asDouble } ?? c.blindAvailableWeight * r.memAvailable.asDouble
        return r.used.asDouble + hot + overhead
    }

    /// The demand, KiB: the working set and what faults say is missing, with headroom; under pressure at
    /// least the allocation boosted by how far the stall is above target; when critical, the recent peak.
    static func demand(workingSet ws: Double, deficit: Double, stall s: Double, critical: Bool, allocation alloc: Double, peak: Double,
                       config c: EstimatorConfig) -> Double {
        var need = (ws + deficit) * (1 + c.headroom)
        if s > c.pressureTarget {
            let x = s / c.pressureTarget / c.boostCoefficient
            let boost = c.maxBoost * Swift.min(1, x * x)
            need = Swift.max(need, alloc * (1 + boost))
        }
        var cap = alloc * (1 + c.maxBoost)
        if critical {
            need = Swift.max(need, peak)
            cap = Swift.max(cap, peak)
        }
        return Swift.min(need, cap)
    }

    /// `c ? a : b` for Doubles, as integer masks (the compiler turns a `?:` on Doubles into a jump).
    @inline(__always)
    static func select(_ c: Bool, _ a: Double, _ b: Double) -> Double {
        let m = 0 &- UInt64(c ? 1 : 0)
        return Double(bitPattern: (a.bitPattern & m) | (b.bitPattern & ~m))
    }

    /// Weight of a new sample in an exponential average after `dt` seconds: 1 − 2^(−dt/halfLife).
    @inlinable static func decay(_ dt: Double, halfLife: Double) -> Double {
        guard dt > 0 else { return 0 }
        return 1 - exp2(-dt / halfLife)
    }

    /// 2^x without Foundation (x ≤ 0 here): an exact power of two for the integer part and a
    /// 14-term Taylor series of e^(f·ln 2) for the fraction (Horner, multiplications only).
    /// Relative error below 1e-13, far finer than any KiB.
    @inlinable static func exp2(_ x: Double) -> Double {
        if x < -1000 { return 0 }
        let n = x.rounded(.down)
        let y = (x - n) * 0.6931471805599453          // 0 ≤ y < ln 2
        var sum = 1.0 / 87_178_291_200                 // 1/14!
        sum = sum * y + 1.0 / 6_227_020_800
        sum = sum * y + 1.0 / 479_001_600
        sum = sum * y + 1.0 / 39_916_800
        sum = sum * y + 1.0 / 3_628_800
        sum = sum * y + 1.0 / 362_880
        sum = sum * y + 1.0 / 40_320
        sum = sum * y + 1.0 / 5_040
        sum = sum * y + 1.0 / 720
        sum = sum * y + 1.0 / 120
        sum = sum * y + 1.0 / 24
        sum = sum * y + 1.0 / 6
        sum = sum * y + 0.5
        sum = sum * y + 1
        sum = sum * y + 1
        return sum * Double(sign: .plus, exponent: Int(n), significand: 1)
    }
}

/// Floor rules.
public enum Floors {
    /// Linux xen-selfballoon's piecewise floor (drivers/xen/xen-selfballoon.c), on `size` (static-max):
    /// below 16 MiB do not balloon; below 64 MiB 16 MiB + half the rest; below 512 MiB 40 MiB + ⅛;
    /// else 99 MiB + 1/32 ("about a 3 % slope"). A sane lower bound for guests that report little.
    public static func selfballoon(_ size: KiB) -> KiB {
        let mb = size.asDouble / 1024
        let floorMB: Double
        if mb < 16 { return size }
        else if mb < 64 { floorMB = 16 + (mb - 16) / 2 }
        else if mb < 512 { floorMB = 40 + (mb - 40) / 8 }
        else { floorMB = 99 + (mb - 99) / 32 }
        return KiB.pageCeil(floorMB * 1024)
    }
}
