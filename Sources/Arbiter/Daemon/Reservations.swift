import GuestModel

/// Memory held out of the budget for a domain about to be built: a VM start (`arbiter reserve`,
/// `arbiter start`) or a restart (the memory of a released domain, held for a domain of the same name).
/// While held it goes to no guest; it ends when a new domain of that name is complete, at its deadline,
/// or when cancelled.
public struct Reservation: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// Asked for by an admin (or `arbiter start`).
        case start
        /// A released domain's memory, held for its restart.
        case restart
    }

    public enum Status: String, Sendable, Equatable {
        /// Held, not yet free in Xen.
        case pending
        /// Held and free in Xen: a build of that size can start.
        case ready
        /// The domain it was for has been built.
        case done
        /// Its deadline passed first.
        case expired
        /// Cancelled (`arbiter unreserve`).
        case cancelled
    }

    public var id: Int
    public var kind: Kind
    public var size: KiB
    /// The domain it is for (nil: held until the deadline or cancelled).
    public var name: String?
    public var created: TimePoint
    public var deadline: TimePoint
    public var status: Status = .pending
    /// What is held now: the size less what a new domain of that name already has.
    public var held: KiB
    /// When it first became ready.
    public var readyAt: TimePoint?
    /// Domains of that name that existed when it was made (a new one ends it, not these).
    var excluded: Set<DomID>

    public var isOpen: Bool { status == .pending || status == .ready }
}

/// The reservations of one daemon, in the order they were made (earlier ones are served first).
struct Reservations {
    private(set) var open = [Reservation]()
    /// Ended ones, newest last, so `--wait` can learn how one ended.
    private(set) var ended = [Reservation]()
    private var nextID = 1

    mutating func add(kind: Reservation.Kind, size: KiB, name: String?, at t: TimePoint, seconds: Double,
                      excluded: Set<DomID>) -> Reservation {
        let r = Reservation(id: nextID, kind: kind, size: size, name: name, created: t,
                            deadline: t.adding(seconds: seconds), held: size, excluded: excluded)
        nextID += 1
        open.append(r)
        return r
    }

    func find(_ id: Int) -> Reservation? { open.first { $0.id == id } ?? ended.last { $0.id == id } }

    mutating func end(_ id: Int, as status: Reservation.Status) -> Reservation? {
        guard let k = open.firstIndex(where: { $0.id == id }) else { return nil }
        var r = open.remove(at: k)
        r.status = status
        r.held = .zero
        ended.append(r)
        if ended.count > 64 { ended.removeFirst(ended.count - 64) }
        return r
    }

    /// Ends what a complete new domain of the right name, or the deadline, ends; then works out what each
    /// open reservation holds (its size less what building domains of that name already have).
    /// Returns the reservations ended.
    mutating func update(domains: [DomainInfo], at t: TimePoint) -> [Reservation] {
        var done = [Reservation]()
        for r in open {
            if let name = r.name,
               domains.contains(where: { $0.name == name && $0.phase == .running && !r.excluded.contains($0.domid) }) {
                if let e = end(r.id, as: .done) { done.append(e) }
            } else if t >= r.deadline {
                if let e = end(r.id, as: .expired) { done.append(e) }
            }
        }
        for k in open.indices {
            let r = open[k]
            var has: Int64 = 0
            if let name = r.name {
                for d in domains where d.name == name && !r.excluded.contains(d.domid) { has += d.actual.value }
            }
            open[k].held = KiB(Swift.max(0, r.size.value - has))
        }
        return done
    }

    var held: KiB { KiB(open.reduce(Int64(0)) { $0 + $1.held.value }) }

    /// Marks reservations ready, in order, while `available` (free memory beyond what is always kept
    /// free) covers them; the rest are pending.
    mutating func markReady(available: KiB, at t: TimePoint) {
        var used: Int64 = 0
        for k in open.indices {
            used += open[k].held.value
            if used <= available.value {
                if open[k].status != .ready { open[k].status = .ready; open[k].readyAt = t }
            } else {
                open[k].status = .pending
            }
        }
    }
}
