import ArbiterMigrations
import BundledScenarios
import Foundation
import GRDB
import GuestModel
import Logging
import Testing
@testable import Arbiter

/// The store when the file, the disk or the version is not what the daemon expects.
@Suite("Decision store hardening")
struct StoreHardeningTests {
    static func tempPath(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("arbiter-sh-\(getpid())-\(name)").path
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) }
        return path
    }

    static func remove(_ path: String) { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }

    static func bigDecision(_ n: Int) -> (Decision, [DomID: String]) {
        var arb = Arbitration()
        let facts = (0..<n).map { i in DomainFacts(domid: DomID(UInt16(i + 1)), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2)) }
        let d = arb.step(HostSnapshot(free: KiB(gib: 1), domains: facts), now: TimePoint(ms: 0))
        return (d, Dictionary(uniqueKeysWithValues: facts.map { ($0.domid, "vm\($0.domid.raw)") }))
    }

    /// SQLite's default lets the WAL reach 4 MB before folding it, and never cuts the file back: on a
    /// small volume it filled the disk. Now it stays within the set limit however many rounds are written.
    @Test func theWALStaysUnderItsLimit() throws {
        let path = Self.tempPath("wal.sqlite")
        defer { Self.remove(path) }
        let store = try DecisionStore(path: path)
        let (d, names) = Self.bigDecision(200)
        var largest: Int64 = 0
        for r in 0..<600 {
            try store.record(d, at: Date(timeIntervalSince1970: Double(1000 + r)), trigger: .tick, hostTotal: KiB(gib: 64),
                             outcomes: d.outcomes, fullSnapshot: true, names: names)
            largest = max(largest, store.walBytes)
        }
        let fileSize = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        #expect(fileSize > 4 * Int64(DecisionStore.walLimitBytes), "the test writes more than the limit several times over")
        // The limit, plus one round's transaction written before the check folds it back.
        #expect(largest <= Int64(DecisionStore.walLimitBytes) + 128 * 1024, "WAL reached \(largest) bytes")
        try store.close()
        #expect(((try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int64) ?? 0) == 0)
    }

    /// A database a newer arbiter migrated: the daemon refuses to write to it; the read verbs read it
    /// with a warning.
    @Test func aNewerDatabaseIsRefusedForWritingAndReadWithAWarning() throws {
        let path = Self.tempPath("newer.sqlite")
        defer { Self.remove(path) }
        do {
            let store = try DecisionStore(path: path)
            let (d, names) = Self.bigDecision(2)
            try store.record(d, at: Date(), trigger: .tick, hostTotal: KiB(gib: 8), outcomes: d.outcomes, fullSnapshot: true, names: names)
            try store.db.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('V0099_from_the_future')") }
            try store.close()
        }
        #expect {
            _ = try DecisionStore(path: path)
        } throws: { error in
            "\(error)".contains("newer arbiter") && "\(error)".contains("V0099_from_the_future") && !"\(error)".contains("\n")
        }
        let reader = try DecisionStore(readingAt: path)
        #expect(reader.warnings.count == 1 && reader.warnings[0].contains("newer arbiter"))
        #expect(try reader.latest().count == 2)
    }

    /// An empty file, another program's SQLite database and a file that is not SQLite: one line each.
    @Test func foreignFilesGiveOneClearLine() throws {
        let empty = Self.tempPath("empty.sqlite"), foreign = Self.tempPath("foreign.sqlite"), junk = Self.tempPath("junk.sqlite")
        defer { for p in [empty, foreign, junk] { Self.remove(p) } }
        FileManager.default.createFile(atPath: empty, contents: Data())
        FileManager.default.createFile(atPath: junk, contents: Data(String(repeating: "not a database\n", count: 300).utf8))
        let q = try DatabaseQueue(path: foreign)
        try q.write { try $0.execute(sql: "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)") }
        try q.close()

        func refusal(_ body: () throws -> DecisionStore) -> String {
            do { _ = try body(); return "" } catch { return "\(error)" }
        }
        let r1 = refusal { try DecisionStore(readingAt: empty) }
        #expect(r1.contains("is empty") && !r1.contains("\n"), "\(r1)")
        let r2 = refusal { try DecisionStore(readingAt: foreign) }
        #expect(r2.contains("not an arbiter decision store") && r2.contains("customers") && !r2.contains("\n"), "\(r2)")
        let r3 = refusal { try DecisionStore(path: foreign) }
        #expect(r3.contains("not an arbiter decision store"), "\(r3)")
        let r4 = refusal { try DecisionStore(readingAt: junk) }
        #expect(r4.contains("is not an SQLite database") && !r4.contains("\n"), "\(r4)")
        let r5 = refusal { try DecisionStore(path: junk) }
        #expect(r5.contains("is not an SQLite database"), "\(r5)")
        // An empty file is a store not yet made: the daemon initialises it.
        #expect(try DecisionStore(path: empty).appliedMigrations() == ArbiterMigrations.all.map(\.id))
    }

    /// Rounds the store could not take are counted, logged when recording resumes, shown by `list`
    /// (top) and recorded as an alert once the store takes writes again.
    @Test func lostRoundsAreCountedAndReportedWhenRecordingResumes() async throws {
        let path = Self.tempPath("lost.sqlite")
        defer { Self.remove(path) }
        let store = try DecisionStore(path: path)
        let host = SimulatedHost(scenario: try ScenarioFile.parse(BundledScenarios.named("default")!))
        let log = LogCapture()
        let loop = ControlLoop(backend: host, store: store, config: ArbiterConfig(), logger: Logger(label: "t") { _ in log },
                               now: { TimePoint(seconds: await host.seconds) }, settings: { await host.adminSettings() })
        await loop.round(trigger: .startup)
        // Another writer makes every insert of a round fail, as a full disk does.
        let saboteur = try DatabaseQueue(path: path)
        try await saboteur.write { try $0.execute(sql: "CREATE TRIGGER full BEFORE INSERT ON rounds BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END") }
        for _ in 0..<3 {
            for e in await host.advance(by: 2) { await loop.note(e) }
            await loop.round(trigger: .tick)
        }
        #expect(await loop.unrecordedRounds == 3)
        #expect(log.lines.filter { $0.contains("decision not recorded") }.count == 3)
        #expect(try store.alerts().isEmpty)
        try await saboteur.write { try $0.execute(sql: "DROP TRIGGER full") }
        for e in await host.advance(by: 2) { await loop.note(e) }
        await loop.round(trigger: .tick)
        #expect(log.lines.contains { $0.contains("recording resumed after 3 lost round(s)") }, "\(log.lines.suffix(3))")
        let alerts = try store.alerts()
        #expect(alerts.count == 1 && alerts[0].kind == "rounds-not-recorded" && alerts[0].message.contains("3 round(s) not recorded"), "\(alerts)")
        let reply = await loop.handle("{\"cmd\":\"list\"}")
        #expect(reply.contains("\"unrecorded_rounds\":3"), "\(reply.prefix(200))")
        try saboteur.close()
    }
}
