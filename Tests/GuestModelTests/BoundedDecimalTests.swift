import GuestModel
import Testing

@Suite("Bounded decimals: the one parser for outside numbers")
struct BoundedDecimalTests {
    func parse(_ s: String, bound: UInt64 = 1 << 42) -> Result<UInt64, BoundedDecimal.Failure> {
        Array(s.utf8).withUnsafeBufferPointer { BoundedDecimal.parse($0, 0, $0.count, bound: bound) }
    }
    func fraction(_ s: String) -> Result<Double, BoundedDecimal.Failure> {
        Array(s.utf8).withUnsafeBufferPointer { BoundedDecimal.parseFraction($0, 0, $0.count) }
    }

    @Test func integersHaveOneSpellingAndABound() {
        #expect(parse("0") == .success(0))
        #expect(parse("1048576") == .success(1_048_576))
        #expect(parse("100", bound: 100) == .success(100))
        #expect(parse("101", bound: 100) == .failure(.overflow))
        #expect(parse("99999999999999999999999") == .failure(.overflow))
        #expect(parse("007") == .failure(.leadingZero))
        #expect(parse("-1") == .failure(.negative))
        #expect(parse("-") == .failure(.notANumber))
        #expect(parse("") == .failure(.notANumber))
        for bad in ["1e6", "0x10", " 5", "+5", "12a", "1.0"] { #expect(parse(bad) == .failure(.notANumber), "\(bad)") }
        #expect(BoundedDecimal.parse(Array("42".utf8), bound: 100) == 42)
        #expect(BoundedDecimal.parse(Array("042".utf8), bound: 100) == nil)
    }

    @Test func fractionsAreWhatTheKernelPrints() {
        #expect(fraction("0.50") == .success(0.5))
        #expect(fraction("100.00") == .success(100))
        #expect(fraction("1") == .success(1))
        #expect(fraction("05.00") == .failure(.leadingZero))
        #expect(fraction("-1.00") == .failure(.negative))
        for bad in [".5", "1.", "1e2", "nan", "inf", "0.1234567", "1.2.3"] { #expect(fraction(bad) == .failure(.notANumber), "\(bad)") }
    }
}
