import Foundation
import GuestModel

/// The HTML report: one self-contained page (inline CSS and SVG, no scripts, no external resources)
/// with a host summary, an SVG chart per domain and the alert list.
extension Report {
    public func html() -> String {
        var body = """
            <h1>Xen memory arbiter — report</h1>
            <p class="period">\(esc(Report.time(from))) – \(esc(Report.time(until))) · \(rounds) rounds · \(domains.count) domains\(sampled ? " · charts from sampled snapshots" : "")</p>
            <section class="host"><h2>Host</h2><table>
            <tr><th>Memory for guests</th><td>\(formatSize(KiB(hostTotalKiB)))</td></tr>
            <tr><th>Xen free (mean / min)</th><td>\(formatSize(KiB(meanFreeKiB))) / \(formatSize(KiB(minFreeKiB)))</td></tr>
            <tr><th>Rounds by phase</th><td>\(esc(phases.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))</td></tr>
            </table></section>
            <section class="summary"><h2>Domains</h2><table>
            <tr><th>Domain</th><th>ID</th><th>Mean memory</th><th>Target min–max</th><th>Changes</th><th>Max stall</th><th>Rejected reports</th><th>Last reason</th></tr>

            """
        for d in domains {
            body += "<tr><td><a href=\"#d\(d.domid)-\(esc(d.name))\">\(esc(d.name))</a></td><td>\(d.domid)</td><td>\(formatSize(KiB(d.meanActualKiB)))</td>"
                + "<td>\(formatSize(KiB(d.minTargetKiB)))–\(formatSize(KiB(d.maxTargetKiB)))</td><td>\(d.targetChanges)</td>"
                + "<td>\(formatFixed(d.maxStall * 100, decimals: 1))%</td><td>\(d.rejections)</td><td>\(esc(d.points.last?.reason.description ?? "-"))</td></tr>\n"
        }
        body += "</table></section>\n<section class=\"charts\"><h2>Over time</h2>\n"
        body += "<p class=\"legend\"><span class=\"k mem\"></span>memory <span class=\"k tgt\"></span>target <span class=\"k alloc\"></span>allocation "
            + "<span class=\"k flr\"></span>floor <span class=\"k stall\"></span>stall (right axis, %)</p>\n"
        for d in domains { body += chart(d) }
        body += "</section>\n<section class=\"alerts\"><h2>Alerts</h2>\n"
        if alerts.isEmpty { body += "<p>No alerts.</p>\n" } else {
            body += "<ul>\n" + alerts.map { "<li><time>\(esc(Report.time($0.at)))</time> <b>\(esc($0.kind))</b> \(esc($0.message))</li>" }.joined(separator: "\n") + "\n</ul>\n"
        }
        body += "</section>\n"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>arbiter report</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
            h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 24px 0 8px; } h3 { font-size: 14px; margin: 16px 0 4px; }
            table { border-collapse: collapse; } th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
            td:nth-child(n+2) { font-variant-numeric: tabular-nums; }
            .period { color: #666; margin: 0; }
            svg { background: #fafafa; border: 1px solid #e4e4e4; }
            .legend .k { display: inline-block; width: 18px; height: 3px; margin: 0 4px 3px 12px; vertical-align: middle; }
            .k.mem { background: #1f77b4; } .k.tgt { background: #ff7f0e; } .k.alloc { background: #2ca02c; } .k.flr { background: #d62728; }
            .k.stall { background: rgba(148,103,189,.45); height: 10px; }
            </style></head><body>
            \(body)</body></html>

            """
    }

    /// One domain's chart: memory, target, allocation and floor as step lines; stall as a shaded area.
    func chart(_ d: Domain) -> String {
        let w = 900.0, h = 180.0, left = 60.0, right = 40.0, top = 10.0, bottom = 24.0
        let pts = Report.thin(d.points, to: 600)
        guard let first = pts.first, let last = pts.last else { return "" }
        let t0 = first.at, t1 = Swift.max(last.at, t0 + 1)
        let yMax = Double(Swift.max(d.ceilingKiB, pts.map { Swift.max($0.actualKiB, $0.targetKiB, $0.allocationKiB) }.max() ?? 1, 1))
        func x(_ t: Double) -> Double { left + (t - t0) / (t1 - t0) * (w - left - right) }
        func y(_ k: Int64) -> Double { top + (1 - Double(k) / yMax) * (h - top - bottom) }
        func ys(_ s: Double) -> Double { top + (1 - Swift.min(1, s)) * (h - top - bottom) }
        func step(_ value: (Point) -> Int64) -> String {
            var path = ""
            for (i, p) in pts.enumerated() {
                let px = formatFixed(x(p.at), decimals: 1), py = formatFixed(y(value(p)), decimals: 1)
                path += i == 0 ? "M\(px),\(py)" : " H\(px) V\(py)"
            }
            return path + " H\(formatFixed(x(t1), decimals: 1))"
        }
        var stall = "M\(formatFixed(x(t0), decimals: 1)),\(formatFixed(ys(0), decimals: 1))"
        for p in pts { stall += " H\(formatFixed(x(p.at), decimals: 1)) V\(formatFixed(ys(p.stall ?? 0), decimals: 1))" }
        stall += " H\(formatFixed(x(t1), decimals: 1)) V\(formatFixed(ys(0), decimals: 1)) Z"
        var grid = ""
        for k in 0...4 {
            let v = Int64(yMax * Double(k) / 4)
            grid += "<line x1=\"\(left)\" x2=\"\(w - right)\" y1=\"\(formatFixed(y(v), decimals: 1))\" y2=\"\(formatFixed(y(v), decimals: 1))\" stroke=\"#e6e6e6\"/>"
                + "<text x=\"\(left - 6)\" y=\"\(formatFixed(y(v) + 4, decimals: 1))\" text-anchor=\"end\">\(formatSize(KiB(v)))</text>"
        }
        grid += "<text x=\"\(w - right + 6)\" y=\"\(top + 8)\">100%</text><text x=\"\(w - right + 6)\" y=\"\(h - bottom)\">0%</text>"
        grid += "<text x=\"\(left)\" y=\"\(h - 6)\">\(esc(Report.time(t0)))</text>"
            + "<text x=\"\(w - right)\" y=\"\(h - 6)\" text-anchor=\"end\">\(esc(Report.time(t1)))</text>"
        return """
            <h3 id="d\(d.domid)-\(esc(d.name))">\(esc(d.name)) <small>(domid \(d.domid), ceiling \(formatSize(KiB(d.ceilingKiB))))</small></h3>
            <svg width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-size="10" fill="#555" role="img" aria-label="\(esc(d.name)) memory over time">
            \(grid)
            <path d="\(stall)" fill="rgba(148,103,189,.35)" stroke="none"/>
            <path d="\(step { $0.floorKiB })" fill="none" stroke="#d62728" stroke-width="1.2"/>
            <path d="\(step { $0.allocationKiB })" fill="none" stroke="#2ca02c" stroke-width="1.2" stroke-dasharray="2,2"/>
            <path d="\(step { $0.targetKiB })" fill="none" stroke="#ff7f0e" stroke-width="1.6"/>
            <path d="\(step { $0.actualKiB })" fill="none" stroke="#1f77b4" stroke-width="1.6"/>
            </svg>

            """
    }

    /// Keeps a chart readable and small: at most `n` points, each the last of its time bucket with the
    /// bucket's highest stall (so a short stall spike is never thinned away).
    static func thin(_ points: [Point], to n: Int) -> [Point] {
        guard points.count > n, let first = points.first?.at, let last = points.last?.at, last > first else { return points }
        var out = [Point]()
        let width = (last - first) / Double(n)
        var bucket = -1
        for p in points {
            let b = Int((p.at - first) / width)
            if b != bucket || out.isEmpty {
                out.append(p)
                bucket = b
            } else {
                let worst = Swift.max(out[out.count - 1].stall ?? 0, p.stall ?? 0)
                out[out.count - 1] = p
                if worst > 0 { out[out.count - 1].stall = worst }
            }
        }
        return out
    }

    func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
