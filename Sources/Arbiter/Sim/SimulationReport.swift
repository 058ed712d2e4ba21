import Foundation
import GuestModel
import HostSimulator

/// How `arbiter simulate` shows results: a table (one row per policy) or the JSON contract.
public enum SimulationReport {
    public static func table(_ results: [PolicyMetrics], scenario: Scenario) -> String {
        var rows = [["policy", "stall s", "p99 s/min", "reclaimed GiB·h", "reclaimed %", "floor viol.", "changes",
                     "spike s (mean/max)", "Jain", "rejected", "refused"]]
        for m in results {
            let spike = m.spikeSatisfySeconds.map { formatFixed($0, decimals: 0) + "/" + formatFixed(m.spikeSatisfyMaxSeconds ?? $0, decimals: 0) } ?? "-"
            rows.append([m.policy, formatFixed(m.stallSeconds, decimals: 1), formatFixed(m.p99StallSeconds, decimals: 2),
                         formatFixed(m.reclaimedGiBHours, decimals: 1), formatFixed(m.reclaimedPct, decimals: 1),
                         String(m.floorViolations), String(m.targetChanges), spike, formatFixed(m.jainFairness, decimals: 2),
                         String(m.rejectedReports), String(m.refusedTargets)])
        }
        let header = "scenario \(scenario.name): \(scenario.guests.count) guests, \(formatSize(scenario.pool)) for guests "
            + "(\(formatFixed(scenario.pool.asDouble / Swift.max(1, scenario.meanUse.asDouble), decimals: 2))× their mean use), "
            + "\(formatFixed(scenario.hours, decimals: 2)) h, seed \(scenario.seed)"
        return header + "\n" + DecisionTable.table(rows, rightAligned: Set(1...10)) + "\n"
    }

    /// Per-guest breakdown of one policy's run.
    public static func guests(_ m: PolicyMetrics) -> String {
        var rows = [["guest", "stall s", "mean alloc", "min target", "max target", "end target"]]
        for g in m.guests {
            rows.append([g.name, formatFixed(g.stallSeconds, decimals: 1), formatSize(KiB(Int64(g.meanActual))),
                         formatSize(g.minTarget), formatSize(g.maxTarget), formatSize(g.endTarget)])
        }
        return "\(m.policy):\n" + DecisionTable.table(rows, rightAligned: [1, 2, 3, 4, 5]) + "\n"
    }

    struct Document: Encodable {
        var scenario: String
        var seed: UInt64
        var hours: Double
        var guests: Int
        var poolKiB: Int64
        var policies: [PolicyMetrics]
        enum CodingKeys: String, CodingKey {
            case scenario, seed, hours, guests, policies
            case poolKiB = "guest_memory_kib"
        }
    }

    /// The `--json` contract: `{"scenario": …, "seed": …, "policies": [{"policy": …, "stall_seconds": …, …}]}`.
    public static func json(_ results: [PolicyMetrics], scenario: Scenario) -> String {
        let doc = Document(scenario: scenario.name, seed: scenario.seed, hours: scenario.hours, guests: scenario.guests.count,
                           poolKiB: scenario.pool.value, policies: results)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? enc.encode(doc) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
