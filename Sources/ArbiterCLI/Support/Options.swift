import Arbiter
import ArgumentParser
import Foundation

/// Where the decision store is, for the read-only verbs: --db, else the config file's, else the default.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The decision store (default: [daemon] database from --config, else /var/lib/arbiter/decisions.sqlite).")
    var db: String?

    @Option(name: .long, help: "A config.toml to take the database path from.")
    var config: String?

    func open() throws -> DecisionStore {
        let path = try db ?? loadConfig(config).daemon.database
        let store: DecisionStore
        do { store = try DecisionStore(readingAt: path) } catch { throw CLIError("\(error)") }
        for w in store.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        return store
    }
}

/// Where the running daemon listens: --socket, else the config file's, else the default.
struct SocketOptions: ParsableArguments {
    @Option(name: .long, help: "The daemon's control socket (default: [daemon] socket from --config, else /run/arbiter/arbiter.sock).")
    var socket: String?

    @Option(name: .long, help: "A config.toml to take the socket path from.")
    var config: String?

    func request(_ r: ControlRequest) throws -> ControlReply {
        let path = try socket ?? loadConfig(config).daemon.socket
        let line = String(decoding: try JSONEncoder().encode(r), as: UTF8.self)
        let reply: String
        do { reply = try ControlSocket.request(path, line) } catch { throw CLIError("\(error)") }
        guard let decoded = try? JSONDecoder().decode(ControlReply.self, from: Data(reply.utf8)) else {
            throw CLIError("unreadable reply from the daemon: \(reply.prefix(200))")
        }
        guard decoded.ok else { throw CLIError(decoded.error ?? "the daemon refused") }
        return decoded
    }
}
