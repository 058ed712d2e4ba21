import GuestModel

/// Real memory traces in the normalised CSV format: `vm_id,t_seconds,mem_provisioned_kb,mem_used_kb`
/// with a header row and any extra columns ignored (in any order, found by name). Each vm_id becomes one
/// guest whose working set follows `mem_used_kb` and whose static-max is `mem_provisioned_kb`.
public enum Trace {
    /// One VM's samples, sorted by time.
    public struct Series: Sendable, Equatable {
        public var times: [Double]
        public var values: [Double]

        /// Sample-and-hold between samples (a trace says nothing about what happened in between; holding
        /// the last value is the honest reading). Before the first sample, the first value.
        public func value(at t: Double) -> Double {
            guard let first = times.first else { return 0 }
            if t <= first { return values[0] }
            // Binary search for the last sample at or before t.
            var lo = 0, hi = times.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if times[mid] <= t { lo = mid } else { hi = mid - 1 }
            }
            return values[lo]
        }

        public var duration: Double { (times.last ?? 0) - (times.first ?? 0) }
    }

    public struct VM: Sendable, Equatable {
        public var id: String
        public var provisioned: KiB
        public var series: Series
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses a whole CSV text. VMs come back in order of first appearance; samples of each VM are sorted
    /// by time (duplicates keep the last). `maxVMs` stops after that many distinct vm_ids.
    public static func parse(_ text: String, maxVMs: Int = Int.max) throws(ParseError) -> [VM] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).makeIterator()
        guard let headerLine = lines.next() else { throw ParseError(line: 1, message: "empty file") }
        let header = headerLine.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmed.lowercased() }
        func column(_ name: String) throws(ParseError) -> Int {
            guard let i = header.firstIndex(of: name) else {
                throw ParseError(line: 1, message: "missing column \(name) (need vm_id,t_seconds,mem_provisioned_kb,mem_used_kb)")
            }
            return i
        }
        let cID = try column("vm_id"), cT = try column("t_seconds"), cP = try column("mem_provisioned_kb"), cU = try column("mem_used_kb")
        let needed = Swift.max(cID, cT, cP, cU)

        var order = [String]()
        var index = [String: Int]()
        var samples = [[(Double, Double)]]()
        var provisioned = [Double]()
        var lineNo = 1
        while let raw = lines.next() {
            lineNo += 1
            let line = raw.trimmed
            if line.isEmpty { continue }
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count > needed else { throw ParseError(line: lineNo, message: "expected at least \(needed + 1) fields, got \(f.count)") }
            let id = String(f[cID].trimmed)
            guard !id.isEmpty else { throw ParseError(line: lineNo, message: "empty vm_id") }
            guard let t = Double(f[cT].trimmed), t.isFinite, t >= 0 else { throw ParseError(line: lineNo, message: "bad t_seconds '\(f[cT].prefix(20))'") }
            guard let p = Double(f[cP].trimmed), p.isFinite, p > 0, p < 1e12 else {
                throw ParseError(line: lineNo, message: "bad mem_provisioned_kb '\(f[cP].prefix(20))'")
            }
            guard let u = Double(f[cU].trimmed), u.isFinite, u >= 0, u < 1e12 else {
                throw ParseError(line: lineNo, message: "bad mem_used_kb '\(f[cU].prefix(20))'")
            }
            var slot = index[id]
            if slot == nil {
                if order.count >= maxVMs { continue }
                slot = order.count
                index[id] = slot
                order.append(id)
                samples.append([])
                provisioned.append(p)
            }
            samples[slot!].append((t, Swift.min(u, p)))
            provisioned[slot!] = Swift.max(provisioned[slot!], p)
        }
        guard !order.isEmpty else { throw ParseError(line: 1, message: "no samples after the header") }
        return order.indices.map { i in
            var s = samples[i]
            s.sort { $0.0 < $1.0 }
            var times = [Double](), values = [Double]()
            for (t, v) in s {
                if let last = times.last, last == t { values[values.count - 1] = v } else { times.append(t); values.append(v) }
            }
            // Re-base each VM's time so its first sample is t = 0 (traces start at arbitrary offsets).
            let t0 = times[0]
            return VM(id: order[i], provisioned: KiB(Int64(provisioned[i])).pageFloor,
                      series: Series(times: times.map { $0 - t0 }, values: values))
        }
    }
}

extension Substring {
    var trimmed: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" || f == "\"" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" || l == "\"" { s = s.dropLast() }
        return s
    }
}
