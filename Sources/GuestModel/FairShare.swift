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
        let n = floors.count
        precondition(demands.count == n && ceilings.count == n && weights.count == n && (bases?.count ?? n) == n,
                     "FairShare.solve: ragged input")
        var lo = [Int64](repeating: 0, count: n)
        var mid = [Int64](repeating: 0, count: n)
        var hi = [Int64](repeating: 0, count: n)
        var sumFloor: Int64 = 0, sumDemand: Int64 = 0
        for i in 0..<n {
            let f = Swift.max(floors[i].value, 0)
            let c = Swift.max(ceilings[i].value, f)
            let d = Swift.min(Swift.max(demands[i].value, f), c)
            lo[i] = f; mid[i] = d; hi[i] = c
            sumFloor &+= f
            sumDemand &+= d
        }
        let b = Swift.max(budget.value, 0)
        var basis = [ShareBasis](repeating: .floor, count: n)
        // The offset of each guest's water level: its base, never above its floor.
        var base = [Int64](repeating: 0, count: n)
        var sumBase: Int64 = 0
        if let bases {
            for i in 0..<n { base[i] = Swift.min(Swift.max(bases[i].value, 0), lo[i]); sumBase &+= base[i] }
        }
        /// Water-fills `from`…`to` above the bases with `budget` in all.
        func fill(_ from: [Int64], _ to: [Int64], _ budget: Int64, _ alloc: inout [Int64]) -> Double? {
            if sumBase == 0 { return waterFill(lo: from, hi: to, weights: weights, budget: budget, into: &alloc) }
            var l = from, h = to
            for i in 0..<n { l[i] -= base[i]; h[i] -= base[i] }
            let level = waterFill(lo: l, hi: h, weights: weights, budget: budget - sumBase, into: &alloc)
            for i in 0..<n { alloc[i] += base[i] }
            return level
        }

        if sumFloor > b {
            return FairShareResult(allocations: lo.map { KiB($0) }, basis: basis, phase: .infeasible,
                                   shortfall: KiB(sumFloor - b), level: nil)
        }
        if sumDemand >= b {
            var alloc = lo
            let level = fill(lo, mid, b, &alloc)
            for i in 0..<n {
                basis[i] = alloc[i] >= mid[i] ? .demand : (alloc[i] <= lo[i] ? .floor : .fairShare)
            }
            return FairShareResult(allocations: alloc.map { KiB($0) }, basis: basis, phase: .contended,
                                   shortfall: .zero, level: level)
        }
        var alloc = mid
        var level: Double? = nil
        if surplus == .distribute {
            let target = Swift.max(sumDemand, b - Swift.max(slack.value, 0))
            level = fill(mid, hi, target, &alloc)
        }
        for i in 0..<n {
            basis[i] = alloc[i] <= mid[i] ? .demand : (alloc[i] >= hi[i] ? .ceiling : .surplus)
        }
        return FairShareResult(allocations: alloc.map { KiB($0) }, basis: basis, phase: .uncontended,
                               shortfall: .zero, level: level)
    }

    /// Water-fills between `lo` and `hi` (both KiB, lo ≤ hi) so that Σ alloc ≤ budget, as close as whole
    /// pages allow. Writes the allocation into `alloc` and returns the level λ, or nil when no filling
    /// was needed (everyone at hi) or possible (everyone at lo).
    ///
    /// λ is found without sorting (expected O(n), after Brucker's breakpoint search for the continuous
    /// knapsack): keep an interval (left, right) known to hold λ; guests whose breakpoints both lie
    /// outside it contribute a constant or a slope; pick one remaining breakpoint inside the interval
    /// as a pivot (median of three), evaluate S there, and halve the interval. Each pass discards, on average, half of
    /// the remaining breakpoints. Pivots come from a fixed-seed generator, so results are deterministic.
    @discardableResult
    public static func waterFill(lo: [Int64], hi: [Int64], weights: [Double], budget: Int64, into alloc: inout [Int64]) -> Double? {
        let n = lo.count
        var base: Int64 = 0, top: Int64 = 0
        for i in 0..<n { base &+= lo[i]; top &+= hi[i] }
        if top <= budget { for i in 0..<n { alloc[i] = hi[i] }; return nil }
        if base >= budget { for i in 0..<n { alloc[i] = lo[i] }; return nil }

        var active = [Int32]()
        active.reserveCapacity(n)
        var loKey = [Double](repeating: 0, count: n), hiKey = [Double](repeating: 0, count: n)
        var constant = 0.0      // Σ of guests fixed at lo or hi over (left, right)
        var slope = 0.0         // Σ weights of guests rising across all of (left, right)
        for i in 0..<n {
            if hi[i] > lo[i] {
                active.append(Int32(i))
                loKey[i] = Double(lo[i]) / weights[i]
                hiKey[i] = Double(hi[i]) / weights[i]
            } else {
                constant += Double(lo[i])
            }
        }
        let target = Double(budget)
        var left = 0.0, right = Double.infinity
        var rng = SplitMix64(seed: 0x5EED &+ UInt64(n))
        while !active.isEmpty {
            // Every active guest has a breakpoint strictly inside (left, right): take the median of three
            // such breakpoints as the pivot (fewer passes than one random pick).
            @inline(__always) func inside(_ k: Int32) -> Double {
                let j = Int(k)
                return (loKey[j] > left && loKey[j] < right) ? loKey[j] : hiKey[j]
            }
            let m = UInt64(active.count)
            let a = inside(active[Int(rng.next() % m)]), b = inside(active[Int(rng.next() % m)]), c = inside(active[Int(rng.next() % m)])
            let p = Swift.max(Swift.min(a, b), Swift.min(Swift.max(a, b), c))
            var s = constant + slope * p
            for k in active {
                let i = Int(k)
                s += Swift.min(Swift.max(p * weights[i], Double(lo[i])), Double(hi[i]))
            }
            if s >= target { right = p } else { left = p }
            var kept = 0
            for k in active {
                let i = Int(k)
                if loKey[i] >= right { constant += Double(lo[i]) }
                else if hiKey[i] <= left { constant += Double(hi[i]) }
                else if loKey[i] <= left && hiKey[i] >= right { slope += weights[i] }
                else { active[kept] = k; kept += 1 }
            }
            active.removeLast(active.count - kept)
        }
        // S is linear on (left, right): S(λ) = constant + slope · λ.
        var level = slope > 0 ? (target - constant) / slope : right
        if !level.isFinite { level = left }
        level = Swift.min(Swift.max(level, left), right)

        var total: Int64 = 0
        for i in 0..<n {
            let x = level * weights[i]
            let a: Int64
            if x <= Double(lo[i]) { a = lo[i] }
            else if x >= Double(hi[i]) { a = hi[i] }
            else { a = Swift.max(lo[i], KiB.pageFloor(x).value) }
            alloc[i] = a
            total &+= a
        }
        // Floating-point rounding can leave the sum a hair over budget: take the excess back from the
        // guests with the most room above their lower bound (never below it).
        if total > budget {
            var excess = total - budget
            var order = (0..<n).filter { alloc[$0] > lo[$0] }
            order.sort { alloc[$0] - lo[$0] > alloc[$1] - lo[$1] }
            for i in order where excess > 0 {
                let room = alloc[i] - lo[i]
                let take = Swift.min(room, KiB(excess).pageCeil.value)
                alloc[i] -= take
                excess -= take
            }
        }
        return level
    }
}
