import ArbiterMigrations
import Foundation
import GRDB
import Testing
@testable import Arbiter
import GuestModel

@Suite("Decision store")
struct StoreTests {
    @Test func migrationsListMatchesTheFolderAndApplyFromEmptyAndFromEachVersion() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("migrations").path)
            .filter { $0.hasSuffix(".sql") }.map { String($0.dropLast(4)) }.sorted()
        #expect(ArbiterMigrations.all.map(\.id) == files, "list every migrations/*.sql in Migrations.swift and Package.swift")
        #expect(try DecisionStore().appliedMigrations() == files)
        // From each earlier version to the latest.
        for (k, m) in ArbiterMigrations.all.enumerated() {
            let q = try DatabaseQueue()
            try DecisionStore.migrator(upTo: m.id).migrate(q)
            #expect(try q.read { try DecisionStore.migrator().appliedMigrations($0) }.count == k + 1)
            try DecisionStore.migrator().migrate(q)
            #expect(try q.read { try DecisionStore.migrator().appliedMigrations($0) } == files)
        }
    }

    @Test func aFileStoreIsWALAndSurvivesReopening() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("arbiter-store-\(getpid()).sqlite").path
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let store = try DecisionStore(path: path)
        #expect(try store.db.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        let d = decision()
        try store.record(d, at: Date(timeIntervalSince1970: 1000), trigger: .tick, hostTotal: KiB(gib: 16), outcomes: d.outcomes,
                         fullSnapshot: true, names: [DomID(1): "web", DomID(2): "db"])
        let reader = try DecisionStore(readingAt: path)
        #expect(try reader.latest().map(\.name) == ["web", "db"])
    }

    func decision(target: KiB = KiB(gib: 2)) -> Decision {
        var arb = Arbitration()
        let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2)),
                     DomainFacts(domid: DomID(2), staticMax: KiB(gib: 8), actual: KiB(gib: 4), target: KiB(gib: 4))]
        var d = arb.step(HostSnapshot(free: KiB(gib: 1), domains: facts), now: TimePoint(ms: 0))
        d.outcomes[0].target = target
        return d
    }

    @Test func roundsRecordOnlyWhatTheyAreGivenAndReadBack() throws {
        let store = try DecisionStore()
        let names = [DomID(1): "web", DomID(2): "db"]
        let d1 = decision()
        try store.record(d1, at: Date(timeIntervalSince1970: 100), trigger: .startup, hostTotal: KiB(gib: 16), outcomes: d1.outcomes,
                         fullSnapshot: true, names: names)
        let d2 = decision(target: KiB(mib: 1800))
        try store.record(d2, at: Date(timeIntervalSince1970: 102), trigger: .report, hostTotal: KiB(gib: 16), outcomes: [d2.outcomes[0]],
                         fullSnapshot: false, names: names, pushes: [DomID(1): .pushed])
        let c = try store.counts()
        #expect(c["rounds"] == 2 && c["allocations"] == 3 && c["domains"] == 2)
        let latest = try store.latest()
        #expect(latest.map(\.name) == ["web", "db"])
        #expect(latest[0].target == KiB(mib: 1800) && latest[0].at == 102)
        #expect(latest[1].at == 100)          // unchanged: its last row is from the snapshot
        #expect(try store.history("web").map(\.target) == [KiB(gib: 2), KiB(mib: 1800)])
        #expect(try store.history("1", since: Date(timeIntervalSince1970: 101)).count == 1)
    }

    @Test func explainAnswersFromTheLatestRow() throws {
        let store = try DecisionStore()
        let d = decision(target: KiB(mib: 1800))
        try store.record(d, at: Date(timeIntervalSince1970: 100), trigger: .tick, hostTotal: KiB(gib: 16), outcomes: d.outcomes,
                         fullSnapshot: true, names: [DomID(1): "web", DomID(2): "db"], pushes: [DomID(1): .failed("ERROR_FAIL")])
        let e = try #require(try store.explain("web"))
        #expect(e.target == KiB(mib: 1800) && e.previousTarget == KiB(gib: 2) && e.pushed == false && e.pushError == "ERROR_FAIL")
        #expect(e.floor == d.outcomes[0].floor && e.reason == .known(d.outcomes[0].reason) && e.phase == .known(.uncontended))
        #expect(try store.explain("nobody") == nil)
        #expect(Reason.allCases.allSatisfy { !$0.explanation.isEmpty })
    }

    @Test func theSchemaRefusesImpossibleRows() throws {
        let store = try DecisionStore()
        var d = decision()
        d.outcomes[0].allocation = KiB(d.outcomes[0].floor.value - 4)    // below its floor
        #expect(throws: DatabaseError.self) {
            try store.record(d, at: Date(), trigger: .tick, hostTotal: KiB(gib: 16), outcomes: d.outcomes, fullSnapshot: true, names: [:])
        }
        #expect(try store.counts()["rounds"] == 0)                     // the whole round rolled back
    }

    @Test func reusedDomidsStartANewLifetime() throws {
        let store = try DecisionStore()
        let d = decision()
        try store.record(d, at: Date(timeIntervalSince1970: 1), trigger: .tick, hostTotal: KiB(gib: 16), outcomes: d.outcomes,
                         fullSnapshot: true, names: [DomID(1): "web", DomID(2): "db"])
        try store.domainReleased(DomID(1), at: Date(timeIntervalSince1970: 2))
        try store.record(d, at: Date(timeIntervalSince1970: 3), trigger: .tick, hostTotal: KiB(gib: 16), outcomes: d.outcomes,
                         fullSnapshot: true, names: [DomID(1): "cache", DomID(2): "db"])
        #expect(try store.latest().map(\.name) == ["cache", "db"])
        #expect(try store.history("web").count == 1)
        try store.record(d, at: Date(timeIntervalSince1970: 5), trigger: .tick, hostTotal: KiB(gib: 16), outcomes: d.outcomes,
                         fullSnapshot: true, names: [DomID(1): "cache", DomID(2): "db2"], uuids: [DomID(2): "12345678-9abc-def0-0102-030405060708"])
        #expect(try store.db.read { try String.fetchOne($0, sql: "SELECT uuid FROM domains WHERE name = 'db2'") } == "12345678-9abc-def0-0102-030405060708")
        try store.recordRejection(DomID(2), name: "db", at: Date(timeIntervalSince1970: 4), .unknownKey("evil"))
        #expect(try store.rejections().map(\.code) == ["unknown-key"])
    }

    /// A live domain's `last_seen` follows the rounds to the minute (each update rewrites every live
    /// domain's row); a release sets the lifetime's end exactly.
    @Test func lastSeenFollowsTheRoundsToTheMinuteAndAReleaseExactly() throws {
        let store = try DecisionStore()
        let d = decision()
        func lastSeen(_ name: String) throws -> Double? {
            try store.db.read { try Double.fetchOne($0, sql: "SELECT last_seen FROM domains WHERE name = ?", arguments: [name]) }
        }
        for t in [100.0, 130, 159, 161, 175] {
            try store.record(d, at: Date(timeIntervalSince1970: t), trigger: .tick, hostTotal: KiB(gib: 16), outcomes: [d.outcomes[0]],
                             fullSnapshot: false, names: [DomID(1): "web", DomID(2): "db"])
        }
        #expect(try lastSeen("web") == 161 && lastSeen("db") == 161)
        try store.domainReleased(DomID(2), at: Date(timeIntervalSince1970: 175.5))
        #expect(try lastSeen("db") == 175.5 && lastSeen("web") == 161)
    }
}

@Suite("Retention")
struct RetentionTests {
    @Test func oldRoundsAreDownsampledThenDropped() throws {
        let store = try DecisionStore()
        var arb = Arbitration()
        let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2))]
        let d = arb.step(HostSnapshot(free: KiB(gib: 1), domains: facts), now: TimePoint(ms: 0))
        let day = 86400.0
        // 100 days, 10 rounds a day; every 5th a full snapshot (two a day, 12 hours apart).
        for k in 0..<1000 {
            try store.record(d, at: Date(timeIntervalSince1970: Double(k) * day / 10), trigger: .tick, hostTotal: KiB(gib: 8),
                             outcomes: d.outcomes, fullSnapshot: k % 5 == 0, names: [DomID(1): "a"])
        }
        try store.recordRejection(DomID(1), name: "a", at: Date(timeIntervalSince1970: 1), .empty)
        let now = Date(timeIntervalSince1970: 100 * day)
        let removed = try store.prune(now: now, downsampleAfter: 7 * day, retain: 30 * day, interval: day)
        // Rounds older than the last full hour are in compact hours: read both forms.
        let rounds = try store.db.read { db in
            try (Double.fetchAll(db, sql: "SELECT at FROM rounds") + DecisionStore.compactRounds(db, from: -1e12, to: 1e15).map(\.at)).sorted()
        }
        #expect(rounds.allSatisfy { $0 >= 70 * day })                 // nothing older than 30 days
        #expect(rounds.filter { $0 >= 93 * day }.count == 70)         // the last 7 days whole
        #expect(rounds.filter { $0 < 93 * day }.count == 23)          // before that, one snapshot a day
        #expect(removed == 1000 - rounds.count)
        #expect(try store.rejections().isEmpty)
        #expect(try store.counts()["allocations"]! + store.counts()["compacted_rows"]! == rounds.count)
        // One pass compacts a few hours; later passes compact the rest and change nothing else.
        #expect(try store.counts()["compact_hours"]! <= DecisionStore.compactBatch)
        for _ in 0..<20 { try store.prune(now: now, downsampleAfter: 7 * day, retain: 30 * day, interval: day) }
        let after = try store.db.read { db in
            try (Double.fetchAll(db, sql: "SELECT at FROM rounds") + DecisionStore.compactRounds(db, from: -1e12, to: 1e15).map(\.at)).sorted()
        }
        #expect(after == rounds)
        #expect(try store.counts()["compact_hours"] == rounds.count && store.counts()["allocations"] == 0)
    }
}
