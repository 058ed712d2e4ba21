import Arbiter
import ArgumentParser
import Foundation
import GuestModel

/// `arbiter reserve`, `unreserve` and `start`: memory for VM starts, asked of the running daemon (as xapi
/// asks squeezed and qubesd asks qmemman before a domain is built).

extension ReservationInfo {
    var summary: String {
        let what = name.map { " for \($0)" } ?? ""
        return "reservation \(id): \(formatSize(KiB(sizeKiB)))\(what), \(status), \(formatSize(KiB(heldKiB))) held, "
            + "\(formatFixed(leftSeconds, decimals: 0)) s left"
    }
}

/// Polls a reservation until it is ready (or was used), and returns the seconds waited.
func waitForReservation(_ socket: SocketOptions, id: Int) throws -> Double {
    let start = Date()
    while true {
        let reply = try socket.request(ControlRequest(cmd: "reservation", id: id))
        guard let r = reply.reservations?.first else { throw CLIError("reservation \(id) is gone") }
        switch r.status {
        case "ready", "done":
            return Date().timeIntervalSince(start)
        case "expired":
            let free = reply.freeKiB.map { formatSize(KiB($0)) } ?? "?"
            let room = reply.roomKiB.map { formatSize(KiB($0)) } ?? "?"
            throw CLIError("\(formatSize(KiB(r.sizeKiB))) was not free before the reservation's deadline "
                           + "(Xen free \(free); the floors leave \(room) to give up)")
        case "cancelled":
            throw CLIError("reservation \(id) was cancelled")
        default:
            Thread.sleep(forTimeInterval: 0.25)
        }
    }
}

/// Runs a program found on PATH with our stdin/stdout/stderr and waits for it: its exit status (128 + N
/// when killed by signal N). posix_spawn and waitpid, not Foundation's Process, whose run loop needs a
/// socket pair a minimal dom0 may not give it (seen under qemu: "Could not create wakeup socket pair",
/// and waitUntilExit never returned). `xl create` leaves its domain monitor running: only xl itself is
/// waited for.
func spawnAndWait(_ argv: [String]) throws -> Int32 {
    var pid: pid_t = 0
    var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    var cenv: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for p in cargs + cenv { free(p) } }
    let rc = posix_spawnp(&pid, argv[0], nil, nil, &cargs, &cenv)
    guard rc == 0 else { throw CLIError("cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw CLIError("waiting for \(argv[0]): \(String(cString: strerror(errno)))") }
    }
    // WIFEXITED/WEXITSTATUS are macros Swift does not import.
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

func currentUser() -> String {
    let env = ProcessInfo.processInfo.environment
    return String((env["SUDO_USER"] ?? env["USER"] ?? "root").prefix(64))
}

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

struct UnreserveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unreserve", abstract: "Cancel a reservation: its memory goes back to the guests.")

    @Argument(help: "The reservation's number (from `arbiter reserve` or `arbiter top`).")
    var id: Int

    @OptionGroup var socket: SocketOptions

    func run() throws {
        print(try socket.request(ControlRequest(cmd: "unreserve", id: id)).message ?? "ok")
    }
}

struct StartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start a domain: reserve the memory its build needs, run `xl create`, release the reservation.",
        discussion: """
            Reads the config file as xl does (libxlutil), asks libxl how much free memory the build needs \
            (libxl_domain_need_memory), reserves it with the daemon and waits until it is free, then runs \
            `xl create CFG [XL-ARGS...]`. The exit status is xl's. Put arbiter's own options before CFG.
            """)

    @Option(name: .long, parsing: .unconditional, help: "Seconds to wait for the memory at most (1-3600).")
    var timeout: Double = 120

    @Option(name: .long, help: "The xl program.")
    var xl = "xl"

    @OptionGroup var socket: SocketOptions

    @Argument(help: "The xl domain config file.")
    var cfg: String

    @Argument(parsing: .captureForPassthrough, help: "Passed to `xl create` after CFG.")
    var xlArguments: [String] = []

    func validate() throws {
        try validateTimeout(timeout)
    }

    func run() throws {
        let t0 = Date()
        let domain: XenDomainConfig
        do {
            domain = try XenDomainConfig(path: cfg, libxl: try LibxlContext(quiet: true))
        } catch let e as XenError {
            throw CLIError("libxl: \(e)\(e.meansNoXen ? " — this machine is not a Xen dom0" : "")")
        } catch {
            throw CLIError("\(error)")
        }
        let reply = try socket.request(ControlRequest(cmd: "reserve", domain: domain.name, who: currentUser(), sizeKiB: domain.need.value,
                                                      timeoutSeconds: timeout))
        guard let r = reply.reservations?.first else { throw CLIError("the daemon made no reservation") }
        print("start \(domain.name): the build needs \(formatSize(domain.need)) (memory \(formatSize(domain.memory)), libxl_domain_need_memory); reservation \(r.id)")
        let waited: Double
        do {
            waited = try waitForReservation(socket, id: r.id)
        } catch {
            _ = try? socket.request(ControlRequest(cmd: "unreserve", id: r.id))
            throw error
        }
        print("start \(domain.name): memory free after \(formatFixed(waited, decimals: 1)) s; xl create \(cfg)")
        let t1 = Date()
        let status: Int32
        do { status = try spawnAndWait([xl, "create", cfg] + xlArguments) } catch {
            _ = try? socket.request(ControlRequest(cmd: "unreserve", id: r.id))
            throw error
        }
        // The domain is built (or failed): what the reservation still holds goes back to the pool.
        _ = try? socket.request(ControlRequest(cmd: "unreserve", id: r.id))
        let took = Date().timeIntervalSince(t0)
        guard status == 0 else {
            FileHandle.standardError.write(Data("arbiter: xl create \(cfg) failed (exit \(status)) after \(formatFixed(took, decimals: 1)) s\n".utf8))
            throw ExitCode(status)
        }
        print("started \(domain.name) in \(formatFixed(took, decimals: 1)) s (waited \(formatFixed(waited, decimals: 1)) s for memory, "
              + "xl create \(formatFixed(Date().timeIntervalSince(t1), decimals: 1)) s)")
    }
}

/// `--timeout` of `reserve` and `start`: 1 to 3600 seconds, one line and exit 64 otherwise.
func validateTimeout(_ seconds: Double) throws {
    guard seconds.isFinite, seconds >= 1, seconds <= 3600 else { throw usageError("--timeout \(seconds): must be between 1 and 3600 seconds") }
}
