import Testing
@testable import HostSimulator
import GuestModel

func smallScenario(_ behaviours: [Behaviour] = [.reporter, .reporter], hours: Double = 0.1, pool: KiB = KiB(gib: 8)) -> Scenario {
    let guests = behaviours.enumerated().map { i, b in
        GuestSpec(name: "g\(i)", workload: .spike(base: KiB(mib: 800), peak: KiB(mib: 2500), at: 60, seconds: 60, every: nil),
                  staticMax: KiB(gib: 4), boot: KiB(gib: 2), behaviour: b)
    }
    var s = Scenario(name: "small", hostMemory: pool, guests: guests)
    s.hours = hours
    return s
}

@Suite("Simulated host and harness")
struct HarnessTests {
    @Test func sameSeedSameNumbers() {
        let s = smallScenario([.reporter, .legacy, .hostile, .stale])
        for name in PolicyName.allCases {
            var a = name.make(s), b = name.make(s)
            #expect(Evaluation.run(s, policy: &a) == Evaluation.run(s, policy: &b), "\(name)")
        }
    }

    @Test func xenRulesAreEnforcedLoudly() {
        var host = SimHost(scenario: smallScenario())
        #expect(throws: SetTargetError.aboveStaticMax(DomID(1), target: KiB(gib: 5), staticMax: KiB(gib: 4))) {
            try host.setTarget(DomID(1), KiB(gib: 5))
        }
        #expect(throws: SetTargetError.noSuchDomain(DomID(9))) { try host.setTarget(DomID(9), KiB(gib: 1)) }
        #expect(throws: SetTargetError.notPositive(DomID(1))) { try host.setTarget(DomID(1), .zero) }
    }

    @Test func everyBehaviourWritesWhatItShould() {
        let s = smallScenario([.reporter, .legacy, .silent, .stale, .hostile, .uncooperative, .slowBalloon], hours: 1)
        var spec = s
        spec.guests[3].staleAfter = 60
        spec.guests[1].legacyInterval = 60
        var host = SimHost(scenario: spec)
        var writes = [DomID: [XenstoreWrite]]()
        for _ in 0..<300 { host.step(1); for w in host.drain(upTo: host.seconds) { writes[w.domid, default: []].append(w) } }
        func parsed(_ d: UInt16) -> [Bool] { (writes[DomID(d)] ?? []).filter { $0.key == .pressure }.map { (try? ReportParser.parse($0.value).get()) != nil } }
        #expect(parsed(1).count >= 140 && parsed(1).allSatisfy { $0 })                       // reporter: every 2 s, all valid
        #expect(writes[DomID(2)]!.allSatisfy { $0.key != .pressure } && writes[DomID(2)]!.count == 10) // legacy: 5 pairs
        #expect(writes[DomID(3)] == nil)                                                     // silent
        #expect(writes[DomID(4)]!.allSatisfy { $0.visibleAt < 61 })                          // stale after 60 s
        #expect(parsed(5).contains(false) && parsed(5).contains(true))                       // hostile: garbage and lies
        #expect((writes[DomID(5)] ?? []).count > 150)                                        // ... and floods
        #expect(host.store[DomID(1)]?["data/pressure"] != nil)
        // Writes become visible after a delay of under 300 ms.
        #expect(writes.values.joined().allSatisfy { $0.visibleAt <= host.seconds })
    }

    @Test func ourPolicyKeepsItsFloorsAndInvariantsOnEveryBehaviour() {
        let s = smallScenario([.reporter, .legacy, .silent, .stale, .hostile, .uncooperative, .slowBalloon], hours: 0.5, pool: KiB(gib: 16))
        var p = ArbiterPolicy(config: s.policy)
        let m = Evaluation.run(s, policy: &p)
        #expect(m.floorViolations == 0)
        #expect(p.violations.isEmpty, "\(p.violations.prefix(3))")
        #expect(m.rejectedReports > 0)
        #expect(m.refusedTargets == 0)
    }
}

/// Each baseline against its published rule, on a host small enough to check by hand.
@Suite("Baselines match their descriptions")
struct BaselineTests {
    func input(_ domains: [DomainFacts], free: KiB, pool: KiB, at seconds: Double = 0, truth: [GuestTruth] = []) -> PolicyInput {
        PolicyInput(snapshot: HostSnapshot(free: free, domains: domains), now: TimePoint(seconds: seconds), truth: truth, pool: pool)
    }
    func dom(_ id: UInt16, staticMax: KiB, actual: KiB, min: KiB? = nil) -> DomainFacts {
        DomainFacts(domid: DomID(id), staticMax: staticMax, actual: actual, target: actual, adminMin: min)
    }

    @Test func staticSharesByProvisionedSize() {
        var p = StaticPolicy()
        let out = p.decide(input([dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 1)), dom(2, staticMax: KiB(gib: 2), actual: KiB(gib: 1))],
                                 free: KiB(gib: 1), pool: KiB(gib: 3)))
        #expect(out.targets == [KiB(gib: 2), KiB(gib: 1)])
    }

    @Test func squeezedPutsEveryoneAtTheSameFractionOfTheirRange() {
        var p = SqueezedPolicy()
        // Ranges [1G, 3G] and [1G, 5G]; budget = 2 + 2 + 2 − 9 MiB ≈ 6G − 9M; γ = (6G − 9M − 2G) / 6G.
        let out = p.decide(input([dom(1, staticMax: KiB(gib: 3), actual: KiB(gib: 2), min: KiB(gib: 1)),
                                  dom(2, staticMax: KiB(gib: 5), actual: KiB(gib: 2), min: KiB(gib: 1))],
                                 free: KiB(gib: 2), pool: KiB(gib: 6)))
        let gamma = (KiB(gib: 6).asDouble - KiB(mib: 9).asDouble - KiB(gib: 2).asDouble) / KiB(gib: 6).asDouble
        #expect(abs(out.targets[0].asDouble - (KiB(gib: 1).asDouble + gamma * KiB(gib: 2).asDouble)) <= 4)
        #expect(abs(out.targets[1].asDouble - (KiB(gib: 1).asDouble + gamma * KiB(gib: 4).asDouble)) <= 4)
        // Two-phase: when one must shrink, the other does not grow in the same round.
        let out2 = p.decide(input([dom(1, staticMax: KiB(gib: 3), actual: KiB(gib: 3), min: KiB(gib: 1)),
                                   dom(2, staticMax: KiB(gib: 5), actual: KiB(gib: 1), min: KiB(gib: 1))],
                                  free: .zero, pool: KiB(gib: 4)))
        #expect(out2.targets[0] < KiB(gib: 3) && out2.targets[1] == KiB(gib: 1))
    }

    @Test func selfballoonClosesAnEighthOfTheGapDownAndAllOfItUp() {
        var p = SelfballoonPolicy()
        let truth = [GuestTruth(workingSet: .zero, peakAhead: .zero, committedAS: KiB(gib: 1), overhead: .zero),
                     GuestTruth(workingSet: .zero, peakAhead: .zero, committedAS: KiB(gib: 3), overhead: .zero)]
        let out = p.decide(input([dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 3)), dom(2, staticMax: KiB(gib: 4), actual: KiB(gib: 1))],
                                 free: .zero, pool: KiB(gib: 4), truth: truth))
        #expect(out.targets[0] == KiB(gib: 3) - KiB(gib: 2 ).scaledDown(8))
        #expect(out.targets[1] == KiB(gib: 3))
        // Never below its piecewise floor (224 MiB for 4 GiB).
        let low = [GuestTruth(workingSet: .zero, peakAhead: .zero, committedAS: KiB(mib: 1), overhead: .zero)]
        var q = SelfballoonPolicy()
        let out3 = q.decide(input([dom(1, staticMax: KiB(gib: 4), actual: KiB(mib: 230))], free: .zero, pool: KiB(gib: 4), truth: low))
        #expect(out3.targets[0] == Floors.selfballoon(KiB(gib: 4)))
    }

    @Test func momShrinksFivePercentWhenTheHostIsShortAndGrowsWhenItIsNot() {
        var p = MoMPolicy()
        var r = GuestReport(source: .reporter, seq: 1, memTotal: KiB(gib: 2), memAvailable: KiB(gib: 1))
        r.activeFile = .zero
        p.observe(XenstoreWrite(domid: DomID(1), key: .pressure, value: "v=1 seq=1 mem_total_kb=\(KiB(gib: 2).value) mem_available_kb=\(KiB(gib: 1).value)", visibleAt: 0), staticMax: KiB(gib: 4))
        // 5 % free: shrink by 5 % (floor = used + 5 % of current is lower).
        let short = p.decide(input([dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 2))], free: KiB(mib: 200), pool: KiB(gib: 4)))
        #expect(short.targets[0] == KiB.pageFloor(KiB(gib: 2).asDouble * 0.95))
        // Within 10 s nothing happens; then with 50 % free it grows by 5 %.
        #expect(p.decide(input([dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 2))], free: KiB(gib: 2), pool: KiB(gib: 4), at: 5)).targets[0] == KiB(gib: 2))
        let plenty = p.decide(input([dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 2))], free: KiB(gib: 2), pool: KiB(gib: 4), at: 10))
        #expect(plenty.targets[0] == KiB.pageFloor(KiB(gib: 2).asDouble * 1.05))
    }

    @Test func qmemmanSplitsSpareMemoryInProportionToPreference() {
        var p = QmemmanPolicy()
        // Guest 1 uses 1 GiB (pref 1.3 GiB), guest 2 uses 100 MiB (pref 200 MiB floor).
        for (id, used) in [(UInt16(1), KiB(gib: 1)), (2, KiB(mib: 100))] {
            p.observe(XenstoreWrite(domid: DomID(id), key: .pressure,
                                    value: "v=1 seq=1 mem_total_kb=\(KiB(gib: 2).value) mem_available_kb=\(KiB(gib: 2).value - used.value)", visibleAt: 0),
                      staticMax: KiB(gib: 16))
        }
        let out = p.decide(input([dom(1, staticMax: KiB(gib: 16), actual: KiB(gib: 2)), dom(2, staticMax: KiB(gib: 16), actual: KiB(gib: 2))],
                                 free: KiB(gib: 2), pool: KiB(gib: 6)))
        let pref1 = KiB(gib: 1).asDouble * 1.3, pref2 = KiB(mib: 200).asDouble
        let avail = KiB(gib: 2).asDouble - 50 * 1024 - ((pref1 - KiB(gib: 2).asDouble) + (pref2 - KiB(gib: 2).asDouble))
        #expect(abs(out.targets[0].asDouble - 0.999 * (pref1 + pref1 / (pref1 + pref2) * avail)) <= 4)
        #expect(abs(out.targets[1].asDouble - 0.999 * (pref2 + pref2 / (pref1 + pref2) * avail)) <= 4)
    }

    @Test func oracleGivesEachItsComingWorkingSet() {
        var p = OraclePolicy(reserve: .zero)
        let truth = [GuestTruth(workingSet: KiB(gib: 1), peakAhead: KiB(gib: 2), committedAS: .zero, overhead: .zero),
                     GuestTruth(workingSet: KiB(mib: 500), peakAhead: KiB(mib: 500), committedAS: .zero, overhead: .zero)]
        let out = p.decide(input([dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 2)), dom(2, staticMax: KiB(gib: 4), actual: KiB(gib: 2))],
                                 free: KiB(gib: 4), pool: KiB(gib: 8), truth: truth))
        #expect(out.targets == [KiB.pageCeil(KiB(gib: 2).asDouble * 1.05), KiB.pageCeil(KiB(mib: 500).asDouble * 1.05)])
    }
}

extension KiB {
    func scaledDown(_ d: Int64) -> KiB { KiB(value / d) }
}
