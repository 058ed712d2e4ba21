import BundledScenarios
import Foundation
import GRDB
import Logging
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

/// Keeps every log line the loop writes, so a test can read the daemon's own log.
final class LogCapture: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var _lines = [String]()
    var metadata = Logger.Metadata()
    var logLevel = Logger.Level.info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { metadata[key] } set { metadata[key] = newValue } }
    var lines: [String] { lock.withLock { _lines } }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let meta = (metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lock.withLock { _lines.append("\(level) \(message) \(meta)") }
    }
}

@Suite("VMs that come and go, on the simulated host")
struct LifecycleTests {
    struct Run {
        let loop: ControlLoop
        let host: SimulatedHost
        let store: DecisionStore
        let log: LogCapture
    }

    func setup(_ scenario: Scenario, tweak: (inout ArbiterConfig) -> Void = { _ in }) throws -> Run {
        let host = SimulatedHost(scenario: scenario)
        let store = try DecisionStore()
        var config = ArbiterConfig()
        config.policy = scenario.policy
        config.daemon.minRoundIntervalSeconds = 0.5
        config.daemon.tickSeconds = 2
        tweak(&config)
        let log = LogCapture()
        let logger = Logger(label: "test") { _ in log }
        let loop = ControlLoop(backend: host, store: store, config: config, logger: logger,
                               now: { TimePoint(seconds: await host.seconds) },
                               settings: { await host.adminSettings() })
        return Run(loop: loop, host: host, store: store, log: log)
    }

    /// As the daemon drives the simulated host: time in 0.5 s steps, events to the loop, starts, rounds.
    func drive(_ r: Run, seconds: Double, trace: Bool = false) async {
        var t = 0.0
        while t < seconds {
            for e in await r.host.advance(by: 0.5) { await r.loop.note(e) }
            await r.host.driveStarts(r.loop)
            t += 0.5
            if let trigger = await r.loop.due(at: TimePoint(seconds: await r.host.seconds)) {
                let d = await r.loop.round(trigger: trigger)
                if trace, let d, Int(t * 2) % 40 == 0 {
                    print("t=\(t) free=\(d.free) reserve=\(d.reserve) phase=\(d.phase) budget=\(d.budget)")
                    for o in d.outcomes { print("   dom\(o.domid) act=\(o.actual) tgt=\(o.target) fl=\(o.floor)/\(o.floorKind) dem=\(o.demand) alloc=\(o.allocation) \(o.basis) \(o.reason) stall=\(o.stall ?? -1) w=\(o.weight)") }
                }
            }
        }
    }

    func scenario(_ name: String) throws -> Scenario { try ScenarioFile.parse(BundledScenarios.named(name)!) }

    /// A lost round, a failed push (one to a domain still being built fails like libxl's errno 2): read
    /// from the loop's own log.
    func expectNothingLost(_ r: Run) async throws {
        #expect(await r.loop.unrecordedRounds == 0)
        let bad = r.log.lines.filter { $0.contains("decision not recorded") || $0.contains("target not set") }
        #expect(bad.isEmpty, "\(bad.prefix(3))")
        let failed = try await r.store.db.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM allocations WHERE pushed = 0") }
        #expect(failed == 0)
    }

    @Test func startsRestartsAndDestroysOnALentOutHost() async throws {
        let r = try setup(try scenario("lifecycle"))
        await drive(r, seconds: 1800)
        let outcomes = await r.host.lifecycle
        func outcome(_ a: LifecycleEvent.Action, _ g: String) -> SimulatedHost.LifecycleOutcome? {
            outcomes.first { $0.action == a && $0.guest == g }
        }
        // Without asking, a VM start fails once memory is lent out; through the arbiter it succeeds.
        let rogue = try #require(outcome(.create, "rogue"))
        #expect(!rogue.ok && rogue.detail.contains("Out of memory"))
        let app = try #require(outcome(.start, "app"))
        #expect(app.ok, "\(app.detail)")
        #expect(app.seconds < 60)
        #expect(r.log.lines.contains { $0.contains("reservation ready") && $0.contains("for=app") })
        #expect(outcome(.restart, "web")?.ok == true)
        #expect(outcome(.destroy, "idle-1")?.ok == true)
        // Each domain under construction was seen, and left alone until built.
        for name in ["app", "web"] {
            #expect(r.log.lines.contains { $0.contains("domain under construction") && $0.contains("domain=\(name)") })
        }
        try await expectNothingLost(r)

        // Lifetimes: the old web and idle-1 are released; `list` shows one row per live domain.
        let lifetimes = try await r.store.db.read { db in
            try Row.fetchAll(db, sql: "SELECT name, released FROM domains ORDER BY id").map { ($0["name"] as String, ($0["released"] as Double?) != nil) }
        }
        #expect(lifetimes.filter { $0.0 == "web" }.map(\.1) == [true, false])
        #expect(lifetimes.filter { $0.0 == "idle-1" }.map(\.1) == [true])
        let live = try r.store.latest().map(\.name)
        #expect(live.sorted() == ["app", "heavy", "idle-2", "light", "web"])
        let all = try r.store.latest(all: true)
        #expect(all.count == live.count + 2)
        #expect(all.filter { $0.released != nil }.map(\.name).sorted() == ["idle-1", "web"])

        // Weights decide contention: heavy (2) and light (1) split what is above their static floors 2:1.
        let d = try #require(await r.loop.lastDecision)
        let heavy = try #require(d.outcomes.first { $0.domid == DomID(1) })
        let light = try #require(d.outcomes.first { $0.domid == DomID(2) })
        #expect(d.phase == .contended)
        let ratio = (heavy.actual - heavy.staticFloor).asDouble / (light.actual - light.staticFloor).asDouble
        #expect(ratio > 1.8 && ratio < 2.2, "heavy \(heavy.actual), light \(light.actual), ratio \(ratio)")
    }

    @Test func aRestartGetsItsMemoryBackOnlyWithTheGrace() async throws {
        // web restarts while heavy and light want everything: the grace keeps its memory for it.
        for grace in [60.0, 0] {
            var s = try scenario("lifecycle")
            s.events = [LifecycleEvent(at: 600, action: .restart, guest: "web")]
            s.policy.share.releaseGraceSeconds = grace
            let r = try setup(s)
            await drive(r, seconds: 700)
            let o = try #require(await r.host.lifecycle.first)
            #expect(o.ok == (grace > 0), "grace \(grace): \(o.detail)")
            try await expectNothingLost(r)
        }
    }
}
