/// Per-guest report history: sequence checks, counter deltas turned into rates, and bounds on those
/// rates. Parsing (`ReportParser`) checks one report on its own; this checks it against the last one.

/// Rates over the interval between two accepted reports. Every value is bounded before it leaves here.
public struct ReportRates: Sendable, Equatable {
    /// The interval the rates cover, in seconds (the longer of the host-side and the guest-side view).
    public var seconds: Double
    /// Share of wall time at least one task stalled on memory (0–1), from PSI `some` totals.
    public var psiSome: Double?
    /// Share of wall time all non-idle tasks stalled on memory (0–1), from PSI `full` totals.
    public var psiFull: Double?
    /// Pages per second.
    public var majorFaults: Double?
    public var refaults: Double?
    public var swapIns: Double?
    public var swapOuts: Double?
    public init(seconds: Double) { self.seconds = seconds }
}

extension GuestReport {
    /// Stall share used by the estimator and pacing: PSI `some` from totals when there are rates,
    /// else the guest's own avg10, else nil (no PSI: older kernels).
    @inlinable public func stall(_ rates: ReportRates?) -> Double? {
        if let s = rates?.psiSome { return s }
        if let a = psiSomeAvg10 { return a / 100 }
        return nil
    }

    @inlinable public func fullStall(_ rates: ReportRates?) -> Double? {
        if let s = rates?.psiFull { return s }
        if let a = psiFullAvg10 { return a / 100 }
        return nil
    }
}

/// Bounds for `ReportTracker`.
public struct TrackerLimits: Sendable, Equatable {
    /// Reports closer together than this (host time) are refused: a flood costs dom0, not the guest.
    public var minIntervalMs: Int64 = 200
    /// A PSI share above 1 is impossible; above 1 + this tolerance the report is refused, between
    /// 1 and that it is clamped (clock jitter between guest and host).
    public var psiTolerance: Double = 0.25
    /// Faults, refaults and swap traffic above this many pages per second are impossible
    /// (4 million pages/s is 16 GiB/s of paging).
    public var maxPagesPerSecond: Double = 4_000_000
    /// After this many consecutive sequence regressions whose own sequence increases, the reporter is
    /// taken to have restarted and the sequence is re-based (a guest can only hurt itself by it).
    public var resyncAfter: Int = 3
    /// A guest whose report was rejected may not grow for this long: a hostile guest cannot interleave
    /// lies that win it memory with garbage that locks the gain in (bad data holds, never grows).
    public var quarantineSeconds = 60.0
    public init() {}
}

/// What happened to one report.
public enum TrackOutcome: Sendable, Equatable {
    /// Accepted, with the rates since the previous accepted report (nil for the first one).
    case accepted(ReportRates?)
    /// The same report read again (watches fire spuriously and on registration): not news, not hostile.
    case unchanged
    case rejected(ReportRejection)
}

/// The per-guest sequence/counter state. Pure value; time is passed in.
public struct ReportTracker: Sendable {
    public var limits: TrackerLimits
    /// When the last report (accepted, or rejected after parsing) was read.
    public private(set) var lastAt: TimePoint?
    /// Sequence and core values of the last report: a re-read of the same report (same seq, same
    /// sizes and stall total, `baseCounters.psiSomeTotalUs`) is recognised without keeping, copying or
    /// hashing the whole report. A guest that reuses a seq and changes only other fields merely gets its
    /// own update ignored. The seq is also the guest-side start of the rates' interval.
    private var lastSeq: UInt64?
    private var lastSizes = (KiB.zero, KiB.zero)
    /// Baseline for rates: the last report's counters and when they were read. (The last seq and stall
    /// total were kept apart too, always equal to these: 32 bytes more per guest, walked every round.)
    private var baseCounters = ReportCounters()
    private var baseAt: TimePoint?
    private var regressions = 0
    private var lastRegressionSeq: UInt64 = 0

    public init(limits: TrackerLimits = TrackerLimits()) { self.limits = limits }

    /// Checks `report` (already parsed) read at `at` against history and `staticMax` (a trusted Xen fact).
    public mutating func track(_ report: GuestReport, at: TimePoint, staticMax: KiB?) -> TrackOutcome {
        var rates = ReportRates(seconds: 0)
        switch track(report, at: at, staticMax: staticMax, rates: &rates) {
        case .accepted(let hasRates): return .accepted(hasRates ? rates : nil)
        case .unchanged: return .unchanged
        case .rejected(let why): return .rejected(why)
        }
    }

    /// What `track(_:at:staticMax:rates:)` did: the rates, when there are any, are in its `rates`.
    enum Tracked {
        case accepted(hasRates: Bool)
        case unchanged
        case rejected(ReportRejection)
    }

    /// `track`, writing the rates into `rates` (the caller's, read in place) instead of returning them in
    /// the outcome: the rates (104 bytes) were copied whole from the computation into the outcome and
    /// out of it again, every report, each copy a wide read of memory just written field by field (a
    /// load the processor cannot forward from the stores: it waits for them to reach the cache).
    mutating func track(_ report: GuestReport, at: TimePoint, staticMax: KiB?, rates: inout ReportRates) -> Tracked {
        if lastAt != nil && report.seq == lastSeq && report.memTotal == lastSizes.0 && report.memAvailable == lastSizes.1
            && report.counters.psiSomeTotalUs == baseCounters.psiSomeTotalUs {
            return .unchanged
        }
        if let sm = staticMax, sm.value > 0, report.memTotal > sm {
            return .rejected(.exceedsHost("mem_total_kb \(report.memTotal.value) > static-max \(sm.value)"))
        }
        if let lastAt, at.ms - lastAt.ms < limits.minIntervalMs {
            return .rejected(.tooFrequent(intervalMs: at.ms - lastAt.ms, minimumMs: limits.minIntervalMs))
        }
        if let seq = report.seq, let prev = lastSeq {
            if seq == prev { return .rejected(.sequenceReused(seq)) }
            if seq < prev {
                // A reporter restart with a non-monotonic clock looks like this; so does a hostile guest.
                // Re-base only after `resyncAfter` regressions that are themselves increasing.
                if regressions > 0 && seq > lastRegressionSeq { regressions += 1 } else { regressions = 1 }
                lastRegressionSeq = seq
                if regressions < limits.resyncAfter {
                    return .rejected(.sequenceRegression(previous: prev, got: seq))
                }
                baseAt = nil
            }
        }
        regressions = 0

        var hasRates = false
        var rejection: ReportRejection? = nil
        if let baseAt, report.source == .reporter {
            do {
                try Self.computeRates(report, seconds: Self.interval(report, at: at, baseAt: baseAt, baseSeq: lastSeq),
                                      base: baseCounters, limits: limits, into: &rates)
                hasRates = true
            } catch { rejection = error }
        }
        // Re-base even after a rate rejection, so one bad report cannot lock the guest out forever.
        baseCounters = report.counters
        baseAt = at
        lastSeq = report.seq
        lastSizes = (report.memTotal, report.memAvailable)
        lastAt = at
        if let rejection { return .rejected(rejection) }
        return .accepted(hasRates: hasRates)
    }

    /// The interval the rates cover, in seconds: the host's view, lengthened by the guest's clock (which
    /// only lowers its own rates), never shortened by it.
    private static func interval(_ r: GuestReport, at: TimePoint, baseAt: TimePoint, baseSeq: UInt64?) -> Double {
        // max(x / 1000, y / 1000) is max(x, y) / 1000 to the last bit (the quotient, correctly rounded,
        // never decreases as x grows): one division, not two.
        let hostMs = Double(at.ms &- baseAt.ms)
        var guestMs = 0.0
        if let s = r.seq, let b = baseSeq, s > b { guestMs = Double(s - b) }
        return Swift.max(hostMs, guestMs) / 1000
    }

    /// The rates over `seconds` since the baseline counters `b`, or the first counter (in protocol order)
    /// that went backwards or moved impossibly fast. Straight-line code with typed throws: every guest's
    /// report passes here every round, and the `Result` values this was built of (each carrying a whole
    /// `ReportRejection`) were copied and switched on seven times per report. Static, with the baseline
    /// passed in: as a method of the tracker that `track` is changing, each call was handed a copy of
    /// the whole tracker (264 bytes).
    private static func computeRates(_ r: GuestReport, seconds: Double, base b: ReportCounters,
                                     limits: TrackerLimits, into rates: inout ReportRates) throws(ReportRejection) {
        rates = ReportRates(seconds: seconds)
        guard seconds > 0 else { return }
        let c = r.counters
        let l = (limits.maxPagesPerSecond, limits.psiTolerance)
        rates.psiSome = try stall(c.psiSomeTotalUs, b.psiSomeTotalUs, seconds, l.1, "psi_some_total_us")
        rates.psiFull = try stall(c.psiFullTotalUs, b.psiFullTotalUs, seconds, l.1, "psi_full_total_us")
        rates.majorFaults = try pages(c.pgmajfault, b.pgmajfault, seconds, l.0, "pgmajfault")
        let ra = try pages(c.refaultAnon, b.refaultAnon, seconds, l.0, "workingset_refault_anon")
        let rf = try pages(c.refaultFile, b.refaultFile, seconds, l.0, "workingset_refault_file")
        if ra != nil || rf != nil { rates.refaults = (ra ?? 0) + (rf ?? 0) }
        rates.swapIns = try pages(c.pswpin, b.pswpin, seconds, l.0, "pswpin")
        rates.swapOuts = try pages(c.pswpout, b.pswpout, seconds, l.0, "pswpout")
    }

    /// A counter's growth since the baseline (nil if either report lacks it); a counter that went
    /// backwards is refused.
    @inline(__always)
    private static func delta(_ now: UInt64?, _ before: UInt64?, _ key: String) throws(ReportRejection) -> Double? {
        guard let now, let before else { return nil }
        if now < before { throw .counterRegression(key: key) }
        return Double(now - before)
    }

    /// Pages per second, refused above `maxPagesPerSecond`.
    @inline(__always)
    private static func pages(_ now: UInt64?, _ before: UInt64?, _ seconds: Double, _ maxPagesPerSecond: Double,
                              _ key: String) throws(ReportRejection) -> Double? {
        guard let d = try delta(now, before, key) else { return nil }
        let perSecond = d / seconds
        if perSecond > maxPagesPerSecond { throw .absurdRate(key: key, perSecond: perSecond) }
        return perSecond
    }

    /// A PSI total's share of wall time (0–1), refused above 1 + `psiTolerance`, clamped to 1 below that.
    @inline(__always)
    private static func stall(_ now: UInt64?, _ before: UInt64?, _ seconds: Double, _ psiTolerance: Double,
                              _ key: String) throws(ReportRejection) -> Double? {
        guard let d = try delta(now, before, key) else { return nil }
        let share = d / (seconds * 1_000_000)
        if share > 1 + psiTolerance { throw .absurdRate(key: key, perSecond: d / seconds) }
        return Swift.min(share, 1)
    }
}
