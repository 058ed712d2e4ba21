import Testing
@testable import GuestModel

@Suite("FairShare: hand-checked cases")
struct FairShareUnitTests {
    @Test func everyoneGetsDemandWhenItFitsAndSurplusIsKept() {
        let r = FairShare.solve(floors: [KiB(mib: 100), KiB(mib: 100)], demands: [KiB(mib: 300), KiB(mib: 500)],
                                ceilings: [KiB(gib: 1), KiB(gib: 1)], weights: [1, 1],
                                budget: KiB(gib: 2), surplus: .keepFree)
        #expect(r.phase == .uncontended)
        #expect(r.allocations == [KiB(mib: 300), KiB(mib: 500)])
        #expect(r.basis == [.demand, .demand])
    }

    @Test func surplusIsSharedByWeightUpToCeilings() {
        // 1200 MiB of demand, 2400 budget: 1200 spare. Weights 1:2 fill λ·w between demand and ceiling.
        let r = FairShare.solve(floors: [KiB(mib: 100), KiB(mib: 100)], demands: [KiB(mib: 600), KiB(mib: 600)],
                                ceilings: [KiB(gib: 4), KiB(mib: 1000)], weights: [1, 2],
                                budget: KiB(mib: 2400), surplus: .distribute)
        // Guest 1 stops at its 1000 MiB ceiling; guest 0 takes the rest: 1400 MiB.
        #expect(r.allocations == [KiB(mib: 1400), KiB(mib: 1000)])
        #expect(r.basis == [.surplus, .ceiling])
    }

    @Test func slackIsLeftFreeWhenDistributing() {
        let r = FairShare.solve(floors: [KiB(mib: 100)], demands: [KiB(mib: 500)], ceilings: [KiB(gib: 4)],
                                weights: [1], budget: KiB(mib: 2000), surplus: .distribute, slack: KiB(mib: 256))
        #expect(r.allocations == [KiB(mib: 1744)])
    }

    @Test func contentionWaterFillsByWeightBetweenFloorAndDemand() {
        // Budget 3000 MiB; demands 2000 each; weights 1:2 → λ = 1000: 1000 and 2000.
        let r = FairShare.solve(floors: [KiB(mib: 200), KiB(mib: 200)], demands: [KiB(mib: 2000), KiB(mib: 2000)],
                                ceilings: [KiB(gib: 8), KiB(gib: 8)], weights: [1, 2], budget: KiB(mib: 3000))
        #expect(r.phase == .contended)
        #expect(r.allocations == [KiB(mib: 1000), KiB(mib: 2000)])
        #expect(r.basis == [.fairShare, .demand])
    }

    @Test func aFloorAboveTheFairShareIsHonoured() {
        // Equal weights, 2000 MiB budget: fair share 1000 each, but guest 0's floor is 1500.
        let r = FairShare.solve(floors: [KiB(mib: 1500), KiB(mib: 100)], demands: [KiB(mib: 3000), KiB(mib: 3000)],
                                ceilings: [KiB(gib: 8), KiB(gib: 8)], weights: [1, 1], budget: KiB(mib: 2000))
        #expect(r.allocations == [KiB(mib: 1500), KiB(mib: 500)])
        #expect(r.basis == [.floor, .fairShare])
    }

    @Test func floorsThatDoNotFitAreKeptAndReported() {
        let r = FairShare.solve(floors: [KiB(mib: 1500), KiB(mib: 1000)], demands: [KiB(mib: 3000), KiB(mib: 3000)],
                                ceilings: [KiB(gib: 8), KiB(gib: 8)], weights: [1, 1], budget: KiB(mib: 2000))
        #expect(r.phase == .infeasible)
        #expect(r.allocations == [KiB(mib: 1500), KiB(mib: 1000)])
        #expect(r.shortfall == KiB(mib: 500))
    }

    @Test func floorsWinOverCeilingsAndDemandsAreClamped() {
        let r = FairShare.solve(floors: [KiB(mib: 600)], demands: [KiB(mib: 9000)], ceilings: [KiB(mib: 500)],
                                weights: [1], budget: KiB(gib: 4), surplus: .keepFree)
        #expect(r.allocations == [KiB(mib: 600)])
    }

    @Test func emptyHost() {
        let r = FairShare.solve(floors: [], demands: [], ceilings: [], weights: [], budget: KiB(gib: 1))
        #expect(r.allocations.isEmpty)
    }
}

/// A slow, obviously-correct reference: bisection on λ over S(λ) = Σ clamp(λ·w, lo, hi).
func referenceWaterFill(lo: [Int64], hi: [Int64], w: [Double], budget: Int64) -> [Double] {
    let top = hi.reduce(0, +), base = lo.reduce(0, +)
    if top <= budget { return hi.map(Double.init) }
    if base >= budget { return lo.map(Double.init) }
    func s(_ l: Double) -> Double { zip(zip(lo, hi), w).reduce(0.0) { $0 + min(max(l * $1.1, Double($1.0.0)), Double($1.0.1)) } }
    var a = 0.0, b = 1.0
    while s(b) < Double(budget) { b *= 2 }
    for _ in 0..<200 { let m = (a + b) / 2; if s(m) < Double(budget) { a = m } else { b = m } }
    return zip(zip(lo, hi), w).map { min(max(b * $0.1, Double($0.0.0)), Double($0.0.1)) }
}

@Suite("FairShare: properties over random hosts (seeded)")
struct FairShareProperties {
    @Test func boundsAndBudget() {
        forEachRandomHost(seed: 0xF100_0001) { h, _, seed in
            let r = h.solve()
            let sum = r.allocations.reduce(0) { $0 + $1.value }
            for i in h.floors.indices {
                #expect(r.allocations[i] >= h.floors[i], "seed \(seed): guest \(i) below floor")
                #expect(r.allocations[i] <= max(h.ceilings[i], h.floors[i]), "seed \(seed): guest \(i) above ceiling")
            }
            if h.floorsFit {
                #expect(sum <= h.budget.value, "seed \(seed): Σ \(sum) > budget \(h.budget.value)")
                #expect(r.phase != .infeasible, "seed \(seed)")
            } else {
                #expect(r.phase == .infeasible && r.allocations == h.floors, "seed \(seed)")
            }
            if r.phase == .contended {
                // Work-conserving: the budget is used up to page rounding.
                #expect(sum >= h.budget.value - Int64(h.floors.count) * page, "seed \(seed): wasted memory")
            }
        }
    }

    @Test func matchesBisectionReference() {
        forEachRandomHost(count: 500, seed: 0xF100_0002, maxDomains: 200) { h, _, seed in
            let lo = h.floors.map(\.value)
            let hi = zip(zip(h.floors, h.demands), h.ceilings).map { max($0.0.0, min(max($0.0.1, $0.0.0), $0.1)).value }
            var alloc = lo
            FairShare.waterFill(lo: lo, hi: hi, weights: h.weights, budget: h.budget.value, into: &alloc)
            let ref = referenceWaterFill(lo: lo, hi: hi, w: h.weights, budget: h.budget.value)
            for i in lo.indices {
                #expect(abs(Double(alloc[i]) - ref[i]) <= Double(2 * page), "seed \(seed): guest \(i) \(alloc[i]) vs \(ref[i])")
            }
        }
    }

    @Test func loweringYourOwnWeightNeverHelps() {
        forEachRandomHost(seed: 0xF100_0003) { h, rng, seed in
            let i = Int.random(in: 0..<h.floors.count, using: &rng)
            let before = h.solve().allocations[i]
            var lowered = h
            lowered.weights[i] *= Double.random(in: 0.05...0.95, using: &rng)
            let after = lowered.solve().allocations[i]
            #expect(after.value <= before.value + page, "seed \(seed): guest \(i) gained \(after.value - before.value) KiB")
        }
    }

    @Test func raisingYourOwnDemandNeverLowersYourAllocation() {
        forEachRandomHost(seed: 0xF100_0004) { h, rng, seed in
            let i = Int.random(in: 0..<h.floors.count, using: &rng)
            let before = h.solve().allocations[i]
            var raised = h
            raised.demands[i] = KiB(h.demands[i].value + KiB(mib: Int64.random(in: 1...8192, using: &rng)).value)
            let after = raised.solve().allocations[i]
            #expect(after.value >= before.value - page, "seed \(seed): guest \(i) lost \(before.value - after.value) KiB")
        }
    }

    @Test func equalGuestsGetEqualShares() {
        forEachRandomHost(seed: 0xF100_0005) { h, rng, seed in
            guard h.floors.count >= 2 else { return }
            var twin = h
            let j = Int.random(in: 1..<h.floors.count, using: &rng)
            twin.floors[j] = h.floors[0]; twin.demands[j] = h.demands[0]
            twin.ceilings[j] = h.ceilings[0]; twin.weights[j] = h.weights[0]
            let r = twin.solve()
            #expect(r.allocations[0] == r.allocations[j], "seed \(seed): twins 0 and \(j) differ")
        }
        // A host of identical guests splits evenly.
        var rng = SplitMix64(seed: 0xF100_0006)
        for _ in 0..<500 {
            let n = Int.random(in: 1...2000, using: &rng)
            let f = KiB(mib: Int64.random(in: 64...512, using: &rng)), d = KiB(mib: Int64.random(in: 512...4096, using: &rng))
            let budget = KiB(f.value * Int64(n) + Int64.random(in: 0...(d.value * Int64(n)), using: &rng))
            let r = FairShare.solve(floors: Array(repeating: f, count: n), demands: Array(repeating: d, count: n),
                                    ceilings: Array(repeating: KiB(gib: 8), count: n), weights: Array(repeating: 1, count: n), budget: budget)
            #expect(Set(r.allocations).count == 1, "n=\(n): unequal shares")
        }
    }

    @Test func inflatingDemandNeverBeatsTheWeightedShareWhileOthersAreUnmet() {
        forEachRandomHost(seed: 0xF100_0007) { h, rng, seed in
            let i = Int.random(in: 0..<h.floors.count, using: &rng)
            var liar = h
            liar.demands[i] = KiB(h.ceilings[i].value * 4)      // claims far more than it could use
            let r = liar.solve()
            guard r.phase == .contended else { return }
            let ai = Double(r.allocations[i].value)
            for j in h.floors.indices where j != i {
                let dj = min(max(liar.demands[j], liar.floors[j]), max(liar.ceilings[j], liar.floors[j]))
                let aj = r.allocations[j]
                // j is unmet and at the water level (not held up by its floor).
                guard aj < dj, aj > liar.floors[j] else { continue }
                // aj ≥ λ·w_j − 1 page (rounding), so λ·w_i ≤ (aj + 1 page) · w_i / w_j.
                let share = Double(aj.value + page) * liar.weights[i] / liar.weights[j]
                #expect(ai <= max(Double(liar.floors[i].value), share),
                        "seed \(seed): inflater \(i) got \(ai) > weighted share \(share) of unmet guest \(j)")
            }
        }
    }
}
