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
        #expect(host.read(DomID(1), "data/pressure") != nil)
        // Writes become visible after a delay of under 300 ms.
        #expect(writes.values.joined().allSatisfy { $0.visibleAt <= host.seconds })
    }
}
