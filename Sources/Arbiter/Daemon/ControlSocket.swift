#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// The daemon's control socket: a Unix stream socket, mode 0600 (root only), one JSON request line
/// per connection and one JSON reply line. Served from the daemon's task group (`serve`): no thread
/// or unstructured task; an idle, slow or flooding client costs a bounded slot, never another's reply.
public final class ControlSocket: Sendable {
    public let path: String
    private let fd: Int32

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Binds `path` (replacing a stale socket file, refusing to replace anything else) and listens.
    public init(path: String) throws {
        self.path = path
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw Failure(description: "\(path) exists and is not a socket") }
            if ControlSocket.isLive(path) { throw Failure(description: "\(path): another arbiter daemon is listening") }
            unlink(path)
        }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var addr = try ControlSocket.address(path)
        let old = umask(0o177)          // the file is created 0600: only root talks to the daemon
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        umask(old)
        guard rc == 0 else {
            let e = String(cString: strerror(errno))
            close(s)
            throw Failure(description: "bind \(path): \(e)")
        }
        guard listen(s, 128) == 0 else { close(s); throw Failure(description: "listen \(path): \(String(cString: strerror(errno)))") }
        _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK)
        fd = s
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// What one client may cost the daemon: at most `maxClients` open connections (a new one evicts
    /// the longest-waiting client that has not sent a request), `idleSeconds` from connecting to the
    /// reply being sent, and a request line of at most `lineLimit` bytes.
    public struct Limits: Sendable {
        public var maxClients: Int
        public var idleSeconds: Double
        public var lineLimit: Int
        public init(maxClients: Int = 64, idleSeconds: Double = 5, lineLimit: Int = 64 * 1024) {
            self.maxClients = maxClients
            self.idleSeconds = idleSeconds
            self.lineLimit = lineLimit
        }
    }

    /// Counters of what `serve` did, for tests and the benchmark.
    public struct Stats: Sendable, Equatable {
        public var accepted = 0, answered = 0, evicted = 0, timedOut = 0, tooLong = 0
    }

    private final class Shared: Sendable {
        let replies = Mutex<[(Int, String)]>([])
        let stats = Mutex(Stats())
    }
    private let shared = Shared()

    public var stats: Stats { shared.stats.withLock { $0 } }

    private struct Client {
        let serial: Int
        let fd: Int32
        let deadline: ContinuousClock.Instant
        var input: [UInt8] = []
        var output: [UInt8] = []
        var sent = 0
        /// The request line is complete (the handler has it, or its reply is going out).
        var requested = false
    }

    /// Serves clients until the task is cancelled. One task multiplexes every connection with poll(2)
    /// over non-blocking sockets, and each complete request is answered in a child task of its own,
    /// so neither a client that never finishes its line nor one that never reads its reply delays
    /// any other.
    public func serve(limits: Limits = Limits(), _ handle: @escaping @Sendable (String) async -> String) async {
        let clock = ContinuousClock()
        let shared = self.shared
        await withDiscardingTaskGroup { group in
            var clients: [Client] = []
            var serial = 0
            func drop(_ i: Int) {
                close(clients[i].fd)
                clients.remove(at: i)
            }
            while !Task.isCancelled {
                var busy = false
                // New connections. At the cap, the oldest client still without a request makes room.
                while true {
                    let c = accept(fd, nil, nil)
                    guard c >= 0 else { break }
                    busy = true
                    _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
                    if clients.count >= limits.maxClients {
                        shared.stats.withLock { $0.evicted += 1 }
                        if let i = clients.firstIndex(where: { !$0.requested }) {
                            drop(i)
                        } else {
                            close(c)
                            continue
                        }
                    }
                    serial += 1
                    clients.append(Client(serial: serial, fd: c, deadline: clock.now.advanced(by: .seconds(limits.idleSeconds))))
                    shared.stats.withLock { $0.accepted += 1 }
                }
                // Replies the handlers have finished.
                for (s, reply) in shared.replies.withLock({ r -> [(Int, String)] in defer { r.removeAll() }; return r }) {
                    if let i = clients.firstIndex(where: { $0.serial == s }) { clients[i].output = Array((reply + "\n").utf8) }
                }
                if !clients.isEmpty {
                    var fds = clients.map { c in
                        pollfd(fd: c.fd, events: Int16(c.requested ? (c.output.isEmpty ? 0 : POLLOUT) : POLLIN), revents: 0)
                    }
                    _ = poll(&fds, nfds_t(fds.count), 0)
                    let now = clock.now
                    for i in stride(from: clients.count - 1, through: 0, by: -1) {
                        let ev = Int32(fds[i].revents)
                        if ev & Int32(POLLIN | POLLHUP | POLLERR) != 0 && !clients[i].requested {
                            busy = true
                            switch readAvailable(&clients[i], limit: limits.lineLimit) {
                            case .line(let line):
                                clients[i].requested = true
                                let s = clients[i].serial
                                group.addTask {
                                    let reply = await handle(line)
                                    shared.replies.withLock { $0.append((s, reply)) }
                                }
                                continue
                            case .tooLong:
                                clients[i].requested = true
                                clients[i].output = Array("{\"ok\":false,\"error\":\"request longer than \(limits.lineLimit) bytes\"}\n".utf8)
                                shared.stats.withLock { $0.tooLong += 1 }
                            case .closed:
                                drop(i)
                                continue
                            case .waiting:
                                break
                            }
                        }
                        if !clients[i].output.isEmpty {
                            let n = clients[i].output[clients[i].sent...].withUnsafeBytes {
                                send(clients[i].fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                            }
                            if n > 0 { clients[i].sent += n; busy = true }
                            if clients[i].sent >= clients[i].output.count || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                                if clients[i].sent >= clients[i].output.count { shared.stats.withLock { $0.answered += 1 } }
                                drop(i)     // counted first: the client sees the close only after
                                continue
                            }
                        }
                        if now >= clients[i].deadline {
                            shared.stats.withLock { $0.timedOut += 1 }
                            drop(i)
                        }
                    }
                }
                if !busy { try? await Task.sleep(for: .milliseconds(5)) }
            }
            for c in clients { close(c.fd) }
        }
        // Stopped: no stale socket file is left for the next `top` to find.
        unlink(path)
    }

    private enum ReadResult { case line(String), tooLong, closed, waiting }

    /// Reads what a client has sent so far without blocking.
    private func readAvailable(_ c: inout Client, limit: Int) -> ReadResult {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                c.input.append(contentsOf: buf[0..<n])
                if let i = c.input.firstIndex(of: 0x0A) { return .line(String(decoding: c.input[..<i], as: UTF8.self)) }
                if c.input.count > limit { return .tooLong }
                continue
            }
            if n == 0 {
                // The client closed its side: what it sent is its request, if anything.
                return c.input.isEmpty ? .closed : .line(String(decoding: c.input, as: UTF8.self))
            }
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? .waiting : .closed
        }
    }

    /// Client side: sends one request line, returns the reply line.
    public static func request(_ path: String, _ line: String, timeoutSeconds: Int = 10) throws -> String {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(s) }
        var addr = try address(path)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else {
            throw Failure(description: "cannot reach the daemon at \(path): \(String(cString: strerror(errno))) (is `arbiter daemon` running?)")
        }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let out = line + "\n"
        _ = out.utf8CString.withUnsafeBufferPointer { send(s, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        guard let reply = readLine(s, limit: 16 * 1024 * 1024) else { throw Failure(description: "no reply from the daemon") }
        return reply
    }

    static func isLive(_ path: String) -> Bool {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0, var addr = try? address(path) else { return false }
        defer { close(s) }
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } } == 0
    }

    static func address(_ path: String) throws -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else { throw Failure(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return addr
    }

    /// Reads up to a newline (or EOF), at most `limit` bytes.
    static func readLine(_ s: Int32, limit: Int) -> String? {
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while data.count < limit {
            let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data.append(contentsOf: buf[0..<n])
            if let i = data.firstIndex(of: 0x0A) { data.removeSubrange(i...); return String(decoding: data, as: UTF8.self) }
        }
        return data.isEmpty ? nil : String(decoding: data, as: UTF8.self)
    }
}
