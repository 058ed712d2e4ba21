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
    /// (`Arbitration` keeps this clock and the next apart, in a dense array, and fills them in when it
    /// hands a guest's state out.)
    public var shrinkSince: TimePoint?
    /// Since when its target has stayed under its allocation by less than the grow band (held there as
    /// estimate noise): a shortfall that lasts is not noise (see `Pacer.lastingShortfallSeconds`).
    public var shortSince: TimePoint?
    var generation: UInt32 = 0

    init(domid: DomID, limits: TrackerLimits) {
        self.domid = domid
        self.tracker = ReportTracker(limits: limits)
    }

    /// `Arbitration.ingest` for this guest, on its state in place: as a method it is handed the guest
    /// once (one uniqueness check of the guests' array per report, not one per field it touches).
    mutating func take(_ report: GuestReport, at: TimePoint, staticMax: KiB?, allocation: KiB?,
                       config: EstimatorConfig) -> IngestOutcome {
        var rates = ReportRates(seconds: 0)
        switch tracker.track(report, at: at, staticMax: staticMax, rates: &rates) {
        case .unchanged:
            if report.source == .legacy { lastHeardAt = at }
            return .unchanged
        case .rejected(let why):
            lastRejection = why
            lastRejectedAt = at
            rejectedReports += 1
            return .rejected(why)
        case .accepted(let hasRates):
            let alloc = allocation ?? lastActual ?? report.memTotal
            var atRest = false
            if let last = lastActual, let since = actualSince {
                atRest = abs(alloc.value - last.value) <= Arbitration.restTolerance.value
                    && at.ms &- since.ms >= Arbitration.restMs   // (seconds(since:) >= restSeconds, without dividing)
            }
            Estimator.update(&estimator, with: report, rates: rates, hasRates: hasRates, at: at, allocation: alloc, atRest: atRest,
                             config: config)
            if case .some = lastRejection { lastRejection = nil }   // (nothing to release, the usual case)
            lastHeardAt = at
            acceptedReports += 1
            return .accepted
        }
    }
}

/// A guest's pacing clocks (see `GuestState.shrinkSince`, `shortSince`), kept by `Arbitration` apart
/// from the rest of its state.
struct PaceClocks {
    var shrinkSince: TimePoint?
    var shortSince: TimePoint?
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
    /// Every guest's state (its pacing clocks filled in; built on each call: `guest(_:)` gives one).
    public var guests: [GuestState] { states.indices.map { withClocks($0) } }
    private var states: [GuestState] = []
    /// Per slot, beside `states`: each guest's pacing clocks (`GuestState.shrinkSince`, `shortSince`), which
    /// every round's bounds read and its commit writes: a dense array of 32 bytes a guest instead of two
    /// fields in 624 (the commit walked every guest's state for them).
    private var clocks: [PaceClocks] = []
    /// domid → index into `guests` (−1: unknown). Domids are 15 bits, so a flat table beats hashing.
    private var slotOf = [Int32](repeating: -1, count: Int(DomID.firstReserved))
    private var generation: UInt32 = 0

    public init(config: PolicyConfig = PolicyConfig()) { self.config = config }

    public func guest(_ domid: DomID) -> GuestState? {
        guard domid.raw < DomID.firstReserved else { return nil }
        let s = slotOf[Int(domid.raw)]
        return s >= 0 ? withClocks(Int(s)) : nil
    }

    private func withClocks(_ s: Int) -> GuestState {
        var g = states[s]
        (g.shrinkSince, g.shortSince) = (clocks[s].shrinkSince, clocks[s].shortSince)
        return g
    }

    /// The guest's slot, a new one for a domain not seen yet. The lookup is inlined (every report and
    /// every domain of every round asks), the first sight is not.
    @inline(__always)
    private mutating func slot(_ domid: DomID) -> Int {
        let s = slotOf[Int(domid.raw)]
        return s >= 0 ? Int(s) : newSlot(domid)
    }

    @inline(never)
    private mutating func newSlot(_ domid: DomID) -> Int {
        states.append(GuestState(domid: domid, limits: config.tracker))
        clocks.append(PaceClocks())
        slotOf[Int(domid.raw)] = Int32(states.count - 1)
        return states.count - 1
    }

    /// Forgets a domain (released by Xen): its history must not leak into a later domain with the same id.
    public mutating func forget(_ domid: DomID) {
        guard domid.raw < DomID.firstReserved else { return }
        let s = Int(slotOf[Int(domid.raw)])
        guard s >= 0 else { return }
        slotOf[Int(domid.raw)] = -1
        let last = states.count - 1
        if s != last {
            states.swapAt(s, last)
            clocks.swapAt(s, last)
            slotOf[Int(states[s].domid.raw)] = Int32(s)
        }
        states.removeLast()
        clocks.removeLast()
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
            states[s].lastRejection = why
            states[s].lastRejectedAt = at
            states[s].rejectedReports += 1
            return .rejected(why)
        }
    }

    /// A balloon that moved less than this since the last snapshot, for at least `restSeconds`, is at
    /// rest: its guest's report and Xen's allocation describe the same memory.
    public static let restTolerance = KiB(mib: 1)
    public static let restSeconds = 3.0
    /// `restSeconds` as a threshold on intervals in ms (`TimePoint.msAtLeast`).
    static let restMs = TimePoint.msAtLeast(restSeconds)!

    /// Takes one parsed report read at `at`. `allocation`: the domain's memory as Xen shows it now, if the
    /// caller has read it (otherwise the last snapshot's is used).
    @discardableResult
    public mutating func ingest(_ domid: DomID, report: GuestReport, at: TimePoint, staticMax: KiB? = nil,
                                allocation: KiB? = nil) -> IngestOutcome {
        guard domid.raw < DomID.firstReserved else { return .rejected(.inconsistent("domid \(domid) is reserved")) }
        let s = slot(domid)
        return states[s].take(report, at: at, staticMax: staticMax, allocation: allocation, config: config.estimator)
    }

    /// One round, in four steps over values: each guest's bounds (floor ≤ demand ≤ ceiling, from the
    /// trusted facts and its reports), the weighted split of the budget, the pace at which targets move
    /// towards it, and the decision. Domains in the snapshot that the arbiter has not seen are adopted at
    /// their current target; domains it knew that are missing are forgotten.
    public mutating func step(_ snapshot: HostSnapshot, now: TimePoint) -> Decision {
        adopt(snapshot)
        let budget = Budget(snapshot, config: config.share)
        var (share, split) = bounds(snapshot, now: now, budget: budget)
        solve(&share, &split, budget: budget, urgent: snapshot.urgent)
        let growBudget = Pacer.pace(&share, free: snapshot.free, reserve: budget.reserve, now: now,
                                    config: config.pacing.urgent(snapshot.urgent))
        return commit(share, growBudget: growBudget, budget: budget, free: snapshot.free, now: now)
    }

    /// Step 1 over the snapshot: each guest's bounds, written once, straight where the later steps read
    /// them: its outcome (the decision's own value, completed in place by the solver and the pacer), its
    /// round facts, and the solver's inputs (`Split`). Through the guests' storage once (one uniqueness
    /// check per round, not one per guest).
    private mutating func bounds(_ snapshot: HostSnapshot, now: TimePoint, budget: Budget) -> (Share, Split) {
        let (slotOf, config) = (self.slotOf, self.config)
        let domains = snapshot.domains, urgent = snapshot.urgent
        let n = domains.count
        var facts = [RoundFacts](), demands = [KiB](), ceilings = [KiB](), weights = [Double](), bases = [KiB]()
        var idleTaxed = [KiB](), floors = [KiB]()
        var total: Int64 = 0
        let clocks = self.clocks
        let outcomes = states.withUnsafeMutableBufferPointer { g in
            [DomainOutcome](unsafeUninitializedCapacity: n) { out, outCount in
            facts = .init(unsafeUninitializedCapacity: n) { fa, faCount in
            demands = .init(unsafeUninitializedCapacity: n) { de, deCount in
            ceilings = .init(unsafeUninitializedCapacity: n) { ce, ceCount in
            weights = .init(unsafeUninitializedCapacity: n) { we, weCount in
            bases = .init(unsafeUninitializedCapacity: n) { ba, baCount in
            idleTaxed = .init(unsafeUninitializedCapacity: n) { ta, taCount in
            floors = .init(unsafeUninitializedCapacity: n) { fl, flCount in
                for k in 0..<n {
                    let d = domains[k]
                    let slot = slotOf[Int(d.domid.raw)]
                    let b = Self.bound(d, &g[Int(slot)], clocks[Int(slot)], urgent: urgent, now: now, config: config)
                    out.initializeElement(at: k, to: DomainOutcome(b))
                    fa.initializeElement(at: k, to: RoundFacts(staticMax: b.staticMax, shrinkSince: b.shrinkSince, shortSince: b.shortSince,
                                                               slot: slot, staticFloorKind: b.staticFloorKind))
                    de.initializeElement(at: k, to: b.demand)
                    ce.initializeElement(at: k, to: b.ceiling)
                    we.initializeElement(at: k, to: b.weight)
                    ba.initializeElement(at: k, to: b.staticFloor)
                    ta.initializeElement(at: k, to: b.idleTaxed)
                    fl.initializeElement(at: k, to: b.floor)
                    total &+= b.demand.value
                }
                flCount = n
            }
                taCount = n
            }
                baCount = n
            }
                weCount = n
            }
                ceCount = n
            }
                deCount = n
            }
                faCount = n
            }
                outCount = n
            }
        }
        let split = Split(demands: demands, ceilings: ceilings, weights: weights, bases: bases, floors: floors, idleTaxed: idleTaxed,
                          demandTotal: total, budget: budget.total, config: config.share)
        return (Share(outcomes: outcomes, facts: facts, result: FairShareResult(allocations: [], basis: [], phase: .uncontended,
                                                                                 shortfall: .zero, level: nil)), split)
    }

    /// What the round shares out and what it keeps free: the host reserve, the start reserve, and
    /// memory held for domains about to be built.
    struct Budget {
        let held: KiB
        let reserve: KiB
        /// Σ actual + Xen free − reserve.
        let total: KiB

        init(_ snapshot: HostSnapshot, config s: ShareConfig) {
            held = KiB(Swift.max(0, snapshot.held.value))
            reserve = KiB(s.hostReserve.value &+ Swift.max(0, s.startReserve.value) &+ held.value)
            let actual = snapshot.domains.reduce(Int64(0)) { $0 &+ $1.actual.value }
            total = KiB(Swift.max(0, actual &+ snapshot.free.value &- reserve.value))
        }
    }

    /// Before the steps: adopt new domains and forget vanished ones (forgetting moves slots around).
    private mutating func adopt(_ snapshot: HostSnapshot) {
        generation &+= 1
        // New domains first (in the snapshot's order), so that the marking walk goes through the guests'
        // storage once (one uniqueness check per round, not one per guest).
        for d in snapshot.domains where slotOf[Int(d.domid.raw)] < 0 { _ = newSlot(d.domid) }
        var marked = 0   // distinct guests of this snapshot (a domid listed twice is marked once)
        let (slotOf, generation) = (self.slotOf, self.generation)
        states.withUnsafeMutableBufferPointer { g in
            for d in snapshot.domains {
                let s = Int(slotOf[Int(d.domid.raw)])
                if g[s].generation != generation { g[s].generation = generation; marked += 1 }
            }
        }
        // Every guest was in the snapshot (the usual round): nothing to forget, and no second walk
        // through every guest's state to find that out.
        if marked != states.count { dropUnseen() }
    }

    /// What we know of a guest's reports now. Inlined: as a call it was handed a copy of the guest's
    /// whole state (640 bytes), every guest, every round.
    @inline(__always)
    private static func reportStatus(_ g: borrowing GuestState, now: TimePoint, config c: EstimatorConfig) -> ReportStatus {
        // A match on the case, not `!= nil`: that took a copy of the rejection (and its strings) to compare.
        if case .some = g.lastRejection { return .rejected }
        guard g.estimator.isPrimed, let last = g.lastHeardAt ?? g.estimator.lastAt else { return .none }
        let limit = g.estimator.lastSource == .legacy ? c.legacyStaleAfterSeconds : c.staleAfterSeconds
        return now.seconds(since: last) > limit ? .stale : .fresh
    }

    /// Step 1, per guest: its bounds. The floor holds whatever the guest reports (admin, absolute,
    /// selfballoon's); a working-set floor above it protects what a fresh guest uses; a guest without
    /// usable reports is held where it is (never shrunk on bad or missing data); quarantine and an
    /// uncooperative balloon close the ceiling.
    @inline(__always)
    private static func bound(_ d: DomainFacts, _ g: inout GuestState, _ k: PaceClocks, urgent: Bool, now: TimePoint,
                              config c: PolicyConfig) -> GuestBounds {
        // The balloon's position: a move (or the first sight) restarts its rest clock.
        // (A choice of value, not a jump: whether a balloon moved is a coin toss to the branch predictor.)
        let moved = g.lastActual.map { abs(d.actual.value - $0.value) > Self.restTolerance.value } ?? true
        g.actualSince = moved ? now : g.actualSince
        g.lastActual = d.actual
        let est = g.estimator
        let staticMax = d.staticMax.value > 0 ? d.staticMax : max(d.actual, d.target)
        let hold = d.target.value > 0 ? min(d.target, staticMax) : min(d.actual, staticMax)
        let adminMin = d.adminMin ?? .zero
        let status = reportStatus(g, now: now, config: c.estimator)
        let fresh = status == .fresh
        var w = d.weight ?? c.share.defaultWeight
        if !(w.isFinite && w > 0) { w = c.share.defaultWeight }
        var b = GuestBounds(
            domid: d.domid, status: status, staticMax: staticMax, weight: w, actual: d.actual,
            previousTarget: d.target.value > 0 ? d.target : d.actual, shrinkSince: k.shrinkSince, shortSince: k.shortSince,
            floor: .zero, floorKind: .absolute, staticFloor: .zero, staticFloorKind: .absolute, demand: hold, idleTaxed: hold,
            ceiling: min(d.adminMax ?? staticMax, staticMax).pageFloor,
            workingSet: est.isPrimed ? KiB.pageCeil(est.workingSet) : nil, cheapShrinkEdge: hold,
            stall: fresh ? est.stall : nil, critical: fresh && est.critical)
        if fresh || c.floors.silent == .adminFloor {
            (b.floor, b.floorKind) = Self.baseFloor(adminMin: adminMin, staticMax: staticMax, config: c.floors)
            (b.staticFloor, b.staticFloorKind) = (b.floor, b.floorKind)
            if fresh {
                // The working-set floor protects what the guest holds; it never forces growth (that is
                // demand's job, under fair share). Without the cap a guest reporting itself full would
                // ratchet its own hard floor up by the padding every round.
                let holding = max(d.actual, hold).asDouble
                let wsFloor = KiB.pageCeil(Swift.min(est.workingSet * (1 + c.floors.padding), holding))
                if wsFloor > b.floor { b.floor = wsFloor; b.floorKind = .workingSet }
                b.demand = KiB.pageFloor(est.demand)
                b.idleTaxed = KiB.pageFloor(est.taxedDemand(c.estimator.idleTax))
                b.cheapShrinkEdge = KiB.pageCeil(est.wsNow * (1 + c.floors.padding))
                if est.givable >= 0 {
                    let gaveSince = maxByMasks(0, est.givableAllocation - d.actual.asDouble)
                    b.givable = KiB(Int64(maxByMasks(0, est.givable - gaveSince)))
                }
            } else {
                // Explicit opt-in: a silent guest may be shrunk to its admin floor, never grown.
                b.ceiling = min(b.ceiling, max(hold, b.floor))
            }
        } else {
            // Never shrink on missing or bad data: hold the current target (the admin's floor still applies).
            b.floor = max(hold, adminMin).pageCeil
            b.floorKind = adminMin > hold ? .admin : .hold
            b.staticFloorKind = b.floorKind
            (b.staticFloor, b.demand, b.idleTaxed) = (b.floor, b.floor, b.floor)
            b.ceiling = min(b.ceiling, b.floor)
        }
        // Quarantine: after a rejected report, no growth for a while.
        b.quarantined = fresh && g.lastRejectedAt.map { now.seconds(since: $0) < c.tracker.quarantineSeconds } == true
        if b.quarantined {
            b.demand = min(b.demand, hold)
            b.idleTaxed = min(b.idleTaxed, hold)
            b.ceiling = min(b.ceiling, max(hold, b.floor))
        }
        // An uncooperative balloon: count only what the guest really has, and stop asking.
        g.responsiveness.observe(actual: d.actual, target: hold, at: now, config: c.responsiveness)
        b.uncooperative = g.responsiveness.isUncooperative
        if b.uncooperative {
            let holding = min(max(d.actual, b.floor), staticMax).pageCeil
            (b.floor, b.demand, b.idleTaxed, b.ceiling, b.staticFloor) = (holding, holding, holding, holding, holding)
        }
        if b.floor > b.ceiling { b.floor = b.ceiling; b.floorKind = .ceiling }
        b.demand = clamp(b.demand, b.floor, b.ceiling)
        b.idleTaxed = clamp(b.idleTaxed, b.floor, b.demand)
        b.staticFloor = min(b.staticFloor, b.floor)
        // A reservation waiting for memory: what a guest gives back goes at the fast pace, down to its share.
        if urgent { b.cheapShrinkEdge = .zero }
        return b
    }

    /// Step 2: the weighted split of the budget (`FairShare`). Under contention idle memory is taxed
    /// (demands the guests are not using now count less), and weights decide: the weighted split above
    /// the static floors is the goal. A working-set floor protects a guest only up to its share of that
    /// split while a guest of another weight wants more and has less than its share (or a start waits
    /// for its reservation); above it, the guest gives way at the pace. Between guests of equal weight
    /// the working-set floors stand (moving a working set between equals costs stall on both sides).
    private func solve(_ share: inout Share, _ split: inout Split, budget: Budget, urgent: Bool) {
        if split.demandTotal > budget.total.value {
            split.demands = split.idleTaxed
            let ideal = split.solve(floors: split.bases, basis: false)
            var short = DistinctWeights()   // the weights of guests that want more and have less than their share
            // Both walks choose by flags and selects, not jumps: which guests want more, and whose floor
            // gives way, is a coin toss to the branch predictor.
            share.outcomes.withUnsafeMutableBufferPointer { out in
                for k in 0..<out.count {
                    let (taxed, actual) = (split.idleTaxed[k].value, out[k].actual.value)
                    out[k].demand = split.idleTaxed[k]
                    short.insert(split.weights[k], if: (taxed > actual ? 1 : 0) & (ideal.allocations[k].value > actual ? 1 : 0))
                }
                if ideal.phase != .uncontended && (urgent || !short.isEmpty) {
                    let everyone = urgent || short.hasSeveral
                    for k in 0..<out.count {
                        let (floor, base, ideal) = (split.floors[k], split.bases[k], ideal.allocations[k])
                        let other = everyone || short.contains(otherThan: split.weights[k])
                        let gives = (floor > base ? 1 : 0) & (ideal < floor ? 1 : 0) & (other ? 1 : 0) == 1
                        let lowered = max(base, ideal.pageCeil)
                        split.floors[k] = gives ? lowered : floor
                        out[k].floor = split.floors[k]
                        out[k].floorKind = gives && lowered == base ? share.facts[k].staticFloorKind : out[k].floorKind
                    }
                }
            }
        }
        share.result = split.solve(floors: split.floors)
    }

    /// The solver's (`FairShare`) inputs, written by the bounds step: the floors it solves with vary.
    private struct Split {
        var demands: [KiB], ceilings: [KiB], weights: [Double], bases: [KiB]
        /// The floors (a working-set floor may give way under contention).
        var floors: [KiB]
        /// The demands with idle memory taxed, for a contended round, and Σ demands (wrapping, as the solver sums).
        let idleTaxed: [KiB], demandTotal: Int64
        let budget: KiB, config: ShareConfig

        /// `basis: false`: the allocations and the phase only (the ideal split).
        func solve(floors: [KiB], basis: Bool = true) -> FairShareResult {
            FairShare.solve(floors: floors, demands: demands, ceilings: ceilings, weights: weights, budget: budget,
                            surplus: config.surplus, slack: config.slack, bases: bases, basis: basis)
        }
    }

    /// A set of weights as `short` needs it: whether it holds any weight other than a given one. Two
    /// distinct members answer that for any number (a hashed `Set<Double>` cost a hash per guest).
    /// (Flags and masks, not jumps: `insert(_:if:)` is taken for every guest of a contended round.)
    private struct DistinctWeights {
        private var first = 0.0
        private var has: UInt64 = 0, several: UInt64 = 0
        var isEmpty: Bool { has == 0 }
        var hasSeveral: Bool { several != 0 }
        /// Inserts `w` if `c` is 1 (`c` is 0 or 1).
        mutating func insert(_ w: Double, if c: UInt64) {
            several |= c & has & (first != w ? 1 : 0)
            let take = 0 &- (c & (has ^ 1))
            first = Double(bitPattern: (w.bitPattern & take) | (first.bitPattern & ~take))
            has |= c
        }
        func contains(otherThan w: Double) -> Bool { several != 0 || (has != 0 && first != w) }
    }

    /// Step 4: the decision. A guest's shrink allowance restarts unless a shrink it was due was held by
    /// the rate limit (then it keeps accruing); floors that exceed the host itself raise an alert
    /// (floors that only eat into the reserve show in the phase).
    private mutating func commit(_ share: consuming Share, growBudget: KiB, budget: Budget, free: KiB, now: TimePoint) -> Decision {
        share.facts.withUnsafeBufferPointer { facts in
            share.outcomes.withUnsafeBufferPointer { out in
                clocks.withUnsafeMutableBufferPointer { c in
                    for k in 0..<facts.count {
                        let i = Int(facts[k].slot)
                        if out[k].reason != .heldRateLimit || facts[k].shrinkSince == nil { c[i].shrinkSince = now }
                        c[i].shortSince = facts[k].short ? (facts[k].shortSince ?? now) : nil
                    }
                }
            }
        }
        var alerts = [Alert]()
        if share.phase == .infeasible && share.result.shortfall > budget.reserve {
            alerts.append(Alert(kind: .floorsExceedHost, shortfall: KiB(share.result.shortfall.value - budget.reserve.value),
                                domains: share.outcomes.map(\.domid)))
        }
        let decision = Decision(at: now, budget: budget.total, free: free, reserve: budget.reserve, held: budget.held,
                                growBudget: growBudget, phase: share.phase, level: share.result.level, shortfall: share.result.shortfall,
                                outcomes: share.outcomes, alerts: alerts)
        assert(Invariants.violations(of: decision, staticMax: share.facts.map(\.staticMax)).isEmpty,
               "round at \(now) broke \(Invariants.violations(of: decision, staticMax: share.facts.map(\.staticMax)))")
        return decision
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
        while i < states.count {
            if states[i].generation != generation { forget(states[i].domid) } else { i += 1 }
        }
    }
}
