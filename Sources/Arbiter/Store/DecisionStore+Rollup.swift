import Foundation
import GRDB

/// Hourly figures (V0004): each ended hour's decisions folded into one row per domain and one for the
/// host, so a report over weeks reads hundreds of rows per domain, not every decision; folded before
/// downsampling thins the hour, so they stay the figures of every decision recorded.
extension DecisionStore {
    /// The last round folded into the hourly figures (0: none yet).
    static func foldedUntil(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT until_round FROM rollup WHERE id = 1") ?? 0
    }

    /// The most rounds one call folds: a store from before V0004 (or a daemon stopped for weeks) is
    /// folded over several retention passes, none holding the write lock long; until then reports read
    /// the rounds not folded as rows, and thinning waits for them.
    static let foldBatch = 50_000

    /// Folds the rounds not yet folded that were recorded before `end` (an hour's start: hours before it
    /// have ended), oldest first and at most `foldBatch`, into the hourly figures. A round recorded late
    /// into an hour already folded (the wall clock went back) is added to that hour's row. Returns the
    /// rounds folded.
    @discardableResult
    static func rollUp(_ db: Database, before end: Double) throws -> Int {
        let from = try foldedUntil(db)
        guard let last = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM rounds WHERE id > ? AND at < ?", arguments: [from, end]) else { return 0 }
        let to = try Int64.fetchOne(db, sql: "SELECT id FROM rounds WHERE id > ? AND id <= ? ORDER BY id LIMIT 1 OFFSET ?",
                                    arguments: [from, last, foldBatch - 1]) ?? last
        let range: StatementArguments = ["from": from, "to": to]
        try db.execute(sql: """
            INSERT INTO hourly (domain_id, hour, rows, changes, max_stall, min_target_kib, max_target_kib, sum_actual_kib, max_ceiling_kib)
            SELECT a.domain_id, CAST(r.at / 3600 AS INTEGER), COUNT(*), SUM(a.target_kib != a.previous_target_kib), MAX(a.stall),
                   MIN(a.target_kib), MAX(a.target_kib), SUM(a.actual_kib), MAX(a.ceiling_kib)
            FROM rounds r JOIN allocations a ON a.round_id = r.id
            WHERE r.id > :from AND r.id <= :to
            GROUP BY 1, 2
            ON CONFLICT (domain_id, hour) DO UPDATE SET
                rows = rows + excluded.rows, changes = changes + excluded.changes,
                max_stall = MAX(COALESCE(max_stall, excluded.max_stall), COALESCE(excluded.max_stall, max_stall)),
                min_target_kib = MIN(min_target_kib, excluded.min_target_kib), max_target_kib = MAX(max_target_kib, excluded.max_target_kib),
                sum_actual_kib = sum_actual_kib + excluded.sum_actual_kib, max_ceiling_kib = MAX(max_ceiling_kib, excluded.max_ceiling_kib)
            """, arguments: range)
        // A quiet round ran in the phase of the round recorded before it (`quiet_before` is counted by
        // the next recorded round): the window starts one round early to see that phase.
        try db.execute(sql: """
            INSERT INTO hourly_host (hour, recorded, ran, uncontended, contended, infeasible, min_free_kib, sum_free_kib, max_total_kib,
                                     first_at, last_at)
            SELECT CAST(at / 3600 AS INTEGER), COUNT(*), COUNT(*) + SUM(quiet_before),
                   SUM((phase = 'uncontended') + (before = 'uncontended') * quiet_before),
                   SUM((phase = 'contended') + (before = 'contended') * quiet_before),
                   SUM((phase = 'infeasible') + (before = 'infeasible') * quiet_before),
                   MIN(host_free_kib), SUM(host_free_kib), MAX(host_total_kib), MIN(at), MAX(at)
            FROM (SELECT id, at, phase, quiet_before, host_free_kib, host_total_kib,
                         COALESCE(LAG(phase) OVER (ORDER BY id), phase) AS before
                  FROM rounds WHERE id >= (SELECT COALESCE(MAX(id), 0) FROM rounds WHERE id <= :from) AND id <= :to)
            WHERE id > :from
            GROUP BY 1
            ON CONFLICT (hour) DO UPDATE SET
                recorded = recorded + excluded.recorded, ran = ran + excluded.ran, uncontended = uncontended + excluded.uncontended,
                contended = contended + excluded.contended, infeasible = infeasible + excluded.infeasible,
                min_free_kib = MIN(min_free_kib, excluded.min_free_kib), sum_free_kib = sum_free_kib + excluded.sum_free_kib,
                max_total_kib = MAX(max_total_kib, excluded.max_total_kib), first_at = MIN(first_at, excluded.first_at),
                last_at = MAX(last_at, excluded.last_at)
            """, arguments: range)
        try db.execute(sql: "INSERT INTO rollup (id, until_round) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET until_round = excluded.until_round",
                       arguments: [to])
        return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rounds WHERE id > ? AND id <= ?", arguments: [from, to]) ?? 0
    }

    /// Folds the hours that have ended by `now` (the retention pass does this hourly, before it thins).
    @discardableResult
    public func rollUp(now: Date) throws -> Int {
        let end = (now.timeIntervalSince1970 / 3600).rounded(.down) * 3600
        return try db.write { try Self.rollUp($0, before: end) }
    }
}
