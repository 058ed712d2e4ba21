#if canImport(Glibc)
import Glibc
#endif
import Arbiter
import BundledScenarios
import Foundation
import GuestModel
import Logging

/// The control socket under a crowd (`--socket`): how long `top --once` (one `list` request) takes on
/// the default scenario's daemon loop with 0 and with 200 idle connections open. Printed, never asserted.
enum SocketBench {
    static func connectIdle(_ path: String) -> Int32 {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        return s
    }

    static func run() async {
        let scenario = try! ScenarioFile.parse(BundledScenarios.named("default")!)
        let host = SimulatedHost(scenario: scenario)
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let loop = ControlLoop(backend: host, store: nil, config: ArbiterConfig(), logger: logger,
                               now: { TimePoint(seconds: await host.seconds) }, settings: { await host.adminSettings() })
        await loop.round(trigger: .startup)
        let path = StoreBench.tempDB("control.sock")
        let socket = try! ControlSocket(path: path)
        let server = Task { await socket.serve { await loop.handle($0) } }
        let request = "{\"cmd\":\"list\"}"
        func measure(_ label: String) async {
            var times = [Int64]()
            var failures = 0
            for _ in 0..<50 {
                let ns = await Task.detached { () -> (Int64, Bool) in
                    var ok = true
                    let t = nanos { ok = (try? ControlSocket.request(path, request, timeoutSeconds: 10)) != nil }
                    return (t, ok)
                }.value
                times.append(ns.0)
                if !ns.1 { failures += 1 }
            }
            let sorted = times.sorted()
            print("control socket: list (top --once) with \(label): median \(fmtTime(sorted[sorted.count / 2])), "
                  + "max \(fmtTime(sorted.last!)), \(failures) of 50 failed")
        }
        await measure("no other client")
        var idle = [Int32]()
        for _ in 0..<200 { idle.append(connectIdle(path)) }
        try? await Task.sleep(for: .milliseconds(100))
        await measure("200 idle connections open")
        for fd in idle { close(fd) }
        let s = socket.stats
        print("control socket: \(s.accepted) accepted, \(s.answered) answered, \(s.evicted) idle evicted at the cap of "
              + "\(ControlSocket.Limits().maxClients), \(s.timedOut) timed out")
        server.cancel()
        _ = await server.value
    }
}
