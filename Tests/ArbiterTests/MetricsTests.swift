import BundledScenarios
import Foundation
import GRDB
import Logging
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

/// The exposition text as a test reads it: every sample line by series name and labels.
struct Scrape {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }
    var samples = [Sample]()
    var types = [String: String]()

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let p = line.split(separator: " ")
                types[String(p[2])] = String(p[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            let (series, value) = (line[..<line.lastIndex(of: " ")!], line[line.index(after: line.lastIndex(of: " ")!)...])
            var labels = [String: String]()
            var name = String(series)
            if let open = series.firstIndex(of: "{") {
                name = String(series[..<open])
                // Label values here never hold quotes or commas (names are label-safe, the rest closed sets).
                for pair in series[series.index(after: open)..<series.index(before: series.endIndex)].split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    labels[String(kv[0])] = String(kv[1].dropFirst().dropLast())
                }
            }
            samples.append(Sample(name: name, labels: labels, value: Double(value)!))
        }
    }

    func all(_ name: String) -> [Sample] { samples.filter { $0.name == name } }
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }?.value
    }
    func sum(_ name: String) -> Double { all(name).reduce(0) { $0 + $1.value } }
    /// Family names (a histogram's _bucket/_sum/_count under its own name).
    var families: Set<String> { Set(types.keys) }
}

@Suite("Metrics: each round as Prometheus series, on the simulated host", .serialized)
struct MetricsTests {
    struct Run {
        let loop: ControlLoop
        let host: SimulatedHost
        let store: DecisionStore
        let export: MetricsExport
        let dir: URL
    }

    static func scratch(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arbiter-metrics-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The default scenario (13 guests, a hostile one among them), with web-3 destroyed at 20 s.
    func setup(_ name: String, refuse: Set<DomID> = []) throws -> Run {
        var s = try ScenarioFile.parse(BundledScenarios.named("default")!)
        s.events = [LifecycleEvent(at: 20, action: .destroy, guest: "web-3")]
        let host = SimulatedHost(scenario: s)
        let store = try DecisionStore()
        var config = ArbiterConfig()
        config.daemon.minRoundIntervalSeconds = 0.5
        let dir = try Self.scratch(name)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let export = MetricsExport(textfile: dir.appendingPathComponent("arbiter.prom").path, logger: logger)
        let backend: any HostBackend = refuse.isEmpty ? host : FlakyBackend(host, refuse: refuse)
        let loop = ControlLoop(backend: backend, store: store, config: config, logger: logger,
                               now: { TimePoint(seconds: await host.seconds) },
                               settings: { await host.adminSettings() }, metrics: export)
        return Run(loop: loop, host: host, store: store, export: export, dir: dir)
    }

    func drive(_ r: Run, seconds: Double) async {
        var t = 0.0
        while t < seconds {
            for e in await r.host.advance(by: 0.5) { await r.loop.note(e) }
            t += 0.5
            if let trigger = await r.loop.due(at: TimePoint(seconds: await r.host.seconds)) { await r.loop.round(trigger: trigger) }
        }
    }

    func textfile(_ r: Run) throws -> Scrape {
        Scrape(try String(contentsOf: r.dir.appendingPathComponent("arbiter.prom"), encoding: .utf8))
    }

    @Test func perDomainGaugesMatchTheRecordedDecisions() async throws {
        let r = try setup("store")
        defer { try? FileManager.default.removeItem(at: r.dir) }
        await drive(r, seconds: 15)
        let early = try textfile(r)
        await drive(r, seconds: 15)
        // A full snapshot: every domain's row is written from the same decision as the file.
        await r.loop.round(trigger: .shutdown)
        let m = try textfile(r)
        let rows = try r.store.latest()
        #expect(rows.count == 12, "web-3 was destroyed at 20 s: \(rows.map(\.name))")
        #expect(m.all("arbiter_domain_target_bytes").count == rows.count)
        for row in rows {
            let l = ["domid": "\(row.domid)", "domain": row.name]
            #expect(m.value("arbiter_domain_target_bytes", l) == Double(row.target.value * 1024), "\(row.name)")
            #expect(m.value("arbiter_domain_actual_bytes", l) == Double(row.actual.value * 1024), "\(row.name)")
            #expect(m.value("arbiter_domain_floor_bytes", l) == Double(row.floor.value * 1024), "\(row.name)")
            #expect(m.value("arbiter_domain_ceiling_bytes", l) == Double(row.ceiling.value * 1024), "\(row.name)")
            #expect(m.value("arbiter_domain_demand_bytes", l) == Double(row.demand.value * 1024), "\(row.name)")
            #expect(m.value("arbiter_domain_stall_ratio", l) == row.stall, "\(row.name)")
            // One reason series per domain, the recorded one.
            let reasons = m.all("arbiter_domain_reason").filter { $0.labels["domid"] == "\(row.domid)" }
            #expect(reasons.count == 1 && reasons[0].labels["reason"] == row.reason.description && reasons[0].value == 1, "\(row.name): \(reasons.map(\.labels))")
        }
        // The silent guest has no stall series at all (no report), not a zero.
        #expect(m.all("arbiter_domain_stall_ratio").allSatisfy { $0.labels["domain"] != "silent" })
        #expect(m.all("arbiter_domain_stall_ratio").count == rows.filter { $0.stall != nil }.count)
        // Rounds: the counter grew and matches the store's rounds; the phase is one of three, set once.
        // (Rounds that changed nothing are counted by the next recorded one: `quiet_before`.)
        let rounds = try await r.store.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) + SUM(quiet_before) FROM rounds")! }
        #expect(m.sum("arbiter_rounds_total") == Double(rounds))
        #expect(early.sum("arbiter_rounds_total") > 0 && early.sum("arbiter_rounds_total") < m.sum("arbiter_rounds_total"))
        #expect(m.value("arbiter_rounds_total", ["trigger": "startup"]) == 1 && m.value("arbiter_rounds_total", ["trigger": "shutdown"]) == 1)
        #expect(m.all("arbiter_round_phase").count == 3 && m.sum("arbiter_round_phase") == 1)
        let phase = try await r.store.db.read { try String.fetchOne($0, sql: "SELECT phase FROM rounds ORDER BY id DESC LIMIT 1") }
        #expect(m.value("arbiter_round_phase", ["phase": phase ?? "?"]) == 1)
        #expect(m.value("arbiter_round_duration_seconds_count") == Double(rounds))
        #expect(m.value("arbiter_round_duration_seconds_bucket", ["le": "+Inf"]) == Double(rounds))
        #expect(m.value("arbiter_domains") == 12 && m.value("arbiter_rounds_lost_total") == 0 && m.value("arbiter_push_errors_total") == 0)
        let d = try #require(await r.loop.lastDecision)
        #expect(m.value("arbiter_host_free_bytes") == Double(d.free.value * 1024))
        let pushed = try await r.store.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM allocations WHERE pushed = 1") } ?? 0
        #expect(m.value("arbiter_target_changes_total") == Double(pushed) && pushed > 0)
    }

    @Test func hostileReportsCountByCodeAndDeadDomainsLeave() async throws {
        let r = try setup("hostile")
        defer { try? FileManager.default.removeItem(at: r.dir) }
        await drive(r, seconds: 18)
        let before = try textfile(r)
        #expect(before.value("arbiter_domain_target_bytes", ["domain": "web-3"]) != nil)
        await drive(r, seconds: 8)
        await r.loop.round(trigger: .tick)   // report rounds publish at most once a second: a tick publishes now
        let m = try textfile(r)
        // The hostile guest's reports: counted by their stable code, as many as the store recorded.
        let byCode = try await r.store.db.read { db in
            try Row.fetchAll(db, sql: "SELECT code, COUNT(*) AS n FROM rejections GROUP BY code").map { ($0["code"] as String, $0["n"] as Int) }
        }
        #expect(!byCode.isEmpty)
        for (code, n) in byCode { #expect(m.value("arbiter_report_rejections_total", ["code": code]) == Double(n), "\(code)") }
        #expect(m.all("arbiter_report_rejections_total").count == byCode.count)
        let hostile = try #require(m.value("arbiter_domain_report_rejections_total", ["domain": "hostile"]))
        #expect(hostile > 0 && hostile <= m.sum("arbiter_report_rejections_total"))
        #expect(m.all("arbiter_domain_report_rejections_total").allSatisfy { $0.labels["domain"] == "hostile" })
        // web-3 was destroyed at 20 s: none of its series is left, every other domain still has all of its.
        #expect(!m.samples.contains { $0.labels["domain"] == "web-3" }, "\(m.samples.filter { $0.labels["domain"] == "web-3" }.map(\.name))")
        #expect(m.all("arbiter_domain_target_bytes").count == 12 && m.all("arbiter_domain_reason").count == 12)
        // Rejections did not make the loop count a lost round or a failed push.
        #expect(m.value("arbiter_rounds_lost_total") == 0)
    }

    @Test func failedPushesAreCounted() async throws {
        let r = try setup("push", refuse: [DomID(1)])
        defer { try? FileManager.default.removeItem(at: r.dir) }
        await drive(r, seconds: 30)
        await r.loop.round(trigger: .tick)
        let m = try textfile(r)
        let failed = try await r.store.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM allocations WHERE push_error IS NOT NULL") } ?? 0
        #expect(failed > 0)
        #expect(m.value("arbiter_push_errors_total") == Double(failed))
    }

    /// Rounds the store could not take (a full disk, here a trigger that refuses every round row)
    /// are counted as lost, as the loop counts them; the rounds themselves still run and are exported.
    @Test func roundsTheStoreCouldNotTakeAreCountedLost() async throws {
        let dir = try Self.scratch("lost")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("d.sqlite").path
        let store = try DecisionStore(path: path)
        let host = SimulatedHost(scenario: try ScenarioFile.parse(BundledScenarios.named("default")!))
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let export = MetricsExport(textfile: dir.appendingPathComponent("arbiter.prom").path, logger: logger)
        let loop = ControlLoop(backend: host, store: store, config: ArbiterConfig(), logger: logger,
                               now: { TimePoint(seconds: await host.seconds) }, settings: { await host.adminSettings() }, metrics: export)
        await loop.round(trigger: .startup)
        let saboteur = try DatabaseQueue(path: path)
        try await saboteur.write { try $0.execute(sql: "CREATE TRIGGER full BEFORE INSERT ON rounds BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END") }
        for _ in 0..<3 {
            for e in await host.advance(by: 2) { await loop.note(e) }
            await loop.round(trigger: .tick)
        }
        try await saboteur.write { try $0.execute(sql: "DROP TRIGGER full") }
        for e in await host.advance(by: 2) { await loop.note(e) }
        await loop.round(trigger: .tick)
        try saboteur.close()
        let m = Scrape(try String(contentsOf: dir.appendingPathComponent("arbiter.prom"), encoding: .utf8))
        #expect(await loop.unrecordedRounds == 3)
        #expect(m.value("arbiter_rounds_lost_total") == 3)
        let recorded = try store.counts()["rounds"]
        #expect(m.sum("arbiter_rounds_total") == 5 && recorded == 2)
    }

    /// Rounds that reports start come up to ten a second: they rewrite the textfile at most once a second
    /// (dom0's disk), while every other round (startup, tick, admin, shutdown) writes it at once.
    @Test func reportRoundsRewriteTheTextfileAtMostOnceASecond() async throws {
        let r = try setup("burst")
        defer { try? FileManager.default.removeItem(at: r.dir) }
        await r.loop.round(trigger: .startup)
        #expect(r.export.written == 1)
        let began = ContinuousClock.now
        for _ in 0..<20 {   // twenty report rounds, in well under a second of wall time on any machine
            for e in await r.host.advance(by: 0.5) { await r.loop.note(e) }
            await r.loop.round(trigger: .report)
        }
        let took = (ContinuousClock.now - began) / .seconds(1)
        #expect(await r.loop.rounds == 21)
        #expect(r.export.written - 1 <= Int(took), "20 report rounds in \(took) s wrote \(r.export.written - 1) times")
        if took < 1 { #expect(Scrape(r.export.text).sum("arbiter_rounds_total") == 1) }
        await r.loop.round(trigger: .tick)
        let afterTick = r.export.written
        #expect(try textfile(r).sum("arbiter_rounds_total") == 22)
        try await Task.sleep(for: .milliseconds(1100))
        await r.loop.round(trigger: .report)
        #expect(r.export.written == afterTick + 1)
        #expect(try textfile(r).sum("arbiter_rounds_total") == 23)
    }

    /// The textfile's folder missing (no node_exporter installed): the rounds go on, one warning is
    /// logged, and writing starts once the folder is there.
    @Test func aMissingTextfileFolderIsLoggedOnceAndSurvived() async throws {
        let dir = try Self.scratch("missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = dir.appendingPathComponent("node-exporter")
        let log = LogCapture()
        let export = MetricsExport(textfile: folder.appendingPathComponent("arbiter.prom").path, logger: Logger(label: "t") { _ in log })
        let host = SimulatedHost(scenario: try ScenarioFile.parse(BundledScenarios.named("default")!))
        let loop = ControlLoop(backend: host, store: nil, config: ArbiterConfig(), logger: Logger(label: "t") { _ in log },
                               now: { TimePoint(seconds: await host.seconds) }, metrics: export)
        for _ in 0..<4 {
            for e in await host.advance(by: 10) { await loop.note(e) }
            await loop.round(trigger: .tick)
        }
        #expect(await loop.rounds == 4 && export.written == 0)
        #expect(log.lines.filter { $0.contains("metrics textfile not written") }.count == 1, "\(log.lines)")
        #expect(!export.text.isEmpty)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        for e in await host.advance(by: 10) { await loop.note(e) }
        await loop.round(trigger: .tick)
        #expect(export.written == 1 && log.lines.contains { $0.contains("metrics textfile written again") })
        let text = try String(contentsOf: folder.appendingPathComponent("arbiter.prom"), encoding: .utf8)
        #expect(Scrape(text).sum("arbiter_rounds_total") == 5)
        // Nothing half-written is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["arbiter.prom"])
    }

    @Test func labelValuesAreSafeAndBounded() {
        #expect(RoundMetrics.labelName("web-1") == "web-1")
        #expect(RoundMetrics.labelName("a\"b\\c\nd\u{7F}é") == "a_b_c_d___")
        #expect(RoundMetrics.labelName(String(repeating: "x", count: 300)).utf8.count == 64)
        #expect(RoundMetrics.labelName("") == "_")
        // Every reason and phase is a fixed string: the label sets are closed.
        #expect(Set(Reason.allCases.map(\.rawValue)).count == Reason.allCases.count)
    }

    @Test func endpointServesTheLastRoundBounded() async throws {
        let r = try setup("http")
        defer { try? FileManager.default.removeItem(at: r.dir) }
        await drive(r, seconds: 5)
        let endpoint = try MetricsEndpoint(port: 0)
        let export = r.export
        var limits = MetricsEndpoint.Limits()
        limits.maxClients = 4
        limits.idleSeconds = 2
        let server = Task { await endpoint.serve(limits: limits) { export.text } }
        defer { server.cancel() }
        let port = endpoint.port
        let got = try await offPool { try MetricsEndpoint.get(port: port) }
        #expect(got.status == 200 && got.body == export.text && got.body.contains("arbiter_rounds_total"))
        let wrongPath = try await offPool { try MetricsEndpoint.get(port: port, path: "/") }
        #expect(wrongPath.status == 404)
        // Idle connections past the cap are evicted, oldest first: a scrape still gets its answer.
        var idle = [Int32]()
        for _ in 0..<10 {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            idle.append(s)
        }
        // An over-long request head is refused, not buffered.
        let big = idle[9]
        let junk = [UInt8](repeating: 0x41, count: 20_000)
        _ = junk.withUnsafeBytes { send(big, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        try await Task.sleep(for: .milliseconds(300))
        let again = try await offPool { try MetricsEndpoint.get(port: port) }
        #expect(again.status == 200)
        var reply = [UInt8](repeating: 0, count: 200)
        let n = reply.withUnsafeMutableBytes { recv(big, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        // Answered 431 and closed (the kernel may turn the close into a reset: the head was not all read).
        let refusedHead = n > 0 ? String(decoding: reply[0..<n], as: UTF8.self).hasPrefix("HTTP/1.1 431") : (n == 0 || errno == ECONNRESET)
        #expect(refusedHead, "recv \(n) errno \(errno)")
        for s in idle { close(s) }
        let stats = endpoint.stats
        #expect(stats.evicted >= 6 && stats.answered >= 3 && stats.refused >= 2, "\(stats)")
    }

    @Test func configKeysAreValidated() throws {
        let c = try ConfigFile.load("[metrics]\ntextfile = \"/tmp/x/arbiter.prom\"\nhttp_port = 9477\n")
        #expect(c.daemon.metricsTextfile == "/tmp/x/arbiter.prom" && c.daemon.metricsPort == 9477)
        #expect(try ConfigFile.load("[metrics]\ntextfile = \"\"\n").daemon.metricsTextfile == "")
        #expect(ArbiterConfig().daemon.metricsTextfile == "/var/lib/prometheus/node-exporter/arbiter.prom" && ArbiterConfig().daemon.metricsPort == 0)
        func refused(_ text: String) -> String {
            do { _ = try ConfigFile.load(text); return "" } catch { return error.description }
        }
        #expect(refused("[metrics]\ntextfile = \"/tmp/arbiter.txt\"\n").contains("metrics.textfile"))
        #expect(refused("[metrics]\ntextfile = \"/tmp/arbiter.txt\"\n").contains("line 2"))
        #expect(refused("[metrics]\nhttp_port = 70000\n").contains("metrics.http_port"))
        #expect(refused("[metrics]\nhttp_port = \"9100\"\n").contains("expected a whole number"))
        #expect(refused("[metrics]\nport = 1\n").contains("unknown key"))
    }

    /// Every metric the shipped Grafana dashboard queries is one the daemon exports (seen in a real
    /// round's text, not only listed), and every exported family is documented in the catalogue.
    @Test func theDashboardQueriesOnlyExportedMetrics() async throws {
        let r = try setup("dashboard", refuse: [DomID(2)])
        defer { try? FileManager.default.removeItem(at: r.dir) }
        await drive(r, seconds: 25)
        await r.loop.round(trigger: .tick)
        let exported = try textfile(r).families
        #expect(exported == Set(RoundMetrics.catalogue.map(\.name)), "not in the catalogue: \(exported.subtracting(RoundMetrics.catalogue.map(\.name)))")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("dist/grafana-arbiter.json"))
        let json = try JSONSerialization.jsonObject(with: data)
        var exprs = [String]()
        func walk(_ v: Any) {
            if let d = v as? [String: Any] {
                if let e = d["expr"] as? String { exprs.append(e) }
                for x in d.values { walk(x) }
            } else if let a = v as? [Any] { for x in a { walk(x) } }
        }
        walk(json)
        #expect(exprs.count >= 8)
        let regex = try NSRegularExpression(pattern: "arbiter_[a-z_]+")
        var used = Set<String>()
        for e in exprs {
            for match in regex.matches(in: e, range: NSRange(e.startIndex..., in: e)) {
                var name = String(e[Range(match.range, in: e)!])
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !exported.contains(name) { name.removeLast(suffix.count) }
                used.insert(name)
            }
        }
        #expect(!used.isEmpty)
        #expect(used.subtracting(exported).isEmpty, "the dashboard queries metrics nobody exports: \(used.subtracting(exported).sorted())")
    }
}

/// The real `arbiter daemon` on the simulated host: the textfile appears and grows round by round,
/// `GET /metrics` on 127.0.0.1 answers with the same families, and SIGTERM's last round is in the file.
@Suite("arbiter daemon metrics, as a process", .serialized)
struct DaemonMetricsProcessTests: ArbiterProcessTest {
    static let scratchPrefix = "arbiter-metrics"

    @Test func textfileAndEndpoint() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "arbiter binary at \(Self.binary.path)")
        let dir = try scratch("daemon")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prom = dir.appendingPathComponent("arbiter.prom").path
        let port = try MetricsEndpoint(port: 0).port      // a free port, closed again at once
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["daemon", "--backend", "sim", "--speed", "40", "--db", dir.appendingPathComponent("d.sqlite").path,
                       "--socket", dir.appendingPathComponent("s.sock").path, "--metrics-textfile", prom, "--metrics-port", "\(port)"]
        let log = dir.appendingPathComponent("stderr.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: log)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        var first: Scrape? = nil
        for _ in 0..<100 where first == nil {
            try await Task.sleep(for: .milliseconds(100))
            if let t = try? String(contentsOfFile: prom, encoding: .utf8), !t.isEmpty { first = Scrape(t) }
        }
        let a = try #require(first, "no textfile: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        #expect(a.all("arbiter_domain_target_bytes").count == 13)
        try await Task.sleep(for: .seconds(2))
        let http = try await offPool { try MetricsEndpoint.get(port: port) }
        #expect(http.status == 200)
        let b = Scrape(http.body)
        #expect(b.sum("arbiter_rounds_total") > a.sum("arbiter_rounds_total"))
        #expect(b.families == a.families.union(b.families) && b.families.contains("arbiter_round_duration_seconds"))
        kill(p.processIdentifier, SIGTERM)
        for _ in 0..<100 where p.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!p.isRunning && p.terminationStatus == 0)
        let last = Scrape(try String(contentsOfFile: prom, encoding: .utf8))
        #expect(last.value("arbiter_rounds_total", ["trigger": "shutdown"]) == 1)
        let stderr = try String(contentsOf: log, encoding: .utf8)
        #expect(stderr.contains("metrics_http=127.0.0.1:\(port)/metrics"), "\(stderr.prefix(600))")
        #expect(!FileManager.default.fileExists(atPath: prom + ".tmp"))
    }
}

/// Runs blocking socket I/O on a Dispatch thread, off Swift concurrency's cooperative pool: on a 2-core
/// machine that pool has two threads, and a blocked one (with another test's blocking work on the other)
/// would starve the endpoint under test of any thread until the client's timeout.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        DispatchQueue.global().async { c.resume(with: Result { try work() }) }
    }
}
