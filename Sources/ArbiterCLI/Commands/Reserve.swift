import Arbiter
import ArgumentParser
import GuestModel

struct ReserveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reserve", abstract: "Free memory for a domain about to be built, and hold it until the domain exists.",
        discussion: """
            The daemon frees SIZE now (Xen's free memory first, then memory guests hold above their demand, then \
            idle memory at the fast pace; never below a floor) and keeps it out of every guest's share until a new \
            domain named NAME has been built, or TIMEOUT seconds pass. Refused at once when the floors leave less \
            than SIZE. Then `xl create` (or `xl restore`) the domain.
            """)

    @Argument(help: "How much: 512M, 2G (a bare number is KiB): what the build needs (see `arbiter start`).")
    var size: String

    @Option(name: .customLong("for"), help: "The name of the domain it is for (released when that domain is built).")
    var name: String?

    @Option(name: .long, parsing: .unconditional, help: "Seconds to hold it at most (1-3600).")
    var timeout: Double = 120

    @Flag(name: .long, help: "Return only when the memory is free in Xen (exit 1 if it is not by the timeout).")
    var wait = false

    @OptionGroup var socket: SocketOptions

    func validate() throws {
        guard case .size = try parseSizeSetting(size, flag: "SIZE") else { throw usageError("SIZE must be a size such as 512M or 2G") }
        try validateTimeout(timeout)
    }

    func run() throws {
        let kib = KiB(parsing: size)!
        let reply = try socket.request(ControlRequest(cmd: "reserve", domain: name, who: currentUser(), sizeKiB: kib.value,
                                                      timeoutSeconds: timeout))
        guard let r = reply.reservations?.first else { throw CLIError("the daemon made no reservation") }
        print(reply.message ?? r.summary)
        if wait {
            let waited = try waitForReservation(socket, id: r.id)
            print("ready: \(formatSize(KiB(r.sizeKiB))) free\(name.map { " for \($0)" } ?? "") after \(formatFixed(waited, decimals: 1)) s")
        }
    }
}
