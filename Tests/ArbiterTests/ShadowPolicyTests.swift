import BundledScenarios
import Foundation
import GRDB
import Logging
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator
import Peers
import Synchronization

/// `[daemon] policy` and `[daemon] shadow`: any policy can decide, the shadows decide from the same
/// inputs and are recorded, never pushed.
@Suite("Policies the daemon runs and shadows")
struct ShadowPolicyTests {
    func run(policy: PolicyKind = .arbiter, shadow: [PolicyKind], seconds: Double = 120) async throws -> (SimulatedHost, DecisionStore, ControlLoop) {
        var s = try ScenarioFile.parse(BundledScenarios.named("default")!)
        s.hours = 1
        let host = SimulatedHost(scenario: s)
        let store = try DecisionStore()
        var config = ArbiterConfig()
        config.daemon.policy = policy
        config.daemon.shadow = shadow
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let clock = SimClock()
        let loop = ControlLoop(backend: host, store: store, config: config, logger: logger,
                               now: { TimePoint(seconds: await host.seconds) }, wall: { clock.date },
                               settings: { await host.adminSettings() })
        var t = 0.0
        while t < seconds {
            for e in await host.advance(by: 0.5) { await loop.note(e) }
            t += 0.5
            clock.set(t)
            if let trigger = await loop.due(at: TimePoint(seconds: await host.seconds)) { await loop.round(trigger: trigger) }
        }
        return (host, store, loop)
    }

    @Test func shadowsAreRecordedAndNeverPushed() async throws {
        let (plainHost, _, _) = try await run(shadow: [])
        let (host, store, loop) = try await run(shadow: [.qmemman, .squeezed])
        // Identical pushes with or without shadows: the same targets, domain by domain.
        #expect(await host.domains().map(\.target) == (await plainHost.domains().map(\.target)))
        let shadows = try await store.db.read { db in
            try Row.fetchAll(db, sql: "SELECT policy, COUNT(*) AS n FROM shadow_targets GROUP BY policy ORDER BY policy").map { ($0[0] as String, $0[1] as Int) }
        }
        #expect(shadows.map(\.0) == ["qmemman", "squeezed"])
        #expect(shadows.allSatisfy { $0.1 >= 13 })
        #expect(await loop.lastShadows.keys.sorted() == ["qmemman", "squeezed"])
        // explain names them beside the pushed target; the comparison covers each domain.
        let e = try #require(try store.explain("db"))
        #expect(e.policy == "arbiter" && e.shadows.map(\.policy) == ["qmemman", "squeezed"])
        let c = try store.shadowComparison(since: nil, until: nil)
        #expect(Set(c.map(\.policy)) == ["qmemman", "squeezed"])
        #expect(c.filter { $0.policy == "qmemman" }.count == 13)
        #expect(c.allSatisfy { $0.seconds > 0 && $0.moreSeconds + $0.lessSeconds <= $0.seconds + 1e-6 })
        // qmemman keeps 1.3× what guests use: somewhere it would have given more than the arbiter did.
        #expect(c.contains { $0.policy == "qmemman" && $0.moreSeconds > 0 })
    }

    /// A shadow decides from its own targets, not the pushed ones: between its own decisions it holds
    /// what it would have set, so it does not drift back into agreeing with what was pushed.
    @Test func aShadowDecidesFromItsOwnTargets() async throws {
        let (host, _, loop) = try await run(shadow: [.squeezed])
        let pushed = Dictionary(uniqueKeysWithValues: await host.domains().map { ($0.domid, $0.target) })
        let d = try #require(await loop.lastShadows["squeezed"])
        #expect(d.outcomes.contains { $0.previousTarget != pushed[$0.domid] })
        let own = await loop.shadowTargets["squeezed"] ?? [:]
        #expect(d.outcomes.allSatisfy { $0.target == own[$0.domid] })
    }

    /// The comparison counts a shadow only across rounds in which it ran, and never across a gap.
    @Test func theComparisonCoversOnlyRoundsTheShadowRanIn() throws {
        let store = try DecisionStore()
        let snap = HostSnapshot(free: KiB(gib: 1), domains: [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2))])
        let d = Decision.peer(snap, now: .zero, choices: [PeerChoice(target: nil, floor: .zero, ceiling: KiB(gib: 4), demand: KiB(gib: 2), reported: true)],
                              reserve: .zero, contended: false)
        // Rounds every 10 s: qmemman runs in the first five, not in the next five, then again after a long gap.
        let times = (0..<10).map { 1000.0 + 10 * Double($0) } + [3000, 3010]
        for (k, t) in times.enumerated() {
            let ran = k < 5 || k >= 10
            try store.record(d, at: Date(timeIntervalSince1970: t), trigger: .tick, hostTotal: KiB(gib: 8), outcomes: d.outcomes, fullSnapshot: true,
                             names: [DomID(1): "a"], policy: "arbiter", shadowPolicies: ran ? ["qmemman"] : [],
                             shadows: ran ? [DecisionStore.Shadow(policy: "qmemman", domid: DomID(1), target: KiB(gib: 3), reason: .policyGrow)] : [])
        }
        let c = try store.shadowComparison(since: nil, until: nil)
        #expect(c.count == 1)
        #expect(c.first?.seconds == 60 && c.first?.moreSeconds == 60 && c.first?.maxDifferenceKiB == KiB(gib: 1).value)
        #expect(try store.explain("a")?.shadows.map(\.policy) == ["qmemman"])
    }

    @Test func aPeerCanDecideAndItsRoundsSaySo() async throws {
        let (_, store, loop) = try await run(policy: .qmemman, shadow: [.arbiter], seconds: 60)
        #expect(await loop.policy.name == "qmemman")
        let policies = try await store.db.read { try String.fetchAll($0, sql: "SELECT DISTINCT policy FROM rounds") }
        #expect(policies == ["qmemman"])
        let pushed = try await store.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM allocations WHERE pushed = 1 AND reason LIKE 'policy:%'") }
        #expect((pushed ?? 0) > 0)
        let e = try #require(try store.explain("web-1"))
        #expect(e.policy == "qmemman" && e.shadows.map(\.policy) == ["arbiter"])
    }

    @Test func configNamesPoliciesAndRefusesShadowingItself() throws {
        let c = try ConfigFile.load("[daemon]\npolicy = \"squeezed\"\nshadow = [\"arbiter\", \"mom\"]\n")
        #expect(c.daemon.policy == .squeezed && c.daemon.shadow == [.arbiter, .mom])
        for bad in ["[daemon]\npolicy = \"xenballoond\"\n", "[daemon]\nshadow = [\"arbiter\"]\n", "[daemon]\nshadow = [\"mom\", \"mom\"]\n",
                    "[daemon]\nshadow = \"mom\"\n"] {
            #expect(throws: ConfigErrors.self, "\(bad)") { try ConfigFile.load(bad) }
        }
    }
}

/// A wall clock the test moves with the simulated host.
final class SimClock: Sendable {
    private let seconds = Mutex(0.0)
    func set(_ s: Double) { seconds.withLock { $0 = s } }
    var date: Date { Date(timeIntervalSince1970: 1_800_000_000 + seconds.withLock { $0 }) }
}
