#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// The optional `GET /metrics` endpoint (`metrics.http_port`, off by default): HTTP/1.0-style, one
/// request per connection, on 127.0.0.1 only (a local Prometheus or an SSH tunnel scrapes it; nothing
/// off the host reaches dom0). It serves the text of the last round, so a scrape costs a copy, never a
/// round. Bounded like the control socket: at most `maxClients` connections (a new one evicts the
/// oldest), `idleSeconds` from connecting to the reply sent, a request head of at most `headLimit` bytes.
/// Served from the daemon's task group with non-blocking sockets: no thread of its own.
public final class MetricsEndpoint: Sendable {
    private let fd: Int32
    /// The port bound (the one asked for; an ephemeral one when 0 was asked, for tests).
    public let port: UInt16

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Limits: Sendable {
        public var maxClients = 8
        public var idleSeconds = 5.0
        public var headLimit = 8 * 1024
        public init() {}
    }

    public struct Stats: Sendable, Equatable {
        public var accepted = 0, answered = 0, evicted = 0, timedOut = 0, refused = 0
    }
    private let statsBox = Mutex(Stats())
    public var stats: Stats { statsBox.withLock { $0 } }

    public init(port: UInt16) throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian       // 127.0.0.1
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            let e = String(cString: strerror(errno))
            close(s)
            throw Failure(description: "metrics endpoint: bind 127.0.0.1:\(port): \(e)")
        }
        guard listen(s, 16) == 0 else { close(s); throw Failure(description: "metrics endpoint: listen: \(String(cString: strerror(errno)))") }
        _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK)
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        self.port = UInt16(bigEndian: bound.sin_port)
        fd = s
    }

    deinit { close(fd) }

    private struct Client {
        let fd: Int32
        let deadline: ContinuousClock.Instant
        var input: [UInt8] = []
        var output: [UInt8] = []
        var sent = 0
    }

    /// The reply to one request head.
    static func reply(to head: [UInt8], body: () -> String) -> (status: Int, bytes: [UInt8]) {
        let firstLine = head.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        let parts = String(decoding: firstLine, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
        let method = parts.first.map(String.init) ?? ""
        let target = parts.count > 1 ? String(parts[1]) : ""
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        func response(_ status: Int, _ text: String, _ content: String, _ type: String = "text/plain; charset=utf-8",
                      headOnly: Bool = false) -> (Int, [UInt8]) {
            let b = Array(content.utf8)
            let h = "HTTP/1.1 \(status) \(text)\r\nContent-Type: \(type)\r\nContent-Length: \(b.count)\r\nConnection: close\r\n\r\n"
            return (status, Array(h.utf8) + (headOnly ? [] : b))
        }
        guard method == "GET" || method == "HEAD" else { return response(405, "Method Not Allowed", "only GET /metrics\n") }
        guard path == "/metrics" else { return response(404, "Not Found", "arbiter: metrics are at /metrics\n") }
        return response(200, "OK", body(), "text/plain; version=0.0.4; charset=utf-8", headOnly: method == "HEAD")
    }

    /// Serves until the task is cancelled; `body` is the text to send (the last round's).
    public func serve(limits: Limits = Limits(), body: @escaping @Sendable () -> String) async {
        let clock = ContinuousClock()
        var clients: [Client] = []
        func drop(_ i: Int) {
            close(clients[i].fd)
            clients.remove(at: i)
        }
        while !Task.isCancelled {
            var busy = false
            while true {
                let c = accept(fd, nil, nil)
                guard c >= 0 else { break }
                busy = true
                _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
                if clients.count >= limits.maxClients {
                    statsBox.withLock { $0.evicted += 1 }
                    drop(0)
                }
                clients.append(Client(fd: c, deadline: clock.now.advanced(by: .seconds(limits.idleSeconds))))
                statsBox.withLock { $0.accepted += 1 }
            }
            let now = clock.now
            for i in stride(from: clients.count - 1, through: 0, by: -1) {
                if clients[i].output.isEmpty {
                    var buf = [UInt8](repeating: 0, count: 2048)
                    let n = buf.withUnsafeMutableBytes { recv(clients[i].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { drop(i); continue }
                    if n > 0 {
                        busy = true
                        clients[i].input.append(contentsOf: buf[0..<n])
                        let input = clients[i].input
                        let ended = Self.headEnd(input)
                        if ended || input.count > limits.headLimit {
                            let (status, bytes) = ended
                                ? Self.reply(to: input, body: body)
                                : (431, Array("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
                            if status != 200 { statsBox.withLock { $0.refused += 1 } }
                            clients[i].output = bytes
                        }
                    }
                }
                if !clients[i].output.isEmpty {
                    let n = clients[i].output[clients[i].sent...].withUnsafeBytes {
                        send(clients[i].fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                    }
                    if n > 0 { clients[i].sent += n; busy = true }
                    if clients[i].sent >= clients[i].output.count {
                        statsBox.withLock { $0.answered += 1 }
                        drop(i)
                        continue
                    }
                    if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { drop(i); continue }
                }
                if now >= clients[i].deadline {
                    statsBox.withLock { $0.timedOut += 1 }
                    drop(i)
                }
            }
            // Scrapes come every few seconds at most: an idle endpoint wakes 20 times a second.
            if !busy { try? await Task.sleep(for: .milliseconds(50)) }
        }
        for c in clients { close(c.fd) }
    }

    /// Whether the request head is complete (an empty line; a bare LF is accepted for hand-typed requests).
    static func headEnd(_ b: [UInt8]) -> Bool {
        guard b.count >= 2 else { return false }
        for i in 1..<b.count where b[i] == 0x0A {
            if b[i - 1] == 0x0A || (i >= 3 && b[i - 1] == 0x0D && b[i - 2] == 0x0A && b[i - 3] == 0x0D) { return true }
        }
        return false
    }

    /// Client side, for tests and `arbiter` itself: GET `path` from 127.0.0.1:`port`; the status and body.
    public static func get(port: UInt16, path: String = "/metrics", timeoutSeconds: Int = 5) throws -> (status: Int, body: String) {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw Failure(description: "connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let req = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = req.withUnsafeBytes { send(s, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while data.count < 64 * 1024 * 1024 {
            let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data.append(contentsOf: buf[0..<n])
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let sep = text.range(of: "\r\n\r\n") else { throw Failure(description: "no HTTP reply") }
        let status = Int(text[..<sep.lowerBound].split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, String(text[sep.upperBound...]))
    }
}
