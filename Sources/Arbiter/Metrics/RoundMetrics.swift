import CoreMetrics
import GuestModel
import Prometheus

/// The daemon's edge from each round to Prometheus series: the pure core decides, the control loop
/// hands each round's outcome here, and these series are set through the swift-metrics API over a
/// registry of our own (no global `MetricsSystem.bootstrap`: each loop, and each test, has its own).
///
/// Cardinality is bounded by construction: a domain has one series per gauge, labelled with its domid
/// and its name (printable ASCII, at most 64 bytes, see `labelName`); the reason, phase, trigger and
/// rejection-code labels take values from closed sets (`Reason`, `SharePhase`, `DecisionStore.Trigger`,
/// `ReportRejection.code`) — never free text and never anything a guest wrote. A domain that is no
/// longer decided (stopping, released, or its domid reused under another name) loses all its series.
final class RoundMetrics {
    /// Every metric the daemon exports: name, type and the HELP line. The README's table, the textfile's
    /// HELP lines and the check of the Grafana dashboard (`MetricsTests`) all come from here.
    static let catalogue: [(name: String, type: String, help: String)] = [
        ("arbiter_domain_target_bytes", "gauge", "The domain's memory target after this round (pushed, or held)."),
        ("arbiter_domain_actual_bytes", "gauge", "The domain's allocation as Xen counts it (libxl current_memkb)."),
        ("arbiter_domain_floor_bytes", "gauge", "The domain's floor: no target goes below it."),
        ("arbiter_domain_ceiling_bytes", "gauge", "The domain's ceiling (admin max, static-max)."),
        ("arbiter_domain_demand_bytes", "gauge", "The domain's estimated demand (working set with headroom, corrected by stall)."),
        ("arbiter_domain_stall_ratio", "gauge", "PSI some avg10 share (0-1) of the domain's last accepted report; absent without one."),
        ("arbiter_domain_reason", "gauge", "1 for the reason of the domain's target this round (one series per domain)."),
        ("arbiter_domain_report_rejections_total", "counter", "Reports of this domain refused since the daemon started."),
        ("arbiter_domains", "gauge", "Domains decided this round."),
        ("arbiter_host_total_bytes", "gauge", "Host memory (physinfo total)."),
        ("arbiter_host_free_bytes", "gauge", "Memory Xen has free (physinfo free, less outstanding claims)."),
        ("arbiter_host_budget_bytes", "gauge", "What the round shared out: allocations + free - reserve."),
        ("arbiter_host_reserve_bytes", "gauge", "Kept free this round: host reserve, start reserve and memory held for starts."),
        ("arbiter_host_shortfall_bytes", "gauge", "How far the floors exceed the host (0 unless infeasible)."),
        ("arbiter_round_phase", "gauge", "1 for this round's phase (uncontended, contended, infeasible), 0 for the others."),
        ("arbiter_round_duration_seconds", "histogram", "Wall time of a round: host read, reports, decision, pushes, recording."),
        ("arbiter_rounds_total", "counter", "Rounds run, by what triggered them."),
        ("arbiter_rounds_skipped_total", "counter", "Rounds skipped because the host could not be read."),
        ("arbiter_rounds_lost_total", "counter", "Rounds whose decision could not be recorded in the store."),
        ("arbiter_target_changes_total", "counter", "Targets pushed."),
        ("arbiter_push_errors_total", "counter", "Target writes (libxl/xenstore) that failed."),
        ("arbiter_report_rejections_total", "counter", "Guest reports refused, by rejection code."),
        ("arbiter_last_round_timestamp_seconds", "gauge", "Wall-clock time of the last round (Unix seconds)."),
    ]

    /// Round duration buckets: a round is milliseconds; a slow store or xenstored shows as the tail.
    static let durationBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
    ]

    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory

    /// One domain's series, and what they are labelled with.
    struct DomainSeries {
        var name: String
        var target, actual, floor, ceiling, demand: Meter
        var stall: Meter?
        var reason: (Reason, Meter)
        var rejections: CoreMetrics.Counter?
    }
    private var domains = [DomID: DomainSeries]()
    private var triggers = [DecisionStore.Trigger: CoreMetrics.Counter]()
    private var codes = [String: CoreMetrics.Counter]()
    private let phases: [(SharePhase, Meter)]
    private let duration: CoreMetrics.Timer
    private let decided, hostTotal, hostFree, budget, reserve, shortfall, lastRound: Meter
    private let skipped, lost, changes, pushErrors: CoreMetrics.Counter

    init() {
        var f = PrometheusMetricsFactory(registry: registry)
        f.durationHistogramBuckets = ["arbiter_round_duration_seconds": Self.durationBuckets]
        factory = f
        phases = [SharePhase.uncontended, .contended, .infeasible].map {
            ($0, Meter(label: "arbiter_round_phase", dimensions: [("phase", DecisionStore.phaseName($0))], factory: f))
        }
        duration = CoreMetrics.Timer(label: "arbiter_round_duration_seconds", factory: f)
        decided = Meter(label: "arbiter_domains", factory: f)
        hostTotal = Meter(label: "arbiter_host_total_bytes", factory: f)
        hostFree = Meter(label: "arbiter_host_free_bytes", factory: f)
        budget = Meter(label: "arbiter_host_budget_bytes", factory: f)
        reserve = Meter(label: "arbiter_host_reserve_bytes", factory: f)
        shortfall = Meter(label: "arbiter_host_shortfall_bytes", factory: f)
        lastRound = Meter(label: "arbiter_last_round_timestamp_seconds", factory: f)
        // The failure counters exist from the start at 0, so a rate over them is defined before the first failure.
        skipped = CoreMetrics.Counter(label: "arbiter_rounds_skipped_total", factory: f)
        lost = CoreMetrics.Counter(label: "arbiter_rounds_lost_total", factory: f)
        changes = CoreMetrics.Counter(label: "arbiter_target_changes_total", factory: f)
        pushErrors = CoreMetrics.Counter(label: "arbiter_push_errors_total", factory: f)
    }

    /// A domain name as a label value: printable ASCII without quotes or backslashes (anything else
    /// becomes `_`), at most 64 bytes. Xen's names are the admin's, but they reach Prometheus and
    /// dashboards: no byte of them may change how a line parses.
    static func labelName(_ name: String) -> String {
        var out = [UInt8]()
        for b in name.utf8.prefix(64) { out.append((0x20...0x7E).contains(b) && b != 0x22 && b != 0x5C ? b : 0x5F) }
        return out.isEmpty ? "_" : String(decoding: out, as: UTF8.self)
    }

    private func labels(_ d: DomID, _ name: String) -> [(String, String)] { [("domid", "\(d.raw)"), ("domain", name)] }

    private func bytes(_ k: KiB) -> Double { Double(k.value) * 1024 }

    /// One round's outcome. `names`: the daemon's names by domid; `pushes`: what was pushed and what failed;
    /// `recorded`: false when the store could not take the round.
    func round(_ decision: Decision, trigger: DecisionStore.Trigger, hostTotal total: KiB, names: [DomID: String],
               pushes: [DomID: DecisionStore.Push], recorded: Bool, took: Duration, wallSeconds: Double) {
        let f = factory
        var live = Set<DomID>()
        for o in decision.outcomes {
            live.insert(o.domid)
            let name = Self.labelName(names[o.domid] ?? "dom\(o.domid.raw)")
            if let s = domains[o.domid], s.name != name { remove(o.domid) }
            let l = labels(o.domid, name)
            var s = domains[o.domid] ?? DomainSeries(
                name: name,
                target: Meter(label: "arbiter_domain_target_bytes", dimensions: l, factory: f),
                actual: Meter(label: "arbiter_domain_actual_bytes", dimensions: l, factory: f),
                floor: Meter(label: "arbiter_domain_floor_bytes", dimensions: l, factory: f),
                ceiling: Meter(label: "arbiter_domain_ceiling_bytes", dimensions: l, factory: f),
                demand: Meter(label: "arbiter_domain_demand_bytes", dimensions: l, factory: f),
                reason: (o.reason, Meter(label: "arbiter_domain_reason", dimensions: l + [("reason", o.reason.rawValue)], factory: f)))
            s.target.set(bytes(o.target)); s.actual.set(bytes(o.actual)); s.floor.set(bytes(o.floor))
            s.ceiling.set(bytes(o.ceiling)); s.demand.set(bytes(o.demand))
            if let stall = o.stall {
                if s.stall == nil { s.stall = Meter(label: "arbiter_domain_stall_ratio", dimensions: l, factory: f) }
                s.stall?.set(stall)
            } else if let old = s.stall {
                old.destroy()
                s.stall = nil
            }
            if s.reason.0 != o.reason {
                s.reason.1.destroy()
                s.reason = (o.reason, Meter(label: "arbiter_domain_reason", dimensions: l + [("reason", o.reason.rawValue)], factory: f))
            }
            s.reason.1.set(1.0)
            domains[o.domid] = s
        }
        for d in domains.keys where !live.contains(d) { remove(d) }

        decided.set(Double(decision.outcomes.count))
        hostTotal.set(bytes(total)); hostFree.set(bytes(decision.free)); budget.set(bytes(decision.budget))
        reserve.set(bytes(decision.reserve)); shortfall.set(bytes(decision.shortfall))
        for (p, m) in phases { m.set(p == decision.phase ? 1.0 : 0.0) }
        let counter = triggers[trigger] ?? CoreMetrics.Counter(label: "arbiter_rounds_total", dimensions: [("trigger", trigger.rawValue)], factory: f)
        triggers[trigger] = counter
        counter.increment()
        var failed = 0, pushed = 0
        for p in pushes.values {
            switch p {
            case .pushed: pushed += 1
            case .failed: failed += 1
            }
        }
        changes.increment(by: pushed)
        pushErrors.increment(by: failed)
        if !recorded { lost.increment() }
        duration.recordNanoseconds(took.components.seconds * 1_000_000_000 + took.components.attoseconds / 1_000_000_000)
        lastRound.set(wallSeconds)
    }

    /// A round that could not read the host.
    func skippedRound() { skipped.increment() }

    /// A guest report refused: counted by its stable code, and for its domain.
    func rejected(_ d: DomID, code: String) {
        let c = codes[code] ?? CoreMetrics.Counter(label: "arbiter_report_rejections_total", dimensions: [("code", code)], factory: factory)
        codes[code] = c
        c.increment()
        // A domain is labelled once it has been decided; a report refused before its first round counts host-wide only.
        guard var s = domains[d] else { return }
        if s.rejections == nil {
            s.rejections = CoreMetrics.Counter(label: "arbiter_domain_report_rejections_total", dimensions: labels(d, s.name), factory: factory)
        }
        s.rejections?.increment()
        domains[d] = s
    }

    /// Drops every series of a domain (released, stopping, or its domid now names another domain).
    func remove(_ d: DomID) {
        guard let s = domains.removeValue(forKey: d) else { return }
        for m in [s.target, s.actual, s.floor, s.ceiling, s.demand, s.reason.1] { m.destroy() }
        s.stall?.destroy()
        s.rejections?.destroy()
    }

    /// The domains that have series now.
    var labelled: [DomID: String] { domains.mapValues(\.name) }

    /// The exposition text (Prometheus text format 0.0.4): families sorted by name, each with the HELP
    /// line from `catalogue` (the swift-metrics API has no help text). One pass over the registry's bytes:
    /// little more than the registry's own emit (release, this machine: 100 domains 0.1 ms for 49 KiB,
    /// 1,000 domains 1.7 ms for 460 KiB; updating the series for a round 0.05 and 1.1 ms).
    func render() -> String {
        let raw = registry.emitToBuffer()
        let type = Array("# TYPE ".utf8)
        var families = [(name: String, start: Int)]()
        var i = 0
        while i < raw.count {
            var end = i
            while end < raw.count && raw[end] != 0x0A { end += 1 }
            if end - i > type.count && raw[i] == 0x23 && raw[i..<i + type.count].elementsEqual(type) {
                var n = i + type.count
                while n < end && raw[n] != 0x20 { n += 1 }
                families.append((String(decoding: raw[(i + type.count)..<n], as: UTF8.self), i))
            }
            i = end + 1
        }
        var out = [UInt8]()
        out.reserveCapacity(raw.count + families.count * 100)
        for (k, f) in families.enumerated().sorted(by: { $0.element.name < $1.element.name }) {
            if let h = Self.help[f.name] { out.append(contentsOf: "# HELP \(f.name) \(h)\n".utf8) }
            out.append(contentsOf: raw[f.start..<(k + 1 < families.count ? families[k + 1].start : raw.count)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static let help = Dictionary(catalogue.map { ($0.name, $0.help) }, uniquingKeysWith: { a, _ in a })
}
