import BundledScenarios
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

/// The simulator scores the daemon's own loop, for every policy, not a parallel path.
@Suite("Loop evaluation")
struct LoopEvaluationTests {
    func scenario(_ name: String, hours: Double) throws -> Scenario {
        var s = try ScenarioFile.parse(BundledScenarios.named(name)!)
        s.hours = hours
        return s
    }

    /// What the loop does is what is scored: the daemon's own dry-run setting pushes nothing, and the
    /// run then scores exactly as the host left alone does.
    @Test func theDaemonsOwnSettingsChangeTheScore() async throws {
        let s = try scenario("default", hours: 0.25)
        var dry = DaemonSettings()
        dry.dryRun = true
        let idle = await LoopEvaluation.run(s, daemon: dry)
        // Static in a dry run pushes nothing either: the host left alone, decided by another policy.
        var alone = DaemonSettings()
        alone.dryRun = true
        let untouched = await LoopEvaluation.run(s, policy: .static, daemon: alone)
        #expect(idle.metrics.targetChanges == 0)
        #expect(idle.metrics.stallSeconds == untouched.metrics.stallSeconds)
        #expect(idle.rounds > 0)

        let live = await LoopEvaluation.run(s)
        #expect(live.metrics.targetChanges > 0)
        #expect(live.violations.isEmpty, "\(live.violations.prefix(3))")
        #expect(live.metrics.floorViolations == 0)
        #expect(live.metrics.stallSeconds < untouched.metrics.stallSeconds)
        // The daemon's cadence: reports coalesced to 1 s rounds, more than one round per 2 s report interval.
        #expect(live.rounds > Int(s.hours * 3600 / 2))
        // Hostile reports were read and refused by the loop.
        let hostile = await LoopEvaluation.run(try scenario("hostile", hours: 0.1))
        #expect(hostile.metrics.rejectedReports > 0)
    }

    /// Same scenario, same seed, same policy: the same figures, for every policy.
    @Test(arguments: PolicyName.allCases)
    func sameSeedSameNumbers(policy: PolicyName) async throws {
        let s = try scenario("hostile", hours: 0.05)
        let a = await LoopEvaluation.run(s, policy: policy), b = await LoopEvaluation.run(s, policy: policy)
        #expect(a.metrics == b.metrics)
        #expect(a.metrics.policy == policy.rawValue)
    }

    /// Every peer runs through the daemon's loop: each one moves targets on the default scenario, none
    /// is refused by the host (targets above static-max), and each is scored under its own name.
    @Test func everyPolicyRunsThroughTheLoop() async throws {
        let s = try scenario("default", hours: 0.2)
        for m in await LoopEvaluation.compare(s) {
            #expect(m.refusedTargets == 0, "\(m.policy)")
            #expect(m.targetChanges > 0 || m.policy == "selfballoon", "\(m.policy)")
        }
    }

    /// The clairvoyant reference gives each guest its coming working set (+5 %) when the host has room.
    @Test func clairvoyantGivesEachItsComingWorkingSet() {
        let feed = TruthFeed()
        feed.set([DomID(1): GuestTruth(workingSet: KiB(gib: 1), peakAhead: KiB(gib: 2)),
                  DomID(2): GuestTruth(workingSet: KiB(mib: 500), peakAhead: KiB(mib: 500))])
        let p = ClairvoyantPolicy(reserve: .zero, feed: feed)
        let d = p.step(HostSnapshot(free: KiB(gib: 4), domains: [
            DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2)),
            DomainFacts(domid: DomID(2), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2)),
        ]), now: TimePoint(seconds: 0))
        #expect(d.outcomes.map(\.target) == [KiB.pageCeil(KiB(gib: 2).asDouble * 1.05), KiB.pageCeil(KiB(mib: 500).asDouble * 1.05)])
    }
}
