#if canImport(Glibc)
import Glibc
#endif
import Arbiter
import Foundation
import GuestModel
import Logging
import Synchronization

/// A guest rewriting its report as fast as xenstored lets it (`--flood`): the daemon on the default
/// scenario (speed 1, its own store and socket) for a while with no flood, with one guest's watch
/// firing 20,000 times a second, and with it firing as fast as one thread can. Each watch event is
/// parsed from its xenstore path and offered to the daemon, as the xenstore-watch thread does. Prints
/// the process's CPU (a share of one core), what reached the control loop, and how long the other
/// guests' reports waited for their round. Printed, never asserted.
enum FloodBench {
    /// This process's CPU time so far, user and system.
    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }

    static func run(seconds: Double = 10) async {
        for rate in [0, 20_000, Int.max] {
            await once(rate: rate, seconds: seconds)
        }
    }

    static func once(rate: Int, seconds: Double) async {
        var config = ArbiterConfig()
        config.daemon.backend = .sim
        config.daemon.database = StoreBench.tempDB("flood.sqlite")
        config.daemon.socket = StoreBench.tempDB("flood.sock")
        config.daemon.simSpeed = 1
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let daemon = try! ArbiterDaemon.make(config: config, configPath: nil, logger: logger, role: .none)
        let host = await daemon.loop.backend as! SimulatedHost
        let flooder = await host.domains().first { $0.name == "hostile" }!.domid
        let server = Task { try? await daemon.run() }
        try? await Task.sleep(for: .seconds(2))          // the startup round and first reports
        let cpu0 = cpuSeconds(), wall0 = ContinuousClock.now, counts0 = host.eventCounts
        let stop = Atomic<Bool>(false)
        let path = "/local/domain/\(flooder.raw)/data/pressure"
        let thread = Thread {
            guard rate > 0 else { return }
            let start = ContinuousClock.now
            var sent = 0
            while !stop.load(ordering: .relaxed) {
                for _ in 0..<100 {
                    if let (d, key) = XenstorePaths.reportKey(fromWatchPath: path) { host.watchFired(.reportWritten(d, key: key)) }
                }
                sent += 100
                if rate != Int.max {
                    let due = start + .seconds(Double(sent) / Double(rate))
                    let now = ContinuousClock.now
                    if due > now { Thread.sleep(forTimeInterval: Double((due - now) / .microseconds(1)) / 1e6) }
                }
            }
        }
        thread.start()
        try? await Task.sleep(for: .seconds(seconds))
        stop.store(true, ordering: .relaxed)
        let wall = (ContinuousClock.now - wall0) / .seconds(1)
        let cpu = cpuSeconds() - cpu0
        let counts = host.eventCounts
        let lags = await daemon.loop.reportLag
        let rounds = await daemon.loop.rounds
        server.cancel()
        _ = await server.value
        let others = lags.filter { $0.key != flooder }.values
        let n = others.reduce(0) { $0 + $1.count }
        let mean = others.reduce(Duration.zero) { $0 + $1.total } / Swift.max(n, 1)
        let worst = others.map(\.max).max() ?? .zero
        let offered = Double(counts.offered - counts0.offered) / wall, queued = Double(counts.queued - counts0.queued) / wall
        let label = rate == 0 ? "no flood" : (rate == Int.max ? "flood, one thread flat out" : "flood, \(rate) writes/s")
        print("flood: \(label): \(formatFixed(offered, decimals: 0)) watch events/s offered, \(formatFixed(queued, decimals: 1))/s reached the loop; "
              + "process CPU \(formatFixed(cpu / wall * 100, decimals: 1)) % of a core; \(rounds) rounds; other guests' reports waited "
              + "mean \(formatFixed(Double(mean / .milliseconds(1)), decimals: 0)) ms, max \(formatFixed(Double(worst / .milliseconds(1)), decimals: 0)) ms (\(n) reads)")
    }
}
