import GuestModel
import Synchronization

/// The toolstack-written facts of each domain that change only when the toolstack writes them (`name`,
/// `memory/static-max`, `memory/target`), kept between rounds. Reading all three for every domain every
/// round cost three xenstore round trips per domain, most of a round's wall time on a real host (under
/// emulation: 230-270 ms of about 400 with seven domains). The watch on `/local/domain` sees every
/// write to them, so a kept value is used until a write to its key is seen, its domain's UUID changes
/// (a domid reused), or the watch connection is re-established. In case a watch event was ever lost
/// (xenstored is not obliged to queue them without bound), values older than `maxAge` are read again, a
/// few domains a round, the longest kept first (`due`): all at once, every domain's three reads would
/// land in one round every `maxAge` and hold up the reports waiting on it.
///
/// A value read while a write to its key was on its way (the write done, its watch event not yet
/// handled) must not be kept as current: every read and every write seen takes a tick from one
/// counter, and a value is kept only if its read began after the last write seen to its key.
public final class XenDomainFacts: Sendable {
    /// The keys kept, relative to a domain's home.
    public enum Key: Int, Sendable, CaseIterable {
        case name, staticMax, target

        var relativePath: String {
            switch self {
            case .name: XenstorePaths.nameKey
            case .staticMax: XenstorePaths.staticMaxKey
            case .target: XenstorePaths.targetKey
            }
        }
    }

    /// When a read began, to be handed back with its value.
    public struct Ticket: Sendable, Equatable {
        fileprivate let tick: UInt64
        fileprivate let at: ContinuousClock.Instant
    }

    public let maxAge: Duration
    private let state = Mutex(State())

    private struct Slot {
        var uuid: String?
        var value: String
        var tick: UInt64
        var at: ContinuousClock.Instant
    }

    private struct SlotKey: Hashable {
        var domid: DomID
        var key: Key
    }

    private struct State {
        var clock: UInt64 = 1
        var slots: [SlotKey: Slot] = [:]
        /// The tick of the last write seen to each key; `allWrittenAt` for all at once.
        var writtenAt: [SlotKey: UInt64] = [:]
        var allWrittenAt: UInt64 = 0
        var counts = Counts()

        mutating func tick() -> UInt64 { defer { clock += 1 }; return clock }
    }

    /// Reads answered from what was kept, and reads that went to xenstore.
    public struct Counts: Sendable, Equatable {
        public var kept = 0
        public var read = 0
    }

    public var counted: Counts { state.withLock { $0.counts } }

    public init(maxAge: Duration = .seconds(30)) {
        self.maxAge = maxAge
    }

    /// The kept value of `key` for the domain `domid` with this UUID, if still current.
    public func kept(_ domid: DomID, uuid: String?, _ key: Key) -> String? {
        state.withLock { s in
            let k = SlotKey(domid: domid, key: key)
            guard let slot = s.slots[k], slot.uuid == uuid, slot.tick > max(s.writtenAt[k] ?? 0, s.allWrittenAt) else { return nil }
            s.counts.kept += 1
            return slot.value
        }
    }

    /// Of `domains`, at most `limit` whose oldest kept value was read `maxAge` ago or more, the oldest
    /// first: the ones to read again this round whatever is kept.
    public func due(among domains: [DomID], limit: Int, now: ContinuousClock.Instant = .now) -> Set<DomID> {
        let oldest = state.withLock { s in
            domains.compactMap { d -> (DomID, ContinuousClock.Instant)? in
                let times = Key.allCases.compactMap { s.slots[SlotKey(domid: d, key: $0)]?.at }
                guard let first = times.min(), now - first >= maxAge else { return nil }
                return (d, first)
            }
        }
        return Set(oldest.sorted { $0.1 < $1.1 }.prefix(Swift.max(0, limit)).map(\.0))
    }

    /// Call before reading a key from xenstore; hand the ticket to `keep`.
    public func ticket(now: ContinuousClock.Instant = .now) -> Ticket {
        state.withLock { s in
            s.counts.read += 1
            return Ticket(tick: s.tick(), at: now)
        }
    }

    /// Keeps a value read under `ticket`. A missing key is not kept (a domain under construction is read
    /// again every round until libxl has written it).
    public func keep(_ domid: DomID, uuid: String?, _ key: Key, _ value: String?, ticket: Ticket) {
        state.withLock { s in
            let k = SlotKey(domid: domid, key: key)
            guard let value else { s.slots[k] = nil; return }
            s.slots[k] = Slot(uuid: uuid, value: value, tick: ticket.tick, at: ticket.at)
        }
    }

    /// A watch event: a write to (or removal of) `path`. Returns whether it touched a kept key.
    @discardableResult
    public func written(_ path: String) -> Bool {
        guard let (domid, keys) = Self.keys(fromWatchPath: path) else { return false }
        state.withLock { s in
            let t = s.tick()
            if let domid {
                for key in keys { s.writtenAt[SlotKey(domid: domid, key: key)] = t }
            } else {
                s.allWrittenAt = t
            }
        }
        return true
    }

    /// Nothing kept is current any more (the watch connection was lost and re-established).
    public func forgetAll() {
        state.withLock { s in s.allWrittenAt = s.tick() }
    }

    /// Drops what is kept for domains no longer there (nothing is rebuilt while every domain kept is).
    public func retain(_ present: Set<DomID>) {
        state.withLock { s in
            if s.slots.keys.contains(where: { !present.contains($0.domid) }) {
                s.slots = s.slots.filter { present.contains($0.key.domid) }
            }
            if s.writtenAt.keys.contains(where: { !present.contains($0.domid) }) {
                s.writtenAt = s.writtenAt.filter { present.contains($0.key.domid) }
            }
        }
    }

    /// The kept keys a watch path touches: `(domid, keys)`, `(nil, all)` for `/local/domain` itself, nil
    /// for paths that touch none. A write to a key, or the removal of a node above it, changes it.
    static func keys(fromWatchPath path: String) -> (DomID?, [Key])? {
        let root = XenstorePaths.domains
        guard path.utf8.count <= 128, path.hasPrefix(root) else { return nil }
        if path == root { return (nil, Key.allCases) }
        guard path.dropFirst(root.count).first == "/" else { return nil }
        let parts = path.dropFirst(root.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard let first = parts.first, let domid = XenstorePaths.domid(first) else { return nil }
        // The key itself, or a node above it (the home, `memory`): its removal takes the key with it.
        let rest = parts.dropFirst().joined(separator: "/")
        let keys = Key.allCases.filter { rest.isEmpty || $0.relativePath == rest || $0.relativePath.hasPrefix(rest + "/") }
        return keys.isEmpty ? nil : (domid, keys)
    }
}
