import Arbiter
import ArgumentParser
import Foundation
import GuestModel
import HostSimulator
import BundledScenarios

/// `arbiter`: the Xen memory arbiter, xl-style verbs.
@main
struct ArbiterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "arbiter",
        abstract: "Xen host memory arbiter: fair-share balloon targets from guest memory pressure.",
        discussion: """
            Until the daemon lands, the default verb runs our policy on the simulated host's default \
            scenario and prints its decisions (see README).
            """,
        subcommands: [Demo.self, Simulate.self, ConfigCheck.self, ConfigExample.self, XenInfo.self],
        defaultSubcommand: Demo.self)
}

/// Reads and validates a config file, or returns the defaults when no path is given.
func loadConfig(_ path: String?) throws -> ArbiterConfig {
    guard let path else { return ArbiterConfig() }
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
        abstract: "Run our policy on a simulated host and print its decisions as an admin would see them.")

    @Option(name: .long, help: "A shipped scenario name or a scenario file (default: default).")
    var scenario: String = "default"

    @Option(name: .long, help: "Simulated hours (default: the scenario's).")
    var hours: Double?

    @Option(name: .long, help: "Policy file (config.toml) applied over the scenario's own settings.")
    var config: String?

    func validate() throws {
        if let hours, !(hours > 0 && hours <= 744) { throw ValidationError("--hours must be between 0 and 744") }
    }

    func run() throws {
        var s = try loadScenario(scenario)
        if let hours { s.hours = hours }
        if let config { s.policy = try loadConfig(config).policy }
        let problems = s.problems()
        guard problems.isEmpty else { throw CLIError(problems.map { "\(s.name): \($0)" }.joined(separator: "\n")) }
        let result = DemoRun.run(s)
        print(result.render(), terminator: "")
        if !result.violations.isEmpty || result.metrics.floorViolations > 0 { throw ExitCode(2) }
    }
}

/// A shipped scenario by name, or a scenario file.
func loadScenario(_ name: String) throws -> Scenario {
    do {
        if let text = BundledScenarios.named(name) { return try ScenarioFile.parse(text) }
        return try ScenarioFile.load(path: name)
    } catch {
        throw CLIError(error.errors.map { "\(name): \($0)" }.joined(separator: "\n"))
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

extension PolicyName: ExpressibleByArgument {}

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scenario on the simulated host under our policy, a baseline, or all of them.",
        discussion: """
            Scenarios: the shipped ones by name (\(BundledScenarios.all.map(\.name).joined(separator: ", "))) or a TOML file. \
            --trace builds a scenario from a trace CSV (vm_id,t_seconds,mem_provisioned_kb,mem_used_kb). \
            Runs are deterministic: the same scenario and seed give the same numbers.
            """)

    @Option(name: .long, help: "A shipped scenario name or a scenario file (default: default).")
    var scenario: String?

    @Option(name: .long, help: "The policy to run: \(PolicyName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var policy: PolicyName = .arbiter

    @Flag(name: .long, help: "Run every policy on the same scenario and seed.")
    var compare = false

    @Option(name: .long, help: "Build the scenario from this trace CSV instead.")
    var trace: String?

    @Option(name: .long, help: "With --trace: the first N vm_ids.")
    var vms: Int = 20

    @Option(name: .long, help: "Simulated hours (default: the scenario's, or the trace's length).")
    var hours: Double?

    @Option(name: .customLong("host-memory"), help: "With --trace: memory Xen can give guests, e.g. 48G (default: half of what the VMs were provisioned).")
    var hostMemory: String?

    @Option(name: .long, help: "Override the scenario's seed.")
    var seed: UInt64?

    @Option(name: .long, help: "Arbiter policy file (config.toml) applied over the scenario's own settings.")
    var config: String?

    @Flag(name: .long, help: "Print one JSON object instead of tables.")
    var json = false

    @Flag(name: .long, help: "Also print each guest's figures.")
    var guests = false

    func validate() throws {
        if trace != nil && scenario != nil { throw ValidationError("--trace and --scenario are alternatives") }
        if trace == nil && hostMemory != nil { throw ValidationError("--host-memory goes with --trace (scenario files set [host] memory)") }
        guard (1...10_000).contains(vms) else { throw ValidationError("--vms must be between 1 and 10000") }
        if let hours, !(hours > 0 && hours <= 744) { throw ValidationError("--hours must be between 0 and 744") }
        if let hostMemory, KiB(parsing: hostMemory) == nil { throw ValidationError("--host-memory: '\(hostMemory)' is not a size such as 48G") }
    }

    func run() throws {
        let policyConfig = try config.map { try loadConfig($0).policy }
        var s: Scenario
        if let trace {
            s = try TraceFile.scenario(path: trace, vms: vms, hours: hours, hostMemory: hostMemory.flatMap(KiB.init(parsing:)),
                                       policy: policyConfig ?? PolicyConfig())
        } else {
            s = try loadScenario(scenario ?? "default")
            if let hours { s.hours = hours }
            if let policyConfig { s.policy = policyConfig }
        }
        if let seed { s.seed = seed }
        let problems = s.problems()
        guard problems.isEmpty else { throw CLIError(problems.map { "\(s.name): \($0)" }.joined(separator: "\n")) }

        let names = compare ? PolicyName.allCases : [policy]
        let bar = ProgressBar(enabled: isatty(2) == 1)
        let results = Evaluation.compare(s, policies: names) { name, fraction in bar.show(name, fraction) }
        bar.finish()
        if json {
            print(SimulationReport.json(results, scenario: s))
        } else {
            print(SimulationReport.table(results, scenario: s), terminator: "")
            if guests { for m in results { print(SimulationReport.guests(m), terminator: "") } }
        }
    }
}

/// A one-line progress bar on stderr, only when stderr is a terminal.
final class ProgressBar {
    let enabled: Bool
    var last = -1
    init(enabled: Bool) { self.enabled = enabled }

    func show(_ name: String, _ fraction: Double) {
        guard enabled else { return }
        let pct = Int(fraction * 100)
        guard pct != last else { return }
        last = pct
        let filled = pct / 5
        let line = "\r\(name.padding(toLength: 12, withPad: " ", startingAt: 0)) [" + String(repeating: "#", count: filled)
            + String(repeating: ".", count: 20 - filled) + "] \(pct)%"
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
