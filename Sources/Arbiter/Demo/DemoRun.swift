import GuestModel
import HostSimulator

/// `arbiter demo`: our policy on a scenario of the simulated host, shown the way an admin would look
/// at a live host: the last round's decision per domain (with its reason), then what happened over
/// the run.
public struct DemoRun: Sendable {
    public var scenario: Scenario
    public var metrics: PolicyMetrics
    public var finalDecision: Decision
    /// Invariant violations seen in any round (must be empty).
    public var violations: [Violation]

    public var names: [DomID: String] {
        Dictionary(uniqueKeysWithValues: scenario.guests.enumerated().map { (DomID(UInt16($0.offset + 1)), $0.element.name) })
    }

    /// The daemon's control loop over the simulated host (`LoopEvaluation`), as it ships.
    public static func run(_ scenario: Scenario) async -> DemoRun {
        let r = await LoopEvaluation.run(scenario)
        return DemoRun(scenario: scenario, metrics: r.metrics, finalDecision: r.lastDecision!, violations: r.violations)
    }

    public func render() -> String {
        var out = "Simulated host, scenario \(scenario.name): \(scenario.guests.count) guests, \(formatSize(scenario.pool)) for guests, "
            + "\(formatFixed(scenario.hours * 60, decimals: 0)) min of host time, the daemon's loop (a round when reports arrive, looking every "
            + "\(formatFixed(scenario.stepSeconds, decimals: 0)) s of host time, a full pass at least every \(formatFixed(DaemonSettings().tickSeconds, decimals: 0)) s)\n\n"
        out += "Last round:\n" + DecisionTable.render(finalDecision, names: names) + "\n"
        out += DecisionTable.summary(finalDecision) + "\n\nOver the run:\n"
        out += SimulationReport.guests(metrics)
        out += "stall \(formatFixed(metrics.stallSeconds, decimals: 1)) s, reclaimed \(formatFixed(metrics.reclaimedPct, decimals: 1)) % of static-max, "
            + "\(metrics.targetChanges) target changes, \(metrics.rejectedReports) reports rejected, \(metrics.floorViolations) floor violations\n"
        out += "invariant violations: " + (violations.isEmpty ? "none" : violations.prefix(5).map(\.description).joined(separator: "; ")) + "\n"
        return out
    }
}
