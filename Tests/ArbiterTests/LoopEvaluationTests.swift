import BundledScenarios
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

/// The simulator scores the daemon's own loop, not a parallel path.
@Suite("Loop evaluation")
struct LoopEvaluationTests {
    func scenario(_ name: String, hours: Double) throws -> Scenario {
        var s = try ScenarioFile.parse(BundledScenarios.named(name)!)
        s.hours = hours
        return s
    }

    /// A policy that never changes a target: the host left alone.
    struct HandsOff: SimPolicy {
        let name = "hands-off"
        let rejectedReports = 0
        mutating func observe(_ write: XenstoreWrite, staticMax: KiB) {}
        mutating func decide(_ input: PolicyInput) -> PolicyOutput { PolicyOutput(targets: input.snapshot.domains.map(\.target)) }
    }

    /// What the loop does is what is scored: the daemon's own dry-run setting pushes nothing, and the
    /// run then scores exactly as the host left alone does.
    @Test func theDaemonsOwnSettingsChangeTheScore() async throws {
        let s = try scenario("default", hours: 0.25)
        var dry = DaemonSettings()
        dry.dryRun = true
        let idle = await LoopEvaluation.run(s, daemon: dry)
        var p = HandsOff()
        let untouched = Evaluation.run(s, policy: &p)
        #expect(idle.metrics.targetChanges == 0)
        #expect(idle.metrics.stallSeconds == untouched.stallSeconds)
        #expect(idle.rounds > 0)

        let live = await LoopEvaluation.run(s)
        #expect(live.metrics.targetChanges > 0)
        #expect(live.violations.isEmpty, "\(live.violations.prefix(3))")
        #expect(live.metrics.floorViolations == 0)
        #expect(live.metrics.stallSeconds < untouched.stallSeconds)
        // The daemon's cadence, not the comparison's fixed 2 s: reports coalesced to 1 s rounds.
        #expect(live.rounds > Int(s.hours * 3600 / s.roundSeconds))
        // Hostile reports were read and refused by the loop.
        let hostile = await LoopEvaluation.run(try scenario("hostile", hours: 0.1))
        #expect(hostile.metrics.rejectedReports > 0)
    }
}
