import Foundation
import GRDB
import GuestModel

/// A report over a recorded period: host summary, per-domain series and figures, alerts. Built from
/// the store alone (the daemon need not run); rendered as text, CSV, JSON or one self-contained HTML
/// page with an SVG chart per domain.
public struct Report: Sendable, Encodable {
    /// Longer periods are charted from about this many evenly spaced full snapshots.
    public static let maxChartRounds = 4000

    public struct Point: Sendable, Encodable, Equatable {
        public var at: Double
        public var actualKiB: Int64
        public var targetKiB: Int64
        public var floorKiB: Int64
        public var allocationKiB: Int64
        public var stall: Double?
        public var reason: Recorded<Reason>
        enum CodingKeys: String, CodingKey {
            case at, stall, reason
            case actualKiB = "actual_kib", targetKiB = "target_kib", floorKiB = "floor_kib", allocationKiB = "allocation_kib"
        }
    }

    public struct Domain: Sendable, Encodable {
        public var name: String
        public var domid: Int
        public var ceilingKiB: Int64
        public var points: [Point]
        /// Over every recorded row of the period (not only the points, which may be sampled).
        public var targetChanges: Int
        public var maxStall: Double
        public var minTargetKiB: Int64
        public var maxTargetKiB: Int64
        public var meanActualKiB: Int64
        public var rejections: Int
        enum CodingKeys: String, CodingKey {
            case name, domid, points, rejections
            case ceilingKiB = "ceiling_kib", targetChanges = "target_changes", maxStall = "max_stall"
            case minTargetKiB = "min_target_kib", maxTargetKiB = "max_target_kib", meanActualKiB = "mean_actual_kib"
        }
    }

    public struct AlertLine: Sendable, Encodable {
        public var at: Double
        public var kind: String
        public var message: String
    }

    public var from: Double
    public var until: Double
    public var rounds: Int
    public var phases: [String: Int]
    public var minFreeKiB: Int64
    public var meanFreeKiB: Int64
    public var hostTotalKiB: Int64
    public var domains: [Domain]
    public var alerts: [AlertLine]
    /// True when the period was too long to chart every round: the series are sampled full snapshots.
    public var sampled: Bool

    enum CodingKeys: String, CodingKey {
        case from, until, rounds, phases, domains, alerts, sampled
        case minFreeKiB = "min_free_kib", meanFreeKiB = "mean_free_kib", hostTotalKiB = "host_total_kib"
    }
}

extension DecisionStore {
    /// Everything recorded between `since` and `until`. Rows are recorded on change (plus periodic
    /// snapshots), so each domain's series holds its value until the next row. The period's whole hours
    /// are read from the hourly figures (V0004) and the rounds not yet folded into them; its ragged
    /// ends, and periods shorter than an hour, from the rounds themselves: a month reads hundreds of
    /// rows per domain, with the same figures as over every row.
    public func report(since: Date?, until: Date?) throws -> Report {
        let from = since?.timeIntervalSince1970 ?? 0
        let to = Swift.min(until?.timeIntervalSince1970 ?? .greatestFiniteMagnitude, 1e15)
        return try db.read { db in
            // A store the daemon has not yet migrated to V0004 has no hourly figures: every row is read.
            let hourly = try db.tableExists("rollup")
            let folded = hourly ? try Self.foldedUntil(db) : 0
            let firstHour = (from / 3600).rounded(.up), endHour = (to / 3600).rounded(.down)
            let whole = hourly && firstHour < endHour
            // The rounds read one by one: the ends of the period, and the whole hours' rounds not folded.
            let selection = whole ? """
                sel(id) AS (SELECT id FROM rounds WHERE at >= :from AND at < :a
                            UNION ALL SELECT id FROM rounds WHERE at >= :b AND at <= :to
                            UNION ALL SELECT id FROM rounds WHERE id > :folded AND at >= :a AND at < :b)
                """ : "sel(id) AS (SELECT id FROM rounds WHERE at >= :from AND at <= :to)"
            let args: StatementArguments = ["from": from, "to": to, "a": firstHour * 3600, "b": endHour * 3600, "folded": folded,
                                            "ha": Int64(Swift.max(0, Swift.min(firstHour, 1e12))), "hb": Int64(Swift.max(0, Swift.min(endHour, 1e12)))]

            // The host: rounds run (recorded, and the quiet ones each counts before it), free memory.
            var host = HostFigures()
            if let r = try Row.fetchOne(db, sql: """
                WITH \(selection)
                SELECT COUNT(*) AS recorded, TOTAL(r.quiet_before) AS quiet, MIN(r.at) AS first, MAX(r.at) AS last,
                       MIN(r.host_free_kib) AS min_free, TOTAL(r.host_free_kib) AS sum_free, MAX(r.host_total_kib) AS total
                FROM sel JOIN rounds r ON r.id = sel.id
                """, arguments: args) {
                host.add(recorded: r["recorded"], ran: r["recorded"] + Int(r["quiet"] as Double), first: r["first"], last: r["last"],
                         minFree: r["min_free"], sumFree: r["sum_free"], total: r["total"])
            }
            // A quiet round ran in the phase of the round recorded before it.
            var phases = [String: Int]()
            for r in try Row.fetchAll(db, sql: """
                WITH \(selection)
                SELECT phase, SUM(n) AS n FROM (
                    SELECT r.phase AS phase, 1 AS n FROM sel JOIN rounds r ON r.id = sel.id
                    UNION ALL
                    SELECT COALESCE((SELECT p.phase FROM rounds p WHERE p.id < r.id ORDER BY p.id DESC LIMIT 1), r.phase), r.quiet_before
                    FROM sel JOIN rounds r ON r.id = sel.id WHERE r.quiet_before > 0)
                GROUP BY phase
                """, arguments: args) {
                phases[r["phase"], default: 0] += r["n"]
            }
            var figures = [Int64: DomainFigures]()
            for r in try Row.fetchAll(db, sql: """
                WITH \(selection)
                SELECT a.domain_id AS id, COUNT(*) AS rows, SUM(a.target_kib != a.previous_target_kib) AS changes, MAX(a.stall) AS stall,
                       MIN(a.target_kib) AS tmin, MAX(a.target_kib) AS tmax, SUM(a.actual_kib) AS actual, MAX(a.ceiling_kib) AS ceiling
                FROM sel JOIN allocations a ON a.round_id = sel.id
                GROUP BY a.domain_id
                """, arguments: args) {
                figures[r["id"], default: DomainFigures()].add(r)
            }
            if whole {
                if let r = try Row.fetchOne(db, sql: """
                    SELECT SUM(recorded) AS recorded, SUM(ran) AS ran, MIN(first_at) AS first, MAX(last_at) AS last, MIN(min_free_kib) AS min_free,
                           TOTAL(sum_free_kib) AS sum_free, MAX(max_total_kib) AS total, SUM(uncontended) AS u, SUM(contended) AS c, SUM(infeasible) AS i
                    FROM hourly_host WHERE hour >= :ha AND hour < :hb
                    """, arguments: args), let recorded = r["recorded"] as Int? {
                    host.add(recorded: recorded, ran: r["ran"], first: r["first"], last: r["last"], minFree: r["min_free"], sumFree: r["sum_free"],
                             total: r["total"])
                    for (phase, column) in [("uncontended", "u"), ("contended", "c"), ("infeasible", "i")] where (r[column] as Int) > 0 {
                        phases[phase, default: 0] += r[column]
                    }
                }
                for r in try Row.fetchAll(db, sql: """
                    SELECT domain_id AS id, SUM(rows) AS rows, SUM(changes) AS changes, MAX(max_stall) AS stall, MIN(min_target_kib) AS tmin,
                           MAX(max_target_kib) AS tmax, SUM(sum_actual_kib) AS actual, MAX(max_ceiling_kib) AS ceiling
                    FROM hourly WHERE hour >= :ha AND hour < :hb GROUP BY domain_id
                    """, arguments: args) {
                    figures[r["id"], default: DomainFigures()].add(r)
                }
            }
            // The compact hours that the rounds read one by one reach into (the period's ends, or all of a
            // period shorter than a whole hour): their rounds and rows in those parts, decoded.
            let ends: [(from: Double, to: Double, closed: Bool)] = whole ? [(from, firstHour * 3600, false), (endHour * 3600, to, true)] : [(from, to, true)]
            for part in ends where part.from <= part.to {
                for h in try Self.compactHours(db, from: part.from, to: part.to) {
                    let rounds = h.rounds
                    var inside = Set<Int64>()
                    for (k, r) in rounds.enumerated() where r.at >= part.from && (part.closed ? r.at <= part.to : r.at < part.to) {
                        inside.insert(r.id)
                        host.add(recorded: 1, ran: 1 + Int(r.quietBefore), first: r.at, last: r.at, minFree: r.hostFree,
                                 sumFree: Double(r.hostFree), total: r.hostTotal)
                        phases[r.phase, default: 0] += 1
                        if r.quietBefore > 0 {
                            let before = k > 0 ? rounds[k - 1].phase : try Self.phaseBefore(db, round: r.id) ?? r.phase
                            phases[before, default: 0] += Int(r.quietBefore)
                        }
                    }
                    guard !inside.isEmpty else { continue }
                    for sec in try Self.sections(h.allocations) {
                        for a in try AllocationChunk.decode(sec.chunk, keep: inside.contains) {
                            figures[sec.domain, default: DomainFigures()].add(a)
                        }
                    }
                }
            }
            var domains = [Report.Domain]()
            var byID = [Int64: Int]()
            for r in try Row.fetchAll(db, sql: "SELECT id, name, domid FROM domains ORDER BY domid, id") {
                guard let f = figures[r["id"]] else { continue }
                byID[r["id"]] = domains.count
                domains.append(Report.Domain(name: r["name"], domid: r["domid"], ceilingKiB: f.ceiling, points: [], targetChanges: f.changes,
                                             maxStall: f.stall ?? 0, minTargetKiB: f.minTarget, maxTargetKiB: f.maxTarget,
                                             meanActualKiB: f.rows > 0 ? Int64((Double(f.sumActual) / Double(f.rows)).rounded(.towardZero)) : 0,
                                             rejections: 0))
            }
            // The series: every row for a short period; for a long one, evenly spaced full snapshots
            // (about `maxChartRounds` of them), each read by its round.
            let sampled = host.ran > Report.maxChartRounds
            func append(_ x: RecordedRow) {
                guard let k = byID[x.domain] else { return }
                domains[k].points.append(Report.Point(at: x.round.at, actualKiB: x.row.actual, targetKiB: x.row.target, floorKiB: x.row.floor,
                                                      allocationKiB: x.row.allocation, stall: x.row.stall, reason: Recorded(x.row.reason)))
            }
            if sampled {
                // The full snapshots of the period, rows and compact hours alike, every k-th of them.
                var snapshots = try Row.fetchAll(db, sql: "SELECT id, at FROM rounds WHERE at >= ? AND at <= ? AND full_snapshot = 1", arguments: [from, to])
                    .map { (id: $0["id"] as Int64, at: $0["at"] as Double) }
                let hours = try Self.compactHours(db, from: from, to: to)
                for h in hours { for r in h.rounds where r.fullSnapshot && r.at >= from && r.at <= to { snapshots.append((r.id, r.at)) } }
                snapshots.sort { ($0.at, $0.id) < ($1.at, $1.id) }
                let every = Swift.max(1, snapshots.count / Report.maxChartRounds)
                let chosen = Set(stride(from: every - 1, to: snapshots.count, by: every).map { snapshots[$0].id })
                for x in try Self.recordedRows(db, from: from, to: to, domains: nil, rounds: chosen, sorted: false, hours: hours) { append(x) }
                for k in domains.indices { domains[k].points.sort { $0.at < $1.at } }
            } else {
                for x in try Self.recordedRows(db, from: from, to: to, domains: nil) { append(x) }
            }
            for r in try Row.fetchAll(db, sql: "SELECT domain_id, COUNT(*) AS n FROM rejections WHERE at >= ? AND at <= ? GROUP BY domain_id",
                                      arguments: [from, to]) {
                if let k = byID[r["domain_id"]] { domains[k].rejections = r["n"] }
            }
            let alerts = try Row.fetchAll(db, sql: "SELECT at, kind, message FROM alerts WHERE at >= ? AND at <= ? ORDER BY at",
                                          arguments: [from, to]).map { Report.AlertLine(at: $0["at"], kind: $0["kind"], message: $0["message"]) }
            return Report(from: host.first ?? from, until: host.last ?? from, rounds: host.ran, phases: phases,
                          minFreeKiB: host.minFree ?? 0, meanFreeKiB: host.recorded > 0 ? Int64(host.sumFree / Double(host.recorded)) : 0,
                          hostTotalKiB: host.total ?? 0, domains: domains, alerts: alerts, sampled: sampled)
        }
    }

    /// The host's figures over a period, summed from its parts (hourly rows, rounds).
    private struct HostFigures {
        var recorded = 0, ran = 0
        var first: Double?, last: Double?, minFree: Int64?, total: Int64?
        var sumFree = 0.0

        mutating func add(recorded: Int, ran: Int, first: Double?, last: Double?, minFree: Int64?, sumFree: Double, total: Int64?) {
            guard recorded > 0 else { return }
            self.recorded += recorded; self.ran += ran; self.sumFree += sumFree
            self.first = [self.first, first].compactMap { $0 }.min(); self.last = [self.last, last].compactMap { $0 }.max()
            self.minFree = [self.minFree, minFree].compactMap { $0 }.min(); self.total = [self.total, total].compactMap { $0 }.max()
        }
    }

    /// A domain's figures over a period, summed from its parts.
    private struct DomainFigures {
        var rows = 0, changes = 0
        var stall: Double?
        var minTarget = Int64.max, maxTarget = Int64.min, sumActual: Int64 = 0, ceiling = Int64.min

        mutating func add(_ r: Row) {
            rows += r["rows"]; changes += r["changes"]
            if let s = r["stall"] as Double? { stall = Swift.max(stall ?? s, s) }
            minTarget = Swift.min(minTarget, r["tmin"]); maxTarget = Swift.max(maxTarget, r["tmax"])
            sumActual += r["actual"]; ceiling = Swift.max(ceiling, r["ceiling"])
        }

        mutating func add(_ a: StoredAllocation) {
            rows += 1; changes += a.target != a.previousTarget ? 1 : 0
            if let s = a.stall { stall = Swift.max(stall ?? s, s) }
            minTarget = Swift.min(minTarget, a.target); maxTarget = Swift.max(maxTarget, a.target)
            sumActual += a.actual; ceiling = Swift.max(ceiling, a.ceiling)
        }
    }
}

extension Report {
    static func time(_ t: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: t))
    }

    public func text() -> String {
        var out = "Report \(Report.time(from)) – \(Report.time(until)): \(rounds) rounds"
        out += " (" + phases.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + ")\n"
        out += "host: \(formatSize(KiB(hostTotalKiB))) for guests, Xen free mean \(formatSize(KiB(meanFreeKiB))), min \(formatSize(KiB(minFreeKiB)))\n\n"
        var rows = [["Domain", "ID", "Mean mem", "Min target", "Max target", "Changes", "Max stall", "Rejected", "Last reason"]]
        for d in domains {
            rows.append([d.name, String(d.domid), formatSize(KiB(d.meanActualKiB)), formatSize(KiB(d.minTargetKiB)), formatSize(KiB(d.maxTargetKiB)),
                         String(d.targetChanges), formatFixed(d.maxStall * 100, decimals: 1) + "%", String(d.rejections), d.points.last?.reason.description ?? "-"])
        }
        out += DecisionTable.table(rows, rightAligned: [1, 2, 3, 4, 5, 6, 7]) + "\n\n"
        out += alerts.isEmpty ? "no alerts\n" : alerts.map { "\(Report.time($0.at))  \($0.kind)  \($0.message)" }.joined(separator: "\n") + "\n"
        return out
    }

    public func csv() -> String {
        var out = "time,domain,domid,actual_kib,target_kib,floor_kib,allocation_kib,stall,reason\n"
        for d in domains {
            for p in d.points {
                out += "\(Report.time(p.at)),\(csvField(d.name)),\(d.domid),\(p.actualKiB),\(p.targetKiB),\(p.floorKiB),\(p.allocationKiB),"
                    + "\(p.stall.map { formatFixed($0, decimals: 6) } ?? ""),\(p.reason)\n"
            }
        }
        return out
    }

    func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    public func json() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return (try? enc.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
