#if canImport(Glibc)
import Glibc
#endif
import Arbiter
import Foundation
import Testing

/// The control socket under clients that do not behave: each is served on its own, within limits.
@Suite("Control socket", .serialized)
struct ControlSocketTests {
    static func tempSocket() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("arbiter-cs-\(getpid())-\(UUID().uuidString.prefix(8)).sock").path
        return path
    }

    /// A raw client: connects and returns the fd (the caller decides what to send).
    static func connectRaw(_ path: String) throws -> Int32 {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(rc == 0)
        return s
    }

    static func send(_ fd: Int32, _ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Whether the daemon has closed this connection (recv sees EOF), waiting at most `seconds`.
    static func closedByServer(_ fd: Int32, within seconds: Int) -> Bool {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var b = [UInt8](repeating: 0, count: 256)
        while true {
            let n = b.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return false }
        }
    }

    /// A client request on a thread of its own: its blocking socket calls must not take one of the
    /// few cooperative threads the server (and the other suites running in parallel) need. It waits 10 s:
    /// the whole suite runs beside CPU-bound tests that can hold both of a 2-core machine's cooperative
    /// threads for seconds (3 s failed there once in four runs); a server blocked by a stuck client would
    /// answer only after that client's 30 s idle timeout.
    static func request(_ path: String, _ line: String) async throws -> String {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<String, any Error>) in
            Thread { c.resume(with: Result { try ControlSocket.request(path, line, timeoutSeconds: 10) }) }.start()
        }
    }

    static func echo(_ line: String) async -> String { "{\"ok\":true,\"echo\":\(line.count)}" }

    /// A client that sends a byte every 100 ms and never ends its line used to hold the one-at-a-time
    /// socket (each byte restarted the 2 s read timeout): the admin's `top` got no reply.
    @Test func aTricklingClientDoesNotBlockAnother() async throws {
        let path = Self.tempSocket()
        let socket = try ControlSocket(path: path)
        let server = Task { await socket.serve(limits: .init(idleSeconds: 30), Self.echo) }
        defer { server.cancel() }
        let stuck = try Self.connectRaw(path)
        defer { close(stuck) }
        let trickle = Thread {
            for _ in 0..<40 where !Thread.current.isCancelled {
                Self.send(stuck, "{")
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        trickle.start()
        defer { trickle.cancel() }
        try await Task.sleep(for: .milliseconds(300))
        let reply = try await Self.request(path, "{\"cmd\":\"list\"}")
        #expect(reply == "{\"ok\":true,\"echo\":14}")
        for _ in 0..<100 where socket.stats.answered == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(socket.stats.answered == 1)
        #expect(socket.stats.timedOut == 0)
    }

    /// Idle connections cost a slot each, up to the cap; past it the longest-idle is evicted, and an
    /// idle one is cut at the idle timeout, so a crowd of them never locks the admin out.
    @Test func idleClientsAreCappedAndTimedOut() async throws {
        let path = Self.tempSocket()
        let socket = try ControlSocket(path: path)
        let server = Task { await socket.serve(limits: .init(maxClients: 8, idleSeconds: 1), Self.echo) }
        defer { server.cancel() }
        var idle = [Int32]()
        for _ in 0..<40 { idle.append(try Self.connectRaw(path)) }
        defer { for fd in idle { close(fd) } }
        let reply = try await Self.request(path, "{\"cmd\":\"list\"}")
        #expect(reply.hasPrefix("{\"ok\":true"))
        let s = socket.stats
        #expect(s.evicted >= 32)
        #expect(s.accepted == 41)
        // The newest idle clients were not evicted; the timeout cuts them.
        let last = idle.last!
        #expect(await withCheckedContinuation { c in Thread { c.resume(returning: Self.closedByServer(last, within: 3)) }.start() })
        #expect(socket.stats.timedOut >= 1)
    }

    /// A request line longer than the limit is refused with a reply, not read forever.
    @Test func anOverlongLineIsRefused() async throws {
        let path = Self.tempSocket()
        let socket = try ControlSocket(path: path)
        let server = Task { await socket.serve(limits: .init(lineLimit: 1024), Self.echo) }
        defer { server.cancel() }
        let reply = try await Self.request(path, String(repeating: "x", count: 8192))
        #expect(reply.contains("request longer than 1024 bytes"))
        #expect(socket.stats.tooLong == 1)
    }

    /// A client that sends its request but never reads the reply does not hold the socket either.
    @Test func aClientThatNeverReadsDoesNotBlockAnother() async throws {
        let path = Self.tempSocket()
        let socket = try ControlSocket(path: path)
        let big = String(repeating: "y", count: 4 * 1024 * 1024)
        let server = Task { await socket.serve(limits: .init(idleSeconds: 30)) { line in line.hasPrefix("big") ? "\"\(big)\"" : await Self.echo(line) } }
        defer { server.cancel() }
        let deaf = try Self.connectRaw(path)
        defer { close(deaf) }
        Self.send(deaf, "big\n")
        try await Task.sleep(for: .milliseconds(300))
        let reply = try await Self.request(path, "{\"cmd\":\"list\"}")
        #expect(reply == "{\"ok\":true,\"echo\":14}")
    }
}
