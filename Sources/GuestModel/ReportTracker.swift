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
    /// sizes and stall total) is recognised without keeping, copying or hashing the whole report. A guest
    /// that reuses a seq and changes only other fields merely gets its own update ignored.
    private var lastSeq: UInt64?
    private var lastSizes = (KiB.zero, KiB.zero)
    private var lastStallTotal: UInt64?
    /// Baseline for rates: the last report's counters and when they were read.
    private var baseCounters = ReportCounters()
    private var baseAt: TimePoint?
    private var baseSeq: UInt64?
    private var regressions = 0
    private var lastRegressionSeq: UInt64 = 0

    public init(limits: TrackerLimits = TrackerLimits()) { self.limits = limits }

    /// Checks `report` (already parsed) read at `at` against history and `staticMax` (a trusted Xen fact).
    public mutating func track(_ report: GuestReport, at: TimePoint, staticMax: KiB?) -> TrackOutcome {
        if lastAt != nil && report.seq == lastSeq && report.memTotal == lastSizes.0 && report.memAvailable == lastSizes.1
            && report.counters.psiSomeTotalUs == lastStallTotal {
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

        var rates: ReportRates? = nil
        var rejection: ReportRejection? = nil
        if let baseAt, report.source == .reporter {
            switch computeRates(report, at: at, baseAt: baseAt) {
            case .success(let r): rates = r
            case .failure(let why): rejection = why
            }
        }
        // Re-base even after a rate rejection, so one bad report cannot lock the guest out forever.
        baseCounters = report.counters
        baseAt = at
        baseSeq = report.seq
        lastSeq = report.seq
        lastSizes = (report.memTotal, report.memAvailable)
        lastStallTotal = report.counters.psiSomeTotalUs
        lastAt = at
        if let rejection { return .rejected(rejection) }
        return .accepted(rates)
    }

    private func computeRates(_ r: GuestReport, at: TimePoint, baseAt: TimePoint) -> Result<ReportRates, ReportRejection> {
        let hostSeconds = at.seconds(since: baseAt)
        var guestSeconds = 0.0
        if let s = r.seq, let b = baseSeq, s > b { guestSeconds = Double(s - b) / 1000 }
        // The guest's clock may only lengthen the interval (which lowers its own rates), never shorten it.
        let seconds = Swift.max(hostSeconds, guestSeconds)
        var rates = ReportRates(seconds: seconds)
        guard seconds > 0 else { return .success(rates) }

        func delta(_ now: UInt64?, _ before: UInt64?, _ key: String) -> Result<Double?, ReportRejection> {
            guard let now, let before else { return .success(nil) }
            if now < before { return .failure(.counterRegression(key: key)) }
            return .success(Double(now - before))
        }
        func pages(_ now: UInt64?, _ before: UInt64?, _ key: String) -> Result<Double?, ReportRejection> {
            switch delta(now, before, key) {
            case .failure(let e): return .failure(e)
            case .success(nil): return .success(nil)
            case .success(let d?):
                let perSecond = d / seconds
                if perSecond > limits.maxPagesPerSecond { return .failure(.absurdRate(key: key, perSecond: perSecond)) }
                return .success(perSecond)
            }
        }
        func stall(_ now: UInt64?, _ before: UInt64?, _ key: String) -> Result<Double?, ReportRejection> {
            switch delta(now, before, key) {
            case .failure(let e): return .failure(e)
            case .success(nil): return .success(nil)
            case .success(let d?):
                let share = d / (seconds * 1_000_000)
                if share > 1 + limits.psiTolerance { return .failure(.absurdRate(key: key, perSecond: d / seconds)) }
                return .success(Swift.min(share, 1))
            }
        }
        let c = r.counters, b = baseCounters
        do throws(ReportRejection) {
            rates.psiSome = try stall(c.psiSomeTotalUs, b.psiSomeTotalUs, "psi_some_total_us").get()
            rates.psiFull = try stall(c.psiFullTotalUs, b.psiFullTotalUs, "psi_full_total_us").get()
            rates.majorFaults = try pages(c.pgmajfault, b.pgmajfault, "pgmajfault").get()
            let ra = try pages(c.refaultAnon, b.refaultAnon, "workingset_refault_anon").get()
            let rf = try pages(c.refaultFile, b.refaultFile, "workingset_refault_file").get()
            if ra != nil || rf != nil { rates.refaults = (ra ?? 0) + (rf ?? 0) }
            rates.swapIns = try pages(c.pswpin, b.pswpin, "pswpin").get()
            rates.swapOuts = try pages(c.pswpout, b.pswpout, "pswpout").get()
        } catch {
            return .failure(error)
        }
        return .success(rates)
    }
}
