import Arbiter
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import GuestModel
import HostSimulator
import BundledScenarios

/// `arbiter`: the Xen memory arbiter, xl-style verbs.
@main
struct ArbiterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "arbiter",
        abstract: "Xen host memory arbiter: fair-share balloon targets from guest memory pressure.",
        discussion: """
            With no verb, `demo`: our policy on the simulated host's default scenario for an hour, \
            printing its decisions (see README).
            """,
        subcommands: [Demo.self, DaemonCommand.self, ListCommand.self, Top.self, SetCommand.self, ReserveCommand.self, UnreserveCommand.self,
                      StartCommand.self, Explain.self, History.self, Alerts.self, ReportCommand.self, Simulate.self,
                      ConfigCheck.self, ConfigExample.self, XenInfo.self],
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

struct Demo: AsyncParsableCommand {
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

    func run() async throws {
        var s = try loadScenario(scenario)
        if let hours { s.hours = hours }
        if let config { s.policy = try loadConfig(config).policy }
        let problems = s.problems()
        guard problems.isEmpty else { throw CLIError(problems.map { "\(s.name): \($0)" }.joined(separator: "\n")) }
        let result = await DemoRun.run(s)
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
            let results = await LoopEvaluation.compare(run, policies: names, daemon: fileConfig?.daemon ?? DaemonSettings()) { bar.show($0, $1) }
            bar.finish()
            if json {
                documents.append(SimulationReport.json(results, scenario: run))
            } else {
                print(SimulationReport.table(results, scenario: run), terminator: "")
                if guests { for m in results { print(SimulationReport.guests(m), terminator: "") } }
            }
        }
        if json { print(documents.count == 1 ? documents[0] : "[" + documents.joined(separator: ",") + "]") }
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

/// A mistake in how the command was called: one line on stderr, exit 64 (EX_USAGE), no usage dump.
func usageError(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    return ExitCode(64)
}

/// `--since`/`--until`: 10m|2h|3d (ago), Unix seconds or ISO 8601; finite, not before 1970 and not
/// more than a day ahead (a typo such as `--since 1e12` is not a time the store can hold).
func parseTime(_ text: String?, flag: String = "--since", now: Date = Date()) throws -> Date? {
    guard let text else { return nil }
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
    var date: Date? = nil
    if let u = text.last, let mult = units[u], let n = Double(text.dropLast()) {
        guard n.isFinite, n >= 0, n <= 100 * 366 else { throw usageError("\(flag) \(text): the amount must be a finite number from 0 to 36600") }
        date = now.addingTimeInterval(-n * mult)
    } else if let t = Double(text) {
        guard t.isFinite else { throw usageError("\(flag) \(text): not a finite time") }
        date = Date(timeIntervalSince1970: t)
    } else if let d = ISO8601DateFormatter().date(from: text) {
        date = d
    }
    guard let date else { throw usageError("\(flag) '\(text.prefix(64))' is not 10m, 2h, 3d, Unix seconds or an ISO 8601 time") }
    guard date.timeIntervalSince1970 >= 0, date <= now.addingTimeInterval(86400) else {
        throw usageError("\(flag) \(text): \(timeText(date.timeIntervalSince1970)) is outside 1970 to tomorrow")
    }
    return date
}

/// A size option (`--floor 1G`, a bare number is KiB) or `none`/`auto` to clear it: one clear line for
/// anything else, a negative or zero size included.
func parseSizeSetting(_ text: String?, flag: String) throws -> SizeSetting? {
    guard let text else { return nil }
    if text == "none" || text == "auto" { return .clear }
    if text.hasPrefix("-") { throw usageError("\(flag) \(text.prefix(32)): a size cannot be negative") }
    guard let k = KiB(parsing: text) else { throw usageError("\(flag) '\(text.prefix(32))' is not a size such as 512M or 4G (or 'none')") }
    guard k.value > 0 else { throw usageError("\(flag) \(text): a size must be more than 0 (use 'none' to remove the setting)") }
    return .size(k)
}

func timeText(_ t: Double) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: Date(timeIntervalSince1970: t))
}

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "Run the arbiter: decide every round, push targets, record every decision.",
        discussion: "SIGHUP reloads the config file; SIGTERM records a last round and stops. Logs go to stderr (journald).")

    @Option(name: .long, help: "config.toml (default: built-in defaults).")
    var config: String?

    @Option(name: .long, help: "Override [daemon] backend: auto (xen on a dom0, sim without Xen), xen or sim.")
    var backend: String?

    @Flag(name: .customLong("sim-on-dom0"), help: "Let the simulated host run on a Xen dom0 (refused otherwise).")
    var simOnDom0 = false

    @Option(name: .long, help: "Override [daemon] database.")
    var db: String?

    @Option(name: .long, help: "Override [daemon] socket.")
    var socket: String?

    @Option(name: .long, help: "Override [sim] scenario (a shipped name or a file).")
    var scenario: String?

    @Option(name: .long, help: "Override [sim] speed (simulated seconds per second).")
    var speed: Double?

    @Flag(name: .customLong("dry-run"), help: "Decide and record, push nothing.")
    var dryRun = false

    func run() async throws {
        var cfg = try loadConfig(config)
        if let backend {
            guard let b = BackendKind(rawValue: backend) else { throw usageError("--backend must be auto, xen or sim") }
            cfg.daemon.backend = b
        }
        if simOnDom0 { cfg.daemon.simOnDom0 = true }
        if let db { cfg.daemon.database = db }
        if let socket { cfg.daemon.socket = socket }
        if let scenario { cfg.daemon.simScenario = scenario }
        if let speed { cfg.daemon.simSpeed = speed }
        let problems = cfg.problems()
        guard problems.isEmpty else { throw CLIError(problems.map(\.description).joined(separator: "\n")) }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "arbiter")
        logger.logLevel = .info
        let daemon: ArbiterDaemon
        do {
            daemon = try ArbiterDaemon.make(config: cfg, configPath: config, logger: logger, dryRun: dryRun)
            try await daemon.checkHost(configText: config.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) })
        } catch let e as StartupError {
            FileHandle.standardError.write(Data("arbiter: \(e.description)\n".utf8))
            throw ExitCode(e.exitCode)
        }
        let group = ServiceGroup(configuration: .init(
            services: [daemon], gracefulShutdownSignals: [.sigterm], cancellationSignals: [.sigint], logger: logger))
        try await group.run()
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Domains with their memory, target, floor, ceiling, weight, pressure and last reason (like xl list).")

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "One JSON object per domain, one per line.")
    var json = false

    @Flag(name: .long, help: "Also domains Xen has released (destroyed, saved), with when.")
    var all = false

    func run() throws {
        let rows = try store.open().latest(all: all)
        if json {
            for r in rows {
                print("{\"name\":\"\(r.name)\",\"id\":\(r.domid),\"mem_kib\":\(r.actual.value),\"target_kib\":\(r.target.value),"
                      + "\"floor_kib\":\(r.floor.value),\"ceiling_kib\":\(r.ceiling.value),\"weight\":\(r.weight),"
                      + "\"stall\":\(r.stall.map { String($0) } ?? "null"),\"report\":\"\(r.status)\",\"reason\":\"\(r.reason)\","
                      + "\"released\":\(r.released.map { String($0) } ?? "null")}")
            }
            return
        }
        var table = [["Name", "ID", "Mem", "Target", "Floor", "Ceiling", "Weight", "Stall", "Report", "Reason"] + (all ? ["Released"] : [])]
        for r in rows {
            table.append([r.name, String(r.domid), formatSize(r.actual), formatSize(r.target), formatSize(r.floor), formatSize(r.ceiling),
                          formatFixed(r.weight, decimals: r.weight == r.weight.rounded() ? 0 : 2),
                          r.stall.map { formatFixed($0 * 100, decimals: 2) + "%" } ?? "-", r.status.description, r.reason.description]
                         + (all ? [r.released.map(timeText) ?? "-"] : []))
        }
        print(DecisionTable.table(table, rightAligned: [1, 2, 3, 4, 5, 6, 7]))
    }
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A domain's recorded decisions over time.")

    @Argument(help: "Domain name or domid.")
    var domain: String

    @Option(name: .long, help: "Only since then: 10m, 2h, 3d, Unix seconds or ISO 8601.")
    var since: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        let rows = try store.open().history(domain, since: parseTime(since))
        guard !rows.isEmpty else { throw CLIError("no recorded decisions for '\(domain)'") }
        var table = [["Time", "Mem", "Target", "Floor", "Demand", "Stall", "Report", "Reason"]]
        for r in rows {
            table.append([timeText(r.at), formatSize(r.actual), formatSize(r.target), formatSize(r.floor), formatSize(r.demand),
                          r.stall.map { formatFixed($0 * 100, decimals: 2) + "%" } ?? "-", r.status.description, r.reason.description])
        }
        print(DecisionTable.table(table, rightAligned: [1, 2, 3, 4, 5]))
    }
}

struct Alerts: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Recorded alerts (floors that do not fit the host, …).")

    @Option(name: .long, help: "Only since then: 10m, 2h, 3d, Unix seconds or ISO 8601.")
    var since: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        let rows = try store.open().alerts(since: parseTime(since))
        if rows.isEmpty { print("no alerts"); return }
        for a in rows { print("\(timeText(a.at))  \(a.kind)  \(a.message)") }
    }
}

/// Where the running daemon listens: --socket, else the config file's, else the default.
struct SocketOptions: ParsableArguments {
    @Option(name: .long, help: "The daemon's control socket (default: [daemon] socket from --config, else /run/arbiter.sock).")
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

/// A size, or "none" to clear the setting.
enum SizeSetting { case size(KiB), clear }

struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Set a domain's floor, ceiling or weight (validated, persisted, applied next round).",
        discussion: "Sizes like xl: 512M, 4G (a bare number is KiB); 'none' removes a setting. Needs a running daemon.")

    @Argument(help: "Domain name or domid.")
    var domain: String

    // `.unconditional`: `--floor -1G` reaches the validation below instead of reading as an option.
    @Option(name: .long, parsing: .unconditional, help: "Admin floor (never targeted below), e.g. 1G; 'none' to remove.")
    var floor: String?

    @Option(name: .long, parsing: .unconditional, help: "Admin ceiling (never targeted above; at most static-max); 'none' to remove.")
    var ceiling: String?

    @Option(name: .long, parsing: .unconditional, help: "Weight in the fair share, 0.01-100 (default 1); 'none' to remove.")
    var weight: String?

    @Flag(name: .long, help: "Store a floor the host cannot meet now (an alert is recorded) instead of refusing it.")
    var force = false

    @OptionGroup var socket: SocketOptions

    func validate() throws {
        if floor == nil && ceiling == nil && weight == nil { throw ValidationError("give at least one of --floor, --ceiling, --weight") }
        _ = try parseSizeSetting(floor, flag: "--floor")
        _ = try parseSizeSetting(ceiling, flag: "--ceiling")
        if let weight, weight != "none", !(Double(weight).map { $0 >= 0.01 && $0 <= 100 } ?? false) {
            throw usageError("--weight \(weight.prefix(32)): a weight is a number from 0.01 to 100, or 'none'")
        }
    }

    func run() throws {
        var r = ControlRequest(cmd: "set", domain: domain, who: currentUser(), force: force ? true : nil)
        var clear = [String]()
        let floor = try parseSizeSetting(floor, flag: "--floor"), ceiling = try parseSizeSetting(ceiling, flag: "--ceiling")
        switch floor { case .size(let k): r.floorKiB = k.value; case .clear: clear.append("floor"); case nil: break }
        switch ceiling { case .size(let k): r.ceilingKiB = k.value; case .clear: clear.append("ceiling"); case nil: break }
        if let weight { if weight == "none" { clear.append("weight") } else { r.weight = Double(weight) } }
        if !clear.isEmpty { r.clear = clear }
        print(try socket.request(r).message ?? "ok")
    }
}

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Live view of the running daemon's decisions, refreshed.")

    @Option(name: .long, help: "Seconds between refreshes.")
    var interval: Double = 2

    @Flag(name: .long, help: "Print once and exit.")
    var once = false

    @OptionGroup var socket: SocketOptions

    func run() throws {
        while true {
            let reply = try socket.request(ControlRequest(cmd: "list"))
            var table = [["Name", "ID", "Mem", "Target", "Floor", "Ceiling", "Demand", "Weight", "Stall", "Report", "Reason"]]
            for d in reply.domains ?? [] {
                table.append([d.name, String(d.domid), formatSize(KiB(d.memKiB)), formatSize(KiB(d.targetKiB)), formatSize(KiB(d.floorKiB)),
                              formatSize(KiB(d.ceilingKiB)), formatSize(KiB(d.demandKiB)), formatFixed(d.weight, decimals: d.weight == d.weight.rounded() ? 0 : 2),
                              d.stall.map { formatFixed($0 * 100, decimals: 2) + "%" } ?? "-", d.report, d.reason])
            }
            var header = "arbiter top — Xen free \(formatSize(KiB(reply.freeKiB ?? 0))), \(reply.phase ?? "?"), \(timeText(Date().timeIntervalSince1970))"
            if let lost = reply.unrecordedRounds, lost > 0 { header += "\n\(lost) round(s) not recorded since the daemon started (see the daemon log and `arbiter alerts`)" }
            let held = (reply.reservations ?? []).map { "\n" + $0.summary }.joined()
            if !once { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            print(header + "\n" + DecisionTable.table(table, rightAligned: [1, 2, 3, 4, 5, 6, 7, 8]) + held)
            if once { return }
            Thread.sleep(forTimeInterval: max(0.2, interval))
        }
    }
}

enum ReportFormat: String, ExpressibleByArgument, CaseIterable { case text, csv, json, html }

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "A report over recorded decisions: text, CSV, JSON, or one HTML page with charts.")

    @Option(name: .long, help: "From: 10m, 2h, 3d, Unix seconds or ISO 8601 (default: the beginning).")
    var since: String?

    @Option(name: .long, help: "Until: the same forms (default: now).")
    var until: String?

    @Option(name: .long, help: "text, csv, json or html.")
    var format: ReportFormat = .text

    @Option(name: [.short, .long], help: "Write to this file instead of stdout.")
    var output: String?

    @Flag(name: .long, help: "Compare the shadow policies ([daemon] shadow) with what was pushed, per domain (text or json).")
    var compare = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        let from = try parseTime(since), to = try parseTime(until, flag: "--until")
        if let from, let to, from > to {
            throw usageError("--since \(since!) (\(timeText(from.timeIntervalSince1970))) is after --until \(until!) (\(timeText(to.timeIntervalSince1970)))")
        }
        if compare {
            guard format == .text || format == .json else { throw usageError("--compare writes text or json, not \(format.rawValue)") }
            let rows = try store.open().shadowComparison(since: from, until: to)
            let text: String
            if format == .json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys]
                text = String(decoding: try enc.encode(rows), as: UTF8.self) + "\n"
            } else {
                text = ShadowComparison.text(rows)
            }
            if let output { try text.write(toFile: output, atomically: true, encoding: .utf8) } else { print(text, terminator: "") }
            return
        }
        let r = try store.open().report(since: from, until: to)
        let text: String
        switch format {
        case .text: text = r.text()
        case .csv: text = r.csv()
        case .json: text = r.json() + "\n"
        case .html: text = r.html()
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else { throw CLIError("cannot write \(output)") }
        } else {
            print(text, terminator: "")
        }
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Why a domain's target is what it is: the facts of its latest recorded decision.")

    @Argument(help: "Domain name or domid.")
    var domain: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        guard let e = try store.open().explain(domain) else { throw CLIError("no recorded decisions for '\(domain)'") }
        let why = e.reason.value?.explanation ?? e.reason.description
        var out = "\(e.name) (domid \(e.domid)) at \(timeText(e.at)): target \(formatSize(e.target))"
        out += e.target == e.previousTarget ? " (unchanged)" : " (was \(formatSize(e.previousTarget)))"
        out += ", has \(formatSize(e.actual))\n"
        out += "  why:        \(e.reason): \(why)" + (e.policy == "arbiter" ? "" : " (policy \(e.policy))") + "\n"
        out += "  report:     \(e.status)" + (e.workingSet.map { ", working set \(formatSize($0))" } ?? "")
            + (e.stall.map { ", stall \(formatFixed($0 * 100, decimals: 2))%" } ?? "") + "\n"
        out += "  limits:     floor \(formatSize(e.floor)) (\(e.floorKind)), ceiling \(formatSize(e.ceiling)), weight \(formatFixed(e.weight, decimals: 2))\n"
        out += "  share:      demand \(formatSize(e.demand)), allocation \(formatSize(e.allocation)) (\(e.basis)); host \(e.phase), "
            + "budget \(formatSize(e.budget)), Xen free \(formatSize(e.free))\n"
        switch e.pushed {
        case true?: out += "  pushed:     yes\n"
        case false?: out += "  pushed:     FAILED: \(e.pushError ?? "?")\n"
        case nil: out += "  pushed:     nothing to push (or a dry run)\n"
        }
        for s in e.shadows {
            let gap = s.target.value - e.target.value
            let verdict = abs(gap) <= ShadowComparison.band.value ? "agrees" : gap > 0 ? "would give \(formatSize(KiB(gap))) more" : "would give \(formatSize(KiB(-gap))) less"
            out += "  shadow:     \(s.policy) would set \(formatSize(s.target)) (\(s.reason)): \(verdict)"
                + (s.at < e.at ? " (said at \(timeText(s.at)))" : "") + "\n"
        }
        print(out, terminator: "")
    }
}
