/// The one parser for numbers that come from outside dom0's own code (guest reports, toolstack-written
/// xenstore values): exactly one spelling per value, bounded before it can overflow, every failure typed.
public enum BoundedDecimal {
    public enum Failure: Error, Sendable, Equatable {
        case notANumber, leadingZero, negative, overflow
    }

    /// Decimal digits only: no sign, no spaces, no hex, no exponent, no leading zero. Bounded by `bound`.
    public static func parse(_ raw: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, bound: UInt64) -> Result<UInt64, Failure> {
        guard start < end else { return .failure(.notANumber) }
        if start < end && raw[start] == 0x2D { return end - start > 1 && isDigit(raw[start + 1]) ? .failure(.negative) : .failure(.notANumber) }
        if end - start <= 19 {
            // 19 digits cannot overflow 64 bits: no checked arithmetic per digit. The prefix read so far only
            // grows, so "over the bound before the first non-digit" is the same test at the non-digit.
            var v: UInt64 = 0
            for k in start..<end {
                let d = raw[k] &- 0x30
                guard d < 10 else { return .failure(v > bound ? .overflow : .notANumber) }
                v = v &* 10 &+ UInt64(d)
            }
            if v > bound { return .failure(.overflow) }
            if end - start > 1 && raw[start] == 0x30 { return .failure(.leadingZero) }
            return .success(v)
        }
        var v: UInt64 = 0
        var k = start
        while k < end {
            let b = raw[k]
            guard isDigit(b) else { return .failure(.notANumber) }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            if o1 || o2 || s > bound { return .failure(.overflow) }
            v = s
            k += 1
        }
        if end - start > 1 && raw[start] == 0x30 { return .failure(.leadingZero) }
        return .success(v)
    }

    /// `digits[.digits]`, at most 6 decimals, no leading zero: what the kernel prints for PSI averages.
    /// NaN, inf, exponents, signs and a missing integer digit (`.5`) are rejected before any Double is built.
    public static func parseFraction(_ raw: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Result<Double, Failure> {
        if start < end && raw[start] == 0x2D { return .failure(.negative) }
        var intPart: UInt64 = 0
        var fracPart: UInt64 = 0
        var fracDigits = 0
        var k = start
        var sawDot = false
        var intDigits = 0
        while k < end {
            let b = raw[k]
            if b == 0x2E {
                if sawDot || intDigits == 0 { return .failure(.notANumber) }
                sawDot = true
            } else if isDigit(b) {
                if sawDot {
                    if fracDigits >= 6 { return .failure(.notANumber) }
                    fracPart = fracPart * 10 + UInt64(b - 0x30)
                    fracDigits += 1
                } else {
                    if intPart > 1_000_000 { return .failure(.overflow) }
                    intPart = intPart * 10 + UInt64(b - 0x30)
                    intDigits += 1
                }
            } else {
                return .failure(.notANumber)
            }
            k += 1
        }
        if intDigits == 0 || (sawDot && fracDigits == 0) { return .failure(.notANumber) }
        if intDigits > 1 && raw[start] == 0x30 { return .failure(.leadingZero) }
        var scale = 1.0
        for _ in 0..<fracDigits { scale *= 10 }
        return .success(Double(intPart) + Double(fracPart) / scale)
    }

    /// `parse` over a whole byte array; nil for anything but bounded decimal digits.
    public static func parse(_ bytes: [UInt8], bound: UInt64) -> UInt64? {
        bytes.withUnsafeBufferPointer { try? parse($0, 0, $0.count, bound: bound).get() }
    }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
}
