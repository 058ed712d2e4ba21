import GuestModel
import HostSimulator

/// Where a domain is in its life, as the arbiter treats it.
public enum DomainPhase: String, Sendable, Equatable {
    /// Being built (or restored): `memory/target` or `memory/static-max` not yet in xenstore. Its memory
    /// counts as used; it is neither decided nor pushed.
    case building
    /// Complete: decided and pushed every round.
    case running
    /// Shut down, suspended (`xl save`) or dying: its memory is still Xen's to free; left alone.
    case stopping
}

/// One domain as the host shows it (trusted facts: libxl domain info and `memory/*` in xenstore).
public struct DomainInfo: Sendable, Equatable {
    public var domid: DomID
    public var name: String
    public var phase: DomainPhase = .running
    /// The domain's current allocation (libxl `current_memkb`).
    public var actual: KiB
    /// `memory/static-max`.
    public var staticMax: KiB
    /// `memory/target`.
    public var target: KiB
    /// The domain's UUID, where the backend knows it.
    public var uuid: String?

    public init(domid: DomID, name: String, actual: KiB, staticMax: KiB, target: KiB, uuid: String? = nil,
                phase: DomainPhase = .running) {
        self.domid = domid
        self.name = name
        self.phase = phase
        self.uuid = uuid
        self.actual = actual
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
public enum HostEvent: Sendable, Hashable {
    case domainIntroduced(DomID)
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
    /// The events since the last call, in order, each at most once (`HostEventChannel`).
    func takeEvents() async -> [HostEventChannel.TimedEvent]
    /// Returns when an event has come since the last wait (at once if one has), or after `timeout`.
    func waitForEvents(timeout: Duration) async
    /// Sets a domain's balloon target (absolute, enforced).
    func setTarget(_ domid: DomID, _ target: KiB) async throws
    /// Publishes the arbiter's view where admins look: a domain marked uncooperative (or no longer).
    func markUncooperative(_ domid: DomID, _ uncooperative: Bool) async throws
    /// Releases what the backend runs beside the loop (the real host's watch thread). Last call.
    func close() async
}

extension HostBackend {
    public func waitForEvents(timeout: Duration) async { try? await Task.sleep(for: timeout) }
    public func markUncooperative(_ domid: DomID, _ uncooperative: Bool) async throws {}
    public func close() async {}
}

/// The simulated Xen host behind the backend protocol: the embedded default when there is no Xen.
/// Time only moves when `advance` is called, so tests and the daemon's demo decide how fast it runs.
/// The scenario's lifecycle events (destroy, create, restart, start) happen as time passes; starts
/// wait for the arbiter's reservation (`SimulatedHost.driveStarts`), as `arbiter start` does.
public actor SimulatedHost: HostBackend {
    private var host: SimHost
    private let channel = HostEventChannel()
    public let scenario: Scenario
    private var schedule: [LifecycleEvent]
    /// Creates to try once each, when due (a restart's create follows its destroy by `restartSeconds`).
    private var creates = [(name: String, at: Double, due: Double, action: LifecycleEvent.Action)]()
    /// `xl reboot`: the guest shuts down and xl's monitor destroys and re-creates it; from the destroy to
    /// the new build on a busy dom0, about this long.
    public static let restartSeconds = 2.0
    /// Starts waiting for a reservation: due (not yet asked) and asked (reservation id).
    private var startsDue = [(name: String, at: Double)]()
    private var startsWaiting = [(name: String, at: Double, reservation: Int)]()
    /// What each lifecycle event came to, in order.
    public private(set) var lifecycle = [LifecycleOutcome]()

    /// How one lifecycle event ended.
    public struct LifecycleOutcome: Sendable, Equatable {
        public var action: LifecycleEvent.Action
        public var guest: String
        public var at: Double
        public var ok: Bool
        /// Seconds from the event to the domain's creation (or to the failure).
        public var seconds: Double
        public var detail: String
    }

    /// `adminSettings()`'s last answer; nil once a guest is created or destroyed.
    private var adminCache: [DomID: AdminSetting]?

    /// The run's figures, when the host was made to measure one (`LoopEvaluation`).
    private var recorder: MetricsRecorder?

    /// `selfballooning`: every guest's kernel runs xen-selfballoon (the simulator's selfballoon runs).
    public init(scenario: Scenario, measuring horizon: Double? = nil, selfballooning: Bool = false) {
        self.scenario = scenario
        host = SimHost(scenario: scenario)
        host.selfballooning = selfballooning
        if let horizon { recorder = MetricsRecorder(host, horizon: horizon) }
        schedule = scenario.events.sorted { $0.at < $1.at }
        for g in host.guests { channel.send(.domainIntroduced(g.domid)) }
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
            recorder?.observe(host, dt: step)
            left -= step
            out += runEvents()
            for w in host.drain(upTo: host.seconds) {
                out.append(.reportWritten(w.domid, key: w.key.path))
            }
        }
        for e in out { channel.send(e) }
        return out
    }

    private func spec(_ name: String) -> GuestSpec? { scenario.guests.first { $0.name == name } }

    /// The lifecycle events due now. Returns the host events they raise.
    private func runEvents() -> [HostEvent] {
        var out = [HostEvent]()
        let t = host.seconds
        while let e = schedule.first, e.at <= t + 1e-9 {
            schedule.removeFirst()
            switch e.action {
            case .destroy, .restart:
                if let d = host.live(named: e.guest) {
                    host.destroy(d)
                    adminCache = nil
                    out.append(.resync)
                    if e.action == .destroy { lifecycle.append(LifecycleOutcome(action: .destroy, guest: e.guest, at: e.at, ok: true, seconds: 0, detail: "destroyed dom\(d)")) }
                    else { creates.append((e.guest, e.at, t + Self.restartSeconds, .restart)) }
                } else {
                    lifecycle.append(LifecycleOutcome(action: e.action, guest: e.guest, at: e.at, ok: false, seconds: 0, detail: "no such domain"))
                }
            case .create:
                creates.append((e.guest, e.at, t, .create))
            case .start:
                startsDue.append((e.guest, e.at))
            }
        }
        for c in creates where c.due <= t + 1e-9 {
            out += create(c.name, action: c.action, since: c.at)
        }
        creates.removeAll { $0.due <= t + 1e-9 }
        return out
    }

    private func create(_ name: String, action: LifecycleEvent.Action, since: Double) -> [HostEvent] {
        guard let spec = spec(name) else { return [] }
        let t = host.seconds
        do {
            let d = try host.create(spec)
            adminCache = nil
            lifecycle.append(LifecycleOutcome(action: action, guest: name, at: since, ok: true, seconds: t - since, detail: "created dom\(d)"))
            return [.domainIntroduced(d)]
        } catch {
            lifecycle.append(LifecycleOutcome(action: action, guest: name, at: since, ok: false, seconds: t - since, detail: error.description))
            return []
        }
    }

    /// What the starts of the scenario need from the arbiter, as `arbiter start` asks for it: a
    /// reservation of what the build needs, then `xl create` once it is ready, then the reservation is
    /// released. Call after each `advance` (the daemon's simulated clock and the tests do).
    public func driveStarts(_ loop: ControlLoop) async {
        let due = startsDue
        startsDue.removeAll()
        for s in due {
            guard let spec = spec(s.name) else { continue }
            switch await loop.reserve(SimHost.buildNeed(spec), for: s.name, timeout: 120, who: "scenario") {
            case .success(let r): startsWaiting.append((s.name, s.at, r.id))
            case .failure(let why):
                lifecycle.append(LifecycleOutcome(action: .start, guest: s.name, at: s.at, ok: false, seconds: host.seconds - s.at,
                                                  detail: why.description))
            }
        }
        var still = [(name: String, at: Double, reservation: Int)]()
        for w in startsWaiting {
            switch await loop.reservation(w.reservation)?.status {
            case .ready?, .done?:
                for e in create(w.name, action: .start, since: w.at) { channel.send(e) }
                await loop.unreserve(w.reservation)
            case .pending?:
                still.append(w)
            default:
                lifecycle.append(LifecycleOutcome(action: .start, guest: w.name, at: w.at, ok: false, seconds: host.seconds - w.at,
                                                  detail: "reservation \(w.reservation) ended before its memory was free"))
            }
        }
        startsWaiting = still
    }

    public func domains() -> [DomainInfo] {
        // By index: a guest's whole state is not copied to read a few of its fields.
        host.guests.indices.compactMap { i in
            let phase: DomainPhase
            switch host.guests[i].life {
            case .destroyed: return nil
            case .building: phase = .building
            case .running: phase = .running
            }
            // Under construction: no memory/target in xenstore yet.
            return DomainInfo(domid: host.guests[i].domid, name: host.guests[i].spec.name, actual: KiB(Int64(host.guests[i].actual)),
                              staticMax: host.guests[i].spec.staticMax, target: phase == .running ? KiB(Int64(host.guests[i].target)) : .zero,
                              phase: phase)
        }
    }

    public func memory() -> HostMemory { HostMemory(total: scenario.pool, free: KiB(Int64(host.free))) }

    public func readReport(_ domid: DomID, key: String, limit: Int) throws -> [UInt8]? {
        guard let i = host.index(of: domid), host.guests[i].life != .destroyed else { throw HostError.noSuchDomain(domid) }
        guard var v = host.read(domid, key) else { return nil }
        return v.withUTF8 { Array($0.prefix(limit + 1)) }
    }

    public func takeEvents() -> [HostEventChannel.TimedEvent] { channel.take() }

    public nonisolated func waitForEvents(timeout: Duration) async { await channel.wait(timeout: timeout) }

    /// Events offered and queued so far (a flooding guest's repeats are not queued).
    public nonisolated var eventCounts: HostEventChannel.Counts { channel.counted }

    /// A guest's write notification as xenstored's watch delivers it, from any thread (benchmarks: a
    /// guest rewriting its report as fast as xenstored lets it).
    public nonisolated func watchFired(_ e: HostEvent) { channel.send(e) }

    public func setTarget(_ domid: DomID, _ target: KiB) throws {
        do {
            try host.setTarget(domid, target)
            if let i = host.index(of: domid) { recorder?.targetSet(i, target) }
        } catch {
            if case .aboveStaticMax = error { recorder?.targetRefused() }
            switch error {
            case .noSuchDomain(let d): throw HostError.noSuchDomain(d)
            case .aboveStaticMax, .notPositive: throw HostError.targetRefused(domid, error.description)
            }
        }
    }

    /// A target pushed below a floor (the evaluation reads the loop's decisions and tells the host).
    public func floorViolated() { recorder?.floorViolated() }

    /// The figures measured so far (nil unless made with `measuring:`).
    public func metrics(policy: String, rejectedReports: Int) -> PolicyMetrics? {
        recorder?.finish(policy: policy, rejectedReports: rejectedReports)
    }

    /// What only the simulator knows of each running guest (the clairvoyant reference reads it).
    public func truth() -> [DomID: GuestTruth] {
        Dictionary(uniqueKeysWithValues: zip(host.guests, host.truth()).filter { $0.0.life == .running }.map { ($0.0.domid, $0.1) })
    }

    /// The admin-facing per-domain settings of the scenario (min, max, weight), for the control loop.
    public func adminSettings() -> [DomID: AdminSetting] {
        // Asked every round; the answer changes only when a guest is created or destroyed (both drop the cache).
        if let adminCache { return adminCache }
        var out = [DomID: AdminSetting]()
        for i in host.guests.indices where host.guests[i].life != .destroyed { out[host.guests[i].domid] = host.guests[i].spec.admin }
        adminCache = out
        return out
    }
}
