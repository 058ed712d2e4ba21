#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The daemon's control socket: a Unix stream socket, mode 0600 (root only), one JSON request line
/// per connection and one JSON reply line. Polled from the daemon's task group (non-blocking accept),
/// so no thread or unstructured task is needed; a slow client gets a short timeout, never the loop.
public final class ControlSocket: @unchecked Sendable {
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
        guard listen(s, 16) == 0 else { close(s); throw Failure(description: "listen \(path): \(String(cString: strerror(errno)))") }
        _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK)
        fd = s
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Accepts one waiting client, if any, and answers it with `handle`. Returns whether one was served.
    public func serveOne(_ handle: (String) async -> String) async -> Bool {
        let c = accept(fd, nil, nil)
        guard c >= 0 else { return false }
        defer { close(c) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard let request = ControlSocket.readLine(c, limit: 64 * 1024) else { return true }
        let reply = await handle(request) + "\n"
        _ = reply.utf8CString.withUnsafeBufferPointer { send(c, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        return true
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
