import Foundation
import GRDB
import GuestModel

/// Where a shadow policy (`[daemon] shadow`) would have differed from what was pushed, per domain: the
/// targets are step functions (each row holds until the next), integrated over the period.
public struct ShadowComparison: Sendable, Equatable, Codable {
    public var policy: String
    public var domain: String
    /// Seconds both the pushed target and the shadow's were known.
    public var seconds: Double
    public var meanPushedKiB: Double
    public var meanShadowKiB: Double
    /// Seconds the shadow would have given more (less) than was pushed, by more than `band`.
    public var moreSeconds: Double
    public var lessSeconds: Double
    public var maxDifferenceKiB: Int64

    /// Differences up to this are agreement.
    public static let band = KiB(mib: 16)

    enum CodingKeys: String, CodingKey {
        case policy, domain, seconds
        case meanPushedKiB = "mean_pushed_kib", meanShadowKiB = "mean_shadow_kib"
        case moreSeconds = "more_seconds", lessSeconds = "less_seconds", maxDifferenceKiB = "max_difference_kib"
    }

    public static func text(_ rows: [ShadowComparison]) -> String {
        guard !rows.isEmpty else { return "no shadow decisions recorded in this period (set [daemon] shadow = [\"qmemman\", …])\n" }
        var t = [["Policy", "Domain", "Compared", "Pushed (mean)", "Shadow (mean)", "Would give more", "Would give less", "Largest gap"]]
        for r in rows {
            func pct(_ x: Double) -> String { formatFixed(100 * x / Swift.max(r.seconds, 1e-9), decimals: 1) + "%" }
            let span = r.seconds < 120 ? formatFixed(r.seconds, decimals: 0) + " s"
                : r.seconds < 7200 ? formatFixed(r.seconds / 60, decimals: 0) + " min" : formatFixed(r.seconds / 3600, decimals: 1) + " h"
            t.append([r.policy, r.domain, span, formatSize(KiB(Int64(r.meanPushedKiB))),
                      formatSize(KiB(Int64(r.meanShadowKiB))), pct(r.moreSeconds), pct(r.lessSeconds), formatSize(KiB(r.maxDifferenceKiB))])
        }
        return "Shadow policies against the pushed targets (a gap of up to \(formatSize(band)) counts as agreement):\n"
            + DecisionTable.table(t, rightAligned: [2, 3, 4, 5, 6, 7]) + "\n"
    }
}

extension DecisionStore {
    /// Rounds further apart than this are taken for a daemon that was down: nothing is compared across.
    public static let comparisonGapSeconds = 600.0

    /// What each shadow policy would have set beside what was pushed, per domain lifetime, between
    /// `since` and `until` (default: everything recorded). A recorded target holds until the next row of
    /// its kind, only across rounds in which that shadow ran, and never across a gap in the rounds.
    public func shadowComparison(since: Date?, until: Date?) throws -> [ShadowComparison] {
        let from = since?.timeIntervalSince1970 ?? 0
        let to = until?.timeIntervalSince1970 ?? Double.greatestFiniteMagnitude
        return try db.read { db in
            struct Step { var round: Int64; var policy: String?; var target: Int64 }
            var steps = [Int64: [Step]]()
            for r in try Row.fetchAll(db, sql: """
                SELECT a.domain_id, a.round_id, a.target_kib FROM allocations a JOIN rounds r ON r.id = a.round_id
                WHERE r.at <= ? AND a.domain_id IN (SELECT DISTINCT domain_id FROM shadow_targets)
                """, arguments: [to]) {
                steps[r[0], default: []].append(Step(round: r[1], policy: nil, target: r[2]))
            }
            for r in try Row.fetchAll(db, sql: """
                SELECT s.domain_id, s.round_id, s.policy, s.target_kib FROM shadow_targets s JOIN rounds r ON r.id = s.round_id
                WHERE r.at <= ?
                """, arguments: [to]) {
                steps[r[0], default: []].append(Step(round: r[1], policy: r[2], target: r[3]))
            }
            guard !steps.isEmpty else { return [] }
            // A domain's pushed target holds from its last row, which may be in a compact hour (hours without
            // shadows are compacted): its newest compacted row seeds it, in round order like any other.
            for (domain, row) in try Self.latestCompacted(db, domains: Array(steps.keys)) where row.round.at <= to {
                steps[domain, default: []].append(Step(round: row.round.id, policy: nil, target: row.row.target))
            }
            let rounds = try Row.fetchAll(db, sql: "SELECT id, at, shadows FROM rounds WHERE at <= ? ORDER BY at, id", arguments: [to]).map {
                (id: $0[0] as Int64, at: $0[1] as Double, shadows: Set(($0[2] as String).split(separator: ",").map(String.init)))
            }
            // A live domain was seen in the last round (its `last_seen` is brought up to date once a minute).
            var names = [Int64: String](), ends = [Int64: Double]()
            for r in try Row.fetchAll(db, sql: "SELECT id, name, last_seen, released FROM domains WHERE id IN (SELECT DISTINCT domain_id FROM shadow_targets)") {
                names[r[0]] = r[1]
                ends[r[0]] = Swift.min(to, (r[3] as Double?) ?? Swift.max(r[2] as Double, rounds.last?.at ?? 0))
            }
            var out = [ShadowComparison]()
            for (domain, list) in steps {
                let sorted = list.sorted { $0.round < $1.round }
                let end = ends[domain] ?? to
                var acc = [String: ShadowComparison]()
                var pushed: Int64?
                var shadow = [String: Int64]()
                var next = 0
                for k in rounds.indices {
                    while next < sorted.count && sorted[next].round <= rounds[k].id {
                        let s = sorted[next]
                        if let p = s.policy { shadow[p] = s.target } else { pushed = s.target }
                        next += 1
                    }
                    let a = Swift.max(rounds[k].at, from)
                    let b = Swift.min(k + 1 < rounds.count ? rounds[k + 1].at : end, end)
                    guard let p = pushed, b > a, b - rounds[k].at <= Self.comparisonGapSeconds else { continue }
                    for policy in rounds[k].shadows {
                        guard let s = shadow[policy] else { continue }
                        var c = acc[policy] ?? ShadowComparison(policy: policy, domain: names[domain] ?? "?", seconds: 0, meanPushedKiB: 0,
                                                                meanShadowKiB: 0, moreSeconds: 0, lessSeconds: 0, maxDifferenceKiB: 0)
                        let dt = b - a
                        c.seconds += dt
                        c.meanPushedKiB += Double(p) * dt
                        c.meanShadowKiB += Double(s) * dt
                        if s - p > ShadowComparison.band.value { c.moreSeconds += dt }
                        if p - s > ShadowComparison.band.value { c.lessSeconds += dt }
                        c.maxDifferenceKiB = Swift.max(c.maxDifferenceKiB, abs(s - p))
                        acc[policy] = c
                    }
                }
                for var c in acc.values where c.seconds > 0 {
                    c.meanPushedKiB /= c.seconds
                    c.meanShadowKiB /= c.seconds
                    out.append(c)
                }
            }
            return out.sorted { ($0.policy, $0.domain) < ($1.policy, $1.domain) }
        }
    }
}
