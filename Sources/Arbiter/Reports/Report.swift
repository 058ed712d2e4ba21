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
    /// snapshots), so each domain's series holds its value until the next row.
    public func report(since: Date?, until: Date?) throws -> Report {
        let from = since?.timeIntervalSince1970 ?? 0
        let to = until?.timeIntervalSince1970 ?? Double.greatestFiniteMagnitude
        return try db.read { db in
            let host = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) + COALESCE(SUM(quiet_before), 0) AS n, MIN(at) AS first, MAX(at) AS last, MIN(host_free_kib) AS min_free,
                       AVG(host_free_kib) AS mean_free, MAX(host_total_kib) AS total
                FROM rounds WHERE at >= ? AND at <= ?
                """, arguments: [from, to])!
            var phases = [String: Int]()
            // A recorded round, and the quiet rounds after it (counted by the next one), ran in its phase.
            for r in try Row.fetchAll(db, sql: """
                SELECT phase, SUM(1 + quiet_after) AS n FROM (
                    SELECT phase, COALESCE(LEAD(quiet_before) OVER (ORDER BY id), 0) AS quiet_after FROM rounds WHERE at >= ? AND at <= ?)
                GROUP BY phase
                """, arguments: [from, to]) {
                phases[r["phase"]] = r["n"]
            }
            // Figures over every row of the period, computed by SQLite.
            var domains = [Report.Domain]()
            var byID = [Int64: Int]()
            for r in try Row.fetchAll(db, sql: """
                SELECT d.id, d.name, d.domid, MAX(a.ceiling_kib) AS ceiling, SUM(a.target_kib != a.previous_target_kib) AS changes,
                       MAX(a.stall) AS stall, MIN(a.target_kib) AS tmin, MAX(a.target_kib) AS tmax, AVG(a.actual_kib) AS mean
                FROM allocations a JOIN rounds r ON r.id = a.round_id JOIN domains d ON d.id = a.domain_id
                WHERE r.at >= ? AND r.at <= ?
                GROUP BY d.id ORDER BY d.domid, d.id
                """, arguments: [from, to]) {
                byID[r["id"]] = domains.count
                domains.append(Report.Domain(name: r["name"], domid: r["domid"], ceilingKiB: r["ceiling"], points: [],
                                             targetChanges: r["changes"], maxStall: r["stall"] ?? 0, minTargetKiB: r["tmin"],
                                             maxTargetKiB: r["tmax"], meanActualKiB: Int64((r["mean"] as Double?) ?? 0), rejections: 0))
            }
            // The series: every row for a short period; for a long one, evenly spaced full snapshots
            // (about `maxChartRounds` of them), so a month reads in moments.
            let roundCount: Int = host["n"]
            let sampled = roundCount > Report.maxChartRounds
            var filter = ""
            if sampled {
                let snapshots = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rounds WHERE at >= ? AND at <= ? AND full_snapshot = 1",
                                                 arguments: [from, to]) ?? 0
                let every = Swift.max(1, snapshots / Report.maxChartRounds)
                filter = """
                    AND a.round_id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY at) AS k FROM rounds
                        WHERE at >= \(from) AND at <= \(to) AND full_snapshot = 1) WHERE k % \(every) = 0)
                    """
            }
            for r in try Row.fetchAll(db, sql: """
                SELECT a.domain_id, r.at, a.actual_kib, a.target_kib, a.floor_kib, a.allocation_kib, a.stall, a.reason
                FROM allocations a JOIN rounds r ON r.id = a.round_id
                WHERE r.at >= ? AND r.at <= ? \(filter)
                ORDER BY a.domain_id, r.at, r.id
                """, arguments: [from, to]) {
                guard let k = byID[r["domain_id"]] else { continue }
                domains[k].points.append(Report.Point(at: r["at"], actualKiB: r["actual_kib"], targetKiB: r["target_kib"], floorKiB: r["floor_kib"],
                                                      allocationKiB: r["allocation_kib"], stall: r["stall"], reason: Recorded(r["reason"] as String)))
            }
            for r in try Row.fetchAll(db, sql: "SELECT domain_id, COUNT(*) AS n FROM rejections WHERE at >= ? AND at <= ? GROUP BY domain_id",
                                      arguments: [from, to]) {
                if let k = byID[r["domain_id"]] { domains[k].rejections = r["n"] }
            }
            let alerts = try Row.fetchAll(db, sql: "SELECT at, kind, message FROM alerts WHERE at >= ? AND at <= ? ORDER BY at",
                                          arguments: [from, to]).map { Report.AlertLine(at: $0["at"], kind: $0["kind"], message: $0["message"]) }
            return Report(from: host["first"] ?? from, until: host["last"] ?? from, rounds: host["n"], phases: phases,
                          minFreeKiB: host["min_free"] ?? 0, meanFreeKiB: Int64((host["mean_free"] as Double?) ?? 0),
                          hostTotalKiB: host["total"] ?? 0, domains: domains, alerts: alerts, sampled: sampled)
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
