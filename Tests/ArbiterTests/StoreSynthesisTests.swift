import Foundation
import GRDB
import Testing
@testable import Arbiter
@testable import ArbiterBench
import GuestModel
import Peers

/// The benchmark's month-long store (`arbiter-bench --store`) is built by copying the rounds and
/// allocations of a recorded hour: it must follow every migration. The copy lives in the bench target
/// (nothing else builds stores that way); this test runs that same code.
@Suite("Synthesized stores follow the schema")
struct SynthesizedStoreTests {
    @Test func aMonthBuiltFromAnHourCarriesPolicyAndShadows() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arbiter-month-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let hour = dir.appendingPathComponent("hour.sqlite").path
        let store = try DecisionStore(path: hour)
        let snap = HostSnapshot(free: KiB(gib: 1), domains: [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2))])
        let d = Decision.peer(snap, now: .zero, choices: [PeerChoice(target: nil, floor: .zero, ceiling: KiB(gib: 4), demand: KiB(gib: 2), reported: true)],
                              reserve: .zero, contended: false)
        for k in 0..<3 {
            try store.record(d, at: Date(timeIntervalSince1970: 1_000 + 600 * Double(k)), trigger: .tick, hostTotal: KiB(gib: 8), outcomes: d.outcomes,
                             fullSnapshot: true, names: [DomID(1): "a"], policy: "qmemman", shadowPolicies: ["arbiter"],
                             shadows: [DecisionStore.Shadow(policy: "arbiter", domid: DomID(1), target: KiB(gib: 3), reason: .growDemand)])
        }
        try StoreBench.synthesizeMonth(from: hour, into: dir.appendingPathComponent("month.sqlite").path, start: 1_000_800)
        let month = try DecisionStore(readingAt: dir.appendingPathComponent("month.sqlite").path)
        let policies = try month.db.read { try String.fetchAll($0, sql: "SELECT DISTINCT policy || '/' || shadows FROM rounds") }
        #expect(policies == ["qmemman/arbiter"])
        // Three full snapshots, 10 minutes apart, kept in each of the 30 × 24 hours; one allocation each.
        #expect(try month.counts()["rounds"] == 3 * 30 * 24 && month.counts()["allocations"] == 3 * 30 * 24)
        #expect(try month.latest().map(\.reason) == [.known(d.outcomes[0].reason)])
    }
}
