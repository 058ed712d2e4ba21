import Foundation
import GuestModel
import Logging

/// Per-domain admin settings as the control loop applies them.
public struct AdminSetting: Sendable, Equatable {
    public var min: KiB?
    public var max: KiB?
    public var weight: Double?
    public init(min: KiB? = nil, max: KiB? = nil, weight: Double? = nil) {
        self.min = min
        self.max = max
        self.weight = weight
    }
}

/// The daemon's heart: one round at a time over a host backend. Read the host, read the reports that
/// changed, decide (the pure core), push the changed targets, record the round. A failure of the host,
/// of one target or of the store is logged and survived; only the round that could not read the host
/// at all is skipped.
public actor ControlLoop {
    public let backend: any HostBackend
    let store: DecisionStore?
    let logger: Logger
    public private(set) var config: ArbiterConfig
    public private(set) var arbitration: Arbitration
    /// Monotonic time for the core (the simulated host's clock, or the machine's).
    let now: @Sendable () async -> TimePoint
    let wall: @Sendable () -> Date
    let settings: @Sendable () async -> [DomID: AdminSetting]

    /// Admin settings from `arbiter set`, by domain name (persisted in the store; survive a new domid).
    var overrides = [String: AdminSetting]()
    /// The last round's decision (the control socket's `list`).
    public private(set) var lastDecision: Decision?
    var pendingPressure = Set<DomID>()
    var resyncPending = false
    var marked = Set<DomID>()
    var pendingLegacy = Set<DomID>()
    var names = [DomID: String]()
    var lastRecorded = [DomID: Recorded]()
    public private(set) var rounds = 0
    public private(set) var lastRoundAt: TimePoint?
    public private(set) var unrecordedRounds = 0

    /// What makes a decision worth a row when no full snapshot is due: a new target, reason, report
    /// status or weight, or a floor, ceiling or allocation that moved by more than the deadband
    /// (estimates drift a little every round; recording each drift would record every domain always).
    struct Recorded {
        var target: KiB, floor: KiB, ceiling: KiB, allocation: KiB, reason: Reason, status: ReportStatus, weight: Double
        init(_ o: DomainOutcome) {
            target = o.target; floor = o.floor; ceiling = o.ceiling; allocation = o.allocation
            reason = o.reason; status = o.status; weight = o.weight
        }

        func differs(from o: DomainOutcome, band: KiB) -> Bool {
            func moved(_ a: KiB, _ b: KiB) -> Bool { abs(a.value - b.value) > band.value }
            return o.target != target || o.reason != reason || o.status != status || o.weight != weight
                || moved(o.floor, floor) || moved(o.ceiling, ceiling) || moved(o.allocation, allocation)
        }
    }

    public init(backend: any HostBackend, store: DecisionStore?, config: ArbiterConfig, logger: Logger,
                now: @escaping @Sendable () async -> TimePoint, wall: @escaping @Sendable () -> Date = { Date() },
                settings: @escaping @Sendable () async -> [DomID: AdminSetting] = { [:] }) {
        self.backend = backend
        self.store = store
        self.config = config
        self.logger = logger
        self.now = now
        self.wall = wall
        self.settings = settings
        arbitration = Arbitration(config: config.policy)
        if let saved = try? store?.settings() { overrides = saved }
    }

    /// Applies a new policy (SIGHUP). The per-guest history is kept.
    public func reconfigure(_ new: ArbiterConfig) {
        config = new
        arbitration.config = new.policy
    }

    /// Takes a host event: reports mark the domain for reading at the next round.
    public func note(_ event: HostEvent) {
        switch event {
        case .domainIntroduced(let d):
            pendingPressure.insert(d)
        case .domainReleased(let d):
            arbitration.forget(d)
            pendingPressure.remove(d); pendingLegacy.remove(d)
            lastRecorded[d] = nil
            names[d] = nil
            do { try store?.domainReleased(d, at: wall()) } catch { logger.error("store: \(error)") }
        case .reportWritten(let d, let key):
            if key == "data/pressure" { pendingPressure.insert(d) } else { pendingLegacy.insert(d) }
        case .resync:
            resyncPending = true
        }
    }

    /// Whether a round is due at `t`: reports waiting (and the coalescing interval passed), or the tick.
    public func due(at t: TimePoint) -> DecisionStore.Trigger? {
        guard let last = lastRoundAt else { return .startup }
        let since = t.seconds(since: last)
        if since >= config.daemon.tickSeconds || (resyncPending && since >= config.daemon.minRoundIntervalSeconds) { return .tick }
        if !(pendingPressure.isEmpty && pendingLegacy.isEmpty) && since >= config.daemon.minRoundIntervalSeconds { return .report }
        return nil
    }

    /// One round. Returns the decision, or nil when the host could not be read.
    @discardableResult
    public func round(trigger: DecisionStore.Trigger) async -> Decision? {
        let t = await now()
        let domains: [DomainInfo], memory: HostMemory
        do {
            domains = try await backend.domains()
            memory = try await backend.memory()
        } catch {
            logger.error("round skipped: cannot read the host: \(error)")
            return nil
        }
        for d in domains { names[d.domid] = d.name }
        let uuids = Dictionary(domains.compactMap { d in d.uuid.map { (d.domid, $0) } }, uniquingKeysWith: { a, _ in a })
        let staticMax = Dictionary(uniqueKeysWithValues: domains.map { ($0.domid, $0.staticMax) })

        // Reports: those that changed, and on a full pass every reporter line (watches can be lost).
        // Legacy keys are read only when written: re-reading an old value is no sign of life.
        let fullPass = trigger != .report
        if fullPass { resyncPending = false }
        let pressure = fullPass ? Set(domains.map(\.domid)) : pendingPressure
        let legacy = pendingLegacy
        pendingPressure.removeAll(); pendingLegacy.removeAll()
        for d in domains where pressure.contains(d.domid) || legacy.contains(d.domid) {
            await readReports(d.domid, pressure: pressure.contains(d.domid), legacy: legacy.contains(d.domid),
                              staticMax: staticMax[d.domid], current: d.current, at: t)
        }

        let base = await settings()
        let facts = domains.map { d in
            // `arbiter set` overrides the backend's own settings (a scenario's, later the toolstack's), key by key.
            let o = overrides[d.name], b = base[d.domid]
            return DomainFacts(domid: d.domid, staticMax: d.staticMax, actual: d.current, target: d.target,
                               adminMin: o?.min ?? b?.min, adminMax: o?.max ?? b?.max, weight: o?.weight ?? b?.weight)
        }
        let decision = arbitration.step(HostSnapshot(free: memory.free, domains: facts), now: t)
        lastRoundAt = t
        lastDecision = decision

        var pushes = [DomID: DecisionStore.Push]()
        if !config.daemon.dryRun {
            for o in decision.outcomes where o.changed {
                do {
                    try await backend.setTarget(o.domid, o.target)
                    pushes[o.domid] = .pushed
                } catch {
                    pushes[o.domid] = .failed("\(error)")
                    logger.warning("target not set", metadata: ["domid": "\(o.domid)", "target": "\(o.target)", "error": "\(error)"])
                }
            }
        }

        // Publish uncooperative marks when they change.
        for o in decision.outcomes where o.uncooperative != (marked.contains(o.domid)) {
            do {
                try await backend.markUncooperative(o.domid, o.uncooperative)
                if o.uncooperative { marked.insert(o.domid) } else { marked.remove(o.domid) }
            } catch {
                logger.warning("uncooperative mark not written", metadata: ["domid": "\(o.domid)", "error": "\(error)"])
            }
        }

        rounds += 1
        let full = rounds == 1 || rounds % config.daemon.snapshotEvery == 0 || trigger == .shutdown
        let band = config.policy.pacing.deadband
        let rows = full ? decision.outcomes : decision.outcomes.filter { o in
            pushes[o.domid] != nil || (lastRecorded[o.domid].map { $0.differs(from: o, band: band) } ?? true)
        }
        if let store {
            do {
                try store.record(decision, at: wall(), trigger: trigger, hostTotal: memory.total, outcomes: rows,
                                 fullSnapshot: full, names: names, uuids: uuids, pushes: pushes)
                for o in rows { lastRecorded[o.domid] = Recorded(o) }
            } catch {
                unrecordedRounds += 1
                logger.error("decision not recorded (\(unrecordedRounds) lost so far): \(error)")
            }
        }
        for a in decision.alerts { logger.warning("\(a)") }
        logger.info("round", metadata: [
            "trigger": "\(trigger.rawValue)", "domains": "\(decision.outcomes.count)", "changed": "\(pushes.count)",
            "free": "\(memory.free)", "phase": "\(DecisionStore.phaseName(decision.phase))", "recorded": "\(rows.count)",
        ])
        return decision
    }

    /// Reads, bounds, parses and ingests a domain's report keys; rejections are recorded.
    /// `current` is the domain's allocation read this round, just before its reports.
    func readReports(_ d: DomID, pressure: Bool, legacy: Bool, staticMax: KiB?, current: KiB, at t: TimePoint) async {
        let limit = config.policy.limits.maxLineBytes
        var outcome: IngestOutcome? = nil
        do {
            if pressure, let raw = try await backend.readReport(d, key: "data/pressure", limit: limit) {
                let parsed = raw.withUnsafeBufferPointer { ReportParser.parse($0, limits: config.policy.limits) }
                outcome = arbitration.ingest(d, parsed: parsed, at: t, staticMax: staticMax, allocation: current)
            } else if legacy,
                      let total = try await backend.readReport(d, key: "data/meminfo_total", limit: 64),
                      let free = try await backend.readReport(d, key: "data/meminfo_free", limit: 64) {
                let parsed = total.withUnsafeBufferPointer { tb in free.withUnsafeBufferPointer { fb in
                    ReportParser.parseLegacy(total: tb, free: fb, limits: config.policy.limits) } }
                outcome = arbitration.ingest(d, parsed: parsed, at: t, staticMax: staticMax, allocation: current)
            }
        } catch {
            logger.warning("report not read", metadata: ["domid": "\(d)", "error": "\(error)"])
            return
        }
        if case .rejected(let why) = outcome {
            logger.notice("report rejected", metadata: ["domid": "\(d)", "code": "\(why.code)", "reason": "\(why)"])
            do { try store?.recordRejection(d, name: names[d] ?? "dom\(d)", at: wall(), why) } catch { logger.error("store: \(error)") }
        }
    }
}
