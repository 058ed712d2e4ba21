/// The reporter protocol (see `Report.swift` for the line and its rules): the field table, the
/// parser that reads a line or the legacy keys, and the writer that produces a line from the same table.

/// Bounds applied while parsing. The defaults are far above any real machine and far below what
/// would overflow arithmetic later (a KiB value of 2^42 is 4 PiB).
public struct ReportLimits: Sendable, Equatable {
    public var maxLineBytes = 1024
    public var maxFields = 32
    public var maxValueBytes = 20
    public var maxKiB: UInt64 = 1 << 42
    public var maxCounter: UInt64 = 1 << 62
    /// MemTotal (or legacy meminfo_total) below this (16 MiB) is no real Linux guest: `out-of-range`,
    /// checked after the relations (a tiny and inconsistent report is `inconsistent`).
    public var minMemTotalKiB: UInt64 = 16 * 1024
    public init() {}
}

/// Parses reporter lines and legacy keys into `GuestReport`s. Stateless; sequence and counter checks
/// that need history live in `ReportTracker`.
public enum ReportParser {
    /// Protocol version 1's fields, in documentation order: each key, and where its value lives in a
    /// `GuestReport`. This table drives the parser, the writer (`GuestReport.line()`) and `keys`.
    @usableFromInline enum Field: Int, CaseIterable, Sendable {
        case v, seq, memTotal, memAvailable, memFree, buffers, cached, activeAnon, inactiveAnon, activeFile, inactiveFile, dirty
        case committedAS, swapTotal, swapFree, psiSomeAvg10, psiFullAvg10, psiSomeTotal, psiFullTotal
        case pgmajfault, refaultAnon, refaultFile, pswpin, pswpout

        /// Where a field's value goes, which also says how it is spelled.
        enum Slot {
            case version, sequence, memTotal, memAvailable
            case kib(WritableKeyPath<GuestReport, KiB?>)
            case percent(WritableKeyPath<GuestReport, Double?>)
            case counter(WritableKeyPath<GuestReport, UInt64?>)
        }

        var spec: (key: String, slot: Slot) {
            switch self {
            case .v: ("v", .version)
            case .seq: ("seq", .sequence)
            case .memTotal: ("mem_total_kb", .memTotal)
            case .memAvailable: ("mem_available_kb", .memAvailable)
            case .memFree: ("mem_free_kb", .kib(\.memFree))
            case .buffers: ("buffers_kb", .kib(\.buffers))
            case .cached: ("cached_kb", .kib(\.cached))
            case .activeAnon: ("active_anon_kb", .kib(\.activeAnon))
            case .inactiveAnon: ("inactive_anon_kb", .kib(\.inactiveAnon))
            case .activeFile: ("active_file_kb", .kib(\.activeFile))
            case .inactiveFile: ("inactive_file_kb", .kib(\.inactiveFile))
            case .dirty: ("dirty_kb", .kib(\.dirty))
            case .committedAS: ("committed_as_kb", .kib(\.committedAS))
            case .swapTotal: ("swap_total_kb", .kib(\.swapTotal))
            case .swapFree: ("swap_free_kb", .kib(\.swapFree))
            case .psiSomeAvg10: ("psi_some_avg10", .percent(\.psiSomeAvg10))
            case .psiFullAvg10: ("psi_full_avg10", .percent(\.psiFullAvg10))
            case .psiSomeTotal: ("psi_some_total_us", .counter(\.counters.psiSomeTotalUs))
            case .psiFullTotal: ("psi_full_total_us", .counter(\.counters.psiFullTotalUs))
            case .pgmajfault: ("pgmajfault", .counter(\.counters.pgmajfault))
            case .refaultAnon: ("workingset_refault_anon", .counter(\.counters.refaultAnon))
            case .refaultFile: ("workingset_refault_file", .counter(\.counters.refaultFile))
            case .pswpin: ("pswpin", .counter(\.counters.pswpin))
            case .pswpout: ("pswpout", .counter(\.counters.pswpout))
            }
        }
        var key: String { spec.key }
        var isRequired: Bool {
            switch spec.slot {
            case .version, .sequence, .memTotal, .memAvailable: true
            default: false
            }
        }

        /// How a field's value is spelled and stored, without the key path (the parser's hot loop).
        enum Kind: Sendable { case version, sequence, memTotal, memAvailable, kib, percent, counter }
        static let count = allCases.count
        /// Per field: its kind, and for optional fields the byte offset of its property in `GuestReport`
        /// (from the table's key path, so the table stays the one mapping; a key-path write costs more
        /// than the rest of a field's parse).
        static let layout: [(kind: Kind, offset: Int)] = allCases.map { f in
            switch f.spec.slot {
            case .version: (.version, -1)
            case .sequence: (.sequence, -1)
            case .memTotal: (.memTotal, -1)
            case .memAvailable: (.memAvailable, -1)
            case .kib(let p): (.kib, MemoryLayout<GuestReport>.offset(of: p)!)
            case .percent(let p): (.percent, MemoryLayout<GuestReport>.offset(of: p)!)
            case .counter(let p): (.counter, MemoryLayout<GuestReport>.offset(of: p)!)
            }
        }
        static let required = allCases.filter(\.isRequired)
        /// " key=" of every field, one after another, and where each one is in it (the writer's prefixes).
        static let prefixBytes: [UInt8] = allCases.flatMap { Array(" \($0.key)=".utf8) }
        static let prefixRanges: [Range<Int>] = {
            var at = 0
            return allCases.map { f in defer { at += f.key.utf8.count + 2 }; return at..<(at + f.key.utf8.count + 2) }
        }()
    }

    private static let keyBytes: [[UInt8]] = Field.allCases.map { Array($0.key.utf8) }

    /// The key names of protocol version 1, in documentation order.
    public static var keys: [String] { Field.allCases.map(\.key) }

    /// Parses one `~/data/pressure` value.
    public static func parse(_ line: String, limits: ReportLimits = ReportLimits()) -> Result<GuestReport, ReportRejection> {
        var line = line
        return line.withUTF8 { parse($0, limits: limits) }
    }

    /// Parses one `~/data/pressure` value from raw bytes as read from xenstore.
    public static func parse(_ raw: UnsafeBufferPointer<UInt8>, limits: ReportLimits = ReportLimits()) -> Result<GuestReport, ReportRejection> {
        var n = raw.count
        if n > limits.maxLineBytes { return .failure(.tooLong(bytes: n, limit: limits.maxLineBytes)) }
        // A single trailing newline (what `echo` writes) is tolerated.
        if n > 0 && raw[n - 1] == 0x0A { n -= 1 }
        if n == 0 { return .failure(.empty) }
        var tokens = 0
        for i in 0..<n {
            let b = raw[i]
            if b < 0x20 || b > 0x7E { return .failure(.invalidCharacter(offset: i)) }
            if b == 0x20 {
                if i == 0 || i == n - 1 || raw[i - 1] == 0x20 { return .failure(.badSpacing(offset: i)) }
            } else if i == 0 || raw[i - 1] == 0x20 { tokens += 1 }
        }
        if tokens > limits.maxFields { return .failure(.tooManyFields(limit: limits.maxFields)) }

        var r = GuestReport(source: .reporter, seq: nil, memTotal: .zero, memAvailable: .zero)
        var seen: UInt64 = 0              // one bit per field (the table has fewer than 64)
        var i = 0
        while i < n {
            if raw[i] == 0x20 { i += 1; continue }
            var j = i
            while j < n && raw[j] != 0x20 { j += 1 }
            // token = raw[i..<j]
            var eq = i
            while eq < j && raw[eq] != 0x3D { eq += 1 }
            if eq == j || eq == i || eq == j - 1 {
                return .failure(.malformedField(text(raw, i, j)))
            }
            guard let field = lookup(raw, i, eq) else { return .failure(.unknownKey(text(raw, i, eq))) }
            let bit: UInt64 = 1 << UInt64(field.rawValue)
            if seen & bit != 0 { return .failure(.duplicateKey(field.key)) }
            seen |= bit
            let vs = eq + 1
            let vlen = j - vs
            if vlen > limits.maxValueBytes { return .failure(.valueTooLong(key: field.key, length: vlen)) }
            let (kind, offset) = Field.layout[field.rawValue]
            switch kind {
            case .version:
                if !(vlen == 1 && raw[vs] == 0x31) { return .failure(.unsupportedVersion(text(raw, vs, j))) }
            case .sequence, .memTotal, .memAvailable, .kib, .counter:
                let bound = kind == .sequence || kind == .counter ? limits.maxCounter : limits.maxKiB
                switch BoundedDecimal.parse(raw, vs, j, bound: bound) {
                case .success(let v):
                    switch kind {
                    case .sequence: r.seq = v
                    case .memTotal: r.memTotal = KiB(Int64(v))
                    case .memAvailable: r.memAvailable = KiB(Int64(v))
                    case .kib: withUnsafeMutableBytes(of: &r) { $0.storeBytes(of: KiB(Int64(v)) as KiB?, toByteOffset: offset, as: KiB?.self) }
                    case .counter: withUnsafeMutableBytes(of: &r) { $0.storeBytes(of: v as UInt64?, toByteOffset: offset, as: UInt64?.self) }
                    case .version, .percent: break
                    }
                case .failure(let f): return .failure(f.rejection(key: field.key, value: text(raw, vs, j)))
                }
            case .percent:
                switch BoundedDecimal.parseFraction(raw, vs, j) {
                case .success(let v):
                    if v > 100 { return .failure(.outOfRange(key: field.key, value: text(raw, vs, j))) }
                    withUnsafeMutableBytes(of: &r) { $0.storeBytes(of: v as Double?, toByteOffset: offset, as: Double?.self) }
                case .failure(let f): return .failure(f.rejection(key: field.key, value: text(raw, vs, j)))
                }
            }
            i = j
        }

        for required in Field.required where seen & (1 << UInt64(required.rawValue)) == 0 {
            return .failure(.missingKey(required.key))
        }
        if let problem = consistencyProblem(r) { return .failure(.inconsistent(problem)) }
        if UInt64(r.memTotal.value) < limits.minMemTotalKiB { return .failure(.outOfRange(key: Field.memTotal.key, value: String(r.memTotal.value))) }
        return .success(r)
    }

    /// Parses the legacy XenServer-style keys. `free` is MemAvailable where the agent has it
    /// (xe-guest-utilities), otherwise MemFree: either way it is what the guest could give back.
    public static func parseLegacy(total: String, free: String, limits: ReportLimits = ReportLimits()) -> Result<GuestReport, ReportRejection> {
        var t = Array(total.utf8)
        var f = Array(free.utf8)
        return t.withUnsafeMutableBufferPointer { tb in
            f.withUnsafeMutableBufferPointer { fb in
                parseLegacy(total: UnsafeBufferPointer(tb), free: UnsafeBufferPointer(fb), limits: limits)
            }
        }
    }

    public static func parseLegacy(total: UnsafeBufferPointer<UInt8>, free: UnsafeBufferPointer<UInt8>, limits: ReportLimits = ReportLimits()) -> Result<GuestReport, ReportRejection> {
        func one(_ raw: UnsafeBufferPointer<UInt8>, _ key: String) -> Result<UInt64, ReportRejection> {
            var n = raw.count
            if n > 0 && raw[n - 1] == 0x0A { n -= 1 }
            if n == 0 { return .failure(.missingKey(key)) }
            if n > limits.maxValueBytes { return .failure(.valueTooLong(key: key, length: n)) }
            for i in 0..<n where raw[i] < 0x20 || raw[i] > 0x7E { return .failure(.invalidCharacter(offset: i)) }
            return BoundedDecimal.parse(raw, 0, n, bound: limits.maxKiB).mapError { $0.rejection(key: key, value: text(raw, 0, n)) }
        }
        let t: UInt64, f: UInt64
        switch one(total, "meminfo_total") { case .success(let v): t = v; case .failure(let e): return .failure(e) }
        switch one(free, "meminfo_free") { case .success(let v): f = v; case .failure(let e): return .failure(e) }
        if t == 0 { return .failure(.inconsistent("meminfo_total is 0")) }
        if f > t { return .failure(.inconsistent("meminfo_free \(f) > meminfo_total \(t)")) }
        if t < limits.minMemTotalKiB { return .failure(.outOfRange(key: "meminfo_total", value: String(t))) }
        return .success(GuestReport(source: .legacy, seq: nil, memTotal: KiB(Int64(t)), memAvailable: KiB(Int64(f))))
    }

    /// Relations every real /proc/meminfo satisfies. A report that breaks one is lying or corrupt.
    static func consistencyProblem(_ r: GuestReport) -> String? {
        let total = r.memTotal.value
        if total == 0 { return "mem_total_kb is 0" }
        if r.memAvailable.value > total { return "mem_available_kb \(r.memAvailable.value) > mem_total_kb \(total)" }
        let lru = [r.activeAnon, r.inactiveAnon, r.activeFile, r.inactiveFile].reduce(Int64(0)) { $0 + ($1?.value ?? 0) }
        if lru > total { return "LRU lists (\(lru) KiB) exceed mem_total_kb \(total)" }
        if let d = r.dirty, d.value > total { return "dirty_kb exceeds mem_total_kb" }
        let pages = (r.memFree?.value ?? 0) + (r.buffers?.value ?? 0) + (r.cached?.value ?? 0)
        if pages > total { return "mem_free_kb + buffers_kb + cached_kb (\(pages) KiB) exceed mem_total_kb \(total)" }
        if let st = r.swapTotal, let sf = r.swapFree, sf > st { return "swap_free_kb > swap_total_kb" }
        if (r.swapTotal == nil) != (r.swapFree == nil) { return "swap_total_kb and swap_free_kb come together" }
        // full ⊂ some: all tasks stalled implies at least one stalled (allow the kernel's rounding).
        if let s = r.psiSomeAvg10, let f = r.psiFullAvg10, f > s + 0.5 { return "psi_full_avg10 > psi_some_avg10" }
        if let s = r.counters.psiSomeTotalUs, let f = r.counters.psiFullTotalUs, f > s { return "psi_full_total_us > psi_some_total_us" }
        // Anon pages are in use, so they do not fit beside MemAvailable (see the protocol comment).
        if r.activeAnon != nil || r.inactiveAnon != nil {
            let anon = (r.activeAnon?.value ?? 0) + (r.inactiveAnon?.value ?? 0)
            if anon + r.memAvailable.value > total + Swift.max(16 * 1024, total / 16) {
                return "anon LRU (\(anon) KiB) + mem_available_kb \(r.memAvailable.value) exceed mem_total_kb \(total)"
            }
        }
        return nil
    }

    /// The fields by key length (lengths 1…32): a key is compared only with the keys of its length.
    private static let byLength: [[Int]] = (0...32).map { n in keyBytes.indices.filter { keyBytes[$0].count == n } }

    static func lookup(_ raw: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Field? {
        let len = end - start
        guard len < byLength.count else { return nil }
        outer: for index in byLength[len] {
            let key = keyBytes[index]
            for k in 0..<len where key[k] != raw[start + k] { continue outer }
            return Field(rawValue: index)
        }
        return nil
    }

    /// Guest text for a rejection message: already printable ASCII (checked), truncated to 32 bytes.
    static func text(_ raw: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
        let stop = Swift.min(end, start + 32)
        var s = String(decoding: UnsafeBufferPointer(rebasing: raw[start..<stop]), as: UTF8.self)
        if end > stop { s += "…" }
        return s
    }
}

extension GuestReport {
    /// The protocol v1 line for this report: what the reporter writes and `ReportParser.parse` reads
    /// back, field by field from the parser's table (the same offsets the parser stores at). Optional
    /// fields are written only when present; PSI averages with two decimals, as the kernel prints them.
    public func line() -> String {
        typealias F = ReportParser.Field
        var out = [UInt8]()
        out.reserveCapacity(512)
        let ranges = F.prefixRanges
        withUnsafeBytes(of: self) { me in F.prefixBytes.withUnsafeBufferPointer { prefixes in
            for k in 0..<F.count {
                let (kind, offset) = F.layout[k]
                var digits: UInt64? = nil, percent: Double? = nil
                switch kind {
                case .version: digits = 1
                case .sequence: digits = seq ?? 0
                case .memTotal: digits = UInt64(Swift.max(0, memTotal.value))
                case .memAvailable: digits = UInt64(Swift.max(0, memAvailable.value))
                case .kib: digits = me.loadUnaligned(fromByteOffset: offset, as: KiB?.self).map { UInt64(Swift.max(0, $0.value)) }
                case .counter: digits = me.loadUnaligned(fromByteOffset: offset, as: UInt64?.self)
                case .percent: percent = me.loadUnaligned(fromByteOffset: offset, as: Double?.self)
                }
                guard digits != nil || percent != nil else { continue }
                let r = ranges[k]
                out.append(contentsOf: UnsafeBufferPointer(rebasing: prefixes[(out.isEmpty ? r.lowerBound + 1 : r.lowerBound)..<r.upperBound]))
                if let d = digits { Self.appendDecimal(d, to: &out) }
                if let p = percent {
                    // formatFixed(clamped, decimals: 2): round half away from zero at the second decimal.
                    let n = UInt64((Swift.min(100, Swift.max(0, p)) * 100).rounded())
                    Self.appendDecimal(n / 100, to: &out)
                    out.append(0x2E)
                    out.append(0x30 + UInt8(n % 100 / 10))
                    out.append(0x30 + UInt8(n % 10))
                }
            }
        } }
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
        var buf: (UInt64, UInt64, UInt64) = (0, 0, 0)      // 24 bytes: room for 20 digits
        var n = v, len = 0
        withUnsafeMutableBytes(of: &buf) { b in
            repeat { b[23 - len] = 0x30 + UInt8(n % 10); n /= 10; len += 1 } while n > 0
            out.append(contentsOf: b[(24 - len)...])
        }
    }
}
