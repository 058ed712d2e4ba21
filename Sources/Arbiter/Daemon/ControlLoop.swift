import Foundation
import GuestModel
import Logging
import Peers

/// The daemon's heart: one round at a time over a host backend. Read the host, read the reports that
/// changed, decide (the pure core), push the changed targets, record the round. A failure of the host,
/// of one target or of the store is logged and survived; only the round that could not read the host
/// at all is skipped.
public actor ControlLoop {
    public let backend: any HostBackend
    let store: DecisionStore?
    let logger: Logger
    public private(set) var config: ArbiterConfig
    /// The policy whose targets are pushed (`[daemon] policy`), and those that decide from the same
    /// inputs and are only recorded (`[daemon] shadow`).
    public private(set) var policy: any RoundPolicy
    var shadows: [any RoundPolicy]
    /// The shadows' decisions of the last round, by policy name.
    public private(set) var lastShadows = [String: Decision]()
    /// Each shadow's own targets (what it would have pushed): a shadow decides from these, not from the
    /// pushed ones, or it would drift back to agreeing with what was pushed whenever it holds.
    var shadowTargets = [String: [DomID: KiB]]()
    /// Monotonic time for the core (the simulated host's clock, or the machine's).
    let now: @Sendable () async -> TimePoint
    let wall: @Sendable () -> Date
    let settings: @Sendable () async -> [DomID: AdminSetting]

    /// Admin settings from `arbiter set`, by domain name (persisted in the store; survive a new domid).
    var overrides = [String: AdminSetting]()
    /// The last round's decision (the control socket's `list`).
    public private(set) var lastDecision: Decision?
    var pendingPressure = DomainSet()
    var resyncPending = false
    var marked = DomainSet()
    var pendingLegacy = DomainSet()
    /// When each domain's reports were last read by a round: its reports start another round only
    /// `daemon.guest_round_interval_seconds` later (others' reports, and ticks, read it sooner).
    var readAt = [DomID: TimePoint]()
    var names = [DomID: String]()
    var lastRecorded = [DomID: Recorded]()
    /// Each shadow's target last recorded, per domain.
    var lastShadowRecorded = [String: [DomID: KiB]]()
    /// Every domain of the last host read, whatever its phase: a domain missing from the next read was
    /// released (destroyed, or saved and gone).
    var seen = [DomainInfo]()
    /// Memory held for domains about to be built.
    var reservations = Reservations()
    /// Memory guests could give up for a start this round: Σ allocation + free − what is always kept free
    /// − Σ static floors (a working-set floor gives way to a reservation, as it does to the weighted split
    /// under contention). A reservation beyond it cannot be met.
    public private(set) var room: KiB?
    public private(set) var rounds = 0
    public private(set) var lastRoundAt: TimePoint?
    /// The last full pass (startup, tick, shutdown): due every `daemon.tick_seconds` however often
    /// reports start rounds (watches can be lost; only a full pass finds what they missed).
    var lastFullPassAt: TimePoint?
    public private(set) var unrecordedRounds = 0
    /// Rounds written to the store (a report round that changed nothing is not), and the last one's phase.
    public private(set) var recordedRounds = 0
    var recordedPhase: SharePhase?
    /// Rounds not recorded since the last recorded one (it changed nothing): the next recorded round counts them.
    var quietRounds = 0
    /// Safety rules the arbiter's decisions broke (the first 100; must stay empty).
    public private(set) var violations = [Violation]()
    /// Guest reports refused since the daemon started.
    public private(set) var rejectedReports = 0
    /// The rounds lost since the last one recorded, when the first of them was, and why.
    var losing: (rounds: Int, since: Date, why: String)?
    /// Each round's outcome as Prometheus series, and where their text goes (nil: no metrics).
    let metrics: RoundMetrics?
    public let metricsExport: MetricsExport?

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

    /// `policy`: one to run instead of `config.daemon.policy` (the simulator's references).
    public init(backend: any HostBackend, store: DecisionStore?, config: ArbiterConfig, logger: Logger,
                policy: (any RoundPolicy)? = nil, now: @escaping @Sendable () async -> TimePoint, wall: @escaping @Sendable () -> Date = { Date() },
                settings: @escaping @Sendable () async -> [DomID: AdminSetting] = { [:] },
                metrics: MetricsExport? = nil) {
        self.backend = backend
        self.metricsExport = metrics
        self.metrics = metrics.map { _ in RoundMetrics() }
        self.store = store
        self.config = config
        self.logger = logger
        self.now = now
        self.wall = wall
        self.settings = settings
        self.policy = policy ?? config.daemon.policy.make(config.policy)
        shadows = config.daemon.shadow.map { $0.make(config.policy) }
        if let saved = try? store?.settings() { overrides = saved }
    }

    /// Applies a new policy (SIGHUP). The per-guest history is kept.
    /// What in `c` this host cannot honour, each with the key it is about (so the config file's
    /// line can be named): reserves the host does not have, or that would leave the
    /// guests less than their floors. Checked at start and on SIGHUP; empty when the host cannot be
    /// read (the round reports that).
    public func hostProblems(_ c: ArbiterConfig) async -> [ConfigError] {
        guard let memory = try? await backend.memory(), let domains = try? await backend.domains() else { return [] }
        var p = [ConfigError]()
        let share = c.policy.share
        let reserves = share.hostReserve + share.startReserve
        if reserves >= memory.total {
            p.append(ConfigError(key: "share.host_reserve", message: "\(formatSize(share.hostReserve)) (with share.start_reserve \(formatSize(share.startReserve))) "
                     + "is not below the host's \(formatSize(memory.total)) of memory"))
            return p
        }
        let running = domains.filter { $0.phase == .running }
        let have = running.reduce(memory.free) { $0 + $1.actual }
        // The floors: last round's where there was one, never less than absolute_min for each guest.
        let floorsMin = KiB(c.policy.floors.absoluteMin.value * Int64(running.count))
        let floorsNow = lastDecision.map { d in d.outcomes.reduce(KiB.zero) { $0 + $1.staticFloor } } ?? .zero
        let floors = Swift.max(floorsMin, floorsNow)
        let oldReserves = config.policy.share.hostReserve + config.policy.share.startReserve
        // Refused when this change is what leaves the floors short (a host already short is alerted
        // on every round; a smaller reserve must stay possible there).
        if floors + reserves > have && (floors + oldReserves <= have || lastDecision == nil) {
            p.append(ConfigError(key: "share.host_reserve", message: "\(formatSize(share.hostReserve)) (with share.start_reserve \(formatSize(share.startReserve))) "
                     + "leaves the guests less than their floors: they and Xen's free memory hold \(formatSize(have)), their floors need "
                     + "\(formatSize(floors)), so at most \(formatSize(KiB(Swift.max(0, (have - floors).value)))) can be kept free"))
        }
        if let big = running.first(where: { c.policy.floors.absoluteMin > $0.staticMax }) {
            p.append(ConfigError(key: "floors.absolute_min", message: "\(formatSize(c.policy.floors.absoluteMin)) is above \(big.name)'s static-max "
                     + "\(formatSize(big.staticMax)): no target could honour it"))
        }
        return p
    }

    public func reconfigure(_ new: ArbiterConfig) {
        // Policies keep what they learnt when they move between deciding and shadowing.
        let kept = Dictionary((shadows + [policy]).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        if new.daemon.policy != config.daemon.policy {
            let learnt = kept[new.daemon.policy.rawValue] != nil
            let history = learnt ? " (it was a shadow: its history is kept)" : "; the new one starts without history"
            logger.notice("policy changed: \(policy.name) -> \(new.daemon.policy.rawValue)\(history)")
            policy = kept[new.daemon.policy.rawValue] ?? new.daemon.policy.make(new.policy)
        }
        shadows = new.daemon.shadow.map { kept[$0.rawValue] ?? $0.make(new.policy) }
        let names = Set(shadows.map(\.name))
        lastShadows = lastShadows.filter { names.contains($0.key) }
        shadowTargets = shadowTargets.filter { names.contains($0.key) }
        lastShadowRecorded = lastShadowRecorded.filter { names.contains($0.key) }
        config = new
        policy.reconfigure(new.policy)
        for i in shadows.indices { shadows[i].reconfigure(new.policy) }
    }

    /// How long written reports waited for the round that read them (wall clock), per domain.
    public struct Lag: Sendable, Equatable {
        public var count = 0
        public var total = Duration.zero
        public var max = Duration.zero
    }
    public private(set) var reportLag = [DomID: Lag]()
    /// The waits of domains that are gone (those that waited longest, at most `retiredLagsKept`): a guest
    /// that flooded and was destroyed still shows at the daemon's stop.
    private var retiredLags = [(name: String, lag: Lag)]()
    static let retiredLagsKept = 8
    /// Every domain's report waits, live and gone (the gone ones that waited longest), longest first.
    public var reportWaitsByDomain: [(name: String, lag: Lag)] {
        (reportLag.map { (name: names[$0.key] ?? "dom\($0.key)", lag: $0.value) } + retiredLags).sorted { $0.lag.max > $1.lag.max }
    }
    /// Every report's wait from its watch event to the round that read it, all domains together.
    public private(set) var reportWaits = WaitHistogram()

    /// Where rounds spend their wall time, by step: reading the host (domains, memory), reading the
    /// reports (after noting the domains that came, went or changed phase), deciding (with the shadows,
    /// the checks and the reservations), pushing, recording, publishing the metrics. Logged at the daemon's
    /// stop: a report waits for the round before it, so this is what sets the wait when rounds are slow
    /// (a dom0 short of CPU).
    public struct StepTimes: Sendable, Equatable {
        public static let steps = ["host", "reports", "decide", "push", "record", "metrics"]
        public private(set) var rounds = 0
        public private(set) var total = [Duration](repeating: .zero, count: StepTimes.steps.count)
        public private(set) var max = [Duration](repeating: .zero, count: StepTimes.steps.count)

        /// One round's steps, as the clock read at each step's end (`marks[0]` the round's start).
        mutating func add(_ marks: [ContinuousClock.Instant]) {
            guard marks.count == StepTimes.steps.count + 1 else { return }
            rounds += 1
            for k in 0..<StepTimes.steps.count {
                let d = marks[k + 1] - marks[k]
                total[k] += d
                max[k] = Swift.max(max[k], d)
            }
        }
    }
    public private(set) var stepTimes = StepTimes()

    /// Waits in buckets a quarter-octave wide from 1 ms (the last bucket holds everything from ~65 s):
    /// quantiles to within 19 % in 68 counters, whatever the number of reports.
    public struct WaitHistogram: Sendable, Equatable {
        public private(set) var counts = [Int](repeating: 0, count: 68)
        public private(set) var count = 0
        public private(set) var max = Duration.zero

        mutating func add(_ d: Duration) {
            let ms = d.seconds * 1000
            let k = ms <= 1 ? 0 : Swift.min(counts.count - 1, Int((4 * log2(ms)).rounded(.up)))
            counts[k] += 1
            count += 1
            max = Swift.max(max, d)
        }

        /// The upper edge (seconds) of the bucket that holds quantile `q` (0–1), or the longest wait if
        /// that is less (the last bucket has no upper edge: the longest wait); nil without waits.
        public func quantile(_ q: Double) -> Double? {
            guard count > 0 else { return nil }
            let rank = Swift.max(1, Int((q * Double(count)).rounded(.up)))
            var seen = 0
            for (k, n) in counts.enumerated().dropLast() {
                seen += n
                if seen >= rank { return Swift.min(pow(2, Double(k) / 4) / 1000, max.seconds) }
            }
            return max.seconds
        }
    }
    private var writtenAt = [DomID: ContinuousClock.Instant]()

    /// Releases the backend's own resources (the real host's watch thread): the daemon's last step.
    public func closeBackend() async { await backend.close() }

    /// Takes host events, in order, each with when the backend saw it.
    public func note(_ events: [HostEventChannel.TimedEvent]) {
        for e in events { note(e.event, at: e.at) }
    }

    /// Takes a host event: reports mark the domain for reading at the next round.
    public func note(_ event: HostEvent, at seen: ContinuousClock.Instant = .now) {
        switch event {
        case .domainIntroduced(let d):
            pendingPressure.insert(d)
        case .reportWritten(let d, let key):
            if key == "data/pressure" { pendingPressure.insert(d) } else { pendingLegacy.insert(d) }
            if writtenAt[d] == nil { writtenAt[d] = seen }
        case .resync:
            resyncPending = true
        }
    }

    /// Whether a round is due at `t`: the tick, a resync, or a report from a guest whose reports have not
    /// been read for `daemon.guest_round_interval_seconds` (each no sooner than
    /// `daemon.min_round_interval_seconds` after the last round).
    public func due(at t: TimePoint) -> DecisionStore.Trigger? {
        guard let last = lastRoundAt else { return .startup }
        let since = t.seconds(since: last)
        if t.seconds(since: lastFullPassAt ?? last) >= config.daemon.tickSeconds
            || (resyncPending && since >= config.daemon.minRoundIntervalSeconds) { return .tick }
        if since >= config.daemon.minRoundIntervalSeconds && reportWaitLeft(at: t) <= 0 { return .report }
        return nil
    }

    /// Seconds (of `now`'s clock) until a round can be due, if nothing else is written: 0 when one is due.
    public func secondsUntilDue(at t: TimePoint) -> Double {
        guard let last = lastRoundAt else { return 0 }
        let since = t.seconds(since: last)
        var wait = config.daemon.tickSeconds - t.seconds(since: lastFullPassAt ?? last)
        if resyncPending { wait = Swift.min(wait, config.daemon.minRoundIntervalSeconds - since) }
        let reports = reportWaitLeft(at: t)
        if reports.isFinite { wait = Swift.min(wait, Swift.max(reports, config.daemon.minRoundIntervalSeconds - since)) }
        return Swift.max(0, wait)
    }

    /// Seconds until a waiting report may start a round (0: now; infinity: none waiting): the soonest any
    /// domain with a report waiting has gone `daemon.guest_round_interval_seconds` unread.
    private func reportWaitLeft(at t: TimePoint) -> Double {
        if pendingPressure.isEmpty && pendingLegacy.isEmpty { return .infinity }
        var left = Double.infinity, timed = 0
        for (d, _) in writtenAt where pendingPressure.contains(d) || pendingLegacy.contains(d) {
            guard let read = readAt[d] else { return 0 }
            left = Swift.min(left, config.daemon.guestRoundIntervalSeconds - t.seconds(since: read))
            if left <= 0 { return 0 }
            timed += 1
        }
        // A domain just introduced (no write timed) is read at once.
        return timed < Swift.max(pendingPressure.count, pendingLegacy.count) ? 0 : left
    }

    /// One round: read the host, read the reports that changed, decide (and let the shadows decide),
    /// check the safety rules, push, record. Returns the decision, or nil when the host could not be read.
    @discardableResult
    public func round(trigger: DecisionStore.Trigger) async -> Decision? {
        let started = ContinuousClock.now
        let t = await now()
        let all: [DomainInfo], memory: HostMemory
        do {
            all = try await backend.domains()
            memory = try await backend.memory()
        } catch {
            logger.error("round skipped: cannot read the host: \(error)")
            if let metrics {
                metrics.skippedRound()
                publishMetrics(metrics, force: true)
            }
            return nil
        }
        var marks = [started, ContinuousClock.now]
        let changed = lifecycle(all, at: t)
        // Only complete domains are decided: one being built has no target yet (libxl would refuse a push,
        // the store a zero target), one stopping is Xen's to free. Their memory is neither free nor ours.
        let domains = all.filter { $0.phase == .running }
        if changed { for d in domains { names[d.domid] = d.name } }
        let reported = await readReports(of: domains, fullPass: trigger != .report, at: t)
        marks.append(ContinuousClock.now)
        let snapshot = await snapshot(of: domains, free: memory.free)
        let decision = policy.step(snapshot, now: t)
        check(decision, staticMax: snapshot.domains)
        shadowRound(snapshot, at: t)
        lastRoundAt = t
        if trigger != .report { lastFullPassAt = t }
        lastDecision = decision
        reserve(after: decision, free: memory.free, at: t)
        marks.append(ContinuousClock.now)
        let pushes = await push(decision, first: reported)
        await publishUncooperative(decision)
        marks.append(ContinuousClock.now)
        rounds += 1
        let lostBefore = unrecordedRounds
        let recorded = record(decision, trigger: trigger, hostTotal: memory.total, domains: domains, pushes: pushes)
        marks.append(ContinuousClock.now)
        if let metrics {
            metrics.round(decision, trigger: trigger, hostTotal: memory.total, names: names, pushes: pushes,
                          recorded: unrecordedRounds == lostBefore, took: ContinuousClock.now - started,
                          wallSeconds: wall().timeIntervalSince1970)
            publishMetrics(metrics, force: trigger != .report)
        }
        marks.append(ContinuousClock.now)
        stepTimes.add(marks)
        for a in decision.alerts { logger.warning("\(a)") }
        logger.info("round", metadata: [
            "trigger": "\(trigger.rawValue)", "domains": "\(decision.outcomes.count)", "changed": "\(pushes.count)",
            "free": "\(memory.free)", "phase": "\(DecisionStore.phaseName(decision.phase))", "recorded": "\(recorded)",
        ])
        return decision
    }

    /// Renders the metrics and hands them to the textfile and the endpoint: after every round but those
    /// started by reports, which publish at most once a second (rounds may come ten a second; node_exporter
    /// reads the file every 15 s or so, and dom0's disk need not be rewritten for each). The next tick
    /// (`daemon.tick_seconds`) publishes whatever a skipped one held.
    private func publishMetrics(_ metrics: RoundMetrics, force: Bool) {
        let now = ContinuousClock.now
        if !force, let last = lastPublished, now - last < .seconds(1) { return }
        lastPublished = now
        metricsExport?.publish(metrics.render())
    }
    private var lastPublished: ContinuousClock.Instant?

    /// Reads the reports that changed, and on a full pass every reporter line (watches can be lost).
    /// Legacy keys are read only when written: re-reading an old value is no sign of life. Returns the
    /// domains whose written reports this round read.
    private func readReports(of domains: [DomainInfo], fullPass: Bool, at t: TimePoint) async -> DomainSet {
        if fullPass { resyncPending = false }
        let pressure = fullPass ? DomainSet(domains.map(\.domid)) : pendingPressure
        let legacy = pendingLegacy
        pendingPressure.removeAll(); pendingLegacy.removeAll()
        let readNow = ContinuousClock.now
        var reported = DomainSet()
        for (d, w) in writtenAt where pressure.contains(d) || legacy.contains(d) {
            writtenAt[d] = nil
            reported.insert(d)
            readAt[d] = t
            var l = reportLag[d, default: Lag()]
            l.count += 1
            l.total += readNow - w
            l.max = Swift.max(l.max, readNow - w)
            reportLag[d] = l
            reportWaits.add(readNow - w)
        }
        for d in domains where pressure.contains(d.domid) || legacy.contains(d.domid) {
            await readReports(d.domid, pressure: pressure.contains(d.domid), legacy: legacy.contains(d.domid),
                              staticMax: d.staticMax, actual: d.actual, at: t)
        }
        return reported
    }

    /// The host as the policy sees it: Xen's facts with the admin's settings (`arbiter set` overrides the
    /// backend's own, key by key) and the memory held for starts.
    private func snapshot(of domains: [DomainInfo], free: KiB) async -> HostSnapshot {
        let base = await settings()
        let facts = domains.map { d in
            DomainFacts(domid: d.domid, staticMax: d.staticMax, actual: d.actual, target: d.target,
                        admin: (overrides[d.name] ?? AdminSetting()).over(base[d.domid]))
        }
        // Only a start asked for frees memory at the fast pace; a restart's hold is memory already free.
        let urgent = reservations.open.contains { $0.status == .pending && $0.kind == .start }
        return HostSnapshot(free: free, domains: facts, held: reservations.held, urgent: urgent)
    }

    /// The safety rules (`Invariants`) checked on every round the arbiter decides; a broken rule is
    /// logged and kept (the first 100). The peers' rules are their own (qmemman, squeezed and MoM set
    /// targets outside the bounds the arbiter's rules assume, by design).
    private func check(_ decision: Decision, staticMax facts: [DomainFacts]) {
        guard policy is Arbitration else { return }
        // The arbiter decides the snapshot's domains in its order. Xen shows no static-max for a domain it
        // has not finished describing: the most it holds stands in.
        let staticMax = zip(decision.outcomes, facts).map { o, f in
            o.domid != f.domid ? o.ceiling : f.staticMax.value > 0 ? f.staticMax : max(f.actual, f.target)
        }
        let broken = Invariants.violations(of: decision, staticMax: staticMax.count == decision.outcomes.count ? staticMax : nil)
        guard !broken.isEmpty else { return }
        for v in broken.prefix(5) { logger.error("round broke a safety rule: \(v)") }
        violations += broken.prefix(Swift.max(0, 100 - violations.count))
    }

    /// Each shadow decides from the same reports and host read, from its own previous targets.
    private func shadowRound(_ snapshot: HostSnapshot, at t: TimePoint) {
        for i in shadows.indices {
            let name = shadows[i].name
            var own = snapshot
            if let mine = shadowTargets[name] {
                for k in own.domains.indices { if let t = mine[own.domains[k].domid] { own.domains[k].target = t } }
            }
            let d = shadows[i].step(own, now: t)
            lastShadows[name] = d
            shadowTargets[name] = Dictionary(uniqueKeysWithValues: d.outcomes.map { ($0.domid, $0.target) })
        }
    }

    /// Room for starts (memory above the static floors) and the reservations it makes ready.
    private func reserve(after decision: Decision, free: KiB, at t: TimePoint) {
        let share = config.policy.share
        let keep = share.hostReserve.value + share.startReserve.value
        let sumFloors = decision.outcomes.reduce(Int64(0)) { $0 + $1.staticFloor.value }
        let sumActual = decision.outcomes.reduce(Int64(0)) { $0 + $1.actual.value }
        room = KiB(Swift.max(0, sumActual + free.value - keep - sumFloors))
        let wasPending = reservations.open.filter { $0.status == .pending }.map(\.id)
        reservations.markReady(available: KiB(Swift.max(0, free.value - keep)), at: t)
        for r in reservations.open where r.status == .ready && wasPending.contains(r.id) {
            logger.notice("reservation ready", metadata: reservationMetadata(r, at: t))
        }
    }

    /// Pushes the targets that changed (none in a dry run); a refused push is logged and recorded.
    /// Those of the domains in `first` (whose reports the round read) go first: one push through libxl
    /// costs a domain-configuration read and a xenstore transaction (176 ms under TCG), and a guest that
    /// reported should not wait for the others' pushes. (Order is no safety matter: grows were granted
    /// only from memory Xen already shows free.)
    private func push(_ decision: Decision, first: DomainSet) async -> [DomID: DecisionStore.Push] {
        var pushes = [DomID: DecisionStore.Push]()
        guard !config.daemon.dryRun else { return pushes }
        let changed = decision.outcomes.filter(\.changed)
        for o in changed.filter({ first.contains($0.domid) }) + changed.filter({ !first.contains($0.domid) }) {
            do {
                try await backend.setTarget(o.domid, o.target)
                pushes[o.domid] = .pushed
            } catch {
                pushes[o.domid] = .failed("\(error)")
                logger.warning("target not set", metadata: ["domid": "\(o.domid)", "target": "\(o.target)", "error": "\(error)"])
            }
        }
        return pushes
    }

    /// Publishes uncooperative marks when they change.
    private func publishUncooperative(_ decision: Decision) async {
        for o in decision.outcomes where o.uncooperative != (marked.contains(o.domid)) {
            do {
                try await backend.markUncooperative(o.domid, o.uncooperative)
                if o.uncooperative { marked.insert(o.domid) } else { marked.remove(o.domid) }
            } catch {
                logger.warning("uncooperative mark not written", metadata: ["domid": "\(o.domid)", "error": "\(error)"])
            }
        }
    }

    /// Records the round: every outcome on a full snapshot (every `daemon.snapshot_every` recorded rounds),
    /// otherwise those pushed or moved since they were last recorded; shadows on a 4 MiB move. A round a
    /// report started that changed nothing (no row, no alert, the same phase) is not recorded: the store
    /// could answer nothing more with it, and reports start many such rounds. A round that cannot be
    /// recorded is counted, logged and, once recording resumes, alerted. Returns the number of outcomes
    /// recorded.
    private func record(_ decision: Decision, trigger: DecisionStore.Trigger, hostTotal: KiB, domains: [DomainInfo],
                        pushes: [DomID: DecisionStore.Push]) -> Int {
        let full = rounds == 1 || (recordedRounds + 1) % config.daemon.snapshotEvery == 0 || trigger == .shutdown
        let band = config.policy.pacing.deadband
        let rows = full ? decision.outcomes : decision.outcomes.filter { o in
            pushes[o.domid] != nil || (lastRecorded[o.domid].map { $0.differs(from: o, band: band) } ?? true)
        }
        guard let store else { return rows.count }
        let uuids = Dictionary(domains.compactMap { d in d.uuid.map { (d.domid, $0) } }, uniquingKeysWith: { a, _ in a })
        var shadowRows = [DecisionStore.Shadow]()
        for (name, d) in lastShadows {
            let moved = ShadowComparison.band.value / 4
            for o in d.outcomes where full || lastShadowRecorded[name]?[o.domid].map({ abs($0.value - o.target.value) > moved }) ?? true {
                shadowRows.append(DecisionStore.Shadow(policy: name, domid: o.domid, target: o.target, reason: o.reason))
            }
        }
        if trigger == .report && rows.isEmpty && shadowRows.isEmpty && decision.alerts.isEmpty && decision.phase == recordedPhase {
            quietRounds += 1
            return 0
        }
        do {
            try store.record(decision, at: wall(), trigger: trigger, hostTotal: hostTotal, outcomes: rows,
                             fullSnapshot: full, names: names, uuids: uuids, pushes: pushes, policy: policy.name,
                             shadowPolicies: shadows.map(\.name), shadows: shadowRows, quietBefore: quietRounds)
            recordedRounds += 1
            quietRounds = 0
            recordedPhase = decision.phase
            for o in rows { lastRecorded[o.domid] = Recorded(o) }
            for s in shadowRows { lastShadowRecorded[s.policy, default: [:]][s.domid] = s.target }
            if let lost = losing {
                losing = nil
                let text = "\(lost.rounds) round(s) not recorded between \(Report.time(lost.since.timeIntervalSince1970)) and \(Report.time(wall().timeIntervalSince1970)): \(lost.why)"
                logger.notice("recording resumed after \(lost.rounds) lost round(s)", metadata: ["lost_total": "\(unrecordedRounds)", "first_error": "\(lost.why)"])
                do { try store.recordAlert(kind: "rounds-not-recorded", shortfall: .zero, message: text, at: wall()) }
                catch { logger.error("alert not recorded: \(text)") }
            }
        } catch {
            unrecordedRounds += 1
            losing = losing.map { ($0.rounds + 1, $0.since, $0.why) } ?? (1, wall(), "\(error)")
            logger.error("decision not recorded (\(unrecordedRounds) lost so far): \(error)")
            // A full disk or a log SQLite could not fold back: fold it and cut it to nothing now,
            // so the next round has the space and the log never grows past its limit.
            do { try store.checkpoint() } catch { logger.debug("checkpoint after a lost round failed: \(error)") }
        }
        return rows.count
    }

    /// Domains that came, were built, or went since the last host read. A domain missing now was
    /// released: its lifetime is closed, its state dropped, and (if it was running) its memory held for a
    /// domain of the same name for `share.release_grace_seconds`.
    /// Returns whether anything came, went or changed phase.
    @discardableResult
    func lifecycle(_ all: [DomainInfo], at t: TimePoint) -> Bool {
        defer {
            for r in reservations.update(domains: all, at: t) {
                logger.notice("reservation \(r.status == .done ? "used" : "expired")", metadata: reservationMetadata(r, at: t))
            }
        }
        // Most rounds nothing came, went or changed phase: the new read replaces the old, nothing else to do.
        if all.count == seen.count
            && zip(all, seen).allSatisfy({ $0.domid == $1.domid && $0.phase == .running && $1.phase == .running && $0.name == $1.name }) {
            seen = all
            return false
        }
        let seen = Dictionary(self.seen.map { ($0.domid, $0) }, uniquingKeysWith: { a, _ in a })
        var now = [DomID: DomainInfo]()
        for d in all {
            var d = d
            // A dying domain hands memory back as it goes: remember what it had while it ran.
            if d.phase == .stopping, let old = seen[d.domid], old.name == d.name { d.actual = max(d.actual, old.actual) }
            now[d.domid] = d
        }
        for old in self.seen where now[old.domid].map({ $0.name != old.name }) ?? true { release(old, at: t) }
        for d in all {
            let before = seen[d.domid].flatMap { $0.name == d.name ? $0.phase : nil }
            guard before != d.phase else { continue }
            let meta: Logger.Metadata = ["domain": "\(d.name)", "domid": "\(d.domid)", "memory": "\(d.actual)"]
            switch d.phase {
            case .building: logger.notice("domain under construction: not decided until built", metadata: meta)
            case .running: if before != nil || rounds > 0 { logger.notice("domain built", metadata: meta) }
            case .stopping: logger.notice("domain stopping: left alone", metadata: meta)
            }
        }
        self.seen = all.map { now[$0.domid] ?? $0 }
        return true
    }

    func release(_ old: DomainInfo, at t: TimePoint) {
        let d = old.domid
        policy.forget(d)
        for i in shadows.indices { shadows[i].forget(d) }
        if let lag = reportLag[d], lag.count > 0 {
            retiredLags.append((name: old.name, lag: lag))
            retiredLags.sort { $0.lag.max > $1.lag.max }
            if retiredLags.count > Self.retiredLagsKept { retiredLags.removeLast() }
        }
        pendingPressure.remove(d); pendingLegacy.remove(d); marked.remove(d); writtenAt[d] = nil; reportLag[d] = nil; readAt[d] = nil
        lastRecorded[d] = nil
        for k in lastShadowRecorded.keys { lastShadowRecorded[k]?[d] = nil }
        names[d] = nil
        metrics?.remove(d)
        do { try store?.domainReleased(d, at: wall()) } catch { logger.error("store: domain release not recorded: \(error)") }
        var meta: Logger.Metadata = ["domain": "\(old.name)", "domid": "\(d)", "memory": "\(old.actual)"]
        let grace = config.policy.share.releaseGraceSeconds
        // What it had is free now: held for its restart, so that nobody grows into it meanwhile. (A restart
        // built bigger than that needs the host reserve, start_reserve or `arbiter reserve` for the rest.)
        if old.phase != .building && grace > 0 && old.actual.value > 0 {
            let r = reservations.add(kind: .restart, size: old.actual, name: old.name, at: t, seconds: grace, excluded: [d])
            meta["held_for_restart"] = "\(r.size) for \(formatFixed(grace, decimals: 0)) s (reservation \(r.id))"
        }
        logger.notice("domain released", metadata: meta)
    }

    func reservationMetadata(_ r: Reservation, at t: TimePoint) -> Logger.Metadata {
        ["id": "\(r.id)", "kind": "\(r.kind.rawValue)", "size": "\(r.size)", "for": "\(r.name ?? "-")",
         "after_s": "\(formatFixed(t.seconds(since: r.created), decimals: 1))"]
    }

    /// Reads, bounds, parses and ingests a domain's report keys; rejections are recorded.
    /// `actual` is the domain's allocation read this round, just before its reports.
    func readReports(_ d: DomID, pressure: Bool, legacy: Bool, staticMax: KiB?, actual: KiB, at t: TimePoint) async {
        let limit = config.policy.limits.maxLineBytes
        var outcome: IngestOutcome? = nil
        do {
            var parsed: Result<GuestReport, ReportRejection>? = nil
            if pressure, let raw = try await backend.readReport(d, key: "data/pressure", limit: limit) {
                parsed = raw.withUnsafeBufferPointer { ReportParser.parse($0, limits: config.policy.limits) }
            } else if legacy,
                      let total = try await backend.readReport(d, key: "data/meminfo_total", limit: 64),
                      let free = try await backend.readReport(d, key: "data/meminfo_free", limit: 64) {
                parsed = total.withUnsafeBufferPointer { tb in free.withUnsafeBufferPointer { fb in
                    ReportParser.parseLegacy(total: tb, free: fb, limits: config.policy.limits) } }
            }
            if let parsed {
                outcome = policy.ingest(d, parsed: parsed, at: t, staticMax: staticMax, allocation: actual)
                for i in shadows.indices { shadows[i].ingest(d, parsed: parsed, at: t, staticMax: staticMax, allocation: actual) }
            }
        } catch {
            logger.warning("report not read", metadata: ["domid": "\(d)", "error": "\(error)"])
            return
        }
        if case .rejected(let why) = outcome {
            rejectedReports += 1
            metrics?.rejected(d, code: why.code)
            logger.notice("report rejected", metadata: ["domid": "\(d)", "code": "\(why.code)", "reason": "\(why)"])
            do { try store?.recordRejection(d, name: names[d] ?? "dom\(d)", at: wall(), why) } catch { logger.error("store: \(error)") }
        }
    }
}
