import Foundation
import GRDB

extension DecisionStore {
    /// Retention: first the hours that have ended are folded into the hourly figures (so reports keep
    /// every decision's figures after thinning), and those before the last full hour compacted; then
    /// rounds older than `downsampleAfter`, rows or compacted, keep only one full snapshot per `interval`
    /// (and every round that raised an alert); everything older than
    /// `retain` goes, with its rejections, alerts and hourly figures, and the domain lifetimes that no
    /// longer have any row. Returns the rounds removed.
    @discardableResult
    public func prune(now: Date, downsampleAfter: TimeInterval, retain: TimeInterval, interval: TimeInterval = 600) throws -> Int {
        let t = now.timeIntervalSince1970
        let cutoff = t - downsampleAfter
        return try db.write { db in
            let hour = (t / 3600).rounded(.down) * 3600
            try Self.rollUp(db, before: hour)
            try Self.compact(db, before: hour - 3600)
            // Only folded rounds are thinned (a short downsample_after_days must not thin an hour before its
            // figures are taken).
            try db.execute(sql: """
                DELETE FROM rounds WHERE at < ? AND id <= (SELECT COALESCE(MAX(until_round), 0) FROM rollup)
                  AND id NOT IN (SELECT MIN(id) FROM rounds WHERE at < ? AND full_snapshot = 1 GROUP BY CAST(at / ? AS INTEGER))
                  AND id NOT IN (SELECT round_id FROM alerts WHERE round_id IS NOT NULL)
                """, arguments: [cutoff, cutoff, Swift.max(1, interval)])
            var removed = db.changesCount
            removed += try Self.thinCompact(db, cutoff: cutoff, interval: Swift.max(1, interval))
            try db.execute(sql: "DELETE FROM rounds WHERE at < ?", arguments: [t - retain])
            removed += db.changesCount
            try db.execute(sql: "DELETE FROM alerts WHERE at < ?", arguments: [t - retain])
            try db.execute(sql: "DELETE FROM rejections WHERE at < ?", arguments: [t - retain])
            let oldest = ((t - retain) / 3600).rounded(.down)
            try db.execute(sql: "DELETE FROM hourly WHERE hour < ?", arguments: [oldest])
            try db.execute(sql: "DELETE FROM hourly_host WHERE hour < ?", arguments: [oldest])
            removed += try Int(Double.fetchOne(db, sql: "SELECT TOTAL(round_count) FROM compact_hours WHERE hour < ?", arguments: [oldest]) ?? 0)
            try db.execute(sql: "DELETE FROM compact_hours WHERE hour < ?", arguments: [oldest])
            try db.execute(sql: """
                DELETE FROM domains WHERE released IS NOT NULL AND released < ?
                  AND id NOT IN (SELECT domain_id FROM allocations) AND id NOT IN (SELECT domain_id FROM rejections)
                  AND id NOT IN (SELECT domain_id FROM shadow_targets) AND id NOT IN (SELECT domain_id FROM hourly)
                """, arguments: [t - retain])
            return removed
        }
    }
}
