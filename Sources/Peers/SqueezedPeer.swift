import GuestModel

/// XenServer / XCP-ng squeezed (xapi-project/xen-api `ocaml/squeezed/`): the Proportional policy and
/// the Squeezer loop, with no guest signal at all. Line numbers are of `lib/squeeze.ml` @bfbe9d7d
/// (SQ), `src/squeeze_xen.ml` @1c354a4b (SX) and `src/squeezed.ml` @1874f597 (SD).
///
/// - Every active domain is put at the same fraction γ of its [dynamic-min, dynamic-max] range:
///   min_freeable = max(0, actual − dynmin − 2 × 4 KiB) (SQ:246-254), max_free = free + Σ min_freeable,
///   surplus = max(0, max_free − host target), γ = clamp(surplus / Σ range, 0, 1), target = dynmin +
///   γ × range (SQ:286-326). Host target 64 MiB (`low_mem_emergency_pool`) + 8 MiB = 72 MiB (SX:63-65,
///   847-849); inaccuracy 4 KiB (SX:698).
/// - Two phases: while any active domain must free memory (target more than 4 KiB below actual), only
///   the freeing targets are issued (SQ:387-403).
/// - Stuckness: a domain more than 4 KiB from its target that has not moved towards it for over 5 s
///   leaves the sums and keeps its target, clamped to [dynmin, dynmax] and never above what it has
///   (SQ:146-238, 644-660); others absorb the difference. Stuckness lives for one balancing run (SQ:585).
/// - Cadence: every 10 s (`balance-check-interval`, SD:20) a dry iteration checks whether any target
///   would change (SQ:744-766); if so a balancing run iterates every 1 s (SQ:586-694) while any active
///   domain is more than 4 KiB from its target or a target changes (SQ:456-461).
///
/// Assumed, as an operator sets it (squeezed does nothing without a dynamic range): dynamic-min is the
/// admin min, else `dynamicMinFraction` of static-max (XenServer supports no less than ¼); dynamic-max is
/// the admin max, else static-max.
public struct SqueezedPeer: RoundPolicy {
    public let name: String
    public static let hostTarget = KiB(mib: 72)
    public static let inaccuracy: Int64 = 4
    public static let stuckAfter = 5.0
    public static let checkInterval = 10.0, iterationInterval = 1.0
    public let dynamicMinFraction: Double

    struct Progress { var lastActual: KiB; var lastProgress: TimePoint }
    var run: [DomID: Progress]? = nil
    var stuck = Set<DomID>()
    var nextCheck: TimePoint? = nil
    var nextIteration = TimePoint.zero

    public init(dynamicMinFraction: Double = 0.25) {
        self.dynamicMinFraction = dynamicMinFraction
        name = dynamicMinFraction == 0.25 ? "squeezed" : "squeezed(dynamic-min \(Int((dynamicMinFraction * 100).rounded())) %)"
    }

    public mutating func ingest(_ domid: DomID, parsed: Result<GuestReport, ReportRejection>, at: TimePoint,
                                staticMax: KiB?, allocation: KiB?) -> IngestOutcome {
        .ignoring(parsed)        // guest memory pressure is no input to squeezed (SQ:14-18)
    }

    public mutating func forget(_ domid: DomID) { run?[domid] = nil; stuck.remove(domid) }
    public mutating func reconfigure(_ config: PolicyConfig) {}

    func range(_ d: DomainFacts) -> (min: KiB, max: KiB) {
        let dmax = min(d.adminMax ?? d.staticMax, d.staticMax)
        let dmin = min(d.adminMin ?? KiB.pageCeil(d.staticMax.asDouble * dynamicMinFraction), dmax)
        return (dmin, dmax)
    }

    /// One iteration of the Squeezer over the domains not marked stuck: the targets it issues (nil: left).
    func iteration(_ s: HostSnapshot, stuck: Set<DomID>) -> (targets: [KiB?], adjust: Bool) {
        let ds = s.domains
        let active = ds.indices.filter { !stuck.contains(ds[$0].domid) }
        // Xen's free memory less what is reserved for domains being built (SX:774-784).
        var maxFree = Swift.max(0, s.free.value - s.held.value), sumRange: Int64 = 0
        for i in active {
            let r = range(ds[i])
            maxFree += Swift.max(0, ds[i].actual.value - r.min.value - 2 * Self.inaccuracy)
            sumRange += Swift.max(0, r.max.value - r.min.value)
        }
        let surplus = Swift.max(0, maxFree - Self.hostTarget.value)
        let gamma = sumRange > 0 ? clamp(Double(surplus) / Double(sumRange), 0, 1) : 0
        var targets = [KiB?](repeating: nil, count: ds.count)
        var proposed = [Int: KiB]()
        for i in active {
            let r = range(ds[i])
            proposed[i] = KiB(r.min.value + Int64(gamma * Double(Swift.max(0, r.max.value - r.min.value))))
        }
        let freeing = proposed.filter { i, t in t.value < ds[i].actual.value - Self.inaccuracy }
        for (i, t) in (freeing.isEmpty ? proposed : freeing) { targets[i] = t }
        let adjust = active.contains { i in abs(ds[i].actual.value - ds[i].target.value) > Self.inaccuracy }
            || (freeing.isEmpty ? proposed : freeing).contains { i, t in abs(t.value - ds[i].target.value) > Self.inaccuracy }
        return (targets, adjust)
    }

    public mutating func step(_ snapshot: HostSnapshot, now: TimePoint) -> Decision {
        let ds = snapshot.domains
        var targets = [KiB?](repeating: nil, count: ds.count)
        if run == nil, now >= (nextCheck ?? now) {
            nextCheck = now.adding(seconds: Self.checkInterval)
            // is_host_memory_unbalanced: a dry iteration, everyone active, that would change a target.
            let dry = iteration(snapshot, stuck: [])
            if dry.targets.indices.contains(where: { i in dry.targets[i].map { $0 != ds[i].target } ?? false }) {
                run = Dictionary(uniqueKeysWithValues: ds.map { ($0.domid, Progress(lastActual: $0.actual, lastProgress: now)) })
                stuck = []
                nextIteration = now
            }
        }
        if var progress = run, now >= nextIteration {
            nextIteration = now.adding(seconds: Self.iterationInterval)
            for (i, d) in ds.enumerated() {
                var p = progress[d.domid] ?? Progress(lastActual: d.actual, lastProgress: now)
                let gap = d.target.value - d.actual.value
                let moved = d.actual.value - p.lastActual.value
                if (gap > Self.inaccuracy && moved > 0) || (gap < -Self.inaccuracy && moved < 0) || abs(gap) <= Self.inaccuracy {
                    p.lastProgress = now
                    stuck.remove(d.domid)
                } else if now.seconds(since: p.lastProgress) > Self.stuckAfter && !stuck.contains(d.domid) {
                    // Newly inactive: it may shrink but not re-grab memory (CA-41832).
                    stuck.insert(d.domid)
                    let r = range(d)
                    targets[i] = clamp(min(d.target, d.actual), r.min, r.max)
                }
                p.lastActual = d.actual
                progress[d.domid] = p
            }
            let it = iteration(snapshot, stuck: stuck)
            for i in ds.indices where targets[i] == nil { targets[i] = it.targets[i] }
            run = it.adjust ? progress : nil
            if !it.adjust { stuck = [] }
        }
        let choices = ds.indices.map { i in
            let r = range(ds[i])
            return PeerChoice(target: targets[i], floor: r.min, ceiling: r.max, demand: r.max, reported: false)
        }
        return .peer(snapshot, now: now, choices: choices, reserve: Self.hostTarget, contended: false)
    }
}
