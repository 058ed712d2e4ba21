import Foundation
import GRDB

// The compact form of recorded rows, for the store's older hours: one blob per domain and hour holding
// that domain's allocation rows, and one per hour holding the rounds, each row written as what changed
// since the row before it in the blob (a mask, then each changed field: integers as zigzag varint
// deltas, texts through a table local to the blob). A domain's hour of rows reads back exactly as it
// was recorded (stall to a millionth); a damaged blob is refused with a `ChunkError`, never a crash.
// The hot, recent rows stay SQL rows (admins query them with sqlite3); see issue 15's notes.

/// A blob that cannot be read: cut short, a count or length past its end, an unknown version.
public struct ChunkError: Error, Equatable, CustomStringConvertible {
    public var description: String
}

/// One allocation row as the store records it (texts as recorded, so unknown ones survive).
public struct StoredAllocation: Sendable, Equatable {
    public var roundID: Int64
    public var status: String
    public var workingSet: Int64?
    /// 0...1, kept to a millionth.
    public var stall: Double?
    public var floor: Int64
    public var floorKind: String
    public var ceiling: Int64
    public var weight: Double
    public var demand: Int64
    public var allocation: Int64
    public var basis: String
    public var actual: Int64
    public var previousTarget: Int64
    public var target: Int64
    public var reason: String
    public var paced: Bool
    /// nil: nothing pushed; true pushed; false failed (with `pushError`).
    public var pushed: Bool?
    public var pushError: String?
}

/// One round as the store records it.
public struct StoredRound: Sendable, Equatable {
    public var id: Int64
    public var at: Double
    public var trigger: String
    public var hostTotal: Int64
    public var hostFree: Int64
    public var reserve: Int64
    public var budget: Int64
    public var phase: String
    public var fullSnapshot: Bool
    public var policy: String
    public var shadows: String
    public var quietBefore: Int64
}

/// The byte-level writer: varints, zigzag deltas, a text table.
struct ChunkWriter {
    private(set) var bytes = [UInt8]()
    private var texts = [String: Int]()

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    /// A signed change, small either way.
    mutating func delta(_ d: Int64) { varint(UInt64(bitPattern: (d << 1) ^ (d >> 63))) }

    /// A text: its index in this blob's table plus one, or 0 and the text the first time.
    mutating func text(_ s: String) {
        if let k = texts[s] { varint(UInt64(k + 1)); return }
        texts[s] = texts.count
        varint(0)
        let utf8 = Array(s.utf8)
        varint(UInt64(utf8.count))
        bytes += utf8
    }

    mutating func append(_ more: [UInt8]) { bytes += more }

    mutating func real(_ x: Double) {
        var bits = x.bitPattern
        for _ in 0..<8 { bytes.append(UInt8(bits & 0xFF)); bits >>= 8 }
    }
}

/// The byte-level reader: every read checks the bounds.
struct ChunkReader {
    private let bytes: ArraySlice<UInt8>
    private var at: Int
    private var texts = [String]()

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes; at = bytes.startIndex }

    var atEnd: Bool { at == bytes.endIndex }

    /// Bytes not yet read.
    private var left: Int { bytes.endIndex - at }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard at < bytes.endIndex else { throw ChunkError(description: "chunk cut short in a number at byte \(at - bytes.startIndex)") }
            guard shift < 64 else { throw ChunkError(description: "chunk number too long at byte \(at - bytes.startIndex)") }
            let b = bytes[at]
            at += 1
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }

    mutating func delta() throws -> Int64 {
        let z = try varint()
        return Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1)))
    }

    mutating func text() throws -> String {
        let k = try varint()
        if k > 0 {
            guard k <= UInt64(texts.count) else { throw ChunkError(description: "chunk text \(k) not in its table of \(texts.count)") }
            return texts[Int(k - 1)]
        }
        let n = try varint()
        guard n <= UInt64(left) else { throw ChunkError(description: "chunk text of \(n) bytes past its end") }
        let s = String(decoding: bytes[at..<(at + Int(n))], as: UTF8.self)
        at += Int(n)
        texts.append(s)
        return s
    }

    /// The next `n` bytes, as they are.
    mutating func slice(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= left else { throw ChunkError(description: "chunk part of \(n) bytes past its end") }
        defer { at += n }
        return bytes[at..<(at + n)]
    }

    mutating func real() throws -> Double {
        guard left >= 8 else { throw ChunkError(description: "chunk cut short in a real at byte \(at - bytes.startIndex)") }
        var bits: UInt64 = 0
        for k in 0..<8 { bits |= UInt64(bytes[at + k]) << (8 * UInt64(k)) }
        at += 8
        return Double(bitPattern: bits)
    }

    /// The count of rows a blob says it holds, bounded by what is left of it (every row takes at least
    /// two bytes), so a damaged count cannot make the reader reserve more than the blob could hold.
    mutating func count() throws -> Int {
        let n = try varint()
        guard n <= UInt64(left / 2) else { throw ChunkError(description: "chunk claims \(n) rows in \(left) bytes") }
        return Int(n)
    }
}

/// A domain's allocation rows, oldest first, as one blob (format 1).
public enum AllocationChunk {
    static let version: UInt64 = 1

    // Field bits of a row's mask: set when the field differs from the row before (the first row is
    // compared with zeros, empty texts and absent values).
    // The seven that change most often take the low bits, so most masks are one byte.
    private static let fWorkingSet = 1 << 0, fFloor = 1 << 1, fDemand = 1 << 2, fAllocation = 1 << 3, fActual = 1 << 4, fTarget = 1 << 5,
                       fReason = 1 << 6, fPushed = 1 << 7, fStall = 1 << 8, fStatus = 1 << 9, fFloorKind = 1 << 10, fCeiling = 1 << 11,
                       fWeight = 1 << 12, fBasis = 1 << 13, fPreviousTarget = 1 << 14, fPaced = 1 << 15

    static func micro(_ stall: Double) -> Int64 { stall.isFinite ? Int64((Swift.min(1, Swift.max(0, stall)) * 1_000_000).rounded()) : 0 }

    public static func encode(_ rows: [StoredAllocation]) -> [UInt8] {
        var w = ChunkWriter()
        w.varint(version)
        w.varint(UInt64(rows.count))
        // Sizes are kept in pages when every size in the blob is whole pages (as Xen's are).
        let shift: Int64 = rows.allSatisfy { $0.sizes.allSatisfy { $0 & 3 == 0 } } ? 2 : 0
        w.varint(UInt64(shift))
        var p = StoredAllocation.zero
        for row in rows {
            let r = row.scaled { $0 >> shift }
            w.delta(r.roundID &- p.roundID)
            var mask = 0
            if r.status != p.status { mask |= fStatus }
            if r.workingSet != p.workingSet { mask |= fWorkingSet }
            if r.stall.map(micro) != p.stall.map(micro) { mask |= fStall }
            if r.floor != p.floor { mask |= fFloor }
            if r.floorKind != p.floorKind { mask |= fFloorKind }
            if r.ceiling != p.ceiling { mask |= fCeiling }
            if r.weight.bitPattern != p.weight.bitPattern { mask |= fWeight }
            if r.demand != p.demand { mask |= fDemand }
            if r.allocation != p.allocation { mask |= fAllocation }
            if r.basis != p.basis { mask |= fBasis }
            if r.actual != p.actual { mask |= fActual }
            // The previous target is almost always the target of the row before: written only when not.
            if r.previousTarget != p.target { mask |= fPreviousTarget }
            if r.target != p.target { mask |= fTarget }
            if r.reason != p.reason { mask |= fReason }
            if r.paced != p.paced { mask |= fPaced }
            if r.pushed != p.pushed || r.pushError != p.pushError { mask |= fPushed }
            w.varint(UInt64(mask))
            if mask & fStatus != 0 { w.text(r.status) }
            // Absent values are written as 0, present ones as their zigzag change plus one.
            if mask & fWorkingSet != 0 { optional(&w, r.workingSet, after: p.workingSet) }
            if mask & fStall != 0 { optional(&w, r.stall.map(micro), after: p.stall.map(micro)) }
            // The floor, the demand and the allocation mostly move with the working set: each is written as
            // its change less the change of the one before it in that chain.
            let dWorkingSet = (r.workingSet ?? 0) &- (p.workingSet ?? 0), dFloor = r.floor &- p.floor, dDemand = r.demand &- p.demand
            if mask & fFloor != 0 { w.delta(dFloor &- dWorkingSet) }
            if mask & fFloorKind != 0 { w.text(r.floorKind) }
            if mask & fCeiling != 0 { w.delta(r.ceiling &- p.ceiling) }
            if mask & fWeight != 0 { w.real(r.weight) }
            if mask & fDemand != 0 { w.delta(dDemand &- dFloor) }
            if mask & fAllocation != 0 { w.delta(r.allocation &- p.allocation &- dDemand) }
            if mask & fBasis != 0 { w.text(r.basis) }
            if mask & fActual != 0 { w.delta(r.actual &- p.actual) }
            if mask & fPreviousTarget != 0 { w.delta(r.previousTarget &- p.target) }
            if mask & fTarget != 0 { w.delta(r.target &- p.target) }
            if mask & fReason != 0 { w.text(r.reason) }
            // paced: the bit itself says it flipped.
            if mask & fPushed != 0 {
                switch r.pushed {
                case nil: w.varint(0)
                case true?: w.varint(1)
                case false?: w.varint(2); w.text(r.pushError ?? "")
                }
            }
            p = r
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> [StoredAllocation] { try decode(bytes[...]) }

    /// The rows of a blob (or of a part of one) whose round `keep` accepts (every row, without it). Every
    /// row is read (each is a change from the one before); only those kept are built.
    public static func decode(_ bytes: ArraySlice<UInt8>, keep: ((Int64) -> Bool)? = nil) throws -> [StoredAllocation] {
        var r = ChunkReader(bytes)
        let v = try r.varint()
        guard v == version else { throw ChunkError(description: "allocation chunk format \(v) is unknown to this arbiter") }
        let n = try r.count()
        let shift = try r.varint()
        guard shift == 0 || shift == 2 else { throw ChunkError(description: "allocation chunk size unit \(shift) is unknown") }
        var out = [StoredAllocation]()
        if keep == nil { out.reserveCapacity(n) }
        // The row being read, changed in place from the one before (no copy per row).
        var x = StoredAllocation.zero
        for _ in 0..<n {
            x.roundID = x.roundID &+ (try r.delta())
            let mask = Int(truncatingIfNeeded: try r.varint())
            if mask & fStatus != 0 { x.status = try r.text() }
            let oldWorkingSet = x.workingSet ?? 0, oldFloor = x.floor, oldDemand = x.demand
            if mask & fWorkingSet != 0 { x.workingSet = try optional(&r, after: x.workingSet) }
            if mask & fStall != 0 { x.stall = try optional(&r, after: x.stall.map(micro)).map { Double($0) / 1_000_000 } }
            if mask & fFloor != 0 { x.floor = x.floor &+ ((x.workingSet ?? 0) &- oldWorkingSet) &+ (try r.delta()) }
            if mask & fFloorKind != 0 { x.floorKind = try r.text() }
            if mask & fCeiling != 0 { x.ceiling = x.ceiling &+ (try r.delta()) }
            if mask & fWeight != 0 { x.weight = try r.real() }
            if mask & fDemand != 0 { x.demand = x.demand &+ (x.floor &- oldFloor) &+ (try r.delta()) }
            if mask & fAllocation != 0 { x.allocation = x.allocation &+ (x.demand &- oldDemand) &+ (try r.delta()) }
            if mask & fBasis != 0 { x.basis = try r.text() }
            if mask & fActual != 0 { x.actual = x.actual &+ (try r.delta()) }
            x.previousTarget = mask & fPreviousTarget != 0 ? x.target &+ (try r.delta()) : x.target
            if mask & fTarget != 0 { x.target = x.target &+ (try r.delta()) }
            if mask & fReason != 0 { x.reason = try r.text() }
            if mask & fPaced != 0 { x.paced.toggle() }
            if mask & fPushed != 0 {
                switch try r.varint() {
                case 0: x.pushed = nil; x.pushError = nil
                case 1: x.pushed = true; x.pushError = nil
                case 2: x.pushed = false; x.pushError = try r.text()
                case let k: throw ChunkError(description: "allocation chunk push state \(k) is unknown")
                }
            }
            if keep?(x.roundID) ?? true { out.append(shift == 0 ? x : x.scaled { $0 << Int64(shift) }) }
        }
        guard r.atEnd else { throw ChunkError(description: "allocation chunk has bytes after its \(n) rows") }
        return out
    }

    private static func optional(_ w: inout ChunkWriter, _ v: Int64?, after p: Int64?) {
        guard let v else { w.varint(0); return }
        let d = v &- (p ?? 0)
        w.varint(UInt64(bitPattern: (d << 1) ^ (d >> 63)) &+ 1)
    }

    private static func optional(_ r: inout ChunkReader, after p: Int64?) throws -> Int64? {
        let z = try r.varint()
        guard z > 0 else { return nil }
        let u = z - 1
        return (p ?? 0) &+ Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }
}

extension StoredAllocation {
    /// Every size (KiB) of the row.
    var sizes: [Int64] { [workingSet ?? 0, floor, ceiling, demand, allocation, actual, previousTarget, target] }

    /// The row with every size passed through `f`.
    func scaled(_ f: (Int64) -> Int64) -> StoredAllocation {
        var s = self
        s.workingSet = workingSet.map(f)
        s.floor = f(floor); s.ceiling = f(ceiling); s.demand = f(demand); s.allocation = f(allocation)
        s.actual = f(actual); s.previousTarget = f(previousTarget); s.target = f(target)
        return s
    }

    static let zero = StoredAllocation(roundID: 0, status: "", workingSet: nil, stall: nil, floor: 0, floorKind: "", ceiling: 0, weight: 0,
                                       demand: 0, allocation: 0, basis: "", actual: 0, previousTarget: 0, target: 0, reason: "", paced: false,
                                       pushed: nil, pushError: nil)
}

/// An hour's rounds, oldest first, as one blob (format 1). Times are kept to the microsecond.
public enum RoundChunk {
    static let version: UInt64 = 1

    public static func encode(_ rounds: [StoredRound]) -> [UInt8] {
        var w = ChunkWriter()
        w.varint(version)
        w.varint(UInt64(rounds.count))
        var p = StoredRound.zero
        for r in rounds {
            w.delta(r.id &- p.id)
            w.delta(micros(r.at) &- micros(p.at))
            var mask = 0
            if r.trigger != p.trigger { mask |= 1 << 0 }
            if r.hostTotal != p.hostTotal { mask |= 1 << 1 }
            if r.hostFree != p.hostFree { mask |= 1 << 2 }
            if r.reserve != p.reserve { mask |= 1 << 3 }
            if r.budget != p.budget { mask |= 1 << 4 }
            if r.phase != p.phase { mask |= 1 << 5 }
            if r.fullSnapshot != p.fullSnapshot { mask |= 1 << 6 }
            if r.policy != p.policy { mask |= 1 << 7 }
            if r.shadows != p.shadows { mask |= 1 << 8 }
            if r.quietBefore != p.quietBefore { mask |= 1 << 9 }
            w.varint(UInt64(mask))
            if mask & (1 << 0) != 0 { w.text(r.trigger) }
            if mask & (1 << 1) != 0 { w.delta(r.hostTotal &- p.hostTotal) }
            if mask & (1 << 2) != 0 { w.delta(r.hostFree &- p.hostFree) }
            if mask & (1 << 3) != 0 { w.delta(r.reserve &- p.reserve) }
            if mask & (1 << 4) != 0 { w.delta(r.budget &- p.budget) }
            if mask & (1 << 5) != 0 { w.text(r.phase) }
            if mask & (1 << 7) != 0 { w.text(r.policy) }
            if mask & (1 << 8) != 0 { w.text(r.shadows) }
            if mask & (1 << 9) != 0 { w.delta(r.quietBefore &- p.quietBefore) }
            p = r
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> [StoredRound] {
        var r = ChunkReader(bytes[...])
        let v = try r.varint()
        guard v == version else { throw ChunkError(description: "round chunk format \(v) is unknown to this arbiter") }
        let n = try r.count()
        var out = [StoredRound]()
        out.reserveCapacity(n)
        var p = StoredRound.zero
        var pAt: Int64 = 0
        for _ in 0..<n {
            var x = p
            x.id = p.id &+ (try r.delta())
            pAt = pAt &+ (try r.delta())
            x.at = Double(pAt) / 1_000_000
            let mask = Int(truncatingIfNeeded: try r.varint())
            if mask & (1 << 0) != 0 { x.trigger = try r.text() }
            if mask & (1 << 1) != 0 { x.hostTotal = p.hostTotal &+ (try r.delta()) }
            if mask & (1 << 2) != 0 { x.hostFree = p.hostFree &+ (try r.delta()) }
            if mask & (1 << 3) != 0 { x.reserve = p.reserve &+ (try r.delta()) }
            if mask & (1 << 4) != 0 { x.budget = p.budget &+ (try r.delta()) }
            if mask & (1 << 5) != 0 { x.phase = try r.text() }
            if mask & (1 << 6) != 0 { x.fullSnapshot.toggle() }
            if mask & (1 << 7) != 0 { x.policy = try r.text() }
            if mask & (1 << 8) != 0 { x.shadows = try r.text() }
            if mask & (1 << 9) != 0 { x.quietBefore = p.quietBefore &+ (try r.delta()) }
            out.append(x)
            p = x
        }
        guard r.atEnd else { throw ChunkError(description: "round chunk has bytes after its \(n) rounds") }
        return out
    }

    /// A round's time in whole microseconds (what the blob keeps).
    static func micros(_ t: Double) -> Int64 { t.isFinite ? Int64((Swift.min(9e12, Swift.max(-9e12, t)) * 1_000_000).rounded()) : 0 }
}

extension StoredRound {
    static let zero = StoredRound(id: 0, at: 0, trigger: "", hostTotal: 0, hostFree: 0, reserve: 0, budget: 0, phase: "", fullSnapshot: false,
                                  policy: "", shadows: "", quietBefore: 0)
}

extension StoredAllocation {
    /// An `allocations` row (every column).
    public init(row r: Row) {
        self.init(roundID: r["round_id"], status: r["report_status"], workingSet: r["working_set_kib"], stall: r["stall"], floor: r["floor_kib"],
                  floorKind: r["floor_kind"], ceiling: r["ceiling_kib"], weight: r["weight"], demand: r["demand_kib"],
                  allocation: r["allocation_kib"], basis: r["basis"], actual: r["actual_kib"], previousTarget: r["previous_target_kib"],
                  target: r["target_kib"], reason: r["reason"], paced: (r["paced"] as Int) == 1, pushed: (r["pushed"] as Int?).map { $0 == 1 },
                  pushError: r["push_error"])
    }
}

extension StoredRound {
    /// A `rounds` row (every column).
    public init(row r: Row) {
        self.init(id: r["id"], at: r["at"], trigger: r["trigger"], hostTotal: r["host_total_kib"], hostFree: r["host_free_kib"],
                  reserve: r["reserve_kib"], budget: r["budget_kib"], phase: r["phase"], fullSnapshot: (r["full_snapshot"] as Int) == 1,
                  policy: r["policy"], shadows: r["shadows"], quietBefore: r["quiet_before"])
    }
}
