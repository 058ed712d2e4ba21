import GuestModel
import HostSimulator

/// One domain as the host shows it (trusted facts: libxl domain info and `memory/*` in xenstore).
public struct DomainInfo: Sendable, Equatable {
    public var domid: DomID
    public var name: String
    /// The domain's current allocation (libxl `current_memkb`).
    public var current: KiB
    /// Xen's maxmem for the domain (libxl `max_memkb`).
    public var maxMem: KiB
    /// `memory/static-max`.
    public var staticMax: KiB
    /// `memory/target`.
    public var target: KiB
    /// The domain's UUID, where the backend knows it.
    public var uuid: String?

    public init(domid: DomID, name: String, current: KiB, maxMem: KiB, staticMax: KiB, target: KiB, uuid: String? = nil) {
        self.domid = domid
        self.name = name
        self.uuid = uuid
        self.current = current
        self.maxMem = maxMem
        self.staticMax = staticMax
        self.target = target
    }
}

/// Host-wide memory (physinfo).
public struct HostMemory: Sendable, Equatable {
    public var total: KiB
    /// Free memory less outstanding claims: what the arbiter may hand out.
    public var free: KiB
}

/// What the host tells the control loop without being asked. Watches are hints: on any event the
/// loop re-reads what it needs, and a periodic full pass catches what was lost.
public enum HostEvent: Sendable, Equatable {
    case domainIntroduced(DomID)
    case domainReleased(DomID)
    /// A guest wrote one of its report keys (relative path, e.g. `data/pressure`).
    case reportWritten(DomID, key: String)
    /// Something changed that the event does not say precisely (a domain came or went, the watch
    /// connection was re-established): re-read everything.
    case resync
}

/// Failures at the host boundary, whatever the backend.
public enum HostError: Error, Equatable, CustomStringConvertible {
    case noSuchDomain(DomID)
    /// The hypervisor refused the target (libxl: above static-max).
    case targetRefused(DomID, String)
    /// Xen itself failed (libxl/xenstore/xenctrl), with its context.
    case xen(XenError)

    public var description: String {
        switch self {
        case .noSuchDomain(let d): "no domain \(d)"
        case .targetRefused(let d, let why): "dom\(d): target refused: \(why)"
        case .xen(let e): e.description
        }
    }
}

/// What the control loop needs from a host: the real Xen backend and the simulated host implement it.
public protocol HostBackend: Sendable {
    /// The managed domains (dom0 excluded unless configured).
    func domains() async throws -> [DomainInfo]
    func memory() async throws -> HostMemory
    /// A guest-written key, at most `limit` bytes (longer values come back truncated to limit + 1 so the
    /// parser can refuse them), or nil if absent.
    func readReport(_ domid: DomID, key: String, limit: Int) async throws -> [UInt8]?
    /// Events, in order, for as long as the backend lives.
    func events() async -> AsyncStream<HostEvent>
    /// Sets a domain's balloon target (absolute, enforced).
    func setTarget(_ domid: DomID, _ target: KiB) async throws
    /// Publishes the arbiter's view where admins look: a domain marked uncooperative (or no longer).
    func markUncooperative(_ domid: DomID, _ uncooperative: Bool) async throws
}

extension HostBackend {
    public func markUncooperative(_ domid: DomID, _ uncooperative: Bool) async throws {}
}

/// The simulated Xen host behind the backend protocol: the embedded default when there is no Xen.
/// Time only moves when `advance` is called, so tests and the daemon's demo decide how fast it runs.
public actor SimulatedHost: HostBackend {
    private var host: SimHost
    private let names: [String]
    private let stream: AsyncStream<HostEvent>
    private let continuation: AsyncStream<HostEvent>.Continuation
    public let scenario: Scenario

    public init(scenario: Scenario) {
        self.scenario = scenario
        host = SimHost(scenario: scenario)
        names = scenario.guests.map(\.name)
        (stream, continuation) = AsyncStream.makeStream(of: HostEvent.self, bufferingPolicy: .bufferingNewest(4096))
        for g in host.guests { continuation.yield(.domainIntroduced(g.domid)) }
    }

    /// Seconds of host time simulated so far.
    public var seconds: Double { host.seconds }

    /// Moves host time on by `seconds`, in the scenario's physics steps; guest writes that become
    /// visible are announced as events (and returned, for callers that drive time themselves).
    @discardableResult
    public func advance(by seconds: Double) -> [HostEvent] {
        let dt = scenario.stepSeconds
        var left = seconds
        var out = [HostEvent]()
        while left > 1e-9 {
            let step = Swift.min(dt, left)
            host.step(step)
            left -= step
            for w in host.drain(upTo: host.seconds) {
                let e = HostEvent.reportWritten(w.domid, key: w.key.path)
                continuation.yield(e)
                out.append(e)
            }
        }
        return out
    }

    public func domains() -> [DomainInfo] {
        host.guests.enumerated().map { i, g in
            DomainInfo(domid: g.domid, name: names[i], current: KiB(Int64(g.actual)), maxMem: g.spec.staticMax,
                       staticMax: g.spec.staticMax, target: KiB(Int64(g.target)))
        }
    }

    public func memory() -> HostMemory { HostMemory(total: scenario.pool, free: KiB(Int64(host.free))) }

    public func readReport(_ domid: DomID, key: String, limit: Int) throws -> [UInt8]? {
        guard host.index(of: domid) != nil else { throw HostError.noSuchDomain(domid) }
        guard let v = host.read(domid, key) else { return nil }
        return Array(v.utf8.prefix(limit + 1))
    }

    public func events() -> AsyncStream<HostEvent> { stream }

    public func setTarget(_ domid: DomID, _ target: KiB) throws {
        do {
            try host.setTarget(domid, target)
        } catch {
            switch error {
            case .noSuchDomain(let d): throw HostError.noSuchDomain(d)
            case .aboveStaticMax, .notPositive: throw HostError.targetRefused(domid, error.description)
            }
        }
    }

    /// The admin-facing per-domain settings of the scenario (min, max, weight), for the control loop.
    public func adminSettings() -> [DomID: AdminSetting] {
        Dictionary(uniqueKeysWithValues: host.guests.map {
            ($0.domid, AdminSetting(min: $0.spec.adminMin, max: $0.spec.adminMax, weight: $0.spec.weight))
        })
    }
}
