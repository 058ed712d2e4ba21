import Arbiter
import ArgumentParser
import Foundation
import GuestModel

struct ConfigCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-check", abstract: "Validate a config.toml and print the effective configuration, defaults filled in.",
        discussion: """
            Every key of every section at the value the daemon would use: the file's, else the default. Keys the \
            file changes say their default in a comment. The output is itself a valid config.toml; its last line \
            is 'PATH: ok'. An invalid file prints each problem with its key and line and exits 1.
            """)

    @Argument(help: "The file to check.")
    var path: String

    func run() throws {
        let config = try loadConfig(path)
        print("# \(path): the effective configuration (keys the file does not set are at their defaults)")
        print(EffectiveConfig.render(config), terminator: "")
        print("\(path): ok")
    }
}

/// config.toml's keys at their values in a loaded `ArbiterConfig`, written as the file writes them.
///
/// `ConfigFile` keeps its key table (and its rendering) internal, so the keys, their order and their
/// defaults are read from `ConfigFile.example()` and each value from the config's public properties
/// here. CLITests checks this table against the example: every key shown, every default rendered as
/// the example renders it.
enum EffectiveConfig {
    /// The example file's `[section]` and `key = value` lines with each value replaced by the effective one.
    static func render(_ config: ArbiterConfig) -> String {
        let values = self.values(config)
        var out = "", section = ""
        for line in ConfigFile.example().split(separator: "\n") {
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
                out += "\n\(line)\n"
                continue
            }
            guard !line.hasPrefix("#"), let eq = line.range(of: " = ") else { continue }
            let name = String(line[..<eq.lowerBound]), key = section + "." + name
            let byDefault = String(line[eq.upperBound...])
            guard let value = values[key] else {
                out += "# \(name): not shown (this config-check does not know the key; its default is \(byDefault))\n"
                continue
            }
            out += "\(name) = \(value)" + (value == byDefault ? "" : "  # default \(byDefault)") + "\n"
        }
        return out
    }

    /// Every key ("section.name") with its value in `c`, as TOML.
    static func values(_ c: ArbiterConfig) -> [String: String] {
        let p = c.policy, e = c.policy.estimator, d = c.daemon
        return [
            "reports.max_line_bytes": String(p.limits.maxLineBytes),
            "reports.min_interval_ms": String(p.tracker.minIntervalMs),
            "reports.psi_tolerance": number(p.tracker.psiTolerance),
            "reports.max_pages_per_second": number(p.tracker.maxPagesPerSecond),
            "reports.resync_after": String(p.tracker.resyncAfter),
            "reports.quarantine_seconds": number(p.tracker.quarantineSeconds),

            "estimator.active_file_weight": number(e.activeFileWeight),
            "estimator.blind_available_weight": number(e.blindAvailableWeight),
            "estimator.refault_window_seconds": number(e.refaultWindowSeconds),
            "estimator.pressure_target": number(e.pressureTarget),
            "estimator.boost_coefficient": number(e.boostCoefficient),
            "estimator.max_boost": number(e.maxBoost),
            "estimator.critical_pressure": number(e.criticalPressure),
            "estimator.critical_full_pressure": number(e.criticalFullPressure),
            "estimator.fast_half_life_seconds": number(e.fastHalfLifeSeconds),
            "estimator.slow_half_life_seconds": number(e.slowHalfLifeSeconds),
            "estimator.pressure_hold_seconds": number(e.pressureHoldSeconds),
            "estimator.idle_tax": number(e.idleTax),
            "estimator.headroom": number(e.headroom),
            "estimator.max_overhead_fraction": number(e.maxOverheadFraction),
            "estimator.stale_after_seconds": number(e.staleAfterSeconds),
            "estimator.legacy_stale_after_seconds": number(e.legacyStaleAfterSeconds),

            "floors.absolute_min": size(p.floors.absoluteMin),
            "floors.padding": number(p.floors.padding),
            "floors.selfballoon": String(p.floors.selfballoonFloor),
            "floors.silent": string(p.floors.silent.rawValue),

            "share.host_reserve": size(p.share.hostReserve),
            "share.slack": size(p.share.slack),
            "share.surplus": string(p.share.surplus.rawValue),
            "share.default_weight": number(p.share.defaultWeight),
            "share.start_reserve": size(p.share.startReserve),
            "share.release_grace_seconds": number(p.share.releaseGraceSeconds),

            "pacing.shrink_fraction_per_second": number(p.pacing.shrinkFractionPerSecond),
            "pacing.surplus_shrink_fraction_per_second": number(p.pacing.surplusShrinkFractionPerSecond),
            "pacing.min_shrink_per_second": size(p.pacing.minShrinkPerSecond),
            "pacing.max_shrink_per_second": size(p.pacing.maxShrinkPerSecond),
            "pacing.shrink_stop_pressure": number(p.pacing.shrinkStopPressure),
            "pacing.max_interval_seconds": number(p.pacing.maxIntervalSeconds),
            "pacing.max_shrink_lead": size(p.pacing.maxShrinkLead),
            "pacing.deadband": size(p.pacing.deadband),
            "pacing.deadband_fraction": number(p.pacing.deadbandFraction),
            "pacing.calm_grow_fraction": number(p.pacing.calmGrowFraction),

            "balloon.min_rate": size(p.responsiveness.minRate),
            "balloon.patience_seconds": number(p.responsiveness.patienceSeconds),
            "balloon.retry_after_seconds": number(p.responsiveness.retryAfterSeconds),
            "balloon.tolerance": size(p.responsiveness.tolerance),

            "daemon.backend": string(d.backend.rawValue),
            "daemon.policy": string(d.policy.rawValue),
            "daemon.shadow": "[" + d.shadow.map { string($0.rawValue) }.joined(separator: ", ") + "]",
            "daemon.database": string(d.database),
            "daemon.socket": string(d.socket),
            "daemon.tick_seconds": number(d.tickSeconds),
            "daemon.min_round_interval_seconds": number(d.minRoundIntervalSeconds),
            "daemon.snapshot_every": String(d.snapshotEvery),
            "daemon.dry_run": String(d.dryRun),
            "daemon.include_dom0": String(d.includeDom0),
            "daemon.downsample_after_days": number(d.downsampleAfterDays),
            "daemon.downsample_interval_seconds": number(d.downsampleIntervalSeconds),
            "daemon.retain_days": number(d.retainDays),

            "sim.scenario": string(d.simScenario),
            "sim.on_dom0": String(d.simOnDom0),
            "sim.speed": number(d.simSpeed),
        ]
    }

    /// A TOML string.
    static func string(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// A size as the example writes it ("512M"), or in KiB when that form would round it ("1.5G" for
    /// 1.55G): the value shown is the one the daemon uses.
    static func size(_ k: KiB) -> String {
        let text = formatSize(k)
        return KiB(parsing: text) == k ? string(text) : String(k.value)
    }

    /// A real number as the example writes it ("10.0", "0.002"), or in full when six decimals would round it.
    static func number(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e15 { return formatFixed(x, decimals: 1) }
        var s = formatFixed(x, decimals: 6)
        while s.hasSuffix("0") { s.removeLast() }
        return Double(s) == x ? s : "\(x)"
    }
}
