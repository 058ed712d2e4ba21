import BundledScenarios
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

@Suite("The demo: the daemon's loop on the simulated host")
struct DemoTests {
    @Test func everyGuestKindBehavesAsDocumented() async throws {
        var s = try ScenarioFile.parse(BundledScenarios.named("default")!)
        s.hours = 0.5
        let run = await DemoRun.run(s)
        #expect(run.violations.isEmpty, "\(run.violations.prefix(3))")
        #expect(run.metrics.floorViolations == 0)
        func outcome(_ name: String) -> DomainOutcome {
            let id = run.names.first { $0.value == name }!.key
            return run.finalDecision.outcomes.first { $0.domid == id }!
        }
        func guest(_ name: String) -> GuestMetrics { run.metrics.guests.first { $0.name == name }! }
        // Silent: held exactly at its boot size.
        #expect(outcome("silent").reason == .heldNoReport && guest("silent").minTarget == KiB(gib: 2) && guest("silent").maxTarget == KiB(gib: 2))
        // Hostile: its reports are rejected and it never grows.
        #expect(run.metrics.rejectedReports > 0 && guest("hostile").maxTarget == KiB(gib: 1))
        // Uncooperative balloon: fenced at what it really has.
        #expect(outcome("stubborn").reason == .fencedUncooperative)
        // Web servers (1.2G used, booted at 2.5G) were shrunk, never below their floors.
        #expect(guest("web-1").minTarget < KiB(mib: 2000))
        // The database's ramp is followed: it grew from 3G.
        #expect(guest("db").maxTarget > KiB(gib: 4))
    }

    @Test func tableHasOneRowPerDomainAndAReasonEach() async throws {
        var s = try ScenarioFile.parse(BundledScenarios.named("hostile")!)
        s.hours = 0.02
        let run = await DemoRun.run(s)
        let lines = DecisionTable.render(run.finalDecision, names: run.names).split(separator: "\n")
        #expect(lines.count == s.guests.count + 1)
        #expect(lines[0].hasPrefix("Name"))
        for (line, o) in zip(lines.dropFirst(), run.finalDecision.outcomes) { #expect(line.hasSuffix(o.reason.rawValue)) }
    }
}
