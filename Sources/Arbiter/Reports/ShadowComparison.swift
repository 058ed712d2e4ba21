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
        var t = [["Policy", "Domain", "Hours", "Pushed (mean)", "Shadow (mean)", "Would give more", "Would give less", "Largest gap"]]
        for r in rows {
            func pct(_ x: Double) -> String { formatFixed(100 * x / Swift.max(r.seconds, 1e-9), decimals: 1) + "%" }
            t.append([r.policy, r.domain, formatFixed(r.seconds / 3600, decimals: 2), formatSize(KiB(Int64(r.meanPushedKiB))),
                      formatSize(KiB(Int64(r.meanShadowKiB))), pct(r.moreSeconds), pct(r.lessSeconds), formatSize(KiB(r.maxDifferenceKiB))])
        }
        return "Shadow policies against the pushed targets (a gap of up to \(formatSize(band)) counts as agreement):\n"
            + DecisionTable.table(t, rightAligned: [2, 3, 4, 5, 6, 7]) + "\n"
    }
}

extension DecisionStore {
    /// What each shadow policy would have set beside what was pushed, per domain lifetime, between
    /// `since` and `until` (default: everything recorded).
    public func shadowComparison(since: Date?, until: Date?) throws -> [ShadowComparison] {
        let from = since?.timeIntervalSince1970 ?? 0
        let to = until?.timeIntervalSince1970 ?? Double.greatestFiniteMagnitude
        return try db.read { db in
            // Each domain lifetime's pushed-target steps and each shadow's steps, in time order. Rows from
            // before the period set the value at its start.
            struct Step { var at: Double; var policy: String?; var target: Int64 }
            var steps = [Int64: [Step]]()
            var names = [Int64: String]()
            var ends = [Int64: Double]()
            for r in try Row.fetchAll(db, sql: """
                SELECT a.domain_id, r.at, a.target_kib FROM allocations a JOIN rounds r ON r.id = a.round_id
                WHERE r.at <= ? AND a.domain_id IN (SELECT DISTINCT domain_id FROM shadow_targets) ORDER BY r.at, r.id
                """, arguments: [to]) {
                steps[r[0], default: []].append(Step(at: r[1], policy: nil, target: r[2]))
            }
            for r in try Row.fetchAll(db, sql: """
                SELECT s.domain_id, r.at, s.policy, s.target_kib FROM shadow_targets s JOIN rounds r ON r.id = s.round_id
                WHERE r.at <= ? ORDER BY r.at, r.id
                """, arguments: [to]) {
                steps[r[0], default: []].append(Step(at: r[1], policy: r[2], target: r[3]))
            }
            for r in try Row.fetchAll(db, sql: "SELECT id, name, last_seen, released FROM domains WHERE id IN (SELECT DISTINCT domain_id FROM shadow_targets)") {
                names[r[0]] = r[1]
                ends[r[0]] = Swift.min(to, (r[3] as Double?) ?? (r[2] as Double))
            }
            var out = [ShadowComparison]()
            for (domain, list) in steps {
                let sorted = list.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
                let policies = Set(sorted.compactMap(\.policy))
                let end = ends[domain] ?? to
                for policy in policies.sorted() {
                    var c = ShadowComparison(policy: policy, domain: names[domain] ?? "?", seconds: 0, meanPushedKiB: 0, meanShadowKiB: 0,
                                             moreSeconds: 0, lessSeconds: 0, maxDifferenceKiB: 0)
                    var pushed: Int64?, shadow: Int64?, last = from
                    func accrue(until t: Double) {
                        let a = Swift.max(last, from), b = Swift.min(t, end)
                        if let p = pushed, let s = shadow, b > a {
                            let dt = b - a
                            c.seconds += dt
                            c.meanPushedKiB += Double(p) * dt
                            c.meanShadowKiB += Double(s) * dt
                            if s - p > ShadowComparison.band.value { c.moreSeconds += dt }
                            if p - s > ShadowComparison.band.value { c.lessSeconds += dt }
                            if a >= from { c.maxDifferenceKiB = Swift.max(c.maxDifferenceKiB, abs(s - p)) }
                        }
                        last = Swift.max(last, t)
                    }
                    for s in sorted where s.policy == nil || s.policy == policy {
                        accrue(until: s.at)
                        if s.policy == nil { pushed = s.target } else { shadow = s.target }
                    }
                    accrue(until: end)
                    guard c.seconds > 0 else { continue }
                    c.meanPushedKiB /= c.seconds
                    c.meanShadowKiB /= c.seconds
                    out.append(c)
                }
            }
            return out.sorted { ($0.policy, $0.domain) < ($1.policy, $1.domain) }
        }
    }
}
