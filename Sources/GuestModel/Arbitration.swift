/// The round: estimate → floors → fair share → pacing, as one pure state machine. The control loop
/// feeds it reports (`ingest`) as they arrive and asks for a decision (`step`) with a fresh host
/// snapshot; it never touches Xen, a clock or a file.

/// Per-guest memory of the arbiter between rounds.
public struct GuestState: Sendable {
    public var domid: DomID
    public var tracker: ReportTracker
    public var estimator = EstimatorState()
    /// Allocation Xen showed in the last snapshot (the estimator's reference).
    public var lastActual: KiB?
    /// Since when `lastActual` has not moved by more than `Arbitration.restTolerance`.
    public var actualSince: TimePoint?
    /// Set while the most recent report was rejected; cleared by the next accepted one.
    public var lastRejection: ReportRejection?
    /// When a report of this guest was last rejected (it may not grow for `quarantineSeconds`).
    public var lastRejectedAt: TimePoint?
    public var responsiveness = Responsiveness()
    public var acceptedReports = 0
    public var rejectedReports = 0
    /// When the guest last showed it is alive: an accepted report, or a legacy agent rewriting the same
    /// values (legacy keys carry no sequence, so a rewrite is the only sign of life). Staleness runs from here.
    public var lastHeardAt: TimePoint?
    /// Since when this guest's shrink allowance accrues: the last round that pushed a shrink or wanted
    /// none. A shrink deferred by the rate limit keeps accruing, up to `pacing.maxIntervalSeconds`.
    public var shrinkSince: TimePoint?
    var generation: UInt32 = 0

    init(domid: DomID, limits: TrackerLimits) {
        self.domid = domid
        self.tracker = ReportTracker(limits: limits)
    }
}

/// What `ingest` did with a report.
public enum IngestOutcome: Sendable, Equatable {
    case accepted
    case unchanged
    case rejected(ReportRejection)
}

/// The arbiter's pure core.
public struct Arbitration: Sendable {
    public var config: PolicyConfig
    public private(set) var guests: [GuestState] = []
    /// domid → index into `guests` (−1: unknown). Domids are 15 bits, so a flat table beats hashing.
    private var slotOf = [Int32](repeating: -1, count: Int(DomID.firstReserved))
    private var generation: UInt32 = 0

    public init(config: PolicyConfig = PolicyConfig()) { self.config = config }

    public func guest(_ domid: DomID) -> GuestState? {
        guard domid.raw < DomID.firstReserved else { return nil }
        let s = slotOf[Int(domid.raw)]
        return s >= 0 ? guests[Int(s)] : nil
    }

    private mutating func slot(_ domid: DomID) -> Int {
        let s = slotOf[Int(domid.raw)]
        if s >= 0 { return Int(s) }
        guests.append(GuestState(domid: domid, limits: config.tracker))
        slotOf[Int(domid.raw)] = Int32(guests.count - 1)
        return guests.count - 1
    }

    /// Forgets a domain (released by Xen): its history must not leak into a later domain with the same id.
    public mutating func forget(_ domid: DomID) {
        guard domid.raw < DomID.firstReserved else { return }
        let s = Int(slotOf[Int(domid.raw)])
        guard s >= 0 else { return }
        slotOf[Int(domid.raw)] = -1
        let last = guests.count - 1
        if s != last {
            guests.swapAt(s, last)
            slotOf[Int(guests[s].domid.raw)] = Int32(s)
        }
        guests.removeLast()
    }

    /// Takes one raw `~/data/pressure` value read at `at`.
    @discardableResult
    public mutating func ingest(_ domid: DomID, line: String, at: TimePoint, staticMax: KiB? = nil, allocation: KiB? = nil) -> IngestOutcome {
        ingest(domid, parsed: ReportParser.parse(line, limits: config.limits), at: at, staticMax: staticMax, allocation: allocation)
    }

    /// Takes one parsed (or refused) report read at `at`. `staticMax` is the domain's trusted static-max
    /// if the caller has it.
    @discardableResult
    public mutating func ingest(_ domid: DomID, parsed: Result<GuestReport, ReportRejection>, at: TimePoint, staticMax: KiB? = nil,
                                allocation: KiB? = nil) -> IngestOutcome {
        switch parsed {
        case .success(let report): return ingest(domid, report: report, at: at, staticMax: staticMax, allocation: allocation)
        case .failure(let why):
            guard domid.raw < DomID.firstReserved else { return .rejected(why) }
            let s = slot(domid)
            guests[s].lastRejection = why
            guests[s].lastRejectedAt = at
            guests[s].rejectedReports += 1
            return .rejected(why)
        }
    }

    /// A balloon that moved less than this since the last snapshot, for at least `restSeconds`, is at
    /// rest: its guest's report and Xen's allocation describe the same memory.
    public static let restTolerance = KiB(mib: 1)
    public static let restSeconds = 3.0

    /// Takes one parsed report read at `at`. `allocation`: the domain's memory as Xen shows it now, if the
    /// caller has read it (otherwise the last snapshot's is used).
    @discardableResult
    public mutating func ingest(_ domid: DomID, report: GuestReport, at: TimePoint, staticMax: KiB? = nil,
                                allocation: KiB? = nil) -> IngestOutcome {
        guard domid.raw < DomID.firstReserved else { return .rejected(.inconsistent("domid \(domid) is reserved")) }
        let s = slot(domid)
        switch guests[s].tracker.track(report, at: at, staticMax: staticMax) {
        case .unchanged:
            if report.source == .legacy { guests[s].lastHeardAt = at }
            return .unchanged
        case .rejected(let why):
            guests[s].lastRejection = why
            guests[s].lastRejectedAt = at
            guests[s].rejectedReports += 1
            return .rejected(why)
        case .accepted(let rates):
            let lastActual = guests[s].lastActual
            let alloc = allocation ?? lastActual ?? report.memTotal
            var atRest = false
            if let last = lastActual, let since = guests[s].actualSince {
                atRest = abs(alloc.value - last.value) <= Self.restTolerance.value && at.seconds(since: since) >= Self.restSeconds
            }
            Estimator.update(&guests[s].estimator, with: report, rates: rates, at: at, allocation: alloc, atRest: atRest,
                             config: config.estimator)
            guests[s].lastRejection = nil
            guests[s].lastHeardAt = at
            guests[s].acceptedReports += 1
            return .accepted
        }
    }

    /// One round. Domains in the snapshot that the arbiter has not seen are adopted at their current
    /// target; domains it knew that are missing are forgotten.
    public mutating func step(_ snapshot: HostSnapshot, now: TimePoint) -> Decision {
        generation &+= 1
        let c = config
        let n = snapshot.domains.count
        var floors = [KiB](), demands = [KiB](), taxed = [KiB](), ceilings = [KiB](), weights = [Double](), statics = [KiB]()
        floors.reserveCapacity(n); statics.reserveCapacity(n); demands.reserveCapacity(n); ceilings.reserveCapacity(n); weights.reserveCapacity(n)
        var hardCeilings = [KiB](), lastRounds = [TimePoint?](), outcomes = [DomainOutcome]()
        hardCeilings.reserveCapacity(n); lastRounds.reserveCapacity(n); outcomes.reserveCapacity(n)
        var sumActual: Int64 = 0

        // Adopt new domains and forget vanished ones first: forgetting moves slots around.
        for d in snapshot.domains { guests[slot(d.domid)].generation = generation }
        dropUnseen()

        for d in snapshot.domains {
            let s = slot(d.domid)
            // lastActual and actualSince are set together: a move (or the first sight) restarts the clock.
            if guests[s].lastActual.map({ abs(d.actual.value - $0.value) > Self.restTolerance.value }) ?? true {
                guests[s].actualSince = now
            }
            guests[s].lastActual = d.actual
            lastRounds.append(guests[s].shrinkSince)
            sumActual &+= d.actual.value

            let staticMax = d.staticMax.value > 0 ? d.staticMax : max(d.actual, d.target)
            let hold = d.target.value > 0 ? min(d.target, staticMax) : min(d.actual, staticMax)
            var ceiling = min(d.adminMax ?? staticMax, staticMax).pageFloor
            let adminMin = d.adminMin ?? .zero
            var w = d.weight ?? c.share.defaultWeight
            if !(w.isFinite && w > 0) { w = c.share.defaultWeight }

            let est = guests[s].estimator
            let status: ReportStatus
            if guests[s].lastRejection != nil { status = .rejected }
            else if !est.isPrimed { status = .none }
            else {
                let limit = est.lastSource == .legacy ? c.estimator.legacyStaleAfterSeconds : c.estimator.staleAfterSeconds
                status = now.seconds(since: guests[s].lastHeardAt ?? est.lastAt!) > limit ? .stale : .fresh
            }

            var floor: KiB, kind: FloorKind, demand: KiB, idleTaxed: KiB
            var edge = hold
            // The floor whatever the guest reports (admin, absolute, selfballoon's); the working-set
            // floor above it may slow a shrink under contention, never freeze the weighted split.
            var staticFloor: KiB
            if status == .fresh || c.floors.silent == .adminFloor {
                (floor, kind) = Self.baseFloor(adminMin: adminMin, staticMax: staticMax, config: c.floors)
                staticFloor = floor
                if status == .fresh {
                    // The automatic floor protects what the guest holds; it never forces growth (that is
                    // demand's job, under fair share). Without this cap a guest reporting itself full
                    // would ratchet its own hard floor up by the padding every round.
                    let holding = max(d.actual, hold).asDouble
                    let wsFloor = KiB.pageCeil(Swift.min(est.workingSet * (1 + c.floors.padding), holding))
                    if wsFloor > floor { floor = wsFloor; kind = .workingSet }
                    demand = KiB.pageFloor(est.demand)
                    idleTaxed = KiB.pageFloor(est.taxedDemand(c.estimator.idleTax))
                    edge = KiB.pageCeil(est.wsNow * (1 + c.floors.padding))
                } else {
                    // Explicit opt-in: a silent guest may be shrunk to its admin floor, never grown.
                    demand = hold
                    idleTaxed = hold
                    ceiling = min(ceiling, max(hold, floor))
                }
            } else {
                // Never shrink on missing or bad data: hold the current target (admin min still applies).
                floor = max(hold, adminMin).pageCeil
                kind = adminMin > hold ? .admin : .hold
                staticFloor = floor
                demand = floor
                idleTaxed = floor
                ceiling = min(ceiling, floor)
            }
            // Quarantine: after a rejected report, no growth for a while.
            let quarantined = status == .fresh && guests[s].lastRejectedAt.map { now.seconds(since: $0) < c.tracker.quarantineSeconds } == true
            if quarantined {
                demand = min(demand, hold)
                idleTaxed = min(idleTaxed, hold)
                ceiling = min(ceiling, max(hold, floor))
            }
            // An uncooperative balloon: count only what the guest really has, and stop asking.
            guests[s].responsiveness.observe(actual: d.actual, target: hold, at: now, config: c.responsiveness)
            let uncooperative = guests[s].responsiveness.isUncooperative
            if uncooperative {
                let holding = min(max(d.actual, floor), staticMax).pageCeil
                floor = holding; demand = holding; idleTaxed = holding; ceiling = holding; staticFloor = holding
            }
            if floor > ceiling { floor = ceiling; kind = .ceiling }
            demand = clamp(demand, floor, ceiling)
            floors.append(floor)
            statics.append(min(staticFloor, floor))
            demands.append(demand)
            taxed.append(clamp(idleTaxed, floor, demand))
            ceilings.append(ceiling)
            hardCeilings.append(staticMax)
            weights.append(w)
            let fresh = status == .fresh
            let prev = d.target.value > 0 ? d.target : d.actual
            // Allocation and basis are filled in once the solver has run.
            outcomes.append(DomainOutcome(
                domid: d.domid, status: status, floor: floor, floorKind: kind, demand: demand, ceiling: ceiling, weight: w,
                workingSet: est.isPrimed ? KiB.pageCeil(est.workingSet) : nil, cheapShrinkEdge: edge,
                stall: fresh ? est.stall : nil, critical: fresh && est.critical,
                allocation: floor, basis: .floor,
                actual: d.actual, previousTarget: prev, target: prev, reason: .steady, paced: false,
                quarantined: quarantined, uncooperative: uncooperative))
            outcomes[outcomes.count - 1].staticFloor = statics[statics.count - 1]
            if fresh && est.givable >= 0 {
                let gaveSince = Swift.max(0, est.givableAllocation - d.actual.asDouble)
                outcomes[outcomes.count - 1].givable = KiB(Int64(Swift.max(0, est.givable - gaveSince)))
            }
        }

        // Kept free: the host reserve, the start reserve, and memory held for domains about to be built.
        let held = KiB(Swift.max(0, snapshot.held.value))
        let reserve = KiB(c.share.hostReserve.value &+ Swift.max(0, c.share.startReserve.value) &+ held.value)
        let budget = KiB(Swift.max(0, sumActual &+ snapshot.free.value &- reserve.value))
        // Under contention, idle memory is taxed: demands the guests are not using now count less.
        let contended = demands.reduce(Int64(0)) { $0 &+ $1.value } > budget.value
        if contended {
            demands = taxed
            for k in outcomes.indices { outcomes[k].demand = taxed[k] }
            // Weights decide contention: the weighted split above the static floors is the goal. A
            // working-set floor protects a guest only up to its share of that split while a guest of
            // another weight wants more and has less than its share; above it, the guest gives way at the
            // pace. Between guests of equal weight the working-set floors stand (who holds memory keeps
            // it: moving a working set between equals costs stall on both sides and buys nothing).
            let ideal = FairShare.solve(floors: statics, demands: demands, ceilings: ceilings, weights: weights,
                                        budget: budget, surplus: c.share.surplus, slack: c.share.slack, bases: statics)
            var shortWeights = Set<Double>()
            for k in floors.indices where demands[k] > snapshot.domains[k].actual && ideal.allocations[k] > snapshot.domains[k].actual {
                shortWeights.insert(weights[k])
            }
            // A start waiting for its reservation is such a claimant too: it was asked for by the admin.
            if ideal.phase != .uncontended && (snapshot.urgent || !shortWeights.isEmpty) {
                for k in floors.indices where floors[k] > statics[k] && ideal.allocations[k] < floors[k]
                    && (snapshot.urgent || shortWeights.contains(where: { $0 != weights[k] })) {
                    floors[k] = max(statics[k], ideal.allocations[k].pageCeil)
                    outcomes[k].floor = floors[k]
                    if floors[k] == statics[k] {
                        outcomes[k].floorKind = Self.baseFloor(adminMin: snapshot.domains[k].adminMin ?? .zero,
                                                               staticMax: snapshot.domains[k].staticMax, config: c.floors).1
                    }
                }
            }
        }
        var pacing = c.pacing
        if snapshot.urgent {
            // Memory is wanted for a start: what a guest gives back goes at the fast pace, down to its share,
            // and no shrink waits in the deadband (the reservation needs every page of it).
            for k in outcomes.indices { outcomes[k].cheapShrinkEdge = .zero }
            pacing.deadband = .zero
            pacing.deadbandFraction = 0
        }
        let share = FairShare.solve(floors: floors, demands: demands, ceilings: ceilings, weights: weights,
                                    budget: budget, surplus: c.share.surplus, slack: c.share.slack, bases: statics)

        for k in outcomes.indices {
            outcomes[k].allocation = share.allocations[k]
            outcomes[k].basis = share.basis[k]
        }
        let growBudget = Pacer.pace(&outcomes, staticMax: hardCeilings, shrinkSince: lastRounds,
                                    free: snapshot.free, reserve: reserve, phase: share.phase, now: now, config: pacing)
        for k in outcomes.indices where outcomes[k].reason != .heldRateLimit || lastRounds[k] == nil {
            guests[Int(slotOf[Int(outcomes[k].domid.raw)])].shrinkSince = now
        }

        var alerts = [Alert]()
        // Floors that only eat into the host reserve (e.g. every guest held at a full host's boot sizes)
        // are visible in the phase; the alert is for floors that exceed the host's memory itself.
        if share.phase == .infeasible && share.shortfall > reserve {
            alerts.append(Alert(kind: .floorsExceedHost, shortfall: KiB(share.shortfall.value - reserve.value),
                                domains: snapshot.domains.map(\.domid)))
        }
        return Decision(at: now, budget: budget, free: snapshot.free, reserve: reserve, held: held, growBudget: growBudget,
                        phase: share.phase, level: share.level, shortfall: share.shortfall,
                        outcomes: outcomes, alerts: alerts)
    }

    /// The floor every guest has whatever it reports: max(admin min, absolute minimum, selfballoon's).
    static func baseFloor(adminMin: KiB, staticMax: KiB, config f: FloorConfig) -> (KiB, FloorKind) {
        var floor = f.absoluteMin.pageCeil, kind = FloorKind.absolute
        if f.selfballoonFloor {
            let sb = Floors.selfballoon(staticMax)
            if sb > floor { floor = sb; kind = .selfballoon }
        }
        if adminMin.pageCeil > floor { floor = adminMin.pageCeil; kind = .admin }
        return (floor, kind)
    }

    private mutating func dropUnseen() {
        var i = 0
        while i < guests.count {
            if guests[i].generation != generation { forget(guests[i].domid) } else { i += 1 }
        }
    }
}
