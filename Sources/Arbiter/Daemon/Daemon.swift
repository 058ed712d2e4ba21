import BundledScenarios
import Foundation
import GuestModel
import HostSimulator
import Logging
import ServiceLifecycle
import UnixSignals

/// Why the daemon cannot start: one clear line, and the exit code the CLI uses.
public struct StartupError: Error, CustomStringConvertible {
    public var description: String
    public var exitCode: Int32
}

/// `arbiter daemon`: the control loop as a service. Rounds run when reports arrive (coalesced to the
/// minimum interval) and on every tick; SIGHUP reloads and validates the config file (a bad file keeps
/// the old config and says why); SIGTERM finishes the round in progress, records a last one and closes
/// the store. The simulated host's clock is driven here, at `sim.speed` simulated seconds per second.
public struct ArbiterDaemon: Service {
    public let loop: ControlLoop
    let sim: SimulatedHost?
    let store: DecisionStore?
    let socket: ControlSocket?
    let configPath: String?
    let logger: Logger
    /// How an `auto` (or a sim-on-dom0) backend was chosen, logged as the daemon starts.
    let backendChoice: String?
    /// `GET /metrics` on 127.0.0.1 (`metrics.http_port`), when asked for.
    let endpoint: MetricsEndpoint?
    /// The service manager (systemd's notify socket, when it gave one): READY, STATUS, WATCHDOG, STOPPING.
    public var notifier: (any ServiceNotifier)? = nil
    /// The watchdog interval the service manager asked for (WATCHDOG_USEC), if any.
    public var watchdog: Duration? = nil

    /// Builds the daemon for `config`: the backend it names, the store, the loop.
    public static func make(config: ArbiterConfig, configPath: String?, logger: Logger, dryRun: Bool = false,
                            role: XenRole = .detect()) throws -> ArbiterDaemon {
        var config = config
        if dryRun { config.daemon.dryRun = true }
        let (backend, why) = try config.daemon.resolvedBackend(role: role)
        config.daemon.backend = backend
        let store: DecisionStore
        do {
            store = try DecisionStore(path: config.daemon.database)
        } catch {
            let why = (error as? DecisionStore.Refusal)?.description ?? "\(config.daemon.database): \(error)"
            throw StartupError(description: "decision store: \(why)", exitCode: 2)
        }
        try? store.recordConfigChange(source: configPath ?? "defaults", accepted: true, detail: "startup", at: Date())
        let export = MetricsExport(textfile: config.daemon.metricsTextfile, logger: logger)
        var endpoint: MetricsEndpoint? = nil
        if config.daemon.metricsPort > 0 {
            do { endpoint = try MetricsEndpoint(port: UInt16(config.daemon.metricsPort)) }
            catch { throw StartupError(description: "metrics.http_port: \(error)", exitCode: 2) }
        }
        switch backend {
        case .auto:
            preconditionFailure("resolvedBackend never returns auto")
        case .xen:
            let host: XenHost
            do {
                host = try XenHost(includeDom0: config.daemon.includeDom0, logger: logger)
            } catch {
                let hint = error.meansNoXen ? " — this machine is not a Xen dom0 (no /dev/xen or /proc/xen)" : ""
                throw StartupError(description: "backend xen: \(error)\(hint)", exitCode: 3)
            }
            let start = ContinuousClock.now
            let loop = ControlLoop(backend: host, store: store, config: config, logger: logger,
                                   now: { TimePoint(ms: Int64((ContinuousClock.now - start) / .milliseconds(1))) }, metrics: export)
            return ArbiterDaemon(loop: loop, sim: nil, store: store, socket: try openSocket(config), configPath: configPath, logger: logger,
                                 backendChoice: why, endpoint: endpoint)
        case .sim:
            let scenario: Scenario
            do {
                if let text = BundledScenarios.named(config.daemon.simScenario) { scenario = try ScenarioFile.parse(text) }
                else { scenario = try ScenarioFile.load(path: config.daemon.simScenario) }
            } catch {
                throw StartupError(description: "scenario \(config.daemon.simScenario): \(error)", exitCode: 2)
            }
            var s = scenario
            s.policy = config.policy
            let host = SimulatedHost(scenario: s)
            let loop = ControlLoop(
                backend: host, store: store, config: config, logger: logger,
                now: { TimePoint(seconds: await host.seconds) },
                settings: { await host.adminSettings() }, metrics: export)
            return ArbiterDaemon(loop: loop, sim: host, store: store, socket: try openSocket(config), configPath: configPath, logger: logger,
                                 backendChoice: why, endpoint: endpoint)
        }
    }

    /// The config checked against the host before the first round: one line per problem, exit 2.
    public func checkHost(configText: String?) async throws(StartupError) {
        let problems = await loop.hostProblems(await loop.config)
        guard !problems.isEmpty else { return }
        let text = ConfigFile.place(problems, in: configText).map { "config: \($0)" }.joined(separator: "\n")
        throw StartupError(description: text, exitCode: 2)
    }

    static func openSocket(_ config: ArbiterConfig) throws -> ControlSocket {
        do {
            // /run/arbiter is systemd's RuntimeDirectory= under the unit; made here when run by hand.
            let dir = (config.daemon.socket as NSString).deletingLastPathComponent
            if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            return try ControlSocket(path: config.daemon.socket)
        } catch {
            throw StartupError(description: "control socket: \(error)", exitCode: 2)
        }
    }

    public func run() async throws {
        let loop = self.loop
        let config = await loop.config
        if let backendChoice { logger.notice("\(backendChoice)") }
        logger.notice("arbiter starting", metadata: [
            "backend": "\(config.daemon.backend.rawValue)", "database": "\(config.daemon.database)",
            "dry_run": "\(config.daemon.dryRun)", "tick_seconds": "\(config.daemon.tickSeconds)",
            "scenario": "\(config.daemon.simScenario)", "speed": "\(config.daemon.simSpeed)",
            "metrics_textfile": "\(config.daemon.metricsTextfile.isEmpty ? "none" : config.daemon.metricsTextfile)",
            "metrics_http": "\(endpoint.map { "127.0.0.1:\($0.port)/metrics" } ?? "off")",
        ])
        await withDiscardingTaskGroup { group in
            if let sim {
                let speed = config.daemon.simSpeed
                group.addTask {
                    while !Task.isShuttingDownGracefully && !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(100))
                        await sim.advance(by: 0.1 * speed)
                        await sim.driveStarts(loop)
                    }
                }
            }
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() { await self.reload() }
            }
            if let socket {
                group.addTask { await socket.serve { await loop.handle($0) } }
            }
            if let endpoint, let export = loop.metricsExport {
                group.addTask { await endpoint.serve { export.text } }
            }
            // The rounds. A round that has started finishes and is recorded before shutdown proceeds.
            var nextPrune = Date()
            var readiness = ServiceReadiness(watchdog: watchdog)
            // The simulated host's clock runs `speed` times the wall clock; the loop waits in wall time.
            let speed = sim == nil ? 1 : config.daemon.simSpeed
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let looked = ContinuousClock.now
                // Events are taken here, as the loop looks for a due round: a flood of watch events
                // never wakes the daemon once per event.
                await loop.note(await loop.backend.takeEvents())
                let t = await loop.now()
                if let trigger = await loop.due(at: t) {
                    let lostBefore = await loop.unrecordedRounds
                    let decision = await loop.round(trigger: trigger)
                    let summary = await Self.summary(decision, of: loop, lostBefore: lostBefore)
                    notifier?.send(readiness.afterRound(summary, at: .now))
                } else if let ping = readiness.idle(at: .now) {
                    notifier?.send(ping)
                }
                if Date() >= nextPrune, let store {
                    // Retention, at start and hourly.
                    nextPrune = Date().addingTimeInterval(3600)
                    do {
                        let n = try store.prune(now: Date(), downsampleAfter: config.daemon.downsampleAfterDays * 86400,
                                                retain: config.daemon.retainDays * 86400, interval: config.daemon.downsampleIntervalSeconds)
                        if n > 0 { logger.info("retention: \(n) old rounds removed") }
                    } catch {
                        logger.error("retention failed: \(error)")
                    }
                }
                // Look again when a round can be due (a report from a guest not read for a while, a resync,
                // the tick) or sooner if something is written, but never sooner than the shortest round
                // interval after this look: however fast guests write, the loop wakes at most that often.
                let interval = await loop.config.daemon.minRoundIntervalSeconds
                // (and no later than the next watchdog ping, however long daemon.tick_seconds is)
                let until = Swift.min(await loop.secondsUntilDue(at: await loop.now()) / speed,
                                      readiness.secondsUntilPing(at: ContinuousClock.now) ?? .infinity)
                try? await Task.sleep(until: looked + .seconds(interval / speed), clock: .continuous)
                let left = until - (ContinuousClock.now - looked).seconds
                if left > 0 { await loop.backend.waitForEvents(timeout: .seconds(left)) }
            }
            notifier?.send(readiness.stopping())
            await loop.round(trigger: .shutdown)
            group.cancelAll()
        }
        await loop.closeBackend()
        // Fold the log into the file: a clean stop leaves no -wal behind.
        do { try store?.close() } catch { logger.error("decision store not closed cleanly: \(error)") }
        let rounds = await loop.rounds, unrecorded = await loop.unrecordedRounds, waits = await loop.reportWaits
        // How long written reports waited for the round that read them (the watch event to the read).
        func ms(_ s: Double?) -> String { s.map { "\(Int(($0 * 1000).rounded()))" } ?? "-" }
        logger.notice("arbiter stopped", metadata: [
            "rounds": "\(rounds)", "unrecorded": "\(unrecorded)", "report_waits": "\(waits.count)",
            "report_wait_median_ms": "\(ms(waits.quantile(0.5)))", "report_wait_p99_ms": "\(ms(waits.quantile(0.99)))",
            "report_wait_max_ms": "\(ms(waits.count > 0 ? waits.max.seconds : nil))",
        ])
        // Whose reports waited longest (a guest flooding its reports waits for its own bound, one round
        // per `guest_round_interval_seconds`; the others should not wait for it).
        let longest = await loop.reportWaitsByDomain.prefix(3).map { w in
            "\(w.name) n=\(w.lag.count) mean_ms=\(ms(w.lag.total.seconds / Double(Swift.max(1, w.lag.count)))) max_ms=\(ms(w.lag.max.seconds))"
        }
        if !longest.isEmpty { logger.notice("report waits by domain", metadata: ["longest": "\(longest.joined(separator: "; "))"]) }
        // Where the rounds' time went, by step (mean and longest, ms).
        let steps = await loop.stepTimes
        if steps.rounds > 0 {
            let each = ControlLoop.StepTimes.steps.indices.map { k in
                "\(ControlLoop.StepTimes.steps[k])=\(ms(steps.total[k].seconds / Double(steps.rounds)))/\(ms(steps.max[k].seconds))"
            }
            logger.notice("round steps", metadata: ["rounds": "\(steps.rounds)", "mean_max_ms": "\(each.joined(separator: " "))"])
        }
    }

    /// The round that just ran, for the service manager's STATUS=; nil when the host could not be read.
    static func summary(_ decision: Decision?, of loop: ControlLoop, lostBefore: Int) async -> RoundSummary? {
        guard let decision else { return nil }
        let lost = await loop.unrecordedRounds
        return RoundSummary(round: await loop.rounds, domains: decision.outcomes.count, free: decision.free, phase: decision.phase,
                            changes: decision.changes.count, recorded: lost == lostBefore, lost: lost)
    }

    /// SIGHUP: re-read and validate the config file; keep the old one if the new one is bad.
    func reload() async {
        guard let path = configPath else {
            logger.notice("SIGHUP: no config file to reload (running on defaults)")
            return
        }
        do {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw ConfigErrors(errors: [ConfigError(key: nil, line: nil, message: "cannot read \(path)")])
            }
            let new = try ConfigFile.load(text)
            let onHost = await loop.hostProblems(new)
            if !onHost.isEmpty { throw ConfigErrors(errors: ConfigFile.place(onHost, in: text)) }
            let old = await loop.config
            if new.daemon != old.daemon { logger.warning("SIGHUP: [daemon], [sim] and [metrics] changes take effect at the next restart") }
            var applied = new
            applied.daemon = old.daemon
            await loop.reconfigure(applied)
            try? store?.recordConfigChange(source: path, accepted: true, detail: "reload", at: Date())
            logger.notice("SIGHUP: config reloaded", metadata: ["file": "\(path)"])
        } catch {
            let why = (error as? ConfigErrors)?.errors.map(\.description).joined(separator: "; ") ?? "\(error)"
            try? store?.recordConfigChange(source: path, accepted: false, detail: why, at: Date())
            logger.error("SIGHUP: config refused, keeping the old one: \(why)")
        }
    }
}
