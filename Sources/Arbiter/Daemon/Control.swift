import Foundation
import GuestModel

/// One request on the control socket (a JSON line).
public struct ControlRequest: Codable, Sendable, Equatable {
    /// "list" or "set".
    public var cmd: String
    public var domain: String?
    public var floorKiB: Int64?
    public var ceilingKiB: Int64?
    public var weight: Double?
    /// Settings to remove: any of "floor", "ceiling", "weight".
    public var clear: [String]?
    public var who: String?

    public init(cmd: String, domain: String? = nil, floorKiB: Int64? = nil, ceilingKiB: Int64? = nil, weight: Double? = nil,
                clear: [String]? = nil, who: String? = nil) {
        self.cmd = cmd
        self.domain = domain
        self.floorKiB = floorKiB
        self.ceilingKiB = ceilingKiB
        self.weight = weight
        self.clear = clear
        self.who = who
    }

    enum CodingKeys: String, CodingKey {
        case cmd, domain, weight, clear, who
        case floorKiB = "floor_kib"
        case ceilingKiB = "ceiling_kib"
    }
}

/// A domain as the running daemon sees it now.
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

    enum CodingKeys: String, CodingKey {
        case name, domid, weight, stall, report, reason
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

    enum CodingKeys: String, CodingKey {
        case ok, error, message, domains, phase
        case freeKiB = "free_kib"
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
            return ControlReply(ok: true, domains: live, freeKiB: d.free.value, phase: DecisionStore.phaseName(d.phase))
        case "set":
            return await set(r)
        default:
            return .failure("unknown command '\(r.cmd.prefix(32))' (list, set)")
        }
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
        if let f = s.min {
            if f.value <= 0 { return .failure("floor must be positive") }
            if f > d.staticMax { return .failure("floor \(f) is above \(d.name)'s static-max \(d.staticMax)") }
            if f > memory.total { return .failure("floor \(f) is more than the host's \(memory.total)") }
        }
        if let c = s.max {
            if c.value <= 0 { return .failure("ceiling must be positive") }
            if c > d.staticMax { return .failure("ceiling \(c) is above \(d.name)'s static-max \(d.staticMax) (libxl refuses targets above it)") }
        }
        if let f = s.min, let c = s.max, f > c { return .failure("floor \(f) is above ceiling \(c)") }
        if let w = s.weight, !(w.isFinite && w > 0 && w <= 10_000) { return .failure("weight must be between 0 and 10000") }
        do {
            try store?.saveSetting(d.name, s, who: r.who ?? "unknown", at: wall())
        } catch {
            return .failure("not saved: \(error)")
        }
        overrides[d.name] = (s.min == nil && s.max == nil && s.weight == nil) ? nil : s
        return ControlReply(ok: true, message: "\(d.name): floor \(s.min.map(formatSize) ?? "auto"), ceiling \(s.max.map(formatSize) ?? "static-max"), "
                            + "weight \(s.weight.map { formatFixed($0, decimals: 2) } ?? "default"); applied from the next round")
    }
}
