/// The host-wide share: floors first, then weighted max-min water-filling up to each guest's demand,
/// then (if memory is left and the policy says so) water-filling up to the ceilings.
///
/// Water-filling finds one level λ (KiB per unit of weight) such that
///
///     Σ_i clamp(λ · w_i, lo_i, hi_i) = budget
///
/// and gives guest i `clamp(λ · w_i, lo_i, hi_i)`. S(λ) is piecewise linear and non-decreasing with
/// breakpoints at lo_i/w_i and hi_i/w_i, so sorting the breakpoints and sweeping them finds λ in
/// O(n log n). Properties that follow (and that the property tests check): nobody below lo or above
/// hi; a guest not clamped gets exactly its weighted share λ·w_i; lowering your own weight never
/// raises your allocation; raising your own demand (hi) never lowers it; and a guest that inflates
/// its demand gets at most λ·w_i (or its floor) while anybody else's demand is unmet.

/// Why a guest got the allocation it got.
public enum ShareBasis: UInt8, Sendable, Equatable, CustomStringConvertible {
    /// Held at its floor (its weighted share was less, or floors exceed the host).
    case floor
    /// Its weighted share under contention, between floor and demand.
    case fairShare
    /// Its whole demand.
    case demand
    /// Its weighted share of surplus memory, between demand and ceiling.
    case surplus
    /// Its ceiling.
    case ceiling

    public var description: String {
        switch self {
        case .floor: "floor"
        case .fairShare: "fair-share"
        case .demand: "demand"
        case .surplus: "surplus"
        case .ceiling: "ceiling"
        }
    }
}

/// Which regime the host is in this round.
public enum SharePhase: UInt8, Sendable, Equatable {
    /// Floors alone exceed the budget: everyone at their floor, and an alert.
    case infeasible
    /// Demands exceed the budget: water-filled between floors and demands.
    case contended
    /// Every demand met; surplus water-filled up to ceilings (or kept free).
    case uncontended
}

public struct FairShareResult: Sendable, Equatable {
    public var allocations: [KiB]
    public var basis: [ShareBasis]
    public var phase: SharePhase
    /// Σ floors − budget when the floors do not fit, else zero.
    public var shortfall: KiB
    /// The water level (KiB per unit weight) of the phase that was water-filled, if any.
    public var level: Double?
}

public enum FairShare {
    /// Solves one round. Inputs are per guest, in the same order; they are normalised so that
    /// floor ≤ demand ≤ ceiling (floors win). Weights must be positive and finite.
    ///
    /// `bases` (optional, at most each floor): water-fill the memory above them, so a guest not clamped
    /// gets `base_i + λ·w_i` and the memory above the bases is split in the ratio of the weights. The
    /// arbiter passes each guest's static floor (admin, absolute, static-max floor), so weights decide
    /// contention whatever the guests' sizes; without bases the level is absolute (`λ·w_i`).
    public static func solve(floors: [KiB], demands: [KiB], ceilings: [KiB], weights: [Double],
                             budget: KiB, surplus: SurplusPolicy = .distribute, slack: KiB = .zero,
                             bases: [KiB]? = nil) -> FairShareResult {
        solve(floors: floors, demands: demands, ceilings: ceilings, weights: weights, budget: budget, surplus: surplus,
              slack: slack, bases: bases, basis: true)
    }

    /// `solve`, with the bases left out of the result (`basis: false`, empty) when the caller only needs
    /// the allocations and the phase (the arbiter's ideal split under contention).
    static func solve(floors: [KiB], demands: [KiB], ceilings: [KiB], weights: [Double], budget: KiB, surplus: SurplusPolicy,
                      slack: KiB, bases: [KiB]?, basis wantBasis: Bool) -> FairShareResult {
        let n = floors.count
        precondition(demands.count == n && ceilings.count == n && weights.count == n && (bases?.count ?? n) == n,
                     "FairShare.solve: ragged input")
        // The bounds normalised (floors win) and the offsets of the water levels (each guest's base, never
        // above its floor), with their sums, in one walk, each array written once: at 10,000 guests the
        // round solves twice, and zero-filling arrays only to overwrite them cost as much as filling them.
        var sumFloor: Int64 = 0, sumDemand: Int64 = 0, sumCeiling: Int64 = 0, sumBase: Int64 = 0
        var hi = [Int64](), mid = [Int64](), offsets = [Int64]()
        let lo = [Int64](unsafeUninitializedCapacity: n) { l, lCount in
            hi = .init(unsafeUninitializedCapacity: n) { h, hCount in
                mid = .init(unsafeUninitializedCapacity: n) { m, mCount in
                    offsets = .init(unsafeUninitializedCapacity: bases == nil ? 0 : n) { o, oCount in
                        for i in 0..<n {
                            let li = Swift.max(floors[i].value, 0)
                            let hv = Swift.max(ceilings[i].value, li)
                            let mi = Swift.min(Swift.max(demands[i].value, li), hv)
                            l.initializeElement(at: i, to: li)
                            h.initializeElement(at: i, to: hv)
                            m.initializeElement(at: i, to: mi)
                            sumFloor &+= li; sumDemand &+= mi; sumCeiling &+= hv
                            if let bases {
                                let oi = Swift.min(Swift.max(bases[i].value, 0), li)
                                o.initializeElement(at: i, to: oi)
                                sumBase &+= oi
                            }
                        }
                        oCount = bases == nil ? 0 : n
                    }
                    mCount = n
                }
                hCount = n
            }
            lCount = n
        }
        let b = Swift.max(budget.value, 0)
        let base: [Int64]? = sumBase != 0 ? offsets : nil
        /// Water-fills `from`…`to` (whose sums are given) above the bases with `budget` in all.
        func fill(_ from: [Int64], _ sumFrom: Int64, _ to: [Int64], _ sumTo: Int64, _ budget: Int64) -> (alloc: [Int64], level: Double?) {
            // Σ (x − base) = Σ x − Σ base, wrapping as the sums are taken.
            waterFill(lo: from, hi: to, above: base, weights: weights, budget: budget - sumBase,
                      bottom: sumFrom &- sumBase, top: sumTo &- sumBase)
        }

        if sumFloor > b {
            return FairShareResult(allocations: lo.map { KiB($0) }, basis: Array(repeating: .floor, count: n), phase: .infeasible,
                                   shortfall: KiB(sumFloor - b), level: nil)
        }
        if sumDemand >= b {
            let (alloc, level) = fill(lo, sumFloor, mid, sumDemand, b)
            // The allocations as KiB and their bases in one walk; the basis by flags, not jumps (which
            // way a guest goes is a coin toss to the branch predictor): demand (2) at mid, else floor (0)
            // at lo, else fair share (1).
            var basis = [ShareBasis]()
            let allocations = [KiB](unsafeUninitializedCapacity: n) { a, aCount in
                if wantBasis {
                    basis = .init(unsafeUninitializedCapacity: n) { s, sCount in
                        for i in 0..<n {
                            a.initializeElement(at: i, to: KiB(alloc[i]))
                            let atMid: UInt8 = alloc[i] >= mid[i] ? 1 : 0, atLo: UInt8 = alloc[i] <= lo[i] ? 1 : 0
                            s.initializeElement(at: i, to: ShareBasis(rawValue: atMid << 1 | (1 ^ atMid) & (1 ^ atLo)).unsafelyUnwrapped)
                        }
                        sCount = n
                    }
                } else {
                    for i in 0..<n { a.initializeElement(at: i, to: KiB(alloc[i])) }
                }
                aCount = n
            }
            return FairShareResult(allocations: allocations, basis: basis, phase: .contended, shortfall: .zero, level: level)
        }
        var alloc = mid
        var level: Double? = nil
        if surplus == .distribute {
            let target = Swift.max(sumDemand, b - Swift.max(slack.value, 0))
            (alloc, level) = fill(mid, sumDemand, hi, sumCeiling, target)
        }
        let basis = wantBasis ? written(n) { i -> ShareBasis in
            alloc[i] <= mid[i] ? .demand : (alloc[i] >= hi[i] ? .ceiling : .surplus)
        } : []
        return FairShareResult(allocations: alloc.map { KiB($0) }, basis: basis, phase: .uncontended,
                               shortfall: .zero, level: level)
    }

    /// `n` values, `value(i)` each, written once into fresh storage.
    @inline(__always)
    static func written<T>(_ n: Int, _ value: (Int) -> T) -> [T] {
        [T](unsafeUninitializedCapacity: n) { buffer, count in
            for i in 0..<n { buffer.initializeElement(at: i, to: value(i)) }
            count = n
        }
    }

    /// Water-fills between `lo` and `hi` (both KiB, lo ≤ hi) so that Σ alloc ≤ budget, as close as whole
    /// pages allow. Writes the allocation into `alloc` and returns the level λ, or nil when no filling
    /// was needed (everyone at hi) or possible (everyone at lo).
    ///
    /// λ is found without sorting (expected O(n), after Brucker's breakpoint search for the continuous
    /// knapsack): keep an interval (left, right) known to hold λ; guests whose breakpoints both lie
    /// outside it contribute a constant or a slope; evaluate S at three breakpoints inside the interval
    /// and keep the quarter that holds λ. Each pass discards, on average, most of the remaining guests.
    /// Pivots come from a fixed-seed generator, so results are deterministic.
    @discardableResult
    public static func waterFill(lo: [Int64], hi: [Int64], weights: [Double], budget: Int64, into alloc: inout [Int64]) -> Double? {
        let (filled, level) = waterFill(lo: lo, hi: hi, above: nil, weights: weights, budget: budget)
        alloc.replaceSubrange(0..<filled.count, with: filled)
        return level
    }

    /// `waterFill` of the memory above `above` (each at most lo): guest i gets `above_i` plus its share of
    /// `budget` (which counts only the memory above the offsets). Returns the allocations and the level.
    static func waterFill(lo: [Int64], hi: [Int64], above offset: [Int64]?, weights: [Double], budget: Int64) -> (alloc: [Int64], level: Double?) {
        var bottom: Int64 = 0, top: Int64 = 0
        for i in 0..<lo.count { let b = offset?[i] ?? 0; bottom &+= lo[i] &- b; top &+= hi[i] &- b }
        return waterFill(lo: lo, hi: hi, above: offset, weights: weights, budget: budget, bottom: bottom, top: top)
    }

    /// `waterFill`, given Σ (lo − offset) and Σ (hi − offset) (`solve` has them from its own walk).
    static func waterFill(lo: [Int64], hi: [Int64], above offset: [Int64]?, weights: [Double], budget: Int64,
                          bottom: Int64, top: Int64) -> (alloc: [Int64], level: Double?) {
        let n = lo.count
        if top <= budget { return (hi, nil) }
        if bottom >= budget { return (lo, nil) }
        var search = LevelSearch(lo: lo, hi: hi, offset: offset, weights: weights)
        let level = search.level(for: Double(budget), seed: 0x5EED &+ UInt64(n))
        return (place(level, lo: lo, hi: hi, offset: offset, weights: weights, budget: budget), level)
    }

    /// The search for λ over the guests' breakpoints lo/w and hi/w.
    private struct LevelSearch {
        /// One guest not placed yet: its bounds, weight and breakpoints side by side, so that every pass
        /// reads memory in order and the survivors are compacted in place.
        struct Pending { var lo: Double, hi: Double, weight: Double, loKey: Double, hiKey: Double }
        var pending = [Pending]()
        var constant = 0.0      // Σ of guests fixed at lo or hi over (left, right)
        var slope = 0.0         // Σ weights of guests rising across all of (left, right)
        var left = 0.0, right = Double.infinity

        init(lo: [Int64], hi: [Int64], offset: [Int64]?, weights: [Double]) {
            var constant = 0.0
            pending = [Pending](unsafeUninitializedCapacity: lo.count) { buf, count in
                count = 0
                for i in lo.indices {
                    let b = offset?[i] ?? 0
                    let l = Double(lo[i] &- b), h = Double(hi[i] &- b)
                    if h > l {
                        buf.initializeElement(at: count, to: Pending(lo: l, hi: h, weight: weights[i], loKey: l / weights[i], hiKey: h / weights[i]))
                        count += 1
                    } else {
                        constant += l
                    }
                }
            }
            self.constant = constant
        }

        /// λ with S(λ) = target: passes until no guest is pending, then S is linear on (left, right).
        mutating func level(for target: Double, seed: UInt64) -> Double {
            var rng = SplitMix64(seed: seed)
            var count = pending.count
            while count > 0 { count = pass(count, target: target, rng: &rng) }
            var level = slope > 0 ? (target - constant) / slope : right
            if !level.isFinite { level = left }
            return Swift.min(Swift.max(level, left), right)
        }

        /// One pass over the first `count` pending guests (each has a breakpoint strictly inside (left,
        /// right)): three pivots near the quartiles of nine breakpoints drawn at random, S evaluated at all
        /// three in the same loop (independent sums), the interval cut to the quarter that holds λ, and
        /// the guests now fixed or rising across it taken out. Returns how many are still pending.
        private mutating func pass(_ count: Int, target: Double, rng: inout SplitMix64) -> Int {
            let (left, right) = (self.left, self.right)
            var (constant, slope) = (self.constant, self.slope)
            let m = UInt64(count)
            var draw = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
            return pending.withUnsafeMutableBufferPointer { buf in
                withUnsafeMutableBytes(of: &draw) { raw in
                    var d = raw.bindMemory(to: Double.self)
                    for j in 0..<9 {
                        let g = buf[Int(rng.next() % m)]
                        d[j] = (g.loKey > left && g.loKey < right) ? g.loKey : g.hiKey
                    }
                    d.sort()
                }
                let p1 = draw.2, p2 = draw.4, p3 = draw.6
                var s1 = constant + slope * p1, s2 = constant + slope * p2, s3 = constant + slope * p3
                for k in 0..<count {
                    let g = buf[k]
                    s1 += Swift.min(Swift.max(p1 * g.weight, g.lo), g.hi)
                    s2 += Swift.min(Swift.max(p2 * g.weight, g.lo), g.hi)
                    s3 += Swift.min(Swift.max(p3 * g.weight, g.lo), g.hi)
                }
                let (l, r) = s1 >= target ? (left, p1) : s2 >= target ? (p1, p2) : s3 >= target ? (p2, p3) : (p3, right)
                // Without branches (which way a guest goes is a coin toss to the predictor): at lo for all
                // of (l, r), at hi, rising across it, or still pending. The compiler turns `&&` and `?:`
                // on Doubles into jumps, so 0/1 flags and products (x × 1 = x and x × 0 = 0 exactly for
                // the finite bounds and weights here: the sums are the same to the last bit).
                var kept = 0
                for k in 0..<count {
                    let g = buf[k]
                    let atLo = g.loKey >= r ? 1 : 0
                    let atHi = (g.hiKey <= l ? 1 : 0) & (atLo ^ 1)
                    let rising = (g.loKey <= l ? 1 : 0) & (g.hiKey >= r ? 1 : 0) & ((atLo | atHi) ^ 1)
                    constant += g.lo * Double(atLo) + g.hi * Double(atHi)
                    slope += g.weight * Double(rising)
                    buf[kept] = g
                    kept += (atLo | atHi | rising) ^ 1
                }
                (self.left, self.right, self.constant, self.slope) = (l, r, constant, slope)
                return kept
            }
        }
    }

    /// Each guest's allocation at level λ, in whole pages, between its bounds.
    private static func place(_ level: Double, lo: [Int64], hi: [Int64], offset: [Int64]?, weights: [Double], budget: Int64) -> [Int64] {
        let n = lo.count
        var total: Int64 = 0
        // A plain loop, the sum in a register: through `written` the body stayed a closure, called per
        // guest, with the sum captured in memory (each guest's add waited for the last one's store).
        // The allocation chosen by selects, not jumps (which guests sit at a bound is a coin toss).
        var alloc = [Int64](unsafeUninitializedCapacity: n) { out, count in
            for i in 0..<n {
                let x = level * weights[i]
                let b = offset?[i] ?? 0
                let l = lo[i] &- b, h = hi[i] &- b
                let inner = Swift.max(l, KiB.pageFloor(x).value)   // (pageFloor takes any x)
                let a = x <= Double(l) ? l : (x >= Double(h) ? h : inner)
                total &+= a
                out.initializeElement(at: i, to: a &+ b)
            }
            count = n
        }
        // Floating-point rounding can leave the sum a hair over budget: take the excess back from the
        // guests with the most room above their lower bound (never below it).
        guard total > budget else { return alloc }
        var excess = total - budget
        var order = (0..<n).filter { alloc[$0] > lo[$0] }
        order.sort { alloc[$0] - lo[$0] > alloc[$1] - lo[$1] }
        for i in order where excess > 0 {
            let room = alloc[i] - lo[i]
            let take = Swift.min(room, KiB(excess).pageCeil.value)
            alloc[i] -= take
            excess -= take
        }
        return alloc
    }
}
