import Foundation
import GuestModel
import HostSimulator
import TOMLKit

/// Scenario files (TOML): the host, the arbiter's config, and the guests with their workloads and
/// behaviours. See `scenarios/README.md` for the format; errors name the key and its line.
public enum ScenarioFile {
    /// Loads a scenario from `path`; trace workloads are read relative to the file's folder.
    public static func load(path: String) throws(ConfigErrors) -> Scenario {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigErrors(errors: [ConfigError(key: nil, line: nil, message: "cannot read scenario file \(path)")])
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(text, folder: folder)
    }

    /// Parses scenario text. `folder` resolves relative trace paths.
    public static func parse(_ text: String, folder: String = ".") throws(ConfigErrors) -> Scenario {
        let table = try ConfigFile.table(text)
        var reader = Reader(lines: ConfigFile.LineFinder(text), folder: folder)
        let scenario = reader.scenario(table)
        var errors = reader.errors
        if let scenario, errors.isEmpty {
            errors += scenario.problems()
        }
        guard let scenario, errors.isEmpty else { throw ConfigErrors(errors: errors) }
        return scenario
    }

    /// Walks the table, collecting every problem rather than stopping at the first.
    struct Reader {
        let lines: ConfigFile.LineFinder
        let folder: String
        var errors = [ConfigError]()
        var traceCache = [String: [Trace.VM]]()

        mutating func fail(_ key: String, _ message: String, section: String? = nil, line: Int? = nil) {
            let name = key.split(separator: ".").last.map(String.init) ?? key
            errors.append(ConfigError(key: key, line: line ?? lines.key(name, in: section), message: message))
        }

        mutating func scenario(_ t: TOMLTable) -> Scenario? {
            let known: Set = ["name", "description", "seed", "hours", "step_seconds", "host", "arbiter", "guest", "event"]
            for k in t.keys where !known.contains(k) { fail(k, "unknown key") }
            guard let host = t["host"]?.table else { fail("host", "missing [host] table (memory, xen_reserve)"); return nil }
            for k in host.keys where !["memory", "xen_reserve"].contains(k) { fail("host.\(k)", "unknown key", section: "host") }
            guard let memory = size(host["memory"], "host.memory", section: "host") else {
                if host["memory"] == nil { fail("host.memory", "missing", section: "host") }
                return nil
            }
            let reserve = size(host["xen_reserve"], "host.xen_reserve", section: "host") ?? .zero
            var s = Scenario(name: string(t["name"], "name") ?? "unnamed", description: string(t["description"], "description") ?? "",
                             hostMemory: memory, xenReserve: reserve, guests: [])
            if let v = t["seed"] { if let i = v.int, i >= 0 { s.seed = UInt64(i) } else { fail("seed", "expected a non-negative whole number") } }
            if let d = number(t["hours"], "hours") { s.hours = d }
            if let d = number(t["step_seconds"], "step_seconds") { s.stepSeconds = d }
            if let a = t["arbiter"] {
                if let at = a.table {
                    var config = ArbiterConfig()
                    config.policy = s.policy
                    errors += ConfigFile.apply(at, to: &config, lines: lines, prefix: "arbiter.", only: ConfigFile.policySections)
                    s.policy = config.policy
                } else {
                    fail("arbiter", "must be a table ([arbiter.pacing] and so on)")
                }
            }
            guard let guests = t["guest"]?.array else { fail("guest", "no [[guest]] entries"); return s }
            for (i, g) in guests.enumerated() {
                guard let gt = g.table else { fail("guest", "each [[guest]] must be a table"); continue }
                s.guests += guestSpecs(gt, index: i)
            }
            if let events = t["event"] {
                guard let list = events.array else { fail("event", "must be [[event]] tables"); return s }
                for e in list {
                    guard let et = e.table else { fail("event", "each [[event]] must be a table"); continue }
                    if let ev = event(et) { s.events.append(ev) }
                }
            }
            return s
        }

        /// `[[event]]`: at (seconds), action (destroy, create, restart, start), guest (a [[guest]] name).
        mutating func event(_ t: TOMLTable) -> LifecycleEvent? {
            for k in t.keys where !["at", "action", "guest"].contains(k) { fail("event.\(k)", "unknown key") }
            let actions = LifecycleEvent.Action.allCases.map(\.rawValue).joined(separator: ", ")
            guard let at = number(t["at"], "event.at") else { fail("event.at", "missing: seconds into the run"); return nil }
            guard let a = string(t["action"], "event.action") else { fail("event.action", "missing (\(actions))"); return nil }
            guard let action = LifecycleEvent.Action(rawValue: a) else { fail("event.action", "expected one of \(actions)"); return nil }
            guard let guest = string(t["guest"], "event.guest") else { fail("event.guest", "missing: the name of a [[guest]]"); return nil }
            return LifecycleEvent(at: at, action: action, guest: guest)
        }

        mutating func guestSpecs(_ t: TOMLTable, index: Int) -> [GuestSpec] {
            let known: Set = ["name", "count", "static_max", "boot", "min", "max", "weight", "behaviour", "anon_fraction", "swap",
                              "report_interval", "legacy_interval", "stale_after", "balloon_speed", "workload", "autostart"]
            let name = string(t["name"], "guest.name") ?? "guest\(index + 1)"
            let line = lines.guestLine(index)
            for k in t.keys where !known.contains(k) { fail("guest[\(name)].\(k)", "unknown key", line: line) }
            guard let staticMax = size(t["static_max"], "guest[\(name)].static_max", line: line) else {
                if t["static_max"] == nil { fail("guest[\(name)].static_max", "missing", line: line) }
                return []
            }
            var behaviour = Behaviour.reporter
            if let b = string(t["behaviour"], "guest[\(name)].behaviour") {
                if let v = Behaviour(rawValue: b) { behaviour = v } else {
                    fail("guest[\(name)].behaviour", "expected one of \(Behaviour.allCases.map(\.rawValue).joined(separator: ", "))", line: line)
                }
            }
            guard let wt = t["workload"]?.table else { fail("guest[\(name)].workload", "missing workload table", line: line); return [] }
            guard let work = workload(wt, guest: name, line: line) else { return [] }
            var spec = GuestSpec(name: name, workload: work, staticMax: staticMax,
                                 boot: size(t["boot"], "guest[\(name)].boot", line: line) ?? staticMax, behaviour: behaviour,
                                 adminMin: size(t["min"], "guest[\(name)].min", line: line),
                                 adminMax: size(t["max"], "guest[\(name)].max", line: line),
                                 weight: number(t["weight"], "guest[\(name)].weight", line: line))
            if let d = number(t["anon_fraction"], "guest[\(name)].anon_fraction", line: line) { spec.anonFraction = d }
            if let k = size(t["swap"], "guest[\(name)].swap", line: line) { spec.swap = k }
            if let d = number(t["report_interval"], "guest[\(name)].report_interval", line: line) { spec.reportInterval = d }
            if let d = number(t["legacy_interval"], "guest[\(name)].legacy_interval", line: line) { spec.legacyInterval = d }
            if let d = number(t["stale_after"], "guest[\(name)].stale_after", line: line) { spec.staleAfter = d }
            if let k = size(t["balloon_speed"], "guest[\(name)].balloon_speed", line: line) { spec.balloonSpeed = k }
            if let v = t["autostart"] {
                if let b = v.bool { spec.autostart = b } else { fail("guest[\(name)].autostart", "expected true or false", line: line) }
            }
            var count = 1
            if let c = t["count"] {
                if let i = c.int, (1...1000).contains(i) { count = i } else { fail("guest[\(name)].count", "expected 1-1000", line: line) }
            }
            if count == 1 { return [spec] }
            return (1...count).map { k in var g = spec; g.name = "\(name)-\(k)"; return g }
        }

        /// A workload table.
        mutating func workload(_ t: TOMLTable, guest: String, line: Int?) -> Workload? {
            let key = "guest[\(guest)].workload"
            guard let kind = string(t["kind"], key + ".kind") else { fail(key + ".kind", "missing", line: line); return nil }
            func sz(_ k: String) -> KiB? {
                let v = size(t[k], "\(key).\(k)", line: line)
                if v == nil && t[k] == nil { fail("\(key).\(k)", "missing (\(kind) needs it)", line: line) }
                return v
            }
            func num(_ k: String, _ fallback: Double? = nil) -> Double? {
                if t[k] == nil, let fallback { return fallback }
                let v = number(t[k], "\(key).\(k)", line: line)
                if v == nil && t[k] == nil { fail("\(key).\(k)", "missing (\(kind) needs it)", line: line) }
                return v
            }
            switch kind {
            case "idle": return sz("size").map { .idle($0) }
            case "steady": return sz("size").map { .steady($0) }
            case "ramp":
                guard let a = sz("from"), let b = sz("to"), let st = num("start", 0), let s = num("seconds") else { return nil }
                return .ramp(from: a, to: b, start: st, seconds: s)
            case "spike":
                guard let a = sz("base"), let b = sz("peak"), let at = num("at"), let s = num("seconds") else { return nil }
                return .spike(base: a, peak: b, at: at, seconds: s, every: t["every"] == nil ? nil : num("every"))
            case "periodic":
                guard let a = sz("base"), let b = sz("amplitude"), let p = num("period") else { return nil }
                return .periodic(base: a, amplitude: b, period: p)
            case "leak":
                guard let a = sz("base"), let r = sz("rate"), let l = sz("limit") else { return nil }
                return .leak(base: a, rate: r, limit: l)
            case "trace":
                guard let file = string(t["file"], key + ".file") else { fail(key + ".file", "missing", line: line); return nil }
                let path = file.hasPrefix("/") ? file : folder + "/" + file
                let vms: [Trace.VM]
                if let cached = traceCache[path] { vms = cached } else {
                    do {
                        vms = try TraceFile.load(path: path)
                    } catch {
                        fail(key + ".file", "\(file): \(error)", line: line)
                        return nil
                    }
                    traceCache[path] = vms
                }
                if let id = string(t["vm"], key + ".vm") {
                    guard let vm = vms.first(where: { $0.id == id }) else { fail(key + ".vm", "no vm_id \(id) in \(file)", line: line); return nil }
                    return .trace(vm.series)
                }
                fail(key + ".vm", "missing: which vm_id of the trace this guest follows", line: line)
                return nil
            default:
                fail(key + ".kind", "unknown workload kind '\(kind)' (idle, steady, ramp, spike, periodic, leak, trace)", line: line)
                return nil
            }
        }

        mutating func string(_ v: TOMLValueConvertible?, _ key: String) -> String? {
            guard let v else { return nil }
            guard let s = v.string else { fail(key, "expected a string"); return nil }
            return s
        }

        mutating func number(_ v: TOMLValueConvertible?, _ key: String, line: Int? = nil) -> Double? {
            guard let v else { return nil }
            if let d = v.double, d.isFinite { return d }
            if let i = v.int { return Double(i) }
            fail(key, "expected a number", line: line)
            return nil
        }

        mutating func size(_ v: TOMLValueConvertible?, _ key: String, section: String? = nil, line: Int? = nil) -> KiB? {
            guard let v else { return nil }
            if let i = v.int, i >= 0 { return KiB(Int64(i)) }
            if let s = v.string, let k = KiB(parsing: s) { return k }
            fail(key, "expected a size such as \"512M\" or \"4G\" (a bare number is KiB)", section: section, line: line)
            return nil
        }
    }
}

/// Reads trace CSV files.
public enum TraceFile {
    public static func load(path: String, maxVMs: Int = Int.max) throws -> [Trace.VM] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIMessage("cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIMessage("\(path) is not UTF-8 text") }
        return try Trace.parse(text, maxVMs: maxVMs)
    }

    /// A scenario built straight from a trace: the first `vms` VMs, each a reporting guest booted at its
    /// share of `hostMemory` (the memory Xen can give guests), for `hours` (default: the trace's length).
    public static func scenario(path: String, vms: Int, hours: Double?, hostMemory: KiB?, policy: PolicyConfig) throws -> Scenario {
        let all = try load(path: path, maxVMs: vms)
        let provisioned = all.reduce(Int64(0)) { $0 + $1.provisioned.value }
        // Default host: half of what the VMs were provisioned with (an overcommitted host is the point).
        let pool = hostMemory ?? KiB(provisioned / 2)
        let guests = all.map { vm in
            GuestSpec(name: vm.id, workload: .trace(vm.series), staticMax: vm.provisioned, boot: vm.provisioned)
        }
        let length = all.map(\.series.duration).max() ?? 3600
        var s = Scenario(name: "trace:" + URL(fileURLWithPath: path).lastPathComponent,
                         description: "\(all.count) VMs from \(path)", hostMemory: pool, guests: guests)
        s.hours = hours ?? Swift.max(length / 3600, 1.0 / 60)
        // Each VM boots at its share of the host by its mean use over the run (at most what it was given).
        s.fitBoots(in: pool)
        s.policy = policy
        return s
    }
}

/// A plain message error for file problems.
public struct CLIMessage: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

extension ConfigFile.LineFinder {
    /// The line of the `index`-th `[[guest]]` header.
    func guestLine(_ index: Int) -> Int? {
        var seen = -1
        for (i, l) in lines.enumerated() where l.trimmingSpaces == "[[guest]]" {
            seen += 1
            if seen == index { return i + 1 }
        }
        return nil
    }
}
