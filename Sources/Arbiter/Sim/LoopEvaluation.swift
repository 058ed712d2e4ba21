import GuestModel
import HostSimulator
import Logging

/// Scores the daemon's own control loop on a scenario: the simulated host behind the backend protocol,
/// `ControlLoop` deciding on the daemon's own cadence (a round when reports arrive, coalesced to
/// `daemon.min_round_interval_seconds`, and at least every `daemon.tick_seconds`), reading reports as
/// it reads them from xenstore and pushing targets as it pushes them through libxl. What is scored is
/// what ships. The figures are gathered from the simulated host as `Evaluation.run` gathers them for
/// the peers' policies. Lifecycle events are left out, as the comparison leaves them out.
public enum LoopEvaluation {
    public struct Result: Sendable {
        public var metrics: PolicyMetrics
        /// The loop's last decision.
        public var lastDecision: Decision?
        public var rounds: Int
        /// Invariant violations in any round (must stay empty).
        public var violations: [Violation]
    }

    public static func run(_ scenario: Scenario, daemon: DaemonSettings = DaemonSettings(),
                           progress: ((Double) -> Void)? = nil) async -> Result {
        var s = scenario
        s.events = []
        let dt = s.stepSeconds
        let steps = Swift.max(1, Int((s.hours * 3600 / dt).rounded()))
        let host = SimulatedHost(scenario: s, measuring: Double(steps) * dt)
        var config = ArbiterConfig()
        config.policy = s.policy
        config.daemon = daemon
        config.daemon.backend = .sim
        var logger = Logger(label: "evaluation")
        logger.logLevel = .critical
        let loop = ControlLoop(backend: host, store: nil, config: config, logger: logger,
                               now: { TimePoint(seconds: await host.seconds) }, settings: { await host.adminSettings() })
        let staticMax = Dictionary(uniqueKeysWithValues: await host.domains().map { ($0.domid, $0.staticMax) })
        let admin = await host.adminSettings()
        var violations = [Violation]()
        let progressEvery = Swift.max(1, steps / 100)
        for k in 0..<steps {
            await host.advance(by: dt)
            await loop.note(await host.takeEvents())
            let t = TimePoint(seconds: await host.seconds)
            guard let trigger = await loop.due(at: t), let d = await loop.round(trigger: trigger) else { continue }
            for o in d.outcomes where o.changed {
                let floor = Swift.max(admin[o.domid]?.min ?? .zero, o.floor)
                if o.target < floor && o.target < o.previousTarget { await host.floorViolated() }
            }
            if violations.count < 100 {
                violations += Invariants.violations(of: d, staticMax: d.outcomes.map { staticMax[$0.domid] ?? $0.ceiling })
            }
            if let progress, k % progressEvery == 0 { progress(Double(k) / Double(steps)) }
        }
        progress?(1)
        let metrics = await host.metrics(policy: PolicyName.arbiter.rawValue, rejectedReports: await loop.rejectedReports)!
        return Result(metrics: metrics, lastDecision: await loop.lastDecision, rounds: await loop.rounds, violations: violations)
    }

    /// Every named policy on the same scenario and seed: ours through the daemon's loop, the others on
    /// the comparison's fixed rounds.
    public static func compare(_ scenario: Scenario, policies: [PolicyName] = PolicyName.allCases,
                               daemon: DaemonSettings = DaemonSettings(),
                               progress: ((String, Double) -> Void)? = nil) async -> [PolicyMetrics] {
        var results = [PolicyMetrics]()
        for name in policies {
            if name == .arbiter {
                results.append(await run(scenario, daemon: daemon) { progress?(name.rawValue, $0) }.metrics)
            } else {
                var p = name.make(scenario)
                results.append(Evaluation.run(scenario, policy: &p) { progress?(name.rawValue, $0) })
            }
        }
        return results
    }
}
