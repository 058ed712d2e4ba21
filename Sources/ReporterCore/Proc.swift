import GuestModel

/// The guest reporter's pure part: /proc text in, a protocol v1 report out. The files are the guest's
/// own kernel's (trusted here); parsing is still bounded and forgiving of what older kernels lack:
/// no PSI before 4.20, one `workingset_refault` counter before 5.9, no MemAvailable before 3.14.
public enum Proc {
    /// `/proc/meminfo`: `Key:   value kB` lines, by key, in KiB.
    public static func meminfo(_ text: String) -> [String: Int64] {
        var out = [String: Int64]()
        for line in text.split(separator: "\n").prefix(1000) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon])
            let fields = line[line.index(after: colon)...].split(separator: " ")
            if let first = fields.first, let v = Int64(first), v >= 0 { out[key] = v }
        }
        return out
    }

    /// `/proc/vmstat`: `name value` lines.
    public static func vmstat(_ text: String) -> [String: UInt64] {
        var out = [String: UInt64]()
        for line in text.split(separator: "\n").prefix(2000) {
            let f = line.split(separator: " ")
            if f.count == 2, let v = UInt64(f[1]) { out[String(f[0])] = v }
        }
        return out
    }

    /// `/proc/pressure/memory` (PSI).
    public struct Pressure: Equatable, Sendable {
        public var someAvg10: Double
        public var fullAvg10: Double
        public var someTotalUs: UInt64
        public var fullTotalUs: UInt64
    }

    public static func pressure(_ text: String) -> Pressure? {
        var some: (Double, UInt64)?, full: (Double, UInt64)?
        for line in text.split(separator: "\n").prefix(8) {
            let f = line.split(separator: " ")
            guard let kind = f.first else { continue }
            var avg10: Double?, total: UInt64?
            for kv in f.dropFirst() {
                let p = kv.split(separator: "=", maxSplits: 1)
                guard p.count == 2 else { continue }
                if p[0] == "avg10" { avg10 = Double(p[1]) }
                if p[0] == "total" { total = UInt64(p[1]) }
            }
            guard let a = avg10, a.isFinite, a >= 0, let t = total else { continue }
            if kind == "some" { some = (Swift.min(a, 100), t) } else if kind == "full" { full = (Swift.min(a, 100), t) }
        }
        guard let some else { return nil }
        // Kernels before 5.13 print no "full" line for the root cgroup on some configs: full = 0.
        let f = full ?? (0, 0)
        return Pressure(someAvg10: some.0, fullAvg10: Swift.min(f.0, some.0), someTotalUs: some.1, fullTotalUs: Swift.min(f.1, some.1))
    }

    /// A report from the three files (`pressure` nil when the kernel has no PSI), stamped `seqMs`.
    /// MemAvailable missing (before 3.14) is estimated as the kernel does it, roughly:
    /// MemFree + file LRU + reclaimable slab.
    public static func report(meminfo m: [String: Int64], vmstat v: [String: UInt64], pressure p: Pressure?, seqMs: UInt64) -> GuestReport? {
        guard let total = m["MemTotal"], total > 0 else { return nil }
        let estimate = (m["MemFree"] ?? 0) + (m["Active(file)"] ?? 0) + (m["Inactive(file)"] ?? 0) + (m["SReclaimable"] ?? 0)
        let available = Swift.min(total, m["MemAvailable"] ?? estimate)
        var r = GuestReport(source: .reporter, seq: seqMs, memTotal: KiB(total), memAvailable: KiB(available))
        func kib(_ key: String) -> KiB? { m[key].map { KiB(Swift.min($0, total)) } }
        r.memFree = kib("MemFree")
        r.buffers = kib("Buffers")
        r.cached = kib("Cached")
        // Disjoint on a consistent read; one that raced drops them.
        if (r.memFree?.value ?? 0) + (r.buffers?.value ?? 0) + (r.cached?.value ?? 0) > total { r.memFree = nil; r.buffers = nil; r.cached = nil }
        r.activeAnon = kib("Active(anon)")
        r.inactiveAnon = kib("Inactive(anon)")
        r.activeFile = kib("Active(file)")
        r.inactiveFile = kib("Inactive(file)")
        // Keep the LRU lists within MemTotal, as the arbiter checks (they always are on a real kernel).
        let lru = [r.activeAnon, r.inactiveAnon, r.activeFile, r.inactiveFile].reduce(Int64(0)) { $0 + ($1?.value ?? 0) }
        if lru > total { r.activeAnon = nil; r.inactiveAnon = nil; r.activeFile = nil; r.inactiveFile = nil }
        // Anon pages fit beside MemAvailable on a consistent read; one that raced an allocation drops them.
        let anon = (r.activeAnon?.value ?? 0) + (r.inactiveAnon?.value ?? 0)
        if anon + available > total { r.activeAnon = nil; r.inactiveAnon = nil }
        r.dirty = kib("Dirty")
        r.committedAS = m["Committed_AS"].map { KiB(Swift.min($0, Int64(1) << 40)) }
        if let st = m["SwapTotal"], let sf = m["SwapFree"] {
            r.swapTotal = KiB(st)
            r.swapFree = KiB(Swift.min(sf, st))
        }
        if let p {
            r.psiSomeAvg10 = p.someAvg10
            r.psiFullAvg10 = p.fullAvg10
            r.counters.psiSomeTotalUs = p.someTotalUs
            r.counters.psiFullTotalUs = p.fullTotalUs
        }
        r.counters.pgmajfault = v["pgmajfault"]
        if let anon = v["workingset_refault_anon"], let file = v["workingset_refault_file"] {
            r.counters.refaultAnon = anon
            r.counters.refaultFile = file
        } else if let all = v["workingset_refault"] {
            r.counters.refaultFile = all          // before 5.9: one counter, mostly page cache
        }
        r.counters.pswpin = v["pswpin"]
        r.counters.pswpout = v["pswpout"]
        return r
    }
}
