import Arbiter
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

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

    @Option(name: .customLong("metrics-textfile"), help: "Override [metrics] textfile (\"\" for none).")
    var metricsTextfile: String?

    @Option(name: .customLong("metrics-port"), help: "Override [metrics] http_port: serve GET /metrics on 127.0.0.1:PORT (0: off).")
    var metricsPort: Int?

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
        if let metricsTextfile { cfg.daemon.metricsTextfile = metricsTextfile }
        if let metricsPort { cfg.daemon.metricsPort = metricsPort }
        let problems = cfg.problems()
        guard problems.isEmpty else { throw CLIError(problems.map(\.description).joined(separator: "\n")) }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "arbiter")
        logger.logLevel = .info
        var daemon: ArbiterDaemon
        do {
            daemon = try ArbiterDaemon.make(config: cfg, configPath: config, logger: logger, dryRun: dryRun)
            // Run by systemd as Type=notify: READY=1 after the first round, STATUS=, WATCHDOG=1, STOPPING=1.
            do { daemon.notifier = try NotifySocket.fromEnvironment() } catch { logger.error("service manager not notified: \(error)") }
            daemon.watchdog = NotifySocket.watchdogInterval()
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
