import Testing
@testable import GuestModel

/// A tiny host for round-level tests: balloons reach their targets at `balloonSpeed` per second
/// (instantly when nil), growing only from free memory. The real simulator is a separate, richer model.
struct TinyHost {
    var facts: [DomainFacts]
    var free: KiB
    var balloonSpeed: KiB? = nil

    mutating func apply(_ d: Decision, seconds: Double) {
        for (i, o) in d.outcomes.enumerated() {
            facts[i].target = o.target
            var delta = o.target.value - facts[i].actual.value
            if let s = balloonSpeed {
                let limit = Int64(Double(s.value) * seconds)
                delta = max(-limit, min(limit, delta))
            }
            if delta > 0 { delta = min(delta, free.value) }
            facts[i].actual = KiB(facts[i].actual.value + delta)
            free = KiB(free.value - delta)
        }
    }

    var snapshot: HostSnapshot { HostSnapshot(free: free, domains: facts) }
}

/// A reporter line. `active_file_kb` is given (0 unless set) so the estimator does not treat the guest
/// as blind (a report without it counts most of MemAvailable as working set).
func line(seq: Int64, total: Int64, available: Int64, psi: Double = 0, someTotal: Int64? = nil, activeFile: Int64 = 0) -> String {
    var s = "v=1 seq=\(seq) mem_total_kb=\(total) mem_available_kb=\(available) active_file_kb=\(activeFile) psi_some_avg10=\(formatFixed(psi, decimals: 2))"
    if let someTotal { s += " psi_some_total_us=\(someTotal)" }
    return s
}

@Suite("Arbitration: the round")
struct ArbitrationTests {
    /// One 4 GiB guest using 512 MiB, alone on a host with nothing free.
    func idleHost() -> (Arbitration, TinyHost) {
        var config = PolicyConfig()
        config.share.surplus = .keepFree
        let arb = Arbitration(config: config)
        let host = TinyHost(facts: [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 4), target: KiB(gib: 4))],
                            free: KiB(mib: 100))
        return (arb, host)
    }

    @Test func idleGuestShrinksAtThePacedRateAndStopsAtItsFloor() {
        var (arb, host) = idleHost()
        var t = TimePoint(ms: 0)
        var previous = host.facts[0].target
        var reasons = Set<Reason>()
        for round in 0..<400 {
            arb.ingest(DomID(1), line: line(seq: Int64(round) * 2000 + 1, total: host.facts[0].actual.value * 97 / 100,
                                            available: host.facts[0].actual.value * 97 / 100 - 512 * 1024), at: t)
            let d = arb.step(host.snapshot, now: t)
            #expect(Invariants.violations(of: d, staticMax: [KiB(gib: 4)]).isEmpty)
            let o = d.outcomes[0]
            reasons.insert(o.reason)
            if o.target < previous {
                // Above its working set: 10 %/s of the target; below it: 1 %/s (min 4 MiB/s), over 2 s.
                let fast = max(Double(previous.value) * 0.10, 4096) * 2
                let slow = max(Double(previous.value) * 0.01, 4096) * 2
                #expect(Double(previous.value - o.target.value) <= fast + 4, "round \(round)")
                let edge = max(o.allocation, min(previous, o.cheapShrinkEdge))
                #expect(o.target.asDouble >= edge.asDouble - slow - 4, "round \(round): below the cheap edge too fast")
            }
            #expect(o.target >= o.floor)
            previous = o.target
            host.apply(d, seconds: 2)
            t = t.adding(seconds: 2)
        }
        let o = arb.step(host.snapshot, now: t).outcomes[0]
        // Converged near working set × headroom (512 MiB + overhead ≈ 640 MiB), far from 4 GiB.
        #expect(host.facts[0].target < KiB(mib: 800))
        #expect(host.facts[0].target >= o.floor)
        #expect(reasons.contains(.shrinkIdle))
    }

    @Test func firstRoundAfterStartNeverJumps() {
        var (arb, host) = idleHost()
        arb.ingest(DomID(1), line: line(seq: 1, total: 4_000_000, available: 3_500_000), at: TimePoint(ms: 0))
        let d = arb.step(host.snapshot, now: TimePoint(ms: 0))
        // No pacing history yet: the first round may not shrink at all.
        #expect(d.outcomes[0].target == KiB(gib: 4))
        #expect(d.outcomes[0].reason == .heldRateLimit)
        _ = host
    }

    /// Seen on real Xen (integration/xen): restarted while a small PV guest (static-max 640 MiB, 59 MiB
    /// kept by its kernel) held 209 MiB with 16 MiB available, the arbiter read the first report before
    /// it knew the allocation, counted no kernel overhead, shrank the guest into memory it used, and the
    /// guest died ("System is deadlocked on memory"). Reports carry the allocation read with them now.
    @Test func restartedArbiterNeverShrinksASmallGuestIntoWhatItUses() {
        var config = PolicyConfig()
        config.pacing.deadband = KiB(mib: 4)
        var arb = Arbitration(config: config)
        var host = TinyHost(facts: [DomainFacts(domid: DomID(2), staticMax: KiB(mib: 640), actual: KiB(mib: 209), target: KiB(mib: 209))],
                            free: KiB(mib: 250))
        var t = TimePoint(ms: 0)
        for round in 0..<30 {
            let total = host.facts[0].actual.value - 59 * 1024
            let used: Int64 = (209 - 16 - 59) * 1024
            arb.ingest(DomID(2), line: line(seq: Int64(round) * 2000 + 1, total: total, available: max(0, total - used)), at: t,
                       allocation: host.facts[0].actual)
            let d = arb.step(host.snapshot, now: t)
            #expect(d.outcomes[0].target >= KiB(mib: 209 - 16), "round \(round): \(d.outcomes[0].reason)")
            host.apply(d, seconds: 2)
            t = t.adding(seconds: 2)
        }
    }

    @Test func theDeadbandIsAtMostFivePercentOfASmallGuest() {
        let p = PacingConfig()
        #expect(p.band(at: KiB(mib: 146)) == Int64((146 * 1024 * 0.05).rounded()))
        #expect(p.band(at: KiB(gib: 1)) == 16 * 1024)
        #expect(p.band(at: KiB(gib: 4)) == Int64((4 * 1024 * 1024 * 0.01).rounded()))
    }

    /// Seen on real Xen (integration/xen), default policy: a 143 MiB guest (static-max 640 MiB) with
    /// 16.7 MiB available and a workload waiting for memory, demand 15 MiB above its target, was held
    /// "steady" behind a flat 16 MiB deadband for 7 minutes. It grows now.
    @Test func aSmallGuestShortOfItsDemandGrows() {
        var arb = Arbitration(config: PolicyConfig())
        let host = TinyHost(facts: [DomainFacts(domid: DomID(2), staticMax: KiB(mib: 640), actual: KiB(146608), target: KiB(146608))],
                            free: KiB(mib: 250))
        var t = TimePoint(ms: 0)
        var grew = false
        for round in 0..<3 {
            arb.ingest(DomID(2), line: line(seq: Int64(round) * 2000 + 1, total: 86056, available: 17092), at: t, allocation: KiB(146608))
            let o = arb.step(host.snapshot, now: t).outcomes[0]
            if o.target > KiB(146608) { grew = true; #expect(o.reason == .growDemand) }
            t = t.adding(seconds: 2)
        }
        #expect(grew)
    }

    @Test func stallingGuestIsNotShrunk() {
        var (arb, host) = idleHost()
        var t = TimePoint(ms: 0)
        var total: Int64 = 0
        for round in 0..<5 {
            total += 100_000 // 100 ms of stall every 2 s: 5 %
            arb.ingest(DomID(1), line: line(seq: Int64(round) * 2000 + 1, total: 4_000_000, available: 3_500_000, psi: 5, someTotal: total), at: t)
            let d = arb.step(host.snapshot, now: t)
            #expect(d.outcomes[0].target == KiB(gib: 4), "round \(round)")
            if round > 0 { #expect(d.outcomes[0].reason == .heldPressure || d.outcomes[0].reason == .steady) }
            host.apply(d, seconds: 2)
            t = t.adding(seconds: 2)
        }
    }

    @Test func silentStaleAndRejectedGuestsAreHeld() {
        var config = PolicyConfig()
        config.share.surplus = .keepFree
        var arb = Arbitration(config: config)
        let facts = (1...3).map { DomainFacts(domid: DomID(UInt16($0)), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2)) }
        var host = TinyHost(facts: facts, free: .zero)
        // dom2 reports once, then goes quiet; dom3 writes garbage after one good report.
        arb.ingest(DomID(2), line: line(seq: 1, total: 2_000_000, available: 1_900_000), at: TimePoint(ms: 0))
        arb.ingest(DomID(3), line: line(seq: 1, total: 2_000_000, available: 1_900_000), at: TimePoint(ms: 0))
        var t = TimePoint(ms: 0)
        var last: Decision? = nil
        var targetWhenStale: KiB? = nil
        for round in 0..<60 {
            if round > 0 { #expect(arb.ingest(DomID(3), line: "v=1 seq=\(round) mem_total_kb=lots", at: t) != .accepted) }
            let d = arb.step(host.snapshot, now: t)
            if d.outcomes[1].status == .stale && targetWhenStale == nil { targetWhenStale = d.outcomes[1].previousTarget }
            host.apply(d, seconds: 2)
            t = t.adding(seconds: 2)
            last = d
        }
        let o = last!.outcomes
        #expect(o[0].reason == .heldNoReport && o[0].target == KiB(gib: 2) && o[0].status == .none)
        // dom2's single report made it shrink until that report went stale (30 s); from then on it is held.
        #expect(o[1].reason == .heldStale && o[1].status == .stale)
        #expect(targetWhenStale != nil && o[1].target == targetWhenStale)
        #expect(o[1].target < KiB(gib: 2) && o[1].target >= o[1].floor)
        #expect(o[2].reason == .heldRejected && o[2].status == .rejected)
        #expect(o[2].target == o[2].previousTarget)
        #expect(arb.guest(DomID(3))!.rejectedReports == 59)
    }

    @Test func growsComeOnlyFromFreeMemoryAndShrinksComeFirst() {
        var config = PolicyConfig()
        config.share.surplus = .keepFree
        var arb = Arbitration(config: config)
        // dom1 idle at 4 GiB; dom2 at 1 GiB needs ~3 GiB. Nothing free beyond the reserve.
        var host = TinyHost(facts: [
            DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 4), target: KiB(gib: 4)),
            DomainFacts(domid: DomID(2), staticMax: KiB(gib: 4), actual: KiB(gib: 1), target: KiB(gib: 1)),
        ], free: KiB(mib: 64))
        var t = TimePoint(ms: 0)
        var sawHeldNoFree = false, sawGrow = false
        for round in 0..<300 {
            let seq = Int64(round) * 2000 + 1
            let a1 = host.facts[0].actual.value * 97 / 100
            arb.ingest(DomID(1), line: line(seq: seq, total: a1, available: a1 - 400 * 1024), at: t)
            let a2 = host.facts[1].actual.value * 97 / 100
            arb.ingest(DomID(2), line: line(seq: seq, total: a2, available: max(0, a2 - 2600 * 1024)), at: t)
            let d = arb.step(host.snapshot, now: t)
            #expect(Invariants.violations(of: d).isEmpty, "round \(round): \(Invariants.violations(of: d))")
            if d.outcomes[1].reason == .heldNoFree { sawHeldNoFree = true }
            if d.outcomes[1].target > d.outcomes[1].previousTarget { sawGrow = true }
            host.apply(d, seconds: 2)
            #expect(host.free.value >= 0)
            t = t.adding(seconds: 2)
        }
        #expect(sawHeldNoFree)
        #expect(sawGrow)
        #expect(host.facts[1].actual > KiB(mib: 2800))          // got what it needed
        #expect(host.facts[0].actual < KiB(gib: 2))             // taken from the idle guest
    }

    @Test func criticalGuestGetsItsMemoryBackAtOnce() {
        var config = PolicyConfig()
        config.share.surplus = .keepFree
        var arb = Arbitration(config: config)
        var host = TinyHost(facts: [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 4), target: KiB(gib: 4))],
                            free: KiB(gib: 8))
        var t = TimePoint(ms: 0)
        for round in 0..<200 {  // calm: shrinks towards ~1.2 GiB
            let a = host.facts[0].actual.value * 97 / 100
            arb.ingest(DomID(1), line: line(seq: Int64(round) * 2000 + 1, total: a, available: a - 1024 * 1024), at: t)
            host.apply(arb.step(host.snapshot, now: t), seconds: 2)
            t = t.adding(seconds: 2)
        }
        let shrunk = host.facts[0].target
        #expect(shrunk < KiB(gib: 2))
        let a = host.facts[0].actual.value * 97 / 100
        arb.ingest(DomID(1), line: line(seq: 500_001, total: a, available: 0, psi: 40), at: t)
        let d = arb.step(host.snapshot, now: t)
        #expect(d.outcomes[0].reason == .growCritical)
        // In one round, not in steps: the peak it had 400 s ago, decayed with the 600 s half-life
        // towards what it has now (≈ 1.2 + 2.8 × 2^(−400/600) ≈ 3 GiB), not a 50 % boost of 1.2 GiB.
        #expect(d.outcomes[0].target > KiB(mib: 2800), "\(d.outcomes[0].target) from \(shrunk)")
        #expect(d.outcomes[0].target.value > 2 * shrunk.value)
    }

    @Test func floorsThatDoNotFitRaiseAnAlertAndNobodyIsShrunkBelowThem() {
        var arb = Arbitration()
        let facts = (1...3).map { DomainFacts(domid: DomID(UInt16($0)), staticMax: KiB(gib: 4), actual: KiB(gib: 1), target: KiB(gib: 1), adminMin: KiB(gib: 2)) }
        let host = TinyHost(facts: facts, free: .zero)
        let d = arb.step(host.snapshot, now: TimePoint(ms: 0))
        #expect(d.phase == .infeasible)
        #expect(d.alerts.count == 1 && d.alerts[0].kind == .floorsExceedHost)
        #expect(d.alerts[0].shortfall > KiB(gib: 2))
        for o in d.outcomes {
            #expect(o.allocation == KiB(gib: 2))
            #expect(o.target == KiB(gib: 1) && o.reason == .heldNoFree)   // can't grow: nothing free
        }
        #expect(Invariants.violations(of: d).isEmpty)
    }

    @Test func targetsAboveStaticMaxAreClampedAndAdminCeilingShrinksPaced() {
        var arb = Arbitration()
        var host = TinyHost(facts: [
            DomainFacts(domid: DomID(1), staticMax: KiB(gib: 2), actual: KiB(gib: 2), target: KiB(gib: 3)),
            DomainFacts(domid: DomID(2), staticMax: KiB(gib: 4), actual: KiB(gib: 4), target: KiB(gib: 4), adminMax: KiB(gib: 1)),
        ], free: .zero)
        var d = arb.step(host.snapshot, now: TimePoint(ms: 0))
        #expect(d.outcomes[0].target == KiB(gib: 2) && d.outcomes[0].reason == .clampStaticMax)
        host.apply(d, seconds: 2)
        d = arb.step(host.snapshot, now: TimePoint(ms: 2000))
        #expect(d.outcomes[1].reason == .shrinkCeiling)
        #expect(d.outcomes[1].target < KiB(gib: 4) && d.outcomes[1].target > KiB(gib: 3))
    }

    @Test func slowBalloonsAreWaitedForThenFenced() {
        // 16 MiB/s: slow but moving. The target may not run more than 64 MiB ahead of it: it waits.
        var (arb, host) = idleHost()
        host.balloonSpeed = KiB(mib: 16)
        var t = TimePoint(ms: 0)
        var reasons = [Reason]()
        for round in 0..<30 {
            arb.ingest(DomID(1), line: line(seq: Int64(round) * 2000 + 1, total: 3_900_000, available: 3_400_000), at: t)
            let d = arb.step(host.snapshot, now: t)
            reasons.append(d.outcomes[0].reason)
            // Not extended while more than 64 MiB behind: at most the lead plus one round's step (≤ 2 × 10 % of 4 GiB).
            #expect(host.facts[0].actual.value - d.outcomes[0].target.value <= KiB(mib: 64).value + KiB(mib: 820).value)
            host.apply(d, seconds: 2)
            t = t.adding(seconds: 2)
        }
        #expect(reasons.contains(.heldConverging))
        #expect(!reasons.contains(.fencedUncooperative))

        // 1 MiB/s: too slow for too long. Marked uncooperative, held at what it really has.
        var (arb2, host2) = idleHost()
        host2.balloonSpeed = KiB(mib: 1)
        t = TimePoint(ms: 0)
        var fencedAt: Int? = nil
        for round in 0..<40 {
            arb2.ingest(DomID(1), line: line(seq: Int64(round) * 2000 + 1, total: 3_900_000, available: 3_400_000), at: t)
            let d = arb2.step(host2.snapshot, now: t)
            if d.outcomes[0].reason == .fencedUncooperative && fencedAt == nil {
                fencedAt = round
                #expect(d.outcomes[0].target == host2.facts[0].actual)      // stops asking
                #expect(d.outcomes[0].allocation == host2.facts[0].actual)  // its promise is not counted
            }
            host2.apply(d, seconds: 2)
            t = t.adding(seconds: 2)
        }
        #expect(fencedAt != nil && fencedAt! >= 15, "fenced at round \(String(describing: fencedAt)) (patience 30 s)")
    }

    @Test func vanishedDomainsAreForgotten() {
        var arb = Arbitration()
        arb.ingest(DomID(7), line: line(seq: 1, total: 1_000_000, available: 500_000), at: TimePoint(ms: 0))
        let facts = [DomainFacts(domid: DomID(7), staticMax: KiB(gib: 1), actual: KiB(gib: 1), target: KiB(gib: 1)),
                     DomainFacts(domid: DomID(8), staticMax: KiB(gib: 1), actual: KiB(gib: 1), target: KiB(gib: 1))]
        _ = arb.step(HostSnapshot(free: .zero, domains: facts), now: TimePoint(ms: 0))
        #expect(arb.guest(DomID(7))?.acceptedReports == 1)
        _ = arb.step(HostSnapshot(free: .zero, domains: [facts[1]]), now: TimePoint(ms: 2000))
        #expect(arb.guest(DomID(7)) == nil)
        #expect(arb.guests.count == 1 && arb.guest(DomID(8)) != nil)
    }

    @Test func aGuestClaimingToBeFullCannotRatchetItsWayPastAnHonestEqual() {
        // Two equal-weight guests on a host that cannot satisfy both. The liar reports itself 100 % used
        // every round; the honest one really needs 3 GiB. Floors must not ratchet the liar upwards: the
        // honest guest keeps at least its weighted fair share of what the floors leave.
        var arb = Arbitration()
        var host = TinyHost(facts: [
            DomainFacts(domid: DomID(1), staticMax: KiB(gib: 8), actual: KiB(gib: 2), target: KiB(gib: 2)),
            DomainFacts(domid: DomID(2), staticMax: KiB(gib: 8), actual: KiB(gib: 2), target: KiB(gib: 2)),
        ], free: KiB(gib: 1))
        var t = TimePoint(ms: 0)
        var last: Decision? = nil
        for round in 0..<300 {
            let seq = Int64(round) * 2000 + 1
            let liar = host.facts[0].actual.value * 97 / 100
            arb.ingest(DomID(1), line: line(seq: seq, total: liar, available: 0), at: t)
            let honest = host.facts[1].actual.value * 97 / 100
            arb.ingest(DomID(2), line: line(seq: seq, total: honest, available: max(0, honest - 3 * 1024 * 1024)), at: t)
            let d = arb.step(host.snapshot, now: t)
            #expect(Invariants.violations(of: d).isEmpty)
            // The liar's automatic floor never exceeds what it holds.
            #expect(d.outcomes[0].floor <= max(host.facts[0].actual, host.facts[0].target))
            host.apply(d, seconds: 2)
            t = t.adding(seconds: 2)
            last = d
        }
        // 5 GiB less the 64 MiB reserve, equal weights: the fair share is ≈ 2.47 GiB each. The honest
        // guest gets it (within the calm-grow band: it reports no stall, so it grows in ≥ 5 % steps);
        // the liar gets no more.
        let share = (KiB(gib: 5).value - KiB(mib: 64).value) / 2
        let band = share / 20
        #expect(host.facts[1].actual.value >= share - band, "honest \(host.facts[1].actual)")
        #expect(host.facts[0].actual.value <= share + band, "liar \(host.facts[0].actual)")
        #expect(last!.phase == .contended)
    }

    @Test func everyReasonHasAStableCode() {
        #expect(Set(Reason.allCases.map(\.rawValue)).count == Reason.allCases.count)
    }
}

@Suite("Arbitration: properties over random hosts (seeded)")
struct ArbitrationProperties {
    @Test func pacingNeverShrinksFasterThanTheConfiguredRateAndInvariantsHold() {
        var master = SplitMix64(seed: 0xA4B1_0001)
        let p = PacingConfig()
        for _ in 0..<500 {
            let seed = master.next()
            var rng = SplitMix64(seed: seed)
            // 1–2,000 domains, log-uniform (most hosts small, some very large).
            let n = min(2000, max(1, Int(exp2(Double.random(in: 0...log2(2000), using: &rng)))))
            var arb = Arbitration()
            var facts = [DomainFacts]()
            for i in 0..<n {
                let sm = KiB(mib: Int64.random(in: 256...8192, using: &rng))
                let cur = KiB(Int64.random(in: (sm.value / 4)...sm.value, using: &rng)).pageFloor
                facts.append(DomainFacts(domid: DomID(UInt16(i + 1)), staticMax: sm, actual: cur, target: cur,
                                         adminMin: Bool.random(using: &rng) ? KiB(mib: Int64.random(in: 128...1024, using: &rng)) : nil,
                                         adminMax: Int.random(in: 0..<5, using: &rng) == 0 ? KiB(mib: Int64.random(in: 256...8192, using: &rng)) : nil,
                                         weight: Double(Int.random(in: 1...5, using: &rng))))
            }
            var host = TinyHost(facts: facts, free: KiB(mib: Int64.random(in: 0...4096, using: &rng)),
                                balloonSpeed: Bool.random(using: &rng) ? KiB(mib: Int64.random(in: 1...200, using: &rng)) : nil)
            var t = TimePoint(ms: 0)
            var psi = [Int64](repeating: 0, count: n)
            for round in 0..<8 {
                for i in 0..<n where Int.random(in: 0..<10, using: &rng) > 0 {
                    let total = host.facts[i].actual.value * 95 / 100
                    let used = Int64(Double(total) * Double.random(in: 0.05...1, using: &rng))
                    psi[i] += Int64.random(in: 0...(Bool.random(using: &rng) ? 400_000 : 2_000), using: &rng)
                    arb.ingest(host.facts[i].domid, line: line(seq: Int64(round) * 2000 + 1, total: total, available: total - used,
                                                              psi: Double.random(in: 0...30, using: &rng), someTotal: psi[i]),
                               at: t, staticMax: host.facts[i].staticMax)
                }
                let d = arb.step(host.snapshot, now: t)
                let v = Invariants.violations(of: d, staticMax: host.facts.map(\.staticMax))
                #expect(v.isEmpty, "seed \(seed) round \(round): \(v.prefix(3))")
                for o in d.outcomes where o.target < o.previousTarget && o.reason != .clampStaticMax {
                    let base = min(o.previousTarget, o.actual)
                    func rate(_ fraction: Double) -> Double {
                        min(max(fraction * base.asDouble, p.minShrinkPerSecond.asDouble), p.maxShrinkPerSecond.asDouble)
                    }
                    // Allowance accrues while a shrink waits, up to maxInterval; rounds are 2 s apart.
                    let dt = round == 0 ? 0 : min(p.maxIntervalSeconds, 2.0 * Double(round))
                    let edge = max(o.allocation, min(base, o.cheapShrinkEdge))
                    let what = "seed \(seed) round \(round) dom\(o.domid): \(o.previousTarget) → \(o.target) (actual \(o.actual), \(o.reason))"
                    // Never faster than the surplus rate, and below the cheap edge never faster than the slow rate.
                    #expect(o.target.asDouble >= base.asDouble - rate(p.surplusShrinkFractionPerSecond) * dt - 4, "\(what)")
                    #expect(o.target.asDouble >= edge.asDouble - rate(p.shrinkFractionPerSecond) * dt - 4, "\(what) below edge")
                }
                host.apply(d, seconds: 2)
                t = t.adding(seconds: 2)
            }
        }
    }
}

@Suite("Pacing: full guests")
struct FullGuestPacingTests {
    /// One uncontended guest 7 MiB under its allocation (inside the band at 147 MiB), reporting no stall.
    func move(givable: KiB?, shortFor: Double? = nil) -> Move {
        let cur = KiB(mib: 147)
        let now = TimePoint(ms: 100_000)
        let b = GuestBounds(domid: DomID(1), status: .fresh, staticMax: KiB(gib: 1), weight: 1, actual: cur, previousTarget: cur,
                            shrinkSince: nil, shortSince: shortFor.map { now.adding(seconds: -$0) }, floor: KiB(mib: 130), floorKind: .workingSet, staticFloor: KiB(mib: 128),
                            staticFloorKind: .absolute, demand: KiB(mib: 154), idleTaxed: KiB(mib: 154), ceiling: KiB(gib: 1),
                            workingSet: KiB(mib: 123), cheapShrinkEdge: KiB(mib: 130), stall: 0, critical: false, givable: givable)
        var share = Share(outcomes: [DomainOutcome(b)],
                          facts: [RoundFacts(staticMax: b.staticMax, shrinkSince: b.shrinkSince, shortSince: b.shortSince, slot: -1,
                                             staticFloorKind: b.staticFloorKind)],
                          result: FairShareResult(allocations: [KiB(mib: 154)], basis: [.demand], phase: .uncontended,
                                                  shortfall: .zero, level: nil))
        Pacer.pace(&share, free: KiB(mib: 500), reserve: KiB(mib: 64), now: now, config: PacingConfig())
        let o = share.outcomes[0]
        return Move(target: o.target, reason: o.reason, paced: o.paced, short: share.facts[0].short)
    }

    @Test func aFullGuestGrowsToItsAllocationInsideTheBandACalmOneWaits() {
        // Full: 4 MiB available, under its kernel's 16 MiB margin.
        #expect(move(givable: KiB(mib: 4)).target == KiB(mib: 154))
        // With room to spare (or free swap: givable unknown), the calm band holds the 7 MiB.
        #expect(move(givable: KiB(mib: 40)).target == KiB(mib: 147))
        #expect(move(givable: nil).target == KiB(mib: 147))
        // Held short, it says so (the round keeps when the shortfall began); one that lasts 30 s is no
        // noise: it grows.
        #expect(move(givable: KiB(mib: 40)).short && !move(givable: KiB(mib: 4)).short)
        #expect(move(givable: KiB(mib: 40), shortFor: 29).target == KiB(mib: 147))
        #expect(move(givable: KiB(mib: 40), shortFor: 30).target == KiB(mib: 154))
    }
}
