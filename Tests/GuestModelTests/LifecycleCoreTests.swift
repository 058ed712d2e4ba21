import Testing
@testable import GuestModel

/// The core's side of VMs coming and going: memory held for starts, the urgent pace, the reason of a
/// floor grow, and weights that decide contention above the static floors.
@Suite("Arbitration: starts, floors and weights")
struct LifecycleCoreTests {
    /// Free swap: the guest can give back more than its MemAvailable (by swapping).
    let swap = " swap_total_kb=1048576 swap_free_kb=1048576"

    @Test func aGuestWithoutSwapIsNeverShrunkPastWhatItHasAvailable() {
        // Weight 1 holds 1100M of unswappable memory with 20M available, weight 2 wants more: the split
        // says shrink, but the balloon may only take what the guest can give (20M less the 22M margin: none).
        var arb = Arbitration(config: { var c = PolicyConfig(); c.floors.selfballoonFloor = false; return c }())
        var host = TinyHost(facts: [
            DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(mib: 700), target: KiB(mib: 700), weight: 2),
            DomainFacts(domid: DomID(2), staticMax: KiB(gib: 4), actual: KiB(mib: 1100), target: KiB(mib: 1100), weight: 1),
        ], free: KiB(mib: 64))
        var t = TimePoint(ms: 0)
        var reasons = Set<Reason>()
        for k in 0..<100 {
            for f in host.facts {
                let total = f.actual.value * 80 / 100
                let available = f.domid == DomID(2) ? KiB(mib: 20).value : total / 50
                arb.ingest(f.domid, line: line(seq: Int64(k) * 2000 + 1, total: total, available: available), at: t)
            }
            let d = arb.step(host.snapshot, now: t)
            reasons.insert(d.outcomes[1].reason)
            #expect(d.outcomes[1].target >= KiB(mib: 1100), "round \(k): \(d.outcomes[1].target)")
            host.apply(d, seconds: 2)
            t = t.adding(seconds: 2)
        }
        #expect(reasons.contains(.heldNoAvailable))
        // Once it frees memory (an elastic cache, a yielding application), it is taken at the pace, never
        // more than half of what it has available beyond the margin.
        let total = KiB(mib: 1100).value * 80 / 100
        arb.ingest(DomID(2), line: line(seq: 300_001, total: total, available: KiB(mib: 124).value), at: t)
        arb.ingest(DomID(1), line: line(seq: 300_001, total: host.facts[0].actual.value * 80 / 100, available: 1024), at: t)
        let d = arb.step(host.snapshot, now: t)
        #expect(d.outcomes[1].target < KiB(mib: 1100) && d.outcomes[1].target.value >= KiB(mib: 1100).value - (KiB(mib: 124 - 22).value / 2),
                "\(d.outcomes[1].target) \(d.outcomes[1].reason)")
    }

    @Test func aFloorGrowIsRecordedAsSuch() {
        // 128M guest, admin floor raised to 256M, plenty free: raised at once, and said so.
        var arb = Arbitration()
        let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 1), actual: KiB(mib: 128), target: KiB(mib: 128), adminMin: KiB(mib: 256))]
        arb.ingest(DomID(1), line: line(seq: 1, total: 100 * 1024, available: 60 * 1024), at: TimePoint(ms: 0))
        let d = arb.step(HostSnapshot(free: KiB(mib: 657), domains: facts), now: TimePoint(ms: 0))
        #expect(d.outcomes[0].target == KiB(mib: 256))
        #expect(d.outcomes[0].reason == .growFloor)
    }

    @Test func heldMemoryIsKeptOutOfTheBudgetAndTheGrows() {
        // A hungry guest and 600M free: with 500M held for a start, it may grow by 36M at most.
        func round(held: KiB) -> Decision {
            var arb = Arbitration()
            let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 1), target: KiB(gib: 1))]
            arb.ingest(DomID(1), line: line(seq: 1, total: KiB(gib: 1).value * 97 / 100, available: 0, psi: 40), at: TimePoint(ms: 0))
            return arb.step(HostSnapshot(free: KiB(mib: 600), domains: facts, held: held), now: TimePoint(ms: 0))
        }
        let free = round(held: .zero), held = round(held: KiB(mib: 500))
        #expect(free.outcomes[0].target.value - KiB(gib: 1).value > KiB(mib: 400).value)
        #expect(held.reserve == KiB(mib: 64 + 500) && held.held == KiB(mib: 500))
        #expect(held.budget.value == free.budget.value - KiB(mib: 500).value)
        #expect(held.outcomes[0].target.value - KiB(gib: 1).value <= KiB(mib: 36).value)
    }

    @Test func anUrgentReservationShrinksAtTheFastPaceIntoTheWorkingSet() {
        // A 4G guest using 3G, with 2G wanted for a start: the normal pace goes slowly below the cheap
        // edge; the urgent one goes at the surplus pace all the way.
        func firstShrink(urgent: Bool) -> KiB {
            var arb = Arbitration()
            let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 4), target: KiB(gib: 4))]
            var t = TimePoint(ms: 0)
            var target = KiB(gib: 4)
            for k in 0..<3 {
                arb.ingest(DomID(1), line: line(seq: Int64(k) * 5000 + 1, total: KiB(gib: 4).value * 97 / 100, available: KiB(gib: 1).value,
                                                activeFile: 0) + swap, at: t)
                var f = facts
                f[0].target = target
                let d = arb.step(HostSnapshot(free: .zero, domains: f, held: KiB(gib: 2), urgent: urgent), now: t)
                target = d.outcomes[0].target
                t = t.adding(seconds: 5)
            }
            return target
        }
        let slow = firstShrink(urgent: false), fast = firstShrink(urgent: true)
        #expect(fast < slow, "urgent \(fast) vs normal \(slow)")
        #expect(KiB(gib: 4).value - fast.value >= KiB(mib: 1500).value)
    }

    @Test func weightsSplitWhatIsAboveTheBases() {
        // Two guests on 128M bases, both wanting 2G, 1.5G to share: 2:1 above the bases.
        let r = FairShare.solve(floors: [KiB(mib: 128), KiB(mib: 128)], demands: [KiB(gib: 2), KiB(gib: 2)],
                                ceilings: [KiB(gib: 4), KiB(gib: 4)], weights: [2, 1], budget: KiB(mib: 1536),
                                bases: [KiB(mib: 128), KiB(mib: 128)])
        let above = r.allocations.map { Double($0.value - KiB(mib: 128).value) }
        #expect(abs(above[0] / above[1] - 2) < 0.01, "\(r.allocations)")
        #expect(r.allocations.reduce(0) { $0 + $1.value } <= KiB(mib: 1536).value)
        // Without bases the level is absolute: λ·w, so the split above 128M is not 2:1.
        let plain = FairShare.solve(floors: [KiB(mib: 128), KiB(mib: 128)], demands: [KiB(gib: 2), KiB(gib: 2)],
                                    ceilings: [KiB(gib: 4), KiB(gib: 4)], weights: [2, 1], budget: KiB(mib: 1536))
        #expect(plain.allocations[0] == KiB(mib: 1024) && plain.allocations[1] == KiB(mib: 512))
    }

    @Test func basesKeepTheSolverInvariants() {
        var rng = SplitMix64(seed: 0xBA5E)
        for _ in 0..<300 {
            let h = RandomHost.make(&rng, maxDomains: 200)
            let bases = h.floors.map { KiB(Int64.random(in: 0...$0.value, using: &rng)).pageFloor }
            let r = FairShare.solve(floors: h.floors, demands: h.demands, ceilings: h.ceilings, weights: h.weights, budget: h.budget,
                                    bases: bases)
            let sum = r.allocations.reduce(Int64(0)) { $0 + $1.value }
            for i in h.floors.indices {
                #expect(r.allocations[i] >= h.floors[i])
                #expect(r.allocations[i] <= max(h.ceilings[i], h.floors[i]))
            }
            if r.phase != .infeasible { #expect(sum <= h.budget.value) }
        }
    }

    @Test func weightsDecideEvenWhenTheWorkingSetFloorsWouldPinTheSplit() {
        // Both guests full and hungry (their working-set floors are what they hold); the weight-1 guest
        // holds more than its share: it gives way, at the pace, until the split above the static floors is 2:1.
        var config = PolicyConfig()
        config.floors.selfballoonFloor = false
        var arb = Arbitration(config: config)
        var host = TinyHost(facts: [
            DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(mib: 700), target: KiB(mib: 700), weight: 2),
            DomainFacts(domid: DomID(2), staticMax: KiB(gib: 4), actual: KiB(mib: 1100), target: KiB(mib: 1100), weight: 1),
        ], free: KiB(mib: 64))
        var t = TimePoint(ms: 0)
        for k in 0..<600 {
            for (i, f) in host.facts.enumerated() {
                let total = f.actual.value * 80 / 100
                arb.ingest(f.domid, line: line(seq: Int64(k) * 2000 + 1, total: total, available: total / 50, psi: 2) + swap, at: t)
                _ = i
            }
            let d = arb.step(host.snapshot, now: t)
            #expect(Invariants.violations(of: d).isEmpty)
            host.apply(d, seconds: 2)
            t = t.adding(seconds: 2)
        }
        let above = host.facts.map { Double($0.actual.value - KiB(mib: 128).value) }
        #expect(abs(above[0] / above[1] - 2) < 0.2, "\(host.facts.map(\.actual))")
    }
}
