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
        let tokens: Int
        switch tokenCount(raw, n) { case .success(let t): tokens = t; case .failure(let why): return .failure(why) }
        if tokens > limits.maxFields { return .failure(.tooManyFields(limit: limits.maxFields)) }

        var r = GuestReport(source: .reporter, seq: nil, memTotal: .zero, memAvailable: .zero)
        var seen: UInt64 = 0              // one bit per field (the table has fewer than 64)
        var i = 0
        var next = 0                      // the field the reporter writes next: it writes them in table order
        while i < n {
            if raw[i] == 0x20 { i += 1; continue }
            // token = raw[i..<j], its first "=" at eq (j when it has none). The key expected next is tried
            // first; any other token is scanned for its "=" and looked up.
            let field: Field, eq: Int, j: Int
            if next < Field.count, let e = keyAt(raw, i, n, field: next) {
                (eq, j) = (e, firstSpace(raw, e + 1, n))
                if eq == j - 1 { return .failure(.malformedField(text(raw, i, j))) }
                field = Field(rawValue: next)!
            } else {
                var e = i
                while e < n && raw[e] != 0x3D && raw[e] != 0x20 { e += 1 }
                (eq, j) = (e, firstSpace(raw, e, n))
                if eq == j || eq == i || eq == j - 1 {
                    return .failure(.malformedField(text(raw, i, j)))
                }
                guard let f = lookup(raw, i, eq) else { return .failure(.unknownKey(text(raw, i, eq))) }
                field = f
            }
            next = field.rawValue + 1
            let bit: UInt64 = 1 << UInt64(field.rawValue)
            if seen & bit != 0 { return .failure(.duplicateKey(field.key)) }
            seen |= bit
            if let why = store(field, raw, eq + 1, j, limits: limits, into: &r) { return .failure(why) }
            i = j
        }

        for required in Field.required where seen & (1 << UInt64(required.rawValue)) == 0 {
            return .failure(.missingKey(required.key))
        }
        if let problem = consistencyProblem(r) { return .failure(.inconsistent(problem)) }
        if UInt64(r.memTotal.value) < limits.minMemTotalKiB { return .failure(.outOfRange(key: Field.memTotal.key, value: String(r.memTotal.value))) }
        return .success(r)
    }

    /// Reads field `field`'s value raw[vs..<j] into `r`: its spelling, its bound, the slot the table names.
    @inline(__always)
    private static func store(_ field: Field, _ raw: UnsafeBufferPointer<UInt8>, _ vs: Int, _ j: Int, limits: ReportLimits,
                              into r: inout GuestReport) -> ReportRejection? {
        let vlen = j - vs
        if vlen > limits.maxValueBytes { return .valueTooLong(key: field.key, length: vlen) }
        let (kind, offset) = Field.layout[field.rawValue]
        switch kind {
        case .version:
            if !(vlen == 1 && raw[vs] == 0x31) { return .unsupportedVersion(text(raw, vs, j)) }
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
            case .failure(let f): return f.rejection(key: field.key, value: text(raw, vs, j))
            }
        case .percent:
            switch BoundedDecimal.parseFraction(raw, vs, j) {
            case .success(let v):
                if v > 100 { return .outOfRange(key: field.key, value: text(raw, vs, j)) }
                withUnsafeMutableBytes(of: &r) { $0.storeBytes(of: v as Double?, toByteOffset: offset, as: Double?.self) }
            case .failure(let f): return f.rejection(key: field.key, value: text(raw, vs, j))
            }
        }
        return nil
    }

    /// The eight bytes at `i` as a little-endian word (the caller checks that they are in the buffer).
    @inline(__always) static func word(_ base: UnsafePointer<UInt8>, _ i: Int) -> UInt64 {
        UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
    }

    /// Bit 7 of each byte of `x` that is a space, and no other bit (exact per byte: no carries cross bytes).
    @inline(__always) static func spaceBits(_ x: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let y = x ^ (0x20 &* ones)
        return ~(((y & (0x7F &* ones)) &+ (0x7F &* ones)) | y) & (0x80 &* ones)
    }

    /// Pass 1: every byte printable ASCII, tokens separated by single spaces, none at either end.
    /// Returns the number of tokens, or the problem at the lowest offset. Eight bytes at a time (bit
    /// tricks on a 64-bit word); a line with any problem is left to `tokenCountByByte`, which names it.
    static func tokenCount(_ raw: UnsafeBufferPointer<UInt8>, _ n: Int) -> Result<Int, ReportRejection> {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        guard let base = raw.baseAddress, n > 0 else { return tokenCountByByte(raw, n) }
        var tokens = 0
        var prevSpace: UInt64 = 0x80        // bit 7 of byte 0: "the byte before is a space" (the line's start)
        var i = 0
        while i + 8 <= n {
            let x = word(base, i)
            let below = (x &- 0x20 &* ones) & ~x & highs        // some byte < 0x20
            let above = ((x &+ ones) | x) & highs               // some byte > 0x7E
            let space = spaceBits(x)
            let afterSpace = (space << 8) | prevSpace
            if below | above | (space & afterSpace) != 0 { return tokenCountByByte(raw, n) }
            tokens += (~space & highs & afterSpace).nonzeroBitCount
            prevSpace = space >> 56
            i += 8
        }
        var lastSpace = prevSpace != 0
        while i < n {
            let b = raw[i]
            if b < 0x20 || b > 0x7E { return tokenCountByByte(raw, n) }
            let isSpace = b == 0x20
            if isSpace && lastSpace { return tokenCountByByte(raw, n) }
            if !isSpace && lastSpace { tokens += 1 }
            lastSpace = isSpace
            i += 1
        }
        return lastSpace ? tokenCountByByte(raw, n) : .success(tokens)
    }

    /// `tokenCount` a byte at a time: the reference, and the one that names the first problem.
    static func tokenCountByByte(_ raw: UnsafeBufferPointer<UInt8>, _ n: Int) -> Result<Int, ReportRejection> {
        var tokens = 0
        for i in 0..<n {
            let b = raw[i]
            if b < 0x20 || b > 0x7E { return .failure(.invalidCharacter(offset: i)) }
            if b == 0x20 {
                if i == 0 || i == n - 1 || raw[i - 1] == 0x20 { return .failure(.badSpacing(offset: i)) }
            } else if i == 0 || raw[i - 1] == 0x20 { tokens += 1 }
        }
        return .success(tokens)
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
        let lru = (r.activeAnon?.value ?? 0) + (r.inactiveAnon?.value ?? 0) + (r.activeFile?.value ?? 0) + (r.inactiveFile?.value ?? 0)
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

    /// Every key's bytes, one after another (`keyStart[i]` is where field i's begins), and per key length
    /// (0…32) a bit set of the fields whose key has that length: a key is compared only with the keys of
    /// its length, without touching an array per key (whose retain and release cost more than the compare).
    private static let keyFlat: [UInt8] = keyBytes.flatMap { $0 }
    private static let keyStart: [Int] = keyBytes.indices.map { i in keyBytes[..<i].reduce(0) { $0 + $1.count } }
    private static let byLength: [UInt32] = (0...32).map { n in
        keyBytes.indices.reduce(UInt32(0)) { keyBytes[$1].count == n ? $0 | (1 << UInt32($1)) : $0 }
    }

    private static let keyLength: [Int] = keyBytes.map(\.count)
    /// Each key as four little-endian words, zero-padded (no key is longer than 32 bytes).
    private static let keyWords: [UInt64] = keyBytes.flatMap { key in
        (0..<4).map { w in (0..<8).reduce(UInt64(0)) { word, b in w * 8 + b < key.count ? word | UInt64(key[w * 8 + b]) << UInt64(8 * b) : word } }
    }

    /// Where field `f`'s "=" is if the token at `i` is that field's key and "=", compared a word at a time.
    @inline(__always) static func keyAt(_ raw: UnsafeBufferPointer<UInt8>, _ i: Int, _ n: Int, field f: Int) -> Int? {
        let len = keyLength[f], eq = i + len
        guard eq < n, raw[eq] == 0x3D else { return nil }
        let words = (len + 7) >> 3
        guard i + words * 8 <= n, let base = raw.baseAddress else { return lookup(raw, i, eq)?.rawValue == f ? eq : nil }
        for w in 0..<words {
            var x = word(base, i + 8 * w)
            let left = len - 8 * w
            if left < 8 { x &= (1 << UInt64(8 * left)) - 1 }
            if x != keyWords[f * 4 + w] { return nil }
        }
        return eq
    }

    /// The offset of the first space at or after `from` (or `n`), eight bytes at a time.
    @inline(__always) static func firstSpace(_ raw: UnsafeBufferPointer<UInt8>, _ from: Int, _ n: Int) -> Int {
        var j = from
        if let base = raw.baseAddress {
            while j + 8 <= n {
                let space = spaceBits(word(base, j))
                if space != 0 { return j + space.trailingZeroBitCount >> 3 }
                j += 8
            }
        }
        while j < n && raw[j] != 0x20 { j += 1 }
        return j
    }

    static func lookup(_ raw: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Field? {
        let len = end - start
        guard len < byLength.count else { return nil }
        var candidates = byLength[len]
        return keyFlat.withUnsafeBufferPointer { keys in
            outer: while candidates != 0 {
                let index = candidates.trailingZeroBitCount
                candidates &= candidates &- 1
                let at = keyStart[index]
                for k in 0..<len where keys[at + k] != raw[start + k] { continue outer }
                return Field(rawValue: index)
            }
            return nil
        }
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
        // At most 24 fields × (" " + key + "=" + 20 digits): under 900 bytes, written in place.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { out in
            var len = 0
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
                    let r = F.prefixRanges[k]
                    for b in (len == 0 ? r.lowerBound + 1 : r.lowerBound)..<r.upperBound { out[len] = prefixes[b]; len += 1 }
                    if let d = digits { Self.writeDecimal(d, to: out, at: &len) }
                    if let p = percent {
                        // formatFixed(clamped, decimals: 2): round half away from zero at the second decimal.
                        let n = UInt64((Swift.min(100, Swift.max(0, p)) * 100).rounded())
                        Self.writeDecimal(n / 100, to: out, at: &len)
                        out[len] = 0x2E
                        out[len + 1] = 0x30 + UInt8(n % 100 / 10)
                        out[len + 2] = 0x30 + UInt8(n % 10)
                        len += 3
                    }
                }
            } }
            return String(decoding: UnsafeBufferPointer(rebasing: out[..<len]), as: UTF8.self)
        }
    }

    private static func writeDecimal(_ v: UInt64, to out: UnsafeMutableBufferPointer<UInt8>, at len: inout Int) {
        let start = len
        var n = v
        repeat { out[len] = 0x30 + UInt8(n % 10); n /= 10; len += 1 } while n > 0
        var (a, b) = (start, len - 1)
        while a < b { out.swapAt(a, b); a += 1; b -= 1 }
    }
}
