import GuestModel

/// A GuestModel value the decision store keeps as text (a round's phase, a domain's report status,
/// floor kind, share basis and reason), and the text it is kept as.
public protocol RecordedText: Sendable, Equatable {
    /// The text written to the store: the value's `description` (for `SharePhase`, which has none, the
    /// store's phase name).
    var recordedText: String { get }
    /// The value recorded as `text`; nil for text this arbiter does not know.
    static func fromRecorded(_ text: String) -> Self?
}

/// A value read back from the store, typed: the GuestModel value when this arbiter knows the recorded
/// text, else that text as it is. A database written by a newer arbiter (which the read verbs open, see
/// `DecisionStore(readingAt:)`) may hold a reason or floor kind added since; such a row is shown with
/// its text, never dropped, never read as some other value, and never a crash. Either way `description`
/// is exactly the recorded text, so printing is what it was when the read models returned strings.
public enum Recorded<Value: RecordedText>: Sendable, Equatable, CustomStringConvertible {
    case known(Value)
    case unknown(String)

    public init(_ text: String) {
        self = Value.fromRecorded(text).map(Recorded.known) ?? .unknown(text)
    }

    /// The value, if this arbiter knows the recorded text.
    public var value: Value? {
        if case .known(let v) = self { v } else { nil }
    }

    public var description: String {
        switch self {
        case .known(let v): v.recordedText
        case .unknown(let text): text
        }
    }
}

extension Recorded: Encodable {
    /// As the text it was recorded as (reports in JSON show what the store holds).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension RecordedText where Self: RawRepresentable, RawValue == UInt8 {
    /// Every value by its recorded text (these enums are not `CaseIterable`: every raw value is tried).
    /// Two values with one text would be a bug in GuestModel; the first is kept, and a test catches it.
    static func byRecordedText() -> [String: Self] {
        Dictionary((0...UInt8.max).compactMap(Self.init(rawValue:)).map { ($0.recordedText, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

extension Reason: RecordedText {
    public var recordedText: String { rawValue }
    public static func fromRecorded(_ text: String) -> Reason? { Reason(rawValue: text) }
}

extension ReportStatus: RecordedText {
    public var recordedText: String { description }
    static let byText = byRecordedText()
    public static func fromRecorded(_ text: String) -> ReportStatus? { byText[text] }
}

extension FloorKind: RecordedText {
    public var recordedText: String { description }
    static let byText = byRecordedText()
    public static func fromRecorded(_ text: String) -> FloorKind? { byText[text] }
}

extension ShareBasis: RecordedText {
    public var recordedText: String { description }
    static let byText = byRecordedText()
    public static func fromRecorded(_ text: String) -> ShareBasis? { byText[text] }
}

extension SharePhase: RecordedText {
    public var recordedText: String { DecisionStore.phaseName(self) }
    static let byText = byRecordedText()
    public static func fromRecorded(_ text: String) -> SharePhase? { byText[text] }
}
