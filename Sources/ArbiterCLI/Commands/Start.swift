import Arbiter
import ArgumentParser
import Foundation
import GuestModel

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
