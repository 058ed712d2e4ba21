/// Why a report was refused. `code` is stable (recorded in the decision store); `reason` is for humans.
/// Strings taken from guest input are already restricted to printable ASCII and truncated.
public enum ReportRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case tooLong(bytes: Int, limit: Int)
    case invalidCharacter(offset: Int)
    case badSpacing(offset: Int)
    case tooManyFields(limit: Int)
    case malformedField(String)
    case unknownKey(String)
    case duplicateKey(String)
    case missingKey(String)
    case unsupportedVersion(String)
    case notANumber(key: String, value: String)
    case leadingZero(key: String, value: String)
    case negative(key: String)
    case overflow(key: String)
    case valueTooLong(key: String, length: Int)
    case outOfRange(key: String, value: String)
    case inconsistent(String)
    case exceedsHost(String)
    case sequenceRegression(previous: UInt64, got: UInt64)
    case sequenceReused(UInt64)
    case counterRegression(key: String)
    case absurdRate(key: String, perSecond: Double)
    case tooFrequent(intervalMs: Int64, minimumMs: Int64)

    /// A short stable code for storage and metrics.
    public var code: String {
        switch self {
        case .empty: "empty"
        case .tooLong: "too-long"
        case .invalidCharacter: "invalid-character"
        case .badSpacing: "bad-spacing"
        case .tooManyFields: "too-many-fields"
        case .malformedField: "malformed-field"
        case .unknownKey: "unknown-key"
        case .duplicateKey: "duplicate-key"
        case .missingKey: "missing-key"
        case .unsupportedVersion: "unsupported-version"
        case .notANumber: "not-a-number"
        case .leadingZero: "leading-zero"
        case .negative: "negative"
        case .overflow: "overflow"
        case .valueTooLong: "value-too-long"
        case .outOfRange: "out-of-range"
        case .inconsistent: "inconsistent"
        case .exceedsHost: "exceeds-host"
        case .sequenceRegression: "seq-regression"
        case .sequenceReused: "seq-reused"
        case .counterRegression: "counter-regression"
        case .absurdRate: "absurd-rate"
        case .tooFrequent: "too-frequent"
        }
    }

    public var description: String {
        switch self {
        case .empty: "empty report"
        case .tooLong(let n, let limit): "report is \(n) bytes, limit \(limit)"
        case .invalidCharacter(let off): "non-printable or non-ASCII byte at offset \(off)"
        case .badSpacing(let off): "leading, trailing or doubled space at offset \(off)"
        case .tooManyFields(let limit): "more than \(limit) fields"
        case .malformedField(let t): "field '\(t)' is not key=value"
        case .unknownKey(let k): "unknown key '\(k)'"
        case .duplicateKey(let k): "key '\(k)' appears twice"
        case .missingKey(let k): "required key '\(k)' is missing"
        case .unsupportedVersion(let v): "unsupported protocol version '\(v)'"
        case .notANumber(let k, let v): "\(k)='\(v)' is not a number"
        case .leadingZero(let k, let v): "\(k)='\(v)' has a leading zero"
        case .negative(let k): "\(k) is negative"
        case .overflow(let k): "\(k) is larger than any real value"
        case .valueTooLong(let k, let n): "\(k) value is \(n) bytes long"
        case .outOfRange(let k, let v): "\(k)=\(v) is out of range"
        case .inconsistent(let why): "inconsistent report: \(why)"
        case .exceedsHost(let why): "report contradicts Xen: \(why)"
        case .sequenceRegression(let p, let g): "seq went backwards (\(p) then \(g))"
        case .sequenceReused(let s): "seq \(s) reused with different content"
        case .counterRegression(let k): "counter \(k) went backwards"
        case .absurdRate(let k, let r): "\(k) rate \(formatFixed(r, decimals: 1))/s is impossible"
        case .tooFrequent(let i, let m): "report \(i) ms after the previous one (minimum \(m) ms)"
        }
    }
}

extension BoundedDecimal.Failure {
    func rejection(key: String, value: String) -> ReportRejection {
        switch self {
        case .notANumber: .notANumber(key: key, value: value)
        case .leadingZero: .leadingZero(key: key, value: value)
        case .negative: .negative(key: key)
        case .overflow: .overflow(key: key)
        }
    }
}
