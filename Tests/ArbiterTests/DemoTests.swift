import Testing
@testable import Arbiter
import GuestModel

@Suite("The example host demo (the main job until the daemon lands)")
struct DemoTests {
    @Test func everyGuestKindBehavesAsDocumented() {
        let run = DemoRun.run(config: PolicyConfig(), rounds: 150)
        #expect(run.violations.isEmpty, "\(run.violations.prefix(3))")
        func g(_ name: String) -> DemoRun.GuestSummary { run.guests.first { $0.name == name }! }
        // Idle: shrunk far below its 4 GiB boot, never below its floor.
        #expect(g("web-idle").finalTarget < KiB(gib: 1))
        #expect(g("web-idle").minTarget >= g("web-idle").minFloorSeen)
        // Hungry: grew from 2 GiB using memory taken from the idle guest.
        #expect(g("db-hungry").finalTarget > KiB(mib: 3584))
        // Silent: held exactly.
        #expect(g("silent").minTarget == KiB(gib: 2) && g("silent").maxTarget == KiB(gib: 2) && g("silent").targetChanges == 0)
        // Hostile: every report rejected, target never moved.
        #expect(g("hostile").rejectedReports == 150 && g("hostile").targetChanges == 0)
        // Legacy agent: its rewrites keep it fresh, so it is managed (shrunk towards its 900 MiB use).
        #expect(g("legacy-agent").finalTarget < KiB(gib: 2))
        let o = run.finalDecision.outcomes
        #expect(o.first { $0.domid == DomID(4) }!.status == .fresh)
        #expect(o.first { $0.domid == DomID(5) }!.reason == .heldNoReport)
        #expect(o.first { $0.domid == DomID(6) }!.reason == .heldRejected)
    }

    @Test func tableHasOneRowPerDomainAndAReasonEach() {
        let run = DemoRun.run(config: PolicyConfig(), rounds: 5)
        let text = DecisionTable.render(run.finalDecision, names: run.names)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 7)
        #expect(lines[0].hasPrefix("Name"))
        for (line, o) in zip(lines.dropFirst(), run.finalDecision.outcomes) {
            #expect(line.hasSuffix(o.reason.rawValue))
        }
    }

    @Test func sameInputsSameOutput() {
        #expect(DemoRun.run(config: PolicyConfig(), rounds: 40).render() == DemoRun.run(config: PolicyConfig(), rounds: 40).render())
    }
}
