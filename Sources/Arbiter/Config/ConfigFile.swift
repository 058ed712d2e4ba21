import GuestModel
import Peers
import TOMLKit

/// All problems found in one file: the daemon refuses to start (or keeps its old config on reload)
/// and `config-check` lists them all, not just the first.
public struct ConfigErrors: Error, CustomStringConvertible {
    public var errors: [ConfigError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// `config.toml`: the keys, their types, their defaults and where they land in `ArbiterConfig`.
/// This table is the single source for loading, for `config.toml.example` (a test compares them) and
/// for `arbiter config-check`.
public enum ConfigFile {
    /// How a key's TOML value is read.
    enum Kind: Sendable {
        case double(any WritableKeyPath<ArbiterConfig, Double> & Sendable)
        case int(any WritableKeyPath<ArbiterConfig, Int> & Sendable)
        case int64(any WritableKeyPath<ArbiterConfig, Int64> & Sendable)
        case size(any WritableKeyPath<ArbiterConfig, KiB> & Sendable)
        case bool(any WritableKeyPath<ArbiterConfig, Bool> & Sendable)
        case string(any WritableKeyPath<ArbiterConfig, String> & Sendable)
        case backend
        case policy
        case shadow
        case silent
        case surplus
    }

    struct Key: Sendable {
        var section: String
        var name: String
        var kind: Kind
        var doc: String
        var path: String { section + "." + name }
    }

    static let keys: [Key] = [
        Key(section: "reports", name: "max_line_bytes", kind: .int(\.policy.limits.maxLineBytes),
            doc: "Longest ~/data/pressure value read, in bytes; longer ones are rejected."),
        Key(section: "reports", name: "min_interval_ms", kind: .int64(\.policy.tracker.minIntervalMs),
            doc: "Reports closer together than this are rejected (a flood costs dom0, not the guest)."),
        Key(section: "reports", name: "psi_tolerance", kind: .double(\.policy.tracker.psiTolerance),
            doc: "PSI stall above 100 % of wall time by more than this share is an impossible rate."),
        Key(section: "reports", name: "max_pages_per_second", kind: .double(\.policy.tracker.maxPagesPerSecond),
            doc: "Faults, refaults or swap traffic above this many pages/s are impossible rates."),
        Key(section: "reports", name: "resync_after", kind: .int(\.policy.tracker.resyncAfter),
            doc: "Consecutive increasing sequence regressions after which a restarted reporter is re-based."),

        Key(section: "reports", name: "quarantine_seconds", kind: .double(\.policy.tracker.quarantineSeconds),
            doc: "A guest whose report was rejected may not grow for this long (bad data holds, never grows)."),

        Key(section: "estimator", name: "active_file_weight", kind: .double(\.policy.estimator.activeFileWeight),
            doc: "Share of Active(file) page cache counted as working set (0-1)."),
        Key(section: "estimator", name: "blind_available_weight", kind: .double(\.policy.estimator.blindAvailableWeight),
            doc: "Without an Active(file) figure (legacy agents, no PSI either), this share of MemAvailable counts as working set."),
        Key(section: "estimator", name: "refault_window_seconds", kind: .double(\.policy.estimator.refaultWindowSeconds),
            doc: "A fault rate of r pages/s means about r x window pages of memory are missing."),
        Key(section: "estimator", name: "pressure_target", kind: .double(\.policy.estimator.pressureTarget),
            doc: "PSI some share (0-1) at or below which a guest is calm (senpai: 0.17 %)."),
        Key(section: "estimator", name: "boost_coefficient", kind: .double(\.policy.estimator.boostCoefficient),
            doc: "Stall of this many times the target asks for the full max_boost (quadratic below)."),
        Key(section: "estimator", name: "max_boost", kind: .double(\.policy.estimator.maxBoost),
            doc: "Largest pressure-driven demand above the allocation, as a fraction of it, per report."),
        Key(section: "estimator", name: "critical_pressure", kind: .double(\.policy.estimator.criticalPressure),
            doc: "PSI some share at which a guest gets back what it recently had, at once."),
        Key(section: "estimator", name: "critical_full_pressure", kind: .double(\.policy.estimator.criticalFullPressure),
            doc: "PSI full share that is critical on its own."),
        Key(section: "estimator", name: "fast_half_life_seconds", kind: .double(\.policy.estimator.fastHalfLifeSeconds),
            doc: "Half-life of the fast average: how quickly a falling demand is believed."),
        Key(section: "estimator", name: "slow_half_life_seconds", kind: .double(\.policy.estimator.slowHalfLifeSeconds),
            doc: "Half-life of the slow average (demand = max of the two: rise fast, fall slowly)."),
        Key(section: "estimator", name: "pressure_hold_seconds", kind: .double(\.policy.estimator.pressureHoldSeconds),
            doc: "After a guest stalls above pressure_target, its estimates may not fall for this long."),
        Key(section: "estimator", name: "idle_tax", kind: .double(\.policy.estimator.idleTax),
            doc: "Under contention, demand only the slow average remembers counts at (1 - idle_tax) (ESX: 0.75)."),
        Key(section: "estimator", name: "headroom", kind: .double(\.policy.estimator.headroom),
            doc: "Demand = working set x (1 + headroom)."),
        Key(section: "estimator", name: "max_overhead_fraction", kind: .double(\.policy.estimator.maxOverheadFraction),
            doc: "At most this fraction of the allocation is believed to be kernel overhead (allocation - MemTotal; 37 % of a 160M PV guest on real Xen)."),
        Key(section: "estimator", name: "stale_after_seconds", kind: .double(\.policy.estimator.staleAfterSeconds),
            doc: "A reporter report older than this is stale: the guest is held, never shrunk."),
        Key(section: "estimator", name: "legacy_stale_after_seconds", kind: .double(\.policy.estimator.legacyStaleAfterSeconds),
            doc: "The same for legacy meminfo_total/meminfo_free agents (they write every 60 s)."),

        Key(section: "floors", name: "absolute_min", kind: .size(\.policy.floors.absoluteMin),
            doc: "No guest is ever targeted below this size."),
        Key(section: "floors", name: "padding", kind: .double(\.policy.floors.padding),
            doc: "Automatic floor = working set x (1 + padding)."),
        Key(section: "floors", name: "selfballoon", kind: .bool(\.policy.floors.selfballoonFloor),
            doc: "Also apply Linux selfballoon's piecewise floor (on static-max) as a lower bound."),
        Key(section: "floors", name: "silent", kind: .silent,
            doc: "Guests without usable reports: \"hold\" keeps their target; \"admin-floor\" lets contention shrink them to their floor."),

        Key(section: "share", name: "host_reserve", kind: .size(\.policy.share.hostReserve),
            doc: "Always left free for Xen and domain builds."),
        Key(section: "share", name: "slack", kind: .size(\.policy.share.slack),
            doc: "Kept free on top of the reserve when surplus is distributed, for spikes."),
        Key(section: "share", name: "surplus", kind: .surplus,
            doc: "Memory left after every demand is met: \"distribute\" by weight up to ceilings, or \"keep-free\"."),
        Key(section: "share", name: "default_weight", kind: .double(\.policy.share.defaultWeight),
            doc: "Weight of a domain without its own setting."),
        Key(section: "share", name: "start_reserve", kind: .size(\.policy.share.startReserve),
            doc: "Kept free on top of host_reserve at all times so a VM start needs no reservation (memory no guest can use; 0: starts ask with `arbiter start` or `arbiter reserve`)."),
        Key(section: "share", name: "release_grace_seconds", kind: .double(\.policy.share.releaseGraceSeconds),
            doc: "A destroyed domain's memory is held this long for a domain of the same name (reboot, destroy + create), then returns to the pool."),

        Key(section: "pacing", name: "shrink_fraction_per_second", kind: .double(\.policy.pacing.shrinkFractionPerSecond),
            doc: "Largest shrink per second into the guest's estimated demand, as a fraction of the current target."),
        Key(section: "pacing", name: "surplus_shrink_fraction_per_second", kind: .double(\.policy.pacing.surplusShrinkFractionPerSecond),
            doc: "Largest shrink per second of memory above the guest's estimated demand (idle cache, lent surplus)."),
        Key(section: "pacing", name: "min_shrink_per_second", kind: .size(\.policy.pacing.minShrinkPerSecond),
            doc: "Smallest shrink rate, so small guests still converge (per second)."),
        Key(section: "pacing", name: "max_shrink_per_second", kind: .size(\.policy.pacing.maxShrinkPerSecond),
            doc: "Largest shrink rate of any one guest (per second)."),
        Key(section: "pacing", name: "shrink_stop_pressure", kind: .double(\.policy.pacing.shrinkStopPressure),
            doc: "Shrinking slows as PSI some rises and stops at this share."),
        Key(section: "pacing", name: "max_interval_seconds", kind: .double(\.policy.pacing.maxIntervalSeconds),
            doc: "Longest gap between rounds that still earns shrink allowance."),
        Key(section: "pacing", name: "max_shrink_lead", kind: .size(\.policy.pacing.maxShrinkLead),
            doc: "While a guest is more than this above its lower target, the shrink is not extended (wait for the balloon)."),
        Key(section: "pacing", name: "deadband", kind: .size(\.policy.pacing.deadband),
            doc: "Changes smaller than max(deadband, deadband_fraction x target) are not pushed; the deadband is at most 5 % of the target."),
        Key(section: "pacing", name: "deadband_fraction", kind: .double(\.policy.pacing.deadbandFraction),
            doc: "See deadband."),
        Key(section: "pacing", name: "calm_grow_fraction", kind: .double(\.policy.pacing.calmGrowFraction),
            doc: "A guest with no stall grows only when its share is this fraction above its target (no noise-driven cycles)."),

        Key(section: "balloon", name: "min_rate", kind: .size(\.policy.responsiveness.minRate),
            doc: "A guest asked to shrink that frees less than half of this per second (or of what it owes) is lagging."),
        Key(section: "balloon", name: "patience_seconds", kind: .double(\.policy.responsiveness.patienceSeconds),
            doc: "Net lagging time after which a guest is uncooperative: held at what it really has, its promise not counted."),
        Key(section: "balloon", name: "retry_after_seconds", kind: .double(\.policy.responsiveness.retryAfterSeconds),
            doc: "An uncooperative guest is asked again after this long."),
        Key(section: "balloon", name: "tolerance", kind: .size(\.policy.responsiveness.tolerance),
            doc: "A guest within this of its target owes nothing."),

        Key(section: "daemon", name: "backend", kind: .backend,
            doc: "\"auto\": \"xen\" on a Xen control domain (/proc/xen/capabilities), \"sim\" where there is no Xen; \"sim\" on a dom0 needs sim.on_dom0."),
        Key(section: "daemon", name: "policy", kind: .policy,
            doc: "The policy whose targets are pushed: \"arbiter\", or a peer's rule for comparison (\"qmemman\", \"squeezed\", \"mom\", \"static\")."),
        Key(section: "daemon", name: "shadow", kind: .shadow,
            doc: "Policies that decide every round from the same inputs and are recorded, never pushed (`arbiter report --compare`, `explain`)."),
        Key(section: "daemon", name: "database", kind: .string(\.daemon.database),
            doc: "The decision store: one SQLite file (WAL); its folder must exist."),
        Key(section: "daemon", name: "socket", kind: .string(\.daemon.socket),
            doc: "The control socket (mode 0600) that `arbiter top` and `arbiter set` talk to."),
        Key(section: "daemon", name: "tick_seconds", kind: .double(\.daemon.tickSeconds),
            doc: "A round runs at least this often, reports or not (the periodic full pass)."),
        Key(section: "daemon", name: "min_round_interval_seconds", kind: .double(\.daemon.minRoundIntervalSeconds),
            doc: "Rounds run at most this often: a report starts one at once unless the last round was sooner than this."),
        Key(section: "daemon", name: "guest_round_interval_seconds", kind: .double(\.daemon.guestRoundIntervalSeconds),
            doc: "One guest's reports start at most one round per this interval; what it writes in between is read by the next round."),
        Key(section: "daemon", name: "snapshot_every", kind: .int(\.daemon.snapshotEvery),
            doc: "Every N recorded rounds every domain is recorded; in between only those whose decision changed (a round reports started that changed nothing is not recorded)."),
        Key(section: "daemon", name: "dry_run", kind: .bool(\.daemon.dryRun),
            doc: "Decide and record, push nothing."),
        Key(section: "daemon", name: "include_dom0", kind: .bool(\.daemon.includeDom0),
            doc: "With backend = \"xen\": also arbitrate dom0 (off: dom0 keeps what dom0_mem gave it)."),
        Key(section: "daemon", name: "downsample_after_days", kind: .double(\.daemon.downsampleAfterDays),
            doc: "Rounds older than this keep one full snapshot per downsample_interval_seconds (and rounds that raised an alert)."),
        Key(section: "daemon", name: "downsample_interval_seconds", kind: .double(\.daemon.downsampleIntervalSeconds),
            doc: "See downsample_after_days."),
        Key(section: "daemon", name: "retain_days", kind: .double(\.daemon.retainDays),
            doc: "Decisions, rejections and alerts older than this are deleted."),
        Key(section: "sim", name: "scenario", kind: .string(\.daemon.simScenario),
            doc: "With backend = \"sim\": a shipped scenario name or a scenario file."),
        Key(section: "sim", name: "on_dom0", kind: .bool(\.daemon.simOnDom0),
            doc: "Let backend = \"sim\" run on a Xen control domain (refused otherwise: it would record simulated history)."),
        Key(section: "sim", name: "speed", kind: .double(\.daemon.simSpeed),
            doc: "With backend = \"sim\": simulated seconds per wall-clock second."),
        Key(section: "metrics", name: "textfile", kind: .string(\.daemon.metricsTextfile),
            doc: "Prometheus metrics rewritten atomically after every round, for node_exporter's textfile collector (\"\": none). A missing folder is logged once; the daemon goes on."),
        Key(section: "metrics", name: "http_port", kind: .int(\.daemon.metricsPort),
            doc: "Also serve GET /metrics on 127.0.0.1 at this port (0: off; no port is opened by default)."),
    ]

    /// The sections a scenario's `[arbiter.*]` may set (the policy, not the daemon).
    static let policySections: Set = ["reports", "estimator", "floors", "share", "pacing", "balloon"]

    static var sections: [String] {
        var seen = [String]()
        for k in keys where !seen.contains(k.section) { seen.append(k.section) }
        return seen
    }

    /// Parses TOML text, mapping a syntax error to its line.
    static func table(_ text: String) throws(ConfigErrors) -> TOMLTable {
        do {
            return try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigErrors(errors: [ConfigError(key: nil, line: e.source.begin.line, message: "syntax error: \(e.description)")])
        } catch {
            throw ConfigErrors(errors: [ConfigError(key: nil, line: nil, message: "cannot parse: \(error)")])
        }
    }

    /// Parses `text` (the file's contents) over the defaults. Throws every problem at once.
    public static func load(_ text: String) throws(ConfigErrors) -> ArbiterConfig {
        let table = try table(text)
        var config = ArbiterConfig()
        let lines = LineFinder(text)
        var errors = apply(table, to: &config, lines: lines)
        if errors.isEmpty { errors = validate(config, lines: lines) }
        if !errors.isEmpty { throw ConfigErrors(errors: errors.sorted { ($0.line ?? 0) < ($1.line ?? 0) }) }
        return config
    }

    /// Applies every `[section]` of `table` to `config`; `prefix` names where the table sits in a larger
    /// file (a scenario's `arbiter.`), for messages and line numbers.
    static func apply(_ table: TOMLTable, to config: inout ArbiterConfig, lines: LineFinder, prefix: String = "",
                      only allowed: Set<String>? = nil) -> [ConfigError] {
        var errors = [ConfigError]()
        for (sectionName, sectionValue) in table {
            let sectionPath = prefix + sectionName
            guard sections.contains(sectionName), allowed?.contains(sectionName) ?? true else {
                errors.append(ConfigError(key: sectionPath, line: lines.section(sectionPath), message: "unknown section (known: \(sections.joined(separator: ", ")))"))
                continue
            }
            guard let section = sectionValue.table else {
                errors.append(ConfigError(key: sectionPath, line: lines.key(sectionName, in: nil), message: "must be a table ([\(sectionPath)])"))
                continue
            }
            for (name, value) in section {
                let path = sectionPath + "." + name
                let line = lines.key(name, in: sectionPath)
                guard let key = keys.first(where: { $0.section == sectionName && $0.name == name }) else {
                    errors.append(ConfigError(key: path, line: line, message: "unknown key"))
                    continue
                }
                if let problem = apply(key, value, to: &config) {
                    errors.append(ConfigError(key: path, line: line, message: problem))
                }
            }
        }
        return errors
    }

    /// Problems found outside the file (against the host), each placed on the line of its key in `text`.
    public static func place(_ problems: [ConfigError], in text: String?) -> [ConfigError] {
        place(problems, lines: LineFinder(text ?? ""))
    }

    /// Cross-key checks (`ArbiterConfig.problems`), each placed on the line of its key.
    static func validate(_ config: ArbiterConfig, lines: LineFinder) -> [ConfigError] {
        place(config.problems(), lines: lines)
    }

    static func place(_ problems: [ConfigError], lines: LineFinder) -> [ConfigError] {
        problems.map { problem in
            var placed = problem
            if placed.line == nil, let parts = problem.key?.split(separator: "."), parts.count == 2 {
                placed.line = lines.key(String(parts[1]), in: String(parts[0]))
            }
            return placed
        }
    }

    /// Sets one key; returns a message naming the expected type when the value does not fit.
    static func apply(_ key: Key, _ value: TOMLValueConvertible, to config: inout ArbiterConfig) -> String? {
        switch key.kind {
        case .string(let path):
            guard let s = value.string else { return "expected a string, got \(describe(value))" }
            config[keyPath: path] = s
        case .backend:
            guard let s = value.string, let b = BackendKind(rawValue: s) else {
                return "expected one of \(BackendKind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), got \(describe(value))"
            }
            config.daemon.backend = b
        case .policy:
            guard let s = value.string, let p = PolicyKind(rawValue: s) else {
                return "expected one of \(PolicyKind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), got \(describe(value))"
            }
            config.daemon.policy = p
        case .shadow:
            guard let array = value.array else { return "expected a list such as [\"qmemman\", \"squeezed\"], got \(describe(value))" }
            var kinds = [PolicyKind]()
            for v in array {
                guard let s = v.string, let p = PolicyKind(rawValue: s) else {
                    return "expected policy names (\(PolicyKind.allCases.map(\.rawValue).joined(separator: ", "))), got \(describe(v))"
                }
                kinds.append(p)
            }
            config.daemon.shadow = kinds
        case .double(let path):
            // TOML distinguishes 1 from 1.0; accept both for a real-valued key.
            if let d = value.double { config[keyPath: path] = d } else if let i = value.int { config[keyPath: path] = Double(i) }
            else { return "expected a number, got \(describe(value))" }
        case .int(let path):
            guard let i = value.int else { return "expected a whole number, got \(describe(value))" }
            config[keyPath: path] = i
        case .int64(let path):
            guard let i = value.int else { return "expected a whole number, got \(describe(value))" }
            config[keyPath: path] = Int64(i)
        case .bool(let path):
            guard let b = value.bool else { return "expected true or false, got \(describe(value))" }
            config[keyPath: path] = b
        case .size(let path):
            if let i = value.int, i >= 0 { config[keyPath: path] = KiB(Int64(i)) }
            else if let s = value.string, let k = KiB(parsing: s) { config[keyPath: path] = k }
            else { return "expected a size such as \"512M\" or \"4G\" (a bare number is KiB), got \(describe(value))" }
        case .silent:
            guard let s = value.string, let p = SilentPolicy(rawValue: s) else {
                return "expected one of \(SilentPolicy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), got \(describe(value))"
            }
            config.policy.floors.silent = p
        case .surplus:
            guard let s = value.string, let p = SurplusPolicy(rawValue: s) else {
                return "expected one of \(SurplusPolicy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), got \(describe(value))"
            }
            config.policy.share.surplus = p
        }
        return nil
    }

    static func describe(_ v: TOMLValueConvertible) -> String {
        if let s = v.string { return "the string \"\(s.prefix(40))\"" }
        return "a value of type \(v.type)"
    }

    /// The value of a key in `config`, written as it would be in the file.
    static func render(_ key: Key, _ c: ArbiterConfig) -> String {
        switch key.kind {
        case .string(let p): return "\"" + c[keyPath: p] + "\""
        case .backend: return "\"" + c.daemon.backend.rawValue + "\""
        case .policy: return "\"" + c.daemon.policy.rawValue + "\""
        case .shadow: return "[" + c.daemon.shadow.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") + "]"
        case .double(let p): return renderDouble(c[keyPath: p])
        case .int(let p): return String(c[keyPath: p])
        case .int64(let p): return String(c[keyPath: p])
        case .bool(let p): return c[keyPath: p] ? "true" : "false"
        case .size(let p):
            // xl-style text where it says the value exactly, else the bare KiB (never a rounded size).
            let v = c[keyPath: p], text = formatSize(v)
            return KiB(parsing: text) == v ? "\"" + text + "\"" : String(v.value)
        case .silent: return "\"" + c.policy.floors.silent.rawValue + "\""
        case .surplus: return "\"" + c.policy.share.surplus.rawValue + "\""
        }
    }

    static func renderDouble(_ d: Double) -> String {
        if d == d.rounded() && abs(d) < 1e15 { return formatFixed(d, decimals: 1) }
        var s = formatFixed(d, decimals: 6)
        while s.hasSuffix("0") { s.removeLast() }
        return s
    }

    /// The documented example file with every key at its default: what `config.toml.example` holds.
    public static func example() -> String {
        var out = """
        # config.toml: the Xen memory arbiter's policy. Every key is optional; the values below are the
        # defaults. Sizes are xl-style ("512M", "4G"; a bare number is KiB). Shares and fractions are
        # 0-1 (0.01 = 1 %). Unknown keys and bad values are errors naming the key and its line.

        """
        let defaults = ArbiterConfig()
        for section in sections {
            out += "\n[\(section)]\n"
            for key in keys where key.section == section {
                out += "# \(key.doc)\n\(key.name) = \(render(key, defaults))\n"
            }
        }
        return out
    }

    /// `config` as a config.toml with every key at its effective value (`arbiter config-check`): the
    /// same keys, order and spelling as `example()`; a key that differs from its default says the default.
    public static func effective(_ config: ArbiterConfig) -> String {
        let defaults = ArbiterConfig()
        var out = ""
        for section in sections {
            out += "\n[\(section)]\n"
            for key in keys where key.section == section {
                let value = render(key, config), byDefault = render(key, defaults)
                out += "\(key.name) = \(value)" + (value == byDefault ? "" : "  # default \(byDefault)") + "\n"
            }
        }
        return out
    }

    /// Finds the line of a section header or a key in the raw text (TOMLKit does not report positions).
    struct LineFinder {
        let lines: [Substring]
        init(_ text: String) { lines = text.split(separator: "\n", omittingEmptySubsequences: false) }

        func section(_ name: String) -> Int? {
            lines.firstIndex { $0.trimmingSpaces == "[\(name)]" }.map { $0 + 1 }
        }

        func key(_ name: String, in section: String?) -> Int? {
            var inSection = section == nil
            for (i, raw) in lines.enumerated() {
                let l = raw.trimmingSpaces
                if l.hasPrefix("[") { inSection = section.map { l == "[\($0)]" } ?? false; continue }
                if inSection, l.hasPrefix(name), l.dropFirst(name.count).trimmingSpaces.hasPrefix("=") { return i + 1 }
            }
            return nil
        }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return s
    }
}
