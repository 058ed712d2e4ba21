import GuestModel

/// Random hosts for property tests. Every generator is seeded; failures print the seed.
struct RandomHost {
    var floors: [KiB]
    var demands: [KiB]
    var ceilings: [KiB]
    var weights: [Double]
    var budget: KiB

    /// 1–`maxDomains` domains (log-uniform, so small hosts are as common as large ones), floors,
    /// demands, ceilings and weights drawn independently, and a budget anywhere from "floors do not
    /// fit" to "everyone can have their ceiling".
    static func make(_ rng: inout SplitMix64, maxDomains: Int = 2000) -> RandomHost {
        let logMax = log2(Double(maxDomains))
        let n = max(1, min(maxDomains, Int(exp2(Double.random(in: 0...logMax, using: &rng)))))
        var h = RandomHost(floors: [], demands: [], ceilings: [], weights: [], budget: .zero)
        var sumFloor: Int64 = 0, sumDemand: Int64 = 0, sumCeiling: Int64 = 0
        for _ in 0..<n {
            let floor = KiB(mib: Int64.random(in: 64...4096, using: &rng))
            let ceiling = KiB(floor.value + KiB(mib: Int64.random(in: 0...8192, using: &rng)).value)
            let demand = KiB(Int64.random(in: 0...(ceiling.value + KiB(gib: 1).value), using: &rng)).pageFloor
            h.floors.append(floor)
            h.ceilings.append(ceiling)
            h.demands.append(demand)
            h.weights.append([0.5, 1, 1, 2, 3, 10][Int.random(in: 0..<6, using: &rng)])
            sumFloor += floor.value
            sumDemand += min(max(demand, floor), ceiling).value
            sumCeiling += ceiling.value
        }
        // A third of the hosts each: contended (floors fit, demands do not), uncontended, or anywhere.
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: h.budget = KiB(Int64.random(in: sumFloor...max(sumFloor, sumDemand), using: &rng))
        case 1: h.budget = KiB(Int64.random(in: sumDemand...(sumCeiling + KiB(gib: 4).value), using: &rng))
        default: h.budget = KiB(Int64.random(in: (sumFloor * 9 / 10)...(sumCeiling + 1), using: &rng))
        }
        return h
    }

    func solve(surplus: SurplusPolicy = .distribute) -> FairShareResult {
        FairShare.solve(floors: floors, demands: demands, ceilings: ceilings, weights: weights,
                        budget: budget, surplus: surplus)
    }

    var floorsFit: Bool { floors.reduce(0) { $0 + $1.value } <= budget.value }
}

/// Runs `body` over `count` random hosts from `seed`; returns the seed of each host for messages.
func forEachRandomHost(count: Int = 500, seed: UInt64, maxDomains: Int = 2000, _ body: (RandomHost, inout SplitMix64, UInt64) -> Void) {
    var master = SplitMix64(seed: seed)
    for _ in 0..<count {
        let hostSeed = master.next()
        var rng = SplitMix64(seed: hostSeed)
        let host = RandomHost.make(&rng, maxDomains: maxDomains)
        body(host, &rng, hostSeed)
    }
}

func log2(_ x: Double) -> Double {
    var e = 0.0, v = x
    while v >= 2 { v /= 2; e += 1 }
    return e + (v - 1)          // coarse is fine: only shapes the size distribution
}

func exp2(_ x: Double) -> Double {
    var r = 1.0
    for _ in 0..<Int(x) { r *= 2 }
    return r * (1 + (x - Double(Int(x))))
}

/// One page: the rounding granularity of every allocation.
let page = KiB.page.value
