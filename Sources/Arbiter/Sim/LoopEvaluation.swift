import GuestModel
import HostSimulator
import Logging
import Peers

/// The policies the simulator scores, in table order: the daemon's own and each peer's rule, all run
/// by the daemon's control loop; selfballoon runs in the guests' kernels (dom0 pushes nothing); the
/// clairvoyant reference reads the simulated guests' future.
public enum PolicyName: String, Sendable, CaseIterable {
    case arbiter, `static`, squeezed
    /// squeezed with dynamic-min at ½ of static-max instead of the ¼ XenServer allows at least.
    case squeezedHalf = "squeezed-dmin50"
    case selfballoon, mom, qmemman, clairvoyant

    /// The daemon's policy of that name (nil: not one the daemon can run on a real host).
    public var kind: PolicyKind? { PolicyKind(rawValue: rawValue) }
}

/// Scores a policy as the daemon runs it: the simulated host behind the backend protocol,
/// `ControlLoop` deciding on the daemon's own cadence (a round when reports arrive, as limited by
/// `daemon.min_round_interval_seconds` and `daemon.guest_round_interval_seconds`, looked for once per
/// simulation step, and a full pass every `daemon.tick_seconds`), reading reports as
/// it reads them from xenstore and pushing targets as it pushes them through libxl. What is scored is
/// what ships, for the arbiter and for every peer. Lifecycle events are left out: the comparison is
/// of steady hosts.
public enum LoopEvaluation {
    public struct Result: Sendable {
        public var metrics: PolicyMetrics
        /// The loop's last decision.
        public var lastDecision: Decision?
        public var rounds: Int
        /// The arbiter's invariant violations in any round (must stay empty; peers keep their own rules).
        public var violations: [Violation]
    }

    public static func run(_ scenario: Scenario, policy name: PolicyName = .arbiter, daemon: DaemonSettings = DaemonSettings(),
                           progress: ((Double) -> Void)? = nil) async -> Result {
        var s = scenario
        s.events = []
        if name == .qmemman {
            // Qubes guests run meminfo-writer, which looks every 0.1 s and writes a 30 MB move at once
            // (qubes-meminfo-writer.service: 30000 100000): their reports reach dom0 as fast as the
            // simulation can show a change, once per physics step, not on our reporter's 2 s period.
            for i in s.guests.indices { s.guests[i].reportInterval = Swift.min(s.guests[i].reportInterval, s.stepSeconds) }
        }
        let dt = s.stepSeconds
        let steps = Swift.max(1, Int((s.hours * 3600 / dt).rounded()))
        let host = SimulatedHost(scenario: s, measuring: Double(steps) * dt, selfballooning: name == .selfballoon)
        var config = ArbiterConfig()
        config.policy = s.policy
        config.daemon = daemon
        config.daemon.backend = .sim
        config.daemon.shadow = []
        var logger = Logger(label: "evaluation")
        logger.logLevel = .critical
        let feed = TruthFeed()
        let policy: any RoundPolicy
        switch name {
        case .selfballoon: policy = HandsOff()
        case .clairvoyant: policy = ClairvoyantPolicy(reserve: s.policy.share.hostReserve, feed: feed)
        case .squeezedHalf: policy = SqueezedPeer(dynamicMinFraction: 0.5)
        default: policy = name.kind!.make(s.policy)
        }
        let loop = ControlLoop(backend: host, store: nil, config: config, logger: logger, policy: policy,
                               now: { TimePoint(seconds: await host.seconds) }, settings: { await host.adminSettings() })
        let admin = await host.adminSettings()
        let progressEvery = Swift.max(1, steps / 100)
        for k in 0..<steps {
            await host.advance(by: dt)
            await loop.note(await host.takeEvents())
            let t = TimePoint(seconds: await host.seconds)
            guard let trigger = await loop.due(at: t) else { continue }
            if name == .clairvoyant { feed.set(await host.truth()) }
            guard let d = await loop.round(trigger: trigger) else { continue }
            for o in d.outcomes where o.changed {
                let floor = Swift.max(admin[o.domid]?.min ?? .zero, o.floor)
                if o.target < floor && o.target < o.previousTarget { await host.floorViolated() }
            }
            if let progress, k % progressEvery == 0 { progress(Double(k) / Double(steps)) }
        }
        progress?(1)
        let metrics = await host.metrics(policy: name.rawValue, rejectedReports: await loop.rejectedReports)!
        return Result(metrics: metrics, lastDecision: await loop.lastDecision, rounds: await loop.rounds, violations: await loop.violations)
    }

    /// Every named policy on the same scenario and seed, each through the daemon's loop. The runs share
    /// nothing, so they run side by side (as many at once as the machine has cores); the results come back
    /// in the order of `policies`. `progress` gets each policy's name and its fraction done.
    public static func compare(_ scenario: Scenario, policies: [PolicyName] = PolicyName.allCases,
                               daemon: DaemonSettings = DaemonSettings(),
                               progress: (@Sendable (String, Double) -> Void)? = nil) async -> [PolicyMetrics] {
        await withTaskGroup(of: (Int, PolicyMetrics).self) { group in
            for (i, name) in policies.enumerated() {
                group.addTask { (i, await run(scenario, policy: name, daemon: daemon) { progress?(name.rawValue, $0) }.metrics) }
            }
            var results = [PolicyMetrics?](repeating: nil, count: policies.count)
            for await (i, metrics) in group { results[i] = metrics }
            return results.compactMap { $0 }
        }
    }
}

/// dom0 without a balancer: every target stays where it is (selfballoon's runs: the guests decide).
struct HandsOff: RoundPolicy {
    let name = "none"
    func ingest(_ domid: DomID, parsed: Result<GuestReport, ReportRejection>, at: TimePoint, staticMax: KiB?, allocation: KiB?) -> IngestOutcome {
        .ignoring(parsed)
    }
    func step(_ snapshot: HostSnapshot, now: TimePoint) -> Decision {
        .peer(snapshot, now: now, choices: snapshot.domains.map {
            PeerChoice(target: nil, floor: .zero, ceiling: $0.staticMax, demand: $0.actual, reported: false)
        }, reserve: .zero, contended: false)
    }
    func forget(_ domid: DomID) {}
    func reconfigure(_ config: PolicyConfig) {}
}
