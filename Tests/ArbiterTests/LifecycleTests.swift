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

    /// Two 4G guests on a 4G host: small enough to reason about every floor.
    static let small = """
        name = "small"
        [host]
        memory = "4G"
        [[guest]]
        name = "a"
        static_max = "4G"
        boot = "1G"
        workload = { kind = "steady", size = "600M" }
        [[guest]]
        name = "b"
        static_max = "4G"
        boot = "1G"
        workload = { kind = "steady", size = "600M" }
        """

    func ask(_ r: Run, _ request: ControlRequest) async throws -> ControlReply {
        let line = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        return try JSONDecoder().decode(ControlReply.self, from: Data(await r.loop.handle(line).utf8))
    }

    @Test func settingsAreValidatedBeforeTheyAreStored() async throws {
        let r = try setup(try ScenarioFile.parse(Self.small))
        await drive(r, seconds: 20)
        func set(_ f: (inout ControlRequest) -> Void) async throws -> ControlReply {
            var q = ControlRequest(cmd: "set", domain: "a", who: "test")
            f(&q)
            return try await ask(r, q)
        }
        let refused: [(String, (inout ControlRequest) -> Void)] = [
            ("below floors.absolute_min", { $0.floorKiB = 1 }),
            ("below floors.absolute_min", { $0.ceilingKiB = 4 }),
            ("between 0.01 and 100", { $0.weight = 5e-324 }),
            ("between 0.01 and 100", { $0.weight = 101 }),
            ("printable", { $0.who = "evil\u{1B}[2J" }),
            ("above a's static-max", { $0.floorKiB = KiB(gib: 5).value }),
            ("above ceiling", { $0.floorKiB = KiB(gib: 2).value; $0.ceilingKiB = KiB(gib: 1).value }),
        ]
        for (why, f) in refused {
            let reply = try await set(f)
            #expect(!reply.ok && (reply.error ?? "").contains(why), "\(why): \(reply)")
        }
        let fine = try await set { $0.domain = "b"; $0.floorKiB = KiB(mib: 512).value; $0.weight = 2 }
        #expect(fine.ok, "\(fine)")
        #expect(try r.store.settings()["b"] == AdminSetting(min: KiB(mib: 512), weight: 2))
        // 3.9G of floor on a 4G host beside b's static floor: refused with the shortfall, stored with --force.
        let impossible = try await set { $0.floorKiB = KiB(mib: 3900).value }
        #expect(!impossible.ok && (impossible.error ?? "").contains("cannot be met") && (impossible.error ?? "").contains("short by"))
        #expect(try r.store.settings()["a"] == nil)
        let forced = try await set { $0.floorKiB = KiB(mib: 3900).value; $0.force = true }
        #expect(forced.ok && (forced.message ?? "").contains("alert recorded"))
        #expect(try r.store.settings()["a"]?.min == KiB(mib: 3900))
        #expect(try r.store.alerts().contains { $0.message.contains("forced") })
    }

    @Test func aReservationBeyondTheFloorsIsRefusedAtOnceAndOneWithinIsServed() async throws {
        let r = try setup(try ScenarioFile.parse(Self.small))
        await drive(r, seconds: 20)
        let tooMuch = try await ask(r, ControlRequest(cmd: "reserve", domain: "c", sizeKiB: KiB(gib: 4).value))
        #expect(!tooMuch.ok && (tooMuch.error ?? "").contains("floors leave only"), "\(tooMuch)")
        for bad in [ControlRequest(cmd: "reserve", sizeKiB: 0), ControlRequest(cmd: "reserve", sizeKiB: 1024, timeoutSeconds: 1e9),
                    ControlRequest(cmd: "reserve", domain: "x\ny", sizeKiB: 1024)] {
            #expect(try await ask(r, bad).ok == false)
        }
        // 2.75G: more than is free, less than the floors leave (3.5G) and than the guests' kernels can give
        // without swap (their anon and what the kernel keeps): freed from the guests, then ready.
        let made = try await ask(r, ControlRequest(cmd: "reserve", domain: "c", sizeKiB: KiB(mib: 2816).value, timeoutSeconds: 60))
        let id = try #require(made.reservations?.first?.id)
        #expect(made.ok)
        let before = try #require(await r.loop.lastDecision).free
        #expect(before < KiB(mib: 2816 + 64))
        await drive(r, seconds: 30)
        let status = try await ask(r, ControlRequest(cmd: "reservation", id: id))
        #expect(status.reservations?.first?.status == "ready", "\(status)")
        let d = try #require(await r.loop.lastDecision)
        #expect(d.free >= KiB(mib: 2816 + 64))
        #expect(d.outcomes.allSatisfy { $0.target >= $0.floor })
        // Cancelled: the memory goes back to the guests' budget.
        let cancelled = try await ask(r, ControlRequest(cmd: "unreserve", id: id))
        #expect(cancelled.ok && cancelled.reservations?.first?.status == "cancelled")
        await drive(r, seconds: 4)
        #expect(try #require(await r.loop.lastDecision).held == .zero)
        try await expectNothingLost(r)
    }

    @Test func aStartForTheSameNameReplacesTheRestartHold() async throws {
        var s = try ScenarioFile.parse(Self.small)
        s.events = [LifecycleEvent(at: 20, action: .destroy, guest: "b")]
        let r = try setup(s)
        await drive(r, seconds: 24)
        let hold = try #require(await r.loop.lastDecision).held
        #expect(hold > KiB(mib: 600), "b's memory is held for its restart")
        // `xl restore b` after `xl save b`: the admin reserves for b; the hold is replaced, not added to.
        let made = try await ask(r, ControlRequest(cmd: "reserve", domain: "b", sizeKiB: hold.value + KiB(mib: 8).value))
        #expect(made.ok)
        await drive(r, seconds: 2)
        let d = try #require(await r.loop.lastDecision)
        #expect(d.held == hold + KiB(mib: 8), "held \(d.held), hold was \(hold)")
        #expect(r.log.lines.contains { $0.contains("reservation replaced") && $0.contains("for=b") })
    }
}

