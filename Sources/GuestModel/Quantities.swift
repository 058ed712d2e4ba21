/// Memory quantities, domain ids and time points: the value types every other part of the core uses.
/// Units are in the names and types so that a KiB is never confused with a page or a byte.

/// An amount of memory in KiB (Xen's and xenstore's unit). Signed so that differences are natural;
/// a negative amount is only ever an intermediate value (a shortfall, a delta).
public struct KiB: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: Int64

    @inlinable public init(_ value: Int64) { self.value = value }
    @inlinable public init(mib: Int64) { self.value = mib * 1024 }
    @inlinable public init(gib: Int64) { self.value = gib * 1024 * 1024 }

    public static let zero = KiB(0)
    /// Xen's page size on x86: 4 KiB. Targets are rounded to whole pages.
    public static let page = KiB(4)

    @inlinable public static func < (a: KiB, b: KiB) -> Bool { a.value < b.value }
    @inlinable public static func + (a: KiB, b: KiB) -> KiB { KiB(a.value &+ b.value) }
    @inlinable public static func - (a: KiB, b: KiB) -> KiB { KiB(a.value &- b.value) }
    @inlinable public static func += (a: inout KiB, b: KiB) { a.value &+= b.value }
    @inlinable public static func -= (a: inout KiB, b: KiB) { a.value &-= b.value }

    @inlinable public var mib: Double { Double(value) / 1024 }
    @inlinable public var gib: Double { Double(value) / (1024 * 1024) }
    @inlinable public var asDouble: Double { Double(value) }

    /// Rounds down to a whole page (never rounds a target up past what was computed).
    @inlinable public var pageFloor: KiB { KiB(value - (value & 3)) }
    /// Rounds up to a whole page (used for floors, so rounding never lowers a floor).
    @inlinable public var pageCeil: KiB { KiB((value + 3) & ~3) }

    /// Converts a non-negative finite Double of KiB, rounding down to a page; saturates at the bounds.
    @inlinable public static func pageFloor(_ x: Double) -> KiB {
        if !(x > 0) { return .zero }
        if x >= 9.0e18 { return KiB(Int64.max & ~3) }
        let v = Int64(x)
        return KiB(v - (v & 3))
    }

    @inlinable public static func pageCeil(_ x: Double) -> KiB {
        if !(x > 0) { return .zero }
        if x >= 9.0e18 { return KiB(Int64.max & ~3) }
        let v = Int64(x.rounded(.up))
        return KiB((v + 3) & ~3)
    }

    /// Human-readable, xl-style (M or G with one decimal where needed).
    public var description: String { formatSize(self) }
}

/// Encodes as a plain number of KiB.
extension KiB: Codable {
    public init(from decoder: any Decoder) throws { self.init(try decoder.singleValueContainer().decode(Int64.self)) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value)
    }
}

@inlinable public func min(_ a: KiB, _ b: KiB) -> KiB { a.value <= b.value ? a : b }
@inlinable public func max(_ a: KiB, _ b: KiB) -> KiB { a.value >= b.value ? a : b }

/// Clamps `x` into `[lo, hi]`; when `lo > hi` the lower bound wins (floors are hard).
@inlinable public func clamp(_ x: KiB, _ lo: KiB, _ hi: KiB) -> KiB { max(lo, min(x, hi)) }
@inlinable public func clamp(_ x: Double, _ lo: Double, _ hi: Double) -> Double { Swift.max(lo, Swift.min(x, hi)) }

/// `Swift.max(a, b)` for Doubles (`b >= a ? b : a`, the same value to the bit), chosen by integer masks:
/// the compiler makes a jump of a choice between Doubles, and on values that go either way from guest
/// to guest the branch predictor guesses wrong half the time.
@usableFromInline @inline(__always)
func maxByMasks(_ a: Double, _ b: Double) -> Double {
    let m = 0 &- UInt64(b >= a ? 1 : 0)
    return Double(bitPattern: (b.bitPattern & m) | (a.bitPattern & ~m))
}

/// `Int64(x.rounded())` (halves away from zero), without the libm call `rounded()` lowers to: the
/// pacer rounds two deadbands per guest per round. Exact: for |x| < 2^52 the fraction x − trunc(x) is
/// computed without error, and above that every Double is an integer. Traps where `Int64(_:)` would.
@usableFromInline @inline(__always)
func roundedInt64(_ x: Double) -> Int64 {
    let whole = Int64(x)
    let fraction = x - Double(whole)
    // As 0/1 flags, not `?:`: the compiler turns a choice on Doubles into jumps, and which way a
    // target rounds is a coin toss to the branch predictor. No overflow: a nonzero fraction means |x| < 2^52.
    let up: Int64 = fraction >= 0.5 ? 1 : 0, down: Int64 = fraction <= -0.5 ? 1 : 0
    return whole &+ up &- down
}

/// Formats a size the way xl and admins write it: `512M`, `1.5G`, `16K`.
public func formatSize(_ k: KiB) -> String {
    let v = k.value
    let sign = v < 0 ? "-" : ""
    let a = v.magnitude
    if a >= 1024 * 1024 {
        return sign + formatFixed(Double(a) / (1024 * 1024), decimals: a % (1024 * 1024) == 0 ? 0 : 1) + "G"
    }
    if a >= 1024 {
        return sign + formatFixed(Double(a) / 1024, decimals: a % 1024 == 0 ? 0 : 1) + "M"
    }
    return sign + String(a) + "K"
}

/// Fixed-point formatting without Foundation (GuestModel stays Foundation-free).
public func formatFixed(_ x: Double, decimals: Int) -> String {
    guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let negative = x < 0
    let scaled = (Swift.abs(x) * scale).rounded()
    guard scaled < 9.0e18 else { return String(x) }
    let n = UInt64(scaled)
    let s = UInt64(scale)
    var out = (negative && n != 0 ? "-" : "") + String(n / s)
    if decimals > 0 {
        var frac = String(n % s)
        while frac.count < decimals { frac = "0" + frac }
        out += "." + frac
    }
    return out
}

/// A Xen domain id (`domid_t`, 16 bits). 0 is dom0; 0x7FF0 and above are reserved ids.
public struct DomID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: UInt16
    @inlinable public init(_ raw: UInt16) { self.raw = raw }
    @inlinable public static func < (a: DomID, b: DomID) -> Bool { a.raw < b.raw }
    /// First reserved domid (DOMID_FIRST_RESERVED): no guest has an id at or above it.
    public static let firstReserved: UInt16 = 0x7FF0
    public var description: String { String(raw) }
}

/// A point on a monotonic clock, in milliseconds. The core never reads a clock: time is passed in,
/// so the simulator can run an hour in a moment and tests are deterministic.
public struct TimePoint: Hashable, Comparable, Sendable {
    public var ms: Int64
    @inlinable public init(ms: Int64) { self.ms = ms }
    @inlinable public init(seconds: Double) { self.ms = Int64((seconds * 1000).rounded()) }
    @inlinable public static func < (a: TimePoint, b: TimePoint) -> Bool { a.ms < b.ms }
    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    @inlinable public func seconds(since earlier: TimePoint) -> Double { Double(ms &- earlier.ms) / 1000 }
    @inlinable public func adding(seconds: Double) -> TimePoint { TimePoint(ms: ms &+ Int64((seconds * 1000).rounded())) }
    public static let zero = TimePoint(ms: 0)

    /// The least interval Δ (ms) for which `Double(Δ) / 1000 >= seconds` (what `seconds(since:) >= seconds`
    /// asks), so that the comparison is `Δ >= threshold` on integers, to the same answer for every Δ: the
    /// quotient, correctly rounded, never decreases as Δ grows. Nil when `seconds` is not finite or not
    /// below 10^15 (compare in seconds then). For a limit compared with every report: no division.
    static func msAtLeast(_ seconds: Double) -> Int64? {
        threshold(near: seconds) { Double($0) / 1000 >= seconds }
    }

    private static func threshold(near seconds: Double, _ holds: (Int64) -> Bool) -> Int64? {
        guard seconds.isFinite, Swift.abs(seconds) < 1e15 else { return nil }
        var c = Int64((seconds * 1000).rounded(.down))
        while !holds(c) { c += 1 }
        while holds(c - 1) { c -= 1 }
        return c
    }
}

/// SplitMix64: a tiny, fast, seedable generator (Steele, Lea & Flood 2014). Used by property tests,
/// benchmarks and the simulator so every random run reproduces from its printed seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64
    public init(seed: UInt64) { self.state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension KiB {
    /// Parses an xl-style size: a whole number with an optional binary suffix K, M, G or T
    /// (case-insensitive, optional trailing "B" or "iB"); a bare number is KiB, as in xenstore.
    /// `512M`, `4G`, `1.5G` and `131072` are accepted; negative, empty, fractional-KiB or absurd
    /// (over 1 PiB) sizes are not.
    public init?(parsing text: String) {
        var s = Substring(text)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        var lower = s.lowercased()
        if lower.hasSuffix("ib") { lower.removeLast(2) } else if lower.hasSuffix("b") && lower.count > 1 { lower.removeLast() }
        var multiplier: Int64 = 1
        switch lower.last {
        case "k": multiplier = 1; lower.removeLast()
        case "m": multiplier = 1024; lower.removeLast()
        case "g": multiplier = 1024 * 1024; lower.removeLast()
        case "t": multiplier = 1024 * 1024 * 1024; lower.removeLast()
        default: break
        }
        guard !lower.isEmpty, lower.count <= 20, lower.allSatisfy({ ($0 >= "0" && $0 <= "9") || $0 == "." }),
              lower.filter({ $0 == "." }).count <= 1, lower.first != ".", lower.last != "." else { return nil }
        let parts = lower.split(separator: ".", omittingEmptySubsequences: false)
        guard let whole = Int64(parts[0]) else { return nil }
        var value = Double(whole)
        if parts.count == 2 {
            guard let frac = Int64(parts[1]) else { return nil }
            var scale = 1.0
            for _ in 0..<parts[1].count { scale *= 10 }
            value += Double(frac) / scale
        }
        let kib = value * Double(multiplier)
        guard kib <= Double(Int64(1) << 40), kib == kib.rounded(.down) else { return nil }
        self.init(Int64(kib))
    }
}
