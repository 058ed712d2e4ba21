import Arbiter
import ArgumentParser
import Foundation
import GuestModel

/// `arbiter`: the Xen memory arbiter, xl-style verbs.
@main
struct ArbiterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "arbiter",
        abstract: "Xen host memory arbiter: fair-share balloon targets from guest memory pressure.",
        discussion: """
            Until the daemon lands, the default verb runs the decision core over a built-in example host \
            and prints the decisions (see README).
            """,
        subcommands: [Demo.self, ConfigCheck.self, ConfigExample.self, XenInfo.self],
        defaultSubcommand: Demo.self)
}

/// Reads and validates a config file, or returns the defaults when no path is given.
func loadConfig(_ path: String?) throws -> PolicyConfig {
    guard let path else { return PolicyConfig() }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIError("cannot read config file \(path)")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(path) is not UTF-8 text") }
    do {
        return try ConfigFile.load(text)
    } catch {
        throw CLIError(error.errors.map { "\(path): \($0)" }.joined(separator: "\n"))
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run decision rounds over the built-in example host and print them as tables.")

    @Option(name: .long, help: "Policy file (config.toml); defaults apply to keys it leaves out.")
    var config: String?

    @Option(name: .long, help: "Number of rounds to run.")
    var rounds: Int = 150

    @Option(name: .long, help: "Seconds of host time between rounds.")
    var interval: Double = 2

    func validate() throws {
        guard (1...100_000).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 100000") }
        guard interval > 0 && interval <= 3600 else { throw ValidationError("--interval must be between 0 and 3600 seconds") }
    }

    func run() throws {
        let policy = try loadConfig(config)
        let result = DemoRun.run(config: policy, rounds: rounds, interval: interval)
        print(result.render(), terminator: "")
        if !result.violations.isEmpty { throw ExitCode(2) }
    }
}

struct ConfigCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-check", abstract: "Validate a config.toml and print the effective policy.")

    @Argument(help: "The file to check.")
    var path: String

    func run() throws {
        _ = try loadConfig(path)
        print("\(path): ok")
    }
}

struct ConfigExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-example", abstract: "Print a config.toml with every key documented at its default.")

    func run() { print(ConfigFile.example(), terminator: "") }
}

struct XenInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xen-info", abstract: "Open xenstore, libxl and libxenctrl and print host memory (exit 3 without Xen).")

    func run() throws {
        do {
            let xen = try XenProbe(quiet: true)
            let info = try xen.control.physinfo()
            let free = try xen.libxl.freeMemoryKiB()
            print("Xen host: total \(formatSize(KiB(Int64(info.totalKiB)))), free \(formatSize(KiB(Int64(info.freeKiB)))) (physinfo), "
                  + "\(formatSize(KiB(Int64(free)))) (libxl, incl. scrub)")
        } catch {
            let hint = error.meansNoXen ? " — this machine is not a Xen dom0 (no /dev/xen or /proc/xen)" : ""
            FileHandle.standardError.write(Data("arbiter: \(error)\(hint)\n".utf8))
            throw ExitCode(3)
        }
    }
}
