#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import Synchronization

/// Where each round's metrics go: a node_exporter textfile (the default; no port opened in dom0),
/// rewritten atomically after every round (those started by reports: at most once a second), and the
/// last text for the optional `/metrics` endpoint.
/// Metrics never stop the daemon: a missing folder or a failed write is logged once, and logged
/// again only when writing works again.
public final class MetricsExport: Sendable {
    /// The textfile; nil: none written.
    public let textfile: String?
    let logger: Logger
    private let state = Mutex(State())

    struct State {
        var text = ""
        /// Why the last write failed (nil: it worked), so a failure is logged once, not every round.
        var failing: String?
        var written = 0
    }

    public init(textfile: String?, logger: Logger) {
        self.textfile = textfile.flatMap { $0.isEmpty ? nil : $0 }
        self.logger = logger
    }

    /// The last round's exposition text (empty before the first round).
    public var text: String { state.withLock { $0.text } }

    /// Files written so far.
    public var written: Int { state.withLock { $0.written } }

    /// Takes a round's text: kept for the endpoint, and written to the textfile.
    func publish(_ text: String) {
        state.withLock { $0.text = text }
        guard let textfile else { return }
        let problem = Self.writeAtomically(text, to: textfile)
        let before = state.withLock { s -> String? in
            defer { s.failing = problem; if problem == nil { s.written += 1 } }
            return s.failing
        }
        switch (before, problem) {
        case (nil, let p?):
            logger.warning("metrics textfile not written (the daemon goes on; logged once until it works): \(p)")
        case (_?, nil):
            logger.notice("metrics textfile written again", metadata: ["path": "\(textfile)"])
        default:
            break
        }
    }

    /// Writes `text` beside `path` and renames it over `path`: node_exporter reads either the old file or
    /// the new one, never half of one (its textfile collector reads only `*.prom`, so the temporary
    /// name is never read). Returns why it failed, or nil.
    static func writeAtomically(_ text: String, to path: String) -> String? {
        let dir = (path as NSString).deletingLastPathComponent
        var st = stat()
        guard stat(dir.isEmpty ? "." : dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            return "\(dir): no such folder (install prometheus-node-exporter, or set metrics.textfile)"
        }
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "\(tmp): \(String(cString: strerror(errno)))" }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = String(cString: strerror(errno))
                close(fd); unlink(tmp)
                return "\(tmp): \(e)"
            }
            bytes = bytes.dropFirst(n)
        }
        // The mode is 0644 whatever the umask: node_exporter runs as its own user.
        fchmod(fd, 0o644)
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            return "\(path): \(e)"
        }
        return nil
    }
}
