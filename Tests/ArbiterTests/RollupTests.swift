import BundledScenarios
import Foundation
import GRDB
import Logging
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

/// The hourly figures (V0004) stand in for an hour's rows in reports: a report must say the same
/// whether it reads the rows or the figures, and keep saying it once retention has thinned the rows.
@Suite("Hourly figures")
struct RollupTests {
    /// Three and a half hours of the default scenario through the control loop (a round every 20 s,
    /// change-only rows, snapshots, quiet rounds), starting 1,234 s into an hour: periods have ragged ends.
    func recorded() async throws -> (DecisionStore, start: Double, end: Double) {
        let clock = WallClock()
        let start = (clock.now().timeIntervalSince1970 / 3600).rounded(.down) * 3600 + 1234
        clock.advance(start - clock.now().timeIntervalSince1970)
        var config = ArbiterConfig()
        config.daemon.snapshotEvery = 30
        // Every third round a tick; after every second one a report round with nothing new (mostly quiet).
        let store = try await recordDefaultScenario(rounds: 630, step: 20, config: config, clock: clock,
                                                    trigger: { $0 % 3 == 0 ? .tick : .report }, again: { $0 % 2 == 0 })
        return (store, start, clock.now().timeIntervalSince1970)
    }

    /// Everything a report says except its series.
    func figures(_ r: Report) -> String {
        var out = "\(r.from) \(r.until) \(r.rounds) \(r.phases.sorted { $0.key < $1.key }) \(r.minFreeKiB) \(r.meanFreeKiB) \(r.hostTotalKiB)\n"
        for d in r.domains {
            out += "\(d.name) \(d.domid) \(d.ceilingKiB) \(d.targetChanges) \(d.maxStall) \(d.minTargetKiB) \(d.maxTargetKiB) \(d.meanActualKiB) \(d.rejections)\n"
        }
        return out
    }

    @Test func reportsSayTheSameFromTheRowsAndFromTheHourlyFigures() async throws {
        let (store, start, end) = try await recorded()
        let periods: [(Date?, Date?)] = [
            (nil, nil),
            (Date(timeIntervalSince1970: start + 1000), Date(timeIntervalSince1970: end - 1500)),   // ragged ends, whole hours between
            (Date(timeIntervalSince1970: start + 3000), nil),
            (Date(timeIntervalSince1970: start + 100), Date(timeIntervalSince1970: start + 1900)),   // within one hour
        ]
        let fromRows = try periods.map { figures(try store.report(since: $0.0, until: $0.1)) }
        let quiet = try await store.db.read { try Int.fetchOne($0, sql: "SELECT SUM(quiet_before) FROM rounds") } ?? 0
        #expect(quiet > 0)

        let folded = try store.rollUp(now: Date(timeIntervalSince1970: end))
        #expect(folded > 0)
        #expect(try store.rollUp(now: Date(timeIntervalSince1970: end)) == 0)      // nothing twice
        #expect(try periods.map { figures(try store.report(since: $0.0, until: $0.1)) } == fromRows)

        // Thinning the folded hours to one snapshot per 10 minutes leaves the report's figures those of
        // every decision recorded in them; the hour not yet ended is not folded, so it is not thinned.
        let endHour = (end / 3600).rounded(.down) * 3600
        let removed = try store.prune(now: Date(timeIntervalSince1970: end), downsampleAfter: end - endHour, retain: 90 * 86400)
        #expect(removed > 0)
        let open = "SELECT COUNT(*) FROM rounds WHERE at >= \(endHour)"
        let unfolded = try await store.db.read { try Int.fetchOne($0, sql: open) } ?? 0
        #expect(unfolded > 10)
        try store.prune(now: Date(timeIntervalSince1970: end), downsampleAfter: 60, retain: 90 * 86400)
        #expect(try await store.db.read { try Int.fetchOne($0, sql: open) } == unfolded)
        #expect(try figures(store.report(since: nil, until: nil)) == fromRows[0])
        #expect(try figures(store.report(since: Date(timeIntervalSince1970: start + 3000), until: nil)) != fromRows[2])   // its ragged start is thinned

        // A round recorded late into a folded hour (the wall clock went back) is counted in it.
        let before = try store.report(since: nil, until: nil)
        let web = try #require(before.domains.first { $0.name == "web-1" })
        var arb = Arbitration()
        var d = arb.step(HostSnapshot(free: KiB(gib: 1), domains: [DomainFacts(domid: DomID(UInt16(web.domid)), staticMax: KiB(gib: 4),
                                                                                actual: KiB(gib: 2), target: KiB(gib: 2))]), now: .zero)
        d.outcomes[0].previousTarget = KiB(gib: 2)
        d.outcomes[0].target = KiB(gib: 3)
        try store.record(d, at: Date(timeIntervalSince1970: start + 4000), trigger: .tick, hostTotal: KiB(gib: 8), outcomes: d.outcomes,
                         fullSnapshot: false, names: [DomID(UInt16(web.domid)): "web-1"])
        let late = try store.report(since: nil, until: nil)
        #expect(late.rounds == before.rounds + 1)
        #expect(late.domains.first { $0.name == "web-1" }!.targetChanges == web.targetChanges + 1)
        try store.rollUp(now: Date(timeIntervalSince1970: end + 3600))
        #expect(try figures(store.report(since: nil, until: nil)) == figures(late))
    }

    /// Everything the read verbs show: `list --all`, `history` and `explain` of every domain, reports
    /// (figures and series) over the whole run, a window with ragged ends and a part of one hour.
    func shown(_ store: DecisionStore, start: Double, end: Double) throws -> String {
        var out = "\(try store.latest(all: true))\n"
        for d in try store.latest(all: true) {
            out += "\(d.name): \(try store.history(d.name))\n\(String(describing: try store.explain(d.name)))\n"
        }
        for (a, b) in [(nil, nil), (start + 1000, end - 1500), (start + 100, start + 1900)] as [(Double?, Double?)] {
            let r = try store.report(since: a.map { Date(timeIntervalSince1970: $0) }, until: b.map { Date(timeIntervalSince1970: $0) })
            out += figures(r) + r.domains.map { "\($0.name) \($0.points)" }.joined(separator: "\n") + "\n"
        }
        return out
    }

    @Test func compactingHoursChangesNothingTheReadVerbsShow() async throws {
        let (store, start, end) = try await recorded()
        let before = try shown(store, start: start, end: end)
        let rows = try store.counts()["allocations"] ?? 0
        // Three hours later every recorded hour has ended before the last full one: all are compacted.
        try store.prune(now: Date(timeIntervalSince1970: end + 3 * 3600), downsampleAfter: 30 * 86400, retain: 90 * 86400)
        let hours = try await store.db.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM compact_hours") ?? 0, try Int.fetchOne(db, sql: "SELECT SUM(row_count) FROM compact_hours") ?? 0)
        }
        #expect(hours.0 == 4 && hours.1 == rows)
        #expect(try store.counts()["allocations"] == 0 && store.counts()["rounds"] == 0)
        #expect(try shown(store, start: start, end: end) == before)

        // Thinned like rows: the figures stay those of every decision, the series keep the snapshots.
        let full = try store.report(since: nil, until: nil)
        try store.prune(now: Date(timeIntervalSince1970: end + 3 * 3600), downsampleAfter: 60, retain: 90 * 86400)
        let thin = try store.report(since: nil, until: nil)
        #expect(figures(thin) == figures(full))
        let web = try #require(thin.domains.first { $0.name == "web-1" })
        let webBefore = try #require(full.domains.first { $0.name == "web-1" })
        #expect(web.points.count < webBefore.points.count / 3 && web.points.count >= 3 * 6)
        #expect(try store.history("web-1").count == web.points.count)
    }

    /// An hour holding shadow targets stays rows while the hours after it are compacted: `list` and
    /// `explain` still show each domain's newest row, which is now in a compact hour, and an alert's round
    /// survives the thinning of its compact hour.
    @Test func theNewestRowWinsWhereverItIs() throws {
        let store = try DecisionStore()
        var arb = Arbitration()
        let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2)),
                     DomainFacts(domid: DomID(2), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2))]
        var d = arb.step(HostSnapshot(free: KiB(gib: 1), domains: facts), now: TimePoint(ms: 0))
        let t0 = 1_800_000_000.0 - 1_800_000_000.0.truncatingRemainder(dividingBy: 3600) + 0.123456789
        let names = [DomID(1): "a", DomID(2): "b"]
        for k in 0..<40 {                                        // 4 hours, a round every 6 minutes
            for i in d.outcomes.indices { d.outcomes[i].previousTarget = d.outcomes[i].target; d.outcomes[i].target = KiB(gib: 2) + KiB(Int64(k) * 1024) }
            let shadows = k < 10 ? [DecisionStore.Shadow(policy: "qmemman", domid: DomID(1), target: KiB(gib: 3), reason: .steady)] : []
            try store.record(d, at: Date(timeIntervalSince1970: t0 + Double(k) * 360), trigger: .tick, hostTotal: KiB(gib: 8),
                             outcomes: k == 25 ? [d.outcomes[0]] : d.outcomes, fullSnapshot: k % 5 == 0, names: names,
                             shadowPolicies: k < 10 ? ["qmemman"] : [], shadows: shadows)
            if k == 27 { try store.recordAlert(kind: "floor-infeasible", shortfall: KiB(mib: 1), message: "test", at: Date(timeIntervalSince1970: t0 + 27 * 360)) }
        }
        try store.domainReleased(DomID(2), at: Date(timeIntervalSince1970: t0 + 39 * 360 + 1))
        let list = try store.latest(all: true), a = try store.explain("a"), b = try store.explain("b")
        try store.prune(now: Date(timeIntervalSince1970: t0 + 7 * 3600), downsampleAfter: 30 * 86400, retain: 90 * 86400)
        let c = try store.counts()
        #expect(c["compact_hours"] == 3 && c["rounds"] == 10)           // the shadowed first hour stays rows
        #expect(try store.latest(all: true) == list && store.explain("a") == a && store.explain("b") == b)
        #expect(a?.target == KiB(gib: 2) + KiB(39 * 1024))
        // Thinned to one snapshot an hour, the round of the alert stays.
        try store.prune(now: Date(timeIntervalSince1970: t0 + 7 * 3600), downsampleAfter: 3 * 3600, retain: 90 * 86400, interval: 3600)
        let kept = try store.history("a").map { Int((($0.at - t0) / 360).rounded()) }
        #expect(kept.contains(27) && kept.contains(10) && !kept.contains(26))
    }

    /// Shadows switched on after hours without them: the pushed target the comparison starts from is the
    /// domain's last row, which compaction moved into a compact hour. The comparison is the same before
    /// and after (it had lost everything up to the domain's next row).
    @Test func theShadowComparisonStartsFromACompactedRow() throws {
        let store = try DecisionStore()
        var arb = Arbitration()
        let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2))]
        var d = arb.step(HostSnapshot(free: KiB(gib: 1), domains: facts), now: TimePoint(ms: 0))
        let t0 = 1_800_000_000.0 - 1_800_000_000.0.truncatingRemainder(dividingBy: 3600) + 0.5
        for k in 0..<50 {                                        // 5 hours, a round every 6 minutes
            let changes = k < 20                                 // the target moves in the first two hours only
            if changes { d.outcomes[0].previousTarget = d.outcomes[0].target; d.outcomes[0].target = KiB(gib: 2) + KiB(Int64(k) * 1024) }
            let shadowed = k >= 30                               // shadows from the fourth hour on
            try store.record(d, at: Date(timeIntervalSince1970: t0 + Double(k) * 360), trigger: .tick, hostTotal: KiB(gib: 8),
                             outcomes: changes ? d.outcomes : [], fullSnapshot: k == 0, names: [DomID(1): "a"],
                             shadowPolicies: shadowed ? ["qmemman"] : [],
                             shadows: shadowed ? [DecisionStore.Shadow(policy: "qmemman", domid: DomID(1), target: KiB(gib: 3), reason: .steady)] : [])
        }
        let before = try store.shadowComparison(since: nil, until: nil)
        #expect(before.count == 1 && before.first.map { $0.seconds > 6800 } == true, "\(before)")
        try store.prune(now: Date(timeIntervalSince1970: t0 + 8 * 3600), downsampleAfter: 30 * 86400, retain: 90 * 86400)
        #expect(try store.counts()["compact_hours"] == 3)        // the first three hours; the shadowed two stay rows
        #expect(try store.shadowComparison(since: nil, until: nil) == before)
    }

    /// A store the daemon has not yet migrated (the CLI was upgraded first) still reports, from its rows.
    @Test func aStoreBeforeTheHourlyFiguresStillReports() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arbiter-v3-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("v3.sqlite").path
        let queue = try DatabaseQueue(path: path)
        try DecisionStore.migrator(upTo: "V0003_quiet_rounds").migrate(queue)
        try queue.write { db in
            try db.execute(sql: """
                INSERT INTO domains (id, domid, name, first_seen, last_seen) VALUES (1, 1, 'a', 0, 0);
                INSERT INTO rounds (id, at, trigger, host_total_kib, host_free_kib, reserve_kib, budget_kib, phase, full_snapshot)
                    VALUES (1, 100, 'startup', 8388608, 1048576, 0, 8388608, 'uncontended', 1),
                           (2, 7300, 'tick', 8388608, 1048576, 0, 8388608, 'uncontended', 1);
                INSERT INTO allocations (round_id, domain_id, report_status, floor_kind, floor_kib, ceiling_kib, weight, demand_kib,
                    allocation_kib, basis, actual_kib, previous_target_kib, target_kib, reason, paced)
                    VALUES (1, 1, 'none', 'hold', 1024, 4096, 1, 2048, 2048, 'demand', 2048, 2048, 2048, 'steady', 0),
                           (2, 1, 'none', 'hold', 1024, 4096, 1, 2048, 2048, 'demand', 2048, 2048, 3072, 'grow:demand', 0);
                """)
        }
        try queue.close()
        let r = try DecisionStore(readingAt: path).report(since: nil, until: nil)
        #expect(r.rounds == 2 && r.domains.count == 1 && r.domains[0].targetChanges == 1 && r.domains[0].maxTargetKiB == 3072)
    }
}
