import GuestModel

/// Plain-text tables of decisions, xl-style: fixed columns, sizes in M/G, one row per domain.
public enum DecisionTable {
    /// One row per domain of `decision`; `names` supplies domain names where known.
    public static func render(_ decision: Decision, names: [DomID: String] = [:]) -> String {
        let header = ["Name", "ID", "Mem", "Target", "Floor", "Ceiling", "Demand", "Weight", "Stall", "Report", "Reason"]
        var rows = [header]
        for o in decision.outcomes {
            rows.append([
                names[o.domid] ?? "dom\(o.domid)",
                String(o.domid.raw),
                formatSize(o.actual),
                formatSize(o.target) + (o.changed ? (o.target > o.previousTarget ? " ↑" : " ↓") : ""),
                formatSize(o.floor),
                formatSize(o.ceiling),
                formatSize(o.demand),
                formatFixed(o.weight, decimals: o.weight == o.weight.rounded() ? 0 : 2),
                o.stall.map { formatFixed($0 * 100, decimals: 2) + "%" } ?? "-",
                o.status.description,
                o.reason.rawValue,
            ])
        }
        return table(rows, rightAligned: [1, 2, 3, 4, 5, 6, 7, 8])
    }

    /// Host summary line for a decision.
    public static func summary(_ d: Decision) -> String {
        let phase: String
        switch d.phase {
        case .infeasible: phase = "INFEASIBLE (floors exceed host by \(formatSize(d.shortfall)))"
        case .contended: phase = "contended"
        case .uncontended: phase = "uncontended"
        }
        return "host: budget \(formatSize(d.budget)), Xen free \(formatSize(d.free)), reserve \(formatSize(d.reserve)), \(phase); "
            + "\(d.changes.count) target change(s)"
    }

    /// Lays out rows as aligned columns separated by two spaces.
    public static func table(_ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        guard let width = rows.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: width)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned.contains(i) ? pad + c : (i == r.count - 1 ? c : c + pad)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
