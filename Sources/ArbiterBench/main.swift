// arbiter-bench: times one full round (ingest/estimate + solve + pace) of the pure core for 10, 100,
// 1,000 and 10,000 domains, and, in the same run, sorting the same number of Doubles as a reference.
// A benchmark, not a test: it prints figures and asserts nothing. Build with -c release.
import Arbiter
import GuestModel
import HostSimulator

@inline(never) func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }

/// Monotonic nanoseconds from the stdlib clock (no Foundation).
func nanos(_ body: () -> Void) -> Int64 {
    let clock = ContinuousClock()
    let t0 = clock.now
    body()
    let d = clock.now - t0
    return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
}

func median(_ xs: [Int64]) -> Int64 { let s = xs.sorted(); return s[s.count / 2] }

func fmtTime(_ ns: Int64) -> String {
    if ns >= 1_000_000 { return formatFixed(Double(ns) / 1e6, decimals: 2) + " ms" }
    return formatFixed(Double(ns) / 1e3, decimals: 1) + " µs"
}

func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: Swift.max(0, w - s.count)) + s }

/// A host of `n` reporting guests under contention: every guest reports each round with rising
/// stall on some, idle on others, so the estimator, the contended water-fill and the pacer all work.
struct Bench {
    var arb: Arbitration
    var facts: [DomainFacts]
    var free: KiB
    var rng: SplitMix64
    var t: TimePoint
    var seq: UInt64
    var psiTotals: [UInt64]
    var faults: [UInt64]

    init(n: Int, seed: UInt64) {
        rng = SplitMix64(seed: seed)
        arb = Arbitration()
        facts = []
        psiTotals = Array(repeating: 0, count: n)
        faults = Array(repeating: 0, count: n)
        for i in 0..<n {
            let sm = KiB(mib: Int64.random(in: 1024...16384, using: &rng))
            let cur = KiB(sm.value / 2).pageFloor
            facts.append(DomainFacts(domid: DomID(UInt16(i + 1)), staticMax: sm, actual: cur, target: cur,
                                     adminMin: i % 10 == 0 ? KiB(mib: 512) : nil,
                                     weight: Double(Int.random(in: 1...4, using: &rng))))
        }
        free = KiB(mib: 512)
        t = TimePoint(ms: 1_000_000)
        seq = 1_000
    }

    /// Builds this round's reports (not timed).
    mutating func makeReports() -> [GuestReport] {
        seq += 2000
        var out = [GuestReport]()
        out.reserveCapacity(facts.count)
        for i in facts.indices {
            let total = KiB(facts[i].actual.value * 95 / 100)
            let usedFrac = Double(UInt32.random(in: 30...99, using: &rng)) / 100
            var r = GuestReport(source: .reporter, seq: seq,
                                memTotal: total, memAvailable: KiB(Int64(Double(total.value) * (1 - usedFrac))))
            r.activeFile = KiB(total.value / 10)
            psiTotals[i] += UInt64.random(in: 0...(usedFrac > 0.9 ? 100_000 : 1_000), using: &rng)
            faults[i] += UInt64.random(in: 0...50, using: &rng)
            r.counters.psiSomeTotalUs = psiTotals[i]
            r.counters.pgmajfault = faults[i]
            out.append(r)
        }
        return out
    }

    /// One timed round: ingest every report (validate, rates, estimate), then solve and pace.
    mutating func round(_ reports: [GuestReport]) -> Decision {
        ingestAll(reports)
        return step()
    }

    mutating func ingestAll(_ reports: [GuestReport]) {
        t = t.adding(seconds: 2)
        for i in reports.indices {
            arb.ingest(facts[i].domid, report: reports[i], at: t, staticMax: facts[i].staticMax)
        }
    }

    mutating func step() -> Decision { arb.step(HostSnapshot(free: free, domains: facts), now: t) }

    /// Applies the decision as if every balloon reached its target at once (not timed).
    mutating func apply(_ d: Decision) {
        for (i, o) in d.outcomes.enumerated() {
            facts[i].target = o.target
            let delta = o.target.value - facts[i].actual.value
            if delta <= 0 || delta <= free.value { facts[i].actual = o.target; free = KiB(free.value - delta) }
        }
    }
}

var sizes = [10, 100, 1_000, 10_000]
var repeats = 41
var extras = true
var storeBench = false
var socketBench = false
var floodBench = false
var args = CommandLine.arguments.dropFirst()
while let a = args.first {
    args = args.dropFirst()
    if a == "--repeats", let v = args.first, let r = Int(v) { repeats = Swift.max(3, r); args = args.dropFirst() }
    else if a == "--sizes", let v = args.first {
        sizes = v.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 && $0 < Int(DomID.firstReserved) }
        args = args.dropFirst()
    } else if a == "--store" {
        storeBench = true
    } else if a == "--socket" {
        socketBench = true
    } else if a == "--flood" {
        floodBench = true
    } else if a == "--round-only" {
        extras = false
    } else if a == "--help" || a == "-h" {
        print("usage: arbiter-bench [--repeats N] [--sizes 10,100,1000,10000] [--round-only] [--store] [--socket] [--flood]")
        sizes = []
    }
}

#if DEBUG
print("warning: debug build; figures are meaningless. Use: swift run -c release arbiter-bench")
#endif
print("arbiter-bench: one full round vs sorting n Doubles (same run); median of \(repeats) runs")
print("  round = ingest (validate + rates + estimate, one report per domain) + step (floors + solve + pace)")
print(pad("domains", 8) + pad("round", 12) + pad("sort n", 12) + pad("ratio", 8) + pad("ingest", 12) + pad("step", 12) + pad("step/sort", 10) + pad("solve only", 13) + pad("per domain", 12) + "  phase")
for n in sizes {
    var bench = Bench(n: n, seed: 0xA5_5EED &+ UInt64(n))
    // Warm up: prime estimators and let pacing settle into a contended steady state.
    for _ in 0..<5 { let r = bench.makeReports(); bench.apply(bench.round(r)) }
    var roundTimes = [Int64](), ingestTimes = [Int64](), stepTimes = [Int64](), sortTimes = [Int64](), solveTimes = [Int64]()
    var phase = SharePhase.uncontended
    var rng = SplitMix64(seed: 42 &+ UInt64(n))
    for _ in 0..<repeats {
        let reports = bench.makeReports()
        var decision: Decision? = nil
        let ti = nanos { bench.ingestAll(reports) }
        let ts = nanos { decision = bench.step() }
        roundTimes.append(ti + ts)
        ingestTimes.append(ti)
        stepTimes.append(ts)
        phase = decision!.phase
        bench.apply(decision!)

        var doubles = (0..<n).map { _ in Double(rng.next() >> 11) }
        sortTimes.append(nanos { doubles.sort() })
        blackHole(doubles)

        let o = decision!.outcomes
        let floors = o.map(\.floor), demands = o.map(\.demand), ceilings = o.map(\.ceiling), weights = o.map(\.weight)
        var share: FairShareResult? = nil
        solveTimes.append(nanos { share = FairShare.solve(floors: floors, demands: demands, ceilings: ceilings, weights: weights, budget: decision!.budget) })
        blackHole(share)
    }
    let r = median(roundTimes), s = median(sortTimes), v = median(solveTimes)
    let phaseName = phase == .contended ? "contended" : (phase == .infeasible ? "infeasible" : "uncontended")
    print(pad(String(n), 8) + pad(fmtTime(r), 12) + pad(fmtTime(s), 12)
          + pad(formatFixed(Double(r) / Double(Swift.max(s, 1)), decimals: 1) + "x", 8)
          + pad(fmtTime(median(ingestTimes)), 12) + pad(fmtTime(median(stepTimes)), 12)
          + pad(formatFixed(Double(median(stepTimes)) / Double(Swift.max(s, 1)), decimals: 1) + "x", 10) + pad(fmtTime(v), 13) + pad(formatFixed(Double(r) / Double(n), decimals: 0) + " ns", 12) + "  " + phaseName)
}

// Parsing is outside the round (reports are parsed as they arrive): timed on its own.
if !sizes.isEmpty && extras {
    let line = "v=1 seq=120000 mem_total_kb=4000000 mem_available_kb=1000000 active_anon_kb=1500000 inactive_anon_kb=500000 active_file_kb=600000 inactive_file_kb=300000 dirty_kb=2000 committed_as_kb=3500000 swap_total_kb=1000000 swap_free_kb=900000 psi_some_avg10=1.25 psi_full_avg10=0.50 psi_some_total_us=5000000 psi_full_total_us=1000000 pgmajfault=1000 workingset_refault_anon=10 workingset_refault_file=200 pswpin=5 pswpout=7"
    let garbage = String(repeating: "A", count: 1024)
    let bytes = Array(line.utf8), junk = Array(garbage.utf8)
    let count = 10_000
    var times = [Int64](), junkTimes = [Int64]()
    for _ in 0..<repeats {
        times.append(nanos { for _ in 0..<count { blackHole(bytes.withUnsafeBufferPointer { ReportParser.parse($0) }) } })
        junkTimes.append(nanos { for _ in 0..<count { blackHole(junk.withUnsafeBufferPointer { ReportParser.parse($0) }) } })
    }
    print("parse: \(formatFixed(Double(median(times)) / Double(count), decimals: 0)) ns per full \(bytes.count)-byte report line; "
          + "\(formatFixed(Double(median(junkTimes)) / Double(count), decimals: 0)) ns to reject a 1 KiB garbage line")
}

// The simulated host: one hour of host time for 50 guests (1 s physics steps, every guest reporting
// every 2 s), the daemon's loop running our policy and the static baseline (physics alone).
if !sizes.isEmpty && extras {
    let scenario = benchScenario(guests: 50, hostMemory: KiB(gib: 110))
    for name in [PolicyName.arbiter, .static] {
        var times = [Int64]()
        var stall = 0.0
        for _ in 0..<Swift.max(3, repeats / 8) {
            let start = ContinuousClock.now
            stall = await LoopEvaluation.run(scenario, policy: name).metrics.stallSeconds
            let d = ContinuousClock.now - start
            times.append(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
        }
        print("simulator: 1 h of 50 guests under \(name.rawValue): \(fmtTime(median(times))) (stall \(formatFixed(stall, decimals: 0)) s)")
    }
}

// The decision store (--store): recording cost, database size per day, a 30-day report.
if storeBench {
    StoreBench.run()
}

// The control socket (--socket): an admin's request with a crowd of idle clients connected.
if socketBench {
    await SocketBench.run()
}

// A flooding guest (--flood): dom0's CPU and the other guests' report-to-round wait.
if floodBench {
    await FloodBench.run()
}

/// A mixed host for the benchmarks: steady, ramping, spiking, periodic and idle guests in turn.
func benchScenario(guests n: Int, hostMemory: KiB) -> Scenario {
    var guests = [GuestSpec]()
    for i in 0..<n {
        let w: Workload
        switch i % 5 {
        case 0: w = .steady(KiB(mib: 1200))
        case 1: w = .ramp(from: KiB(gib: 1), to: KiB(gib: 3), start: 600, seconds: 1200)
        case 2: w = .spike(base: KiB(gib: 1), peak: KiB(gib: 3), at: Double(60 * i % 1800), seconds: 120, every: 1800)
        case 3: w = .periodic(base: KiB(gib: 2), amplitude: KiB(mib: 800), period: 900)
        default: w = .idle(KiB(mib: 300))
        }
        guests.append(GuestSpec(name: "vm\(i)", workload: w, staticMax: KiB(gib: 4), boot: KiB(gib: 2)))
    }
    return Scenario(name: "bench\(n)", hostMemory: hostMemory, guests: guests)
}
