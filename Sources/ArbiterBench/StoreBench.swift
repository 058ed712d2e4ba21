import Arbiter
import Foundation
import GuestModel
import HostSimulator
import Logging

/// Benchmarks of the decision store, printed, never asserted.
enum StoreBench {
    static func tempDB(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arbiter-bench-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) }
        return path
    }

    static func fileSize(_ path: String) -> Int64 {
        ["", "-wal"].reduce(Int64(0)) { $0 + ((try? FileManager.default.attributesOfItem(atPath: path + $1)[.size] as? Int64) ?? 0) }
    }

    static func run() {
        // 1. Recording one round: every domain (a full snapshot) and a typical change-only round (10 %).
        for n in [100, 1000] {
            var arb = Arbitration()
            let facts = (0..<n).map { i in
                DomainFacts(domid: DomID(UInt16(i + 1)), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2))
            }
            let d = arb.step(HostSnapshot(free: KiB(gib: 4), domains: facts), now: TimePoint(ms: 0))
            let names = Dictionary(uniqueKeysWithValues: facts.map { ($0.domid, "vm\($0.domid)") })
            let store = try! DecisionStore(path: tempDB("record-\(n).sqlite"))
            var full = [Int64](), partial = [Int64]()
            for k in 0..<31 {
                let at = Date(timeIntervalSince1970: 1_800_000_000 + Double(k))
                full.append(nanos { try! store.record(d, at: at, trigger: .tick, hostTotal: KiB(gib: 512), outcomes: d.outcomes, fullSnapshot: true, names: names) })
                let some = Array(d.outcomes.prefix(n / 10))
                partial.append(nanos { try! store.record(d, at: at, trigger: .report, hostTotal: KiB(gib: 512), outcomes: some, fullSnapshot: false, names: names) })
            }
            print("store: record a round of \(n) domains: full snapshot \(fmtTime(median(full))), change-only (10 %) \(fmtTime(median(partial)))")
        }

        // 2. Database size per day: 100 reporting guests for one simulated hour through the control loop
        //    at the default settings (tick 10 s, reports every 2 s coalesced to 1 s), times 24.
        let scenario = benchScenario(guests: 100, hostMemory: KiB(gib: 220))
        let path = tempDB("day.sqlite")
        let store = try! DecisionStore(path: path)
        let host = SimulatedHost(scenario: scenario)
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let box = ResultBox()
        let clock = ManualWall()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let loop = ControlLoop(backend: host, store: store, config: ArbiterConfig(), logger: logger,
                                   now: { TimePoint(seconds: await host.seconds) }, wall: { clock.now() })
            let t0 = ContinuousClock().now
            for _ in 0..<3600 {
                for e in await host.advance(by: 1) { await loop.note(e) }
                clock.advance(1)
                if let trigger = await loop.due(at: TimePoint(seconds: await host.seconds)) { await loop.round(trigger: trigger) }
            }
            box.seconds = (ContinuousClock().now - t0).seconds
            box.rounds = await loop.rounds
            done.signal()
        }
        done.wait()
        try? store.checkpoint()
        let counts = (try? store.counts()) ?? [:]
        let hourBytes = fileSize(path)
        print("store: 100 domains, 1 simulated hour at default settings: \(box.rounds) rounds, \(counts["allocations"] ?? 0) allocation rows, "
              + "\(formatFixed(Double(hourBytes) / 1_048_576, decimals: 1)) MiB → \(formatFixed(Double(hourBytes) * 24 / 1_048_576, decimals: 0)) MiB/day "
              + "before downsampling (loop + store: \(formatFixed(box.seconds, decimals: 1)) s)")

        // 3. A 30-day report for those 100 domains, on a store shaped by the default retention: the
        //    last 7 days whole (the hour above, repeated; all but the last two hours compacted), 23 days
        //    of full snapshots only (compacted).
        let rpath = tempDB("month.sqlite")
        let t0 = ((Date().timeIntervalSince1970 - 30 * 86400) / 3600).rounded(.down) * 3600
        var pass: Int64 = 0
        let built = nanos { pass = try! synthesizeMonth(from: path, into: rpath, start: t0) }
        print("store: the retention pass that folds and compacts that hour (\(counts["allocations"] ?? 0) rows): \(fmtTime(pass))")
        let month = try! DecisionStore(readingAt: rpath)
        let monthCounts = (try? month.counts()) ?? [:]
        var report: Report? = nil
        let tRead = nanos { report = try! month.report(since: Date(timeIntervalSince1970: t0), until: nil) }
        var html = ""
        let tHTML = nanos { html = report!.html() }
        let c = { (k: String) in monthCounts[k] ?? 0 }
        print("store: 30 days of 100 domains as retention leaves them: \(c("rounds") + c("compacted_rounds")) rounds, "
              + "\(c("allocations") + c("compacted_rows")) allocation rows (\(c("compacted_rows")) in \(c("compact_hours")) compact hours), "
              + "\(formatFixed(Double(fileSize(rpath)) / 1_048_576, decimals: 1)) MiB (built in \(fmtTime(built))); "
              + "30-day report: read \(fmtTime(tRead)), HTML \(fmtTime(tHTML)) (\(html.utf8.count / 1024) KiB)")
    }

    final class ResultBox: @unchecked Sendable {
        var seconds = 0.0
        var rounds = 0
    }

    final class ManualWall: @unchecked Sendable {
        private var t = Date().timeIntervalSince1970 - 3600
        private let lock = NSLock()
        func now() -> Date { lock.lock(); defer { lock.unlock() }; return Date(timeIntervalSince1970: t) }
        func advance(_ s: Double) { lock.lock(); t += s; lock.unlock() }
    }
}
