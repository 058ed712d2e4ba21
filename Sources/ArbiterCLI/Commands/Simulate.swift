import Arbiter
import ArgumentParser
import BundledScenarios
import Foundation
import Synchronization
import GuestModel
import HostSimulator

extension PolicyName: ExpressibleByArgument {}

struct Simulate: AsyncParsableCommand {
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

    @Option(name: .customLong("host-scale"), parsing: .upToNextOption,
            help: "Run on hosts that give the guests these multiples of their mean use (e.g. 0.95 1.15 1.5), one table each.")
    var hostScale: [Double] = []

    @Option(name: .long, help: "Override the scenario's seed.")
    var seed: UInt64?

    @Option(name: .long, help: "A config.toml whose policy replaces the scenario's [arbiter.*] settings (keys it does not set are at their defaults) and whose [daemon] round timing the loop keeps.")
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
        if hostMemory != nil && !hostScale.isEmpty { throw ValidationError("--host-memory and --host-scale are alternatives") }
        for x in hostScale where !(x >= 0.1 && x <= 100) { throw ValidationError("--host-scale: \(x) must be between 0.1 and 100") }
    }

    func run() async throws {
        let fileConfig = try config.map { try loadConfig($0) }
        let policyConfig = fileConfig?.policy
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
        let runs = hostScale.isEmpty ? [s] : hostScale.map { s.scaled(host: $0) }
        for run in runs {
            let problems = run.problems()
            guard problems.isEmpty else { throw CLIError(problems.map { "\(run.name): \($0)" }.joined(separator: "\n")) }
        }
        let names = compare ? PolicyName.allCases : [policy]
        var documents = [String]()
        for run in runs {
            let bar = ProgressBar(enabled: isatty(2) == 1)
            // Every policy is scored as the daemon runs it: its control loop over the simulated host.
            let results = await LoopEvaluation.compare(run, policies: names, daemon: fileConfig?.daemon ?? DaemonSettings()) { bar.show($0, $1, of: names.count) }
            bar.finish()
            if json {
                documents.append(SimulationReport.json(results, scenario: run))
            } else {
                print(SimulationReport.table(results, scenario: run), terminator: "")
                if guests { for m in results { print(SimulationReport.guests(m), terminator: "") } }
            }
        }
        if json { print(documents.count == 1 ? documents[0] : try JSONValue.array(documents)) }
    }
}

/// A one-line progress bar on stderr, only when stderr is a terminal: the mean of the policies' progress
/// (they run side by side).
final class ProgressBar: Sendable {
    let enabled: Bool
    private let state = Mutex<(done: [String: Double], last: Int)>(([:], -1))
    init(enabled: Bool) { self.enabled = enabled }

    func show(_ name: String, _ fraction: Double, of total: Int) {
        guard enabled else { return }
        let line: String? = state.withLock { s in
            s.done[name] = fraction
            let pct = Int(s.done.values.reduce(0, +) / Double(Swift.max(1, total)) * 100)
            guard pct != s.last else { return nil }
            s.last = pct
            let filled = pct / 5
            return "\r\(total) policies [" + String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled) + "] \(pct)%"
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// Any JSON value: `--host-scale` with `--json` puts the scenario's documents (`SimulationReport.json`,
/// one per host) in one array through JSONEncoder, each re-encoded as it was written.
enum JSONValue: Codable {
    case null, bool(Bool), int(Int64), uint(UInt64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let u = try? c.decode(UInt64.self) { self = .uint(u) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .uint(let u): try c.encode(u)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// JSON documents as one JSON array (keys sorted, as `SimulationReport.json` writes them).
    static func array(_ documents: [String]) throws -> String {
        let values = try documents.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(values), as: UTF8.self)
    }
}
