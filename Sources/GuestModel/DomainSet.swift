/// A set of domids, one bit per possible id: insert, remove and contains cost a shift and a mask, not a
/// hash. The control loop marks a domain on every report it is told of and clears it every round; with a
/// hashed `Set<DomID>` that bookkeeping cost as much as parsing the report.
public struct DomainSet: Sendable, Equatable {
    private var words = [UInt64](repeating: 0, count: 1 << 10)    // 65,536 ids
    public private(set) var count = 0

    public init() {}
    public init<S: Sequence>(_ domids: S) where S.Element == DomID { for d in domids { insert(d) } }

    public var isEmpty: Bool { count == 0 }

    @inline(__always) public func contains(_ d: DomID) -> Bool {
        words[Int(d.raw >> 6)] & (1 << UInt64(d.raw & 63)) != 0
    }

    @discardableResult
    public mutating func insert(_ d: DomID) -> Bool {
        let (w, bit) = (Int(d.raw >> 6), UInt64(1) << UInt64(d.raw & 63))
        guard words[w] & bit == 0 else { return false }
        words[w] |= bit
        count += 1
        return true
    }

    public mutating func remove(_ d: DomID) {
        let (w, bit) = (Int(d.raw >> 6), UInt64(1) << UInt64(d.raw & 63))
        guard words[w] & bit != 0 else { return }
        words[w] &= ~bit
        count -= 1
    }

    public mutating func removeAll() {
        guard count > 0 else { return }
        for i in words.indices { words[i] = 0 }
        count = 0
    }
}
