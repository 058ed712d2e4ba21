import Foundation
import GuestModel

/// One request on the control socket (a JSON line).
public struct ControlRequest: Codable, Sendable, Equatable {
    /// "list", "set", "reserve", "reservation", "unreserve".
    public var cmd: String
    public var domain: String?
    public var floorKiB: Int64?
    public var ceilingKiB: Int64?
    public var weight: Double?
    /// Settings to remove: any of "floor", "ceiling", "weight".
    public var clear: [String]?
    public var who: String?
    /// `set`: store a floor the host cannot meet now (with an alert) instead of refusing it.
    public var force: Bool?
    /// `reserve`: how much, for which domain, for how long.
    public var sizeKiB: Int64?
    public var timeoutSeconds: Double?
    /// `reservation`, `unreserve`: which one.
    public var id: Int?

    public init(cmd: String, domain: String? = nil, floorKiB: Int64? = nil, ceilingKiB: Int64? = nil, weight: Double? = nil,
                clear: [String]? = nil, who: String? = nil, force: Bool? = nil, sizeKiB: Int64? = nil, timeoutSeconds: Double? = nil,
                id: Int? = nil) {
        self.force = force
        self.sizeKiB = sizeKiB
        self.timeoutSeconds = timeoutSeconds
        self.id = id
        self.cmd = cmd
        self.domain = domain
        self.floorKiB = floorKiB
        self.ceilingKiB = ceilingKiB
        self.weight = weight
        self.clear = clear
        self.who = who
    }

    enum CodingKeys: String, CodingKey {
        case cmd, domain, weight, clear, who, force, id
        case floorKiB = "floor_kib"
        case ceilingKiB = "ceiling_kib"
        case sizeKiB = "size_kib"
        case timeoutSeconds = "timeout_seconds"
    }
}

/// A reservation as the control socket shows it.
public struct ReservationInfo: Codable, Sendable, Equatable {
    public var id: Int
    public var kind: String
    public var status: String
    public var sizeKiB: Int64
    public var heldKiB: Int64
    public var name: String?
    /// Seconds since it was made, and until its deadline.
    public var ageSeconds: Double
    public var leftSeconds: Double
    public var readyAfterSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case id, kind, status, name
        case sizeKiB = "size_kib", heldKiB = "held_kib", ageSeconds = "age_seconds", leftSeconds = "left_seconds"
        case readyAfterSeconds = "ready_after_seconds"
    }
}

/// A domain as the running daemon sees it now (the socket's `list`), or as the store last recorded it
/// (`arbiter list --json`): one shape for both.
public struct LiveDomain: Codable, Sendable, Equatable {
    public var name: String
    public var domid: Int
    public var memKiB: Int64
    public var targetKiB: Int64
    public var floorKiB: Int64
    public var ceilingKiB: Int64
    public var demandKiB: Int64
    public var weight: Double
    public var stall: Double?
    public var report: String
    public var reason: String
    /// When Xen released this lifetime of the domain (Unix seconds): only `arbiter list --all` shows
    /// released domains, from the store; nil (absent from the JSON) for a live one.
    public var released: Double?

    public init(name: String, domid: Int, memKiB: Int64, targetKiB: Int64, floorKiB: Int64, ceilingKiB: Int64, demandKiB: Int64,
                weight: Double, stall: Double?, report: String, reason: String, released: Double? = nil) {
        self.name = name
        self.domid = domid
        self.memKiB = memKiB
        self.targetKiB = targetKiB
        self.floorKiB = floorKiB
        self.ceilingKiB = ceilingKiB
        self.demandKiB = demandKiB
        self.weight = weight
        self.stall = stall
        self.report = report
        self.reason = reason
        self.released = released
    }

    enum CodingKeys: String, CodingKey {
        case name, domid, weight, stall, report, reason, released
        case memKiB = "mem_kib", targetKiB = "target_kib", floorKiB = "floor_kib", ceilingKiB = "ceiling_kib", demandKiB = "demand_kib"
    }
}

/// The reply line.
public struct ControlReply: Codable, Sendable, Equatable {
    public var ok: Bool
    public var error: String?
    public var message: String?
    public var domains: [LiveDomain]?
    public var freeKiB: Int64?
    public var phase: String?
    public var reservations: [ReservationInfo]?
    /// Memory the guests could give up for starts now (allocations + free − kept free − floors).
    public var roomKiB: Int64?
    /// Rounds whose decision the store could not record since the daemon started (`list`).
    public var unrecordedRounds: Int?

    enum CodingKeys: String, CodingKey {
        case ok, error, message, domains, phase, reservations
        case freeKiB = "free_kib", roomKiB = "room_kib", unrecordedRounds = "unrecorded_rounds"
    }

    static func failure(_ why: String) -> ControlReply { ControlReply(ok: false, error: why) }
}

extension ControlLoop {
    /// Answers one control-socket line. Never throws: every problem is a reply.
    public func handle(_ line: String) async -> String {
        let reply: ControlReply
        if let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(line.utf8)) {
            reply = await handle(request)
        } else {
            reply = .failure("not a control request (one JSON object per line, e.g. {\"cmd\":\"list\"})")
        }
        let data = (try? JSONEncoder().encode(reply)) ?? Data("{\"ok\":false}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    func handle(_ r: ControlRequest) async -> ControlReply {
        switch r.cmd {
        case "list":
            guard let d = lastDecision else { return .failure("no round has run yet") }
            let live = d.outcomes.map { o in
                LiveDomain(name: names[o.domid] ?? "dom\(o.domid)", domid: Int(o.domid.raw), memKiB: o.actual.value, targetKiB: o.target.value,
                           floorKiB: o.floor.value, ceilingKiB: o.ceiling.value, demandKiB: o.demand.value, weight: o.weight,
                           stall: o.stall, report: o.status.description, reason: o.reason.rawValue)
            }
            return ControlReply(ok: true, domains: live, freeKiB: d.free.value, phase: DecisionStore.phaseName(d.phase),
                                reservations: await reservationInfos(), roomKiB: room?.value, unrecordedRounds: unrecordedRounds)
        case "set":
            return await set(r)
        case "reserve":
            return await reserve(r)
        case "reservation", "unreserve":
            guard let id = r.id else { return .failure("\(r.cmd) needs an id") }
            let t = await now()
            if r.cmd == "unreserve" {
                guard let e = await unreserve(id) else { return .failure("no open reservation \(id)") }
                return ControlReply(ok: true, message: "reservation \(id) cancelled: \(formatSize(e.size)) back in the pool",
                                    reservations: [info(e, at: t)])
            }
            guard let found = reservations.find(id) else { return .failure("no reservation \(id)") }
            return ControlReply(ok: true, freeKiB: lastDecision?.free.value, reservations: [info(found, at: t)], roomKiB: room?.value)
        default:
            return .failure("unknown command '\(r.cmd.prefix(32))' (list, set, reserve, reservation, unreserve)")
        }
    }

    func info(_ r: Reservation, at t: TimePoint) -> ReservationInfo {
        ReservationInfo(id: r.id, kind: r.kind.rawValue, status: r.status.rawValue, sizeKiB: r.size.value, heldKiB: r.held.value,
                        name: r.name, ageSeconds: t.seconds(since: r.created), leftSeconds: Swift.max(0, r.deadline.seconds(since: t)),
                        readyAfterSeconds: r.readyAt.map { $0.seconds(since: r.created) })
    }

    func reservationInfos() async -> [ReservationInfo] {
        let t = await now()
        return reservations.open.map { info($0, at: t) }
    }

    /// Names, `who` and reservation labels: short printable text (they end up in logs, the store and xl).
    static func printable(_ s: String, max: Int = 64) -> Bool {
        !s.isEmpty && s.utf8.count <= max && s.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }
    }

    /// `arbiter reserve` over the socket.
    func reserve(_ r: ControlRequest) async -> ControlReply {
        guard let size = r.sizeKiB, size > 0 else { return .failure("reserve needs a positive size") }
        let who = r.who.map { Self.printable($0) ? $0 : "?" } ?? "unknown"
        switch await reserve(KiB(size), for: r.domain, timeout: r.timeoutSeconds ?? 120, who: who) {
        case .failure(let why):
            return .failure(why.description)
        case .success(let res):
            let t = await now()
            let target = res.name.map { "until \($0) is built or " } ?? "for "
            return ControlReply(ok: true, message: "reserved \(res.id): \(formatSize(res.size)) \(target)\(formatFixed(res.deadline.seconds(since: res.created), decimals: 0)) s",
                                reservations: [info(res, at: t)], roomKiB: room?.value)
        }
    }

    /// Holds `size` out of the budget (freeing it from guests as needed) for a domain about to be built.
    /// Refused at once when the floors leave less than that.
    public func reserve(_ size: KiB, for name: String?, timeout: Double, who: String) async -> Result<Reservation, CLIMessage> {
        if let name, !Self.printable(name) { return .failure(CLIMessage("domain name must be 1-64 printable ASCII characters")) }
        guard timeout.isFinite, timeout >= 1, timeout <= 3600 else { return .failure(CLIMessage("timeout must be between 1 and 3600 seconds")) }
        guard size.value > 0 else { return .failure(CLIMessage("reserve needs a positive size")) }
        guard lastDecision != nil, let room else { return .failure(CLIMessage("no round has run yet: try again in a moment")) }
        let want = size.pageCeil
        // A restart hold for the same name is what this reservation is for: it replaces it, not adds to it.
        let replaced = name.map { n in reservations.open.filter { $0.kind == .restart && $0.name == n } } ?? []
        let others = KiB(reservations.held.value - replaced.reduce(Int64(0)) { $0 + $1.held.value })
        let left = KiB(Swift.max(0, room.value - others.value))
        if want > left {
            let heldNote = others.value > 0 ? " (\(formatSize(others)) already held for other starts)" : ""
            return .failure(CLIMessage("cannot reserve \(formatSize(want)): floors leave only \(formatSize(left))\(heldNote)"))
        }
        let t = await now()
        for r in replaced {
            if let e = reservations.end(r.id, as: .done) {
                logger.notice("reservation replaced by a start's", metadata: reservationMetadata(e, at: t))
            }
        }
        let excluded = Set(seen.filter { $0.name == name }.map(\.domid))
        let res = reservations.add(kind: .start, size: want, name: name, at: t, seconds: timeout, excluded: excluded)
        logger.notice("reservation made", metadata: reservationMetadata(res, at: t).merging(["who": "\(who)"]) { a, _ in a })
        resyncPending = true
        return .success(res)
    }

    /// A reservation, open or recently ended.
    public func reservation(_ id: Int) -> Reservation? { reservations.find(id) }

    /// Cancels an open reservation: its memory goes back to the pool.
    @discardableResult
    public func unreserve(_ id: Int) async -> Reservation? {
        guard let e = reservations.end(id, as: .cancelled) else { return nil }
        let t = await now()
        logger.notice("reservation cancelled", metadata: reservationMetadata(e, at: t))
        resyncPending = true
        return e
    }

    /// `arbiter set`: validated against the domain's static-max and the host, persisted, applied next round.
    func set(_ r: ControlRequest) async -> ControlReply {
        guard let name = r.domain, !name.isEmpty else { return .failure("set needs a domain") }
        let domains: [DomainInfo], memory: HostMemory
        do {
            domains = try await backend.domains()
            memory = try await backend.memory()
        } catch {
            return .failure("cannot read the host: \(error)")
        }
        guard let d = domains.first(where: { $0.name == name || String($0.domid.raw) == name }) else {
            return .failure("no domain '\(name)' (see `arbiter list`)")
        }
        if let who = r.who, !Self.printable(who) { return .failure("who must be 1-64 printable ASCII characters") }
        var s = overrides[d.name] ?? AdminSetting()
        for c in r.clear ?? [] {
            switch c {
            case "floor": s.min = nil
            case "ceiling": s.max = nil
            case "weight": s.weight = nil
            default: return .failure("cannot clear '\(c.prefix(32))' (floor, ceiling, weight)")
            }
        }
        if let f = r.floorKiB { s.min = KiB(f) }
        if let c = r.ceilingKiB { s.max = KiB(c) }
        if let w = r.weight { s.weight = w }
        let absMin = config.policy.floors.absoluteMin
        if let f = s.min {
            if f < absMin { return .failure("floor \(formatSize(f)) is below floors.absolute_min \(formatSize(absMin)): no guest is targeted below that anyway") }
            if f > d.staticMax { return .failure("floor \(formatSize(f)) is above \(d.name)'s static-max \(formatSize(d.staticMax))") }
        }
        if let c = s.max {
            if c < absMin { return .failure("ceiling \(formatSize(c)) is below floors.absolute_min \(formatSize(absMin)): the guest would not run") }
            if c > d.staticMax { return .failure("ceiling \(formatSize(c)) is above \(d.name)'s static-max \(formatSize(d.staticMax)) (libxl refuses targets above it)") }
        }
        if let f = s.min, let c = s.max, f > c { return .failure("floor \(formatSize(f)) is above ceiling \(formatSize(c))") }
        if let w = s.weight, !(w.isFinite && w >= 0.01 && w <= 100) { return .failure("weight must be between 0.01 and 100") }
        // A floor the host cannot give: every floor together must fit in what the guests can have.
        var shortfall: KiB? = nil
        if let f = r.floorKiB.map({ KiB($0) }), let last = lastDecision {
            let share = config.policy.share
            let others = last.outcomes.filter { $0.domid != d.domid }
            let mine = last.outcomes.first { $0.domid == d.domid }
            let need = others.reduce(Int64(0)) { $0 + $1.staticFloor.value } + Swift.max(f.value, mine?.staticFloor.value ?? 0)
            let have = last.outcomes.reduce(Int64(0)) { $0 + $1.actual.value } + memory.free.value
                - share.hostReserve.value - share.startReserve.value
            if need > have {
                let gap = KiB(need - have)
                if r.force != true {
                    return .failure("floor \(formatSize(f)) cannot be met: all floors would need \(formatSize(KiB(need))) but guests can have "
                                    + "\(formatSize(KiB(Swift.max(0, have)))) (short by \(formatSize(gap))); --force stores it anyway, with an alert")
                }
                shortfall = gap
            }
        }
        do {
            try store?.saveSetting(d.name, s, who: r.who ?? "unknown", at: wall())
        } catch {
            return .failure("not saved: \(error)")
        }
        overrides[d.name] = (s.min == nil && s.max == nil && s.weight == nil) ? nil : s
        if let gap = shortfall {
            let text = "\(d.name): floor \(s.min.map(formatSize) ?? "-") forced although the floors exceed what guests can have by \(formatSize(gap))"
            logger.warning("\(text)")
            do { try store?.recordAlert(kind: Alert.Kind.floorsExceedHost.rawValue, shortfall: gap, message: text, at: wall()) }
            catch { logger.error("store: alert not recorded: \(error)") }
            return ControlReply(ok: true, message: text + "; applied from the next round (alert recorded)")
        }
        return ControlReply(ok: true, message: "\(d.name): floor \(s.min.map(formatSize) ?? "auto"), ceiling \(s.max.map(formatSize) ?? "static-max"), "
                            + "weight \(s.weight.map { formatFixed($0, decimals: 2) } ?? "default"); applied from the next round")
    }
}
