import Foundation
import GuestModel
import Testing
import Arbiter

/// The `arbiter` verbs as an admin runs them: the real binary, its help, `config-check`'s effective
/// configuration, and `list` (table and JSON) on a store the daemon recorded.
@Suite("arbiter's verbs, as a process", .serialized)
struct CLITests: ArbiterProcessTest {
    static let scratchPrefix = "arbiter-cli"

    /// Help text with ArgumentParser's line wrapping undone.
    func flat(_ s: String) -> String { s.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ") }

    /// Every verb with its abstract, as `arbiter VERB --help` must show them.
    static let verbs: [(String, String)] = [
        ("demo", "Run our policy on a simulated host and print its decisions as an admin would see them."),
        ("daemon", "Run the arbiter: decide every round, push targets, record every decision."),
        ("list", "Domains as last recorded: memory, target, floor, ceiling, weight, stall, report and reason (like xl list)."),
        ("top", "Live view of the running daemon's decisions, refreshed."),
        ("set", "Set a domain's floor, ceiling or weight (validated, persisted, applied next round)."),
        ("reserve", "Free memory for a domain about to be built, and hold it until the domain exists."),
        ("unreserve", "Cancel a reservation: its memory goes back to the guests."),
        ("start", "Start a domain: reserve the memory its build needs, run `xl create`, release the reservation."),
        ("explain", "Why a domain's target is what it is: the facts of its latest recorded decision."),
        ("history", "A domain's recorded decisions over time."),
        ("alerts", "Recorded alerts (floors that do not fit the host, …)."),
        ("report", "A report over recorded decisions: text, CSV, JSON, or one HTML page with charts."),
        ("simulate", "Run a scenario on the simulated host under our policy, a baseline, or all of them."),
        ("config-check", "Validate a config.toml and print the effective configuration, defaults filled in."),
        ("config-example", "Print a config.toml with every key documented at its default."),
        ("xen-info", "Open xenstore, libxl and libxenctrl and print host memory (exit 3 without Xen)."),
    ]

    @Test func everyVerbHasHelpWithItsUsageAndAbstract() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "arbiter binary at \(Self.binary.path)")
        // The root help lists exactly these verbs: a new one needs its line above.
        let root = try run(["--help"])
        #expect(root.status == 0)
        let listed = root.out.split(separator: "\n").drop { !$0.hasPrefix("SUBCOMMANDS:") }.dropFirst().compactMap { line -> String? in
            guard line.hasPrefix("  "), let first = line.dropFirst(2).first, first.isLowercase else { return nil }
            return line.dropFirst(2).split(separator: " ").first.map(String.init)
        }
        #expect(listed == Self.verbs.map(\.0), "\(root.out)")
        for (verb, abstract) in Self.verbs {
            let r = try run([verb, "--help"])
            #expect(r.status == 0, "\(verb): \(r)")
            #expect(r.out.split(separator: "\n").contains { $0.hasPrefix("USAGE: arbiter \(verb)") }, "\(verb): \(r.out)")
            #expect(flat(r.out).hasPrefix("OVERVIEW: " + abstract), "\(verb): \(r.out)")
            for stale in ["until the daemon lands", "not yet", "TODO"] {
                #expect(!r.out.contains(stale), "\(verb): \(stale)")
            }
        }
    }

    /// `name = value` lines of a config.toml, by "section.name" (comments after the value dropped).
    func keyValues(_ text: String) -> [String: String] {
        var out = [String: String](), section = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("[") && line.hasSuffix("]") { section = String(line.dropFirst().dropLast()); continue }
            guard !line.hasPrefix("#"), let eq = line.range(of: " = ") else { continue }
            var value = String(line[eq.upperBound...])
            if let c = value.range(of: "  # ") { value = String(value[..<c.lowerBound]) }
            out[section + "." + line[..<eq.lowerBound]] = value
        }
        return out
    }

    @Test func configCheckPrintsTheEffectiveConfiguration() throws {
        let dir = try scratch("config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let example = keyValues(ConfigFile.example())
        #expect(example.count > 50)

        // Nothing set: every key at exactly the default the example shows, none marked as changed.
        let empty = dir.appendingPathComponent("empty.toml")
        try "".write(to: empty, atomically: true, encoding: .utf8)
        let e = try run(["config-check", empty.path])
        #expect(e.status == 0, "\(e)")
        #expect(keyValues(e.out) == example, "\(e.out)")
        #expect(!e.out.contains("# default") && !e.out.contains("not shown"), "\(e.out)")
        #expect(e.out.split(separator: "\n").last == "\(empty.path): ok")

        // Some keys set: those show the file's value (and their default), the rest the defaults.
        let config = dir.appendingPathComponent("config.toml")
        let text = """
            [pacing]
            deadband = "32M"
            [share]
            surplus = "distribute"
            host_reserve = 1000000
            [daemon]
            shadow = ["qmemman", "squeezed"]
            tick_seconds = 5
            [estimator]
            pressure_target = 0.0025
            """
        try text.write(to: config, atomically: true, encoding: .utf8)
        let r = try run(["config-check", config.path])
        #expect(r.status == 0, "\(r)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.last == "\(config.path): ok")
        #expect(lines.contains("deadband = \"32M\"  # default \"16M\""), "\(r.out)")
        #expect(lines.contains("surplus = \"distribute\"  # default \"keep-free\""), "\(r.out)")
        // 1000000 KiB is not a whole number of M: shown exactly, not rounded to "976.6M".
        #expect(lines.contains("host_reserve = 1000000  # default \"64M\""), "\(r.out)")
        #expect(lines.contains("shadow = [\"qmemman\", \"squeezed\"]  # default []"), "\(r.out)")
        #expect(lines.contains("tick_seconds = 5.0  # default 10.0"), "\(r.out)")
        #expect(lines.contains("pressure_target = 0.0025  # default 0.002"), "\(r.out)")
        #expect(lines.filter { $0.contains("  # default ") }.count == 6, "\(r.out)")
        let shown = keyValues(r.out)
        #expect(Set(shown.keys) == Set(example.keys))
        #expect(shown["daemon.database"] == "\"/var/lib/arbiter/decisions.sqlite\"" && shown["pacing.deadband_fraction"] == "0.01")

        // What it prints is a config.toml that loads to the same configuration.
        let printed = dir.appendingPathComponent("printed.toml")
        try lines.dropLast().joined(separator: "\n").write(to: printed, atomically: true, encoding: .utf8)
        let again = try ConfigFile.load(String(contentsOf: printed, encoding: .utf8))
        #expect(again == (try ConfigFile.load(text)))
        #expect(again != ArbiterConfig())
        let r2 = try run(["config-check", printed.path])
        #expect(r2.status == 0 && keyValues(r2.out) == shown, "\(r2)")
    }

    @Test func configCheckNamesTheBadKeyAndFails() throws {
        let dir = try scratch("badconfig")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config.toml")
        try "[pacing]\ndeadbnd = \"32M\"\nshrink_stop_pressure = \"lots\"\n".write(to: config, atomically: true, encoding: .utf8)
        let r = try run(["config-check", config.path])
        #expect(r.status != 0)
        #expect(r.err.contains("\(config.path): line 2: pacing.deadbnd: unknown key"), "\(r)")
        #expect(r.err.contains("\(config.path): line 3: pacing.shrink_stop_pressure: expected a number"), "\(r)")
        #expect(!r.out.contains(": ok") && !r.out.contains("[pacing]"), "\(r)")
        // A cross-key problem and a missing file fail too.
        try "[estimator]\ncritical_pressure = 0.001\n".write(to: config, atomically: true, encoding: .utf8)
        let cross = try run(["config-check", config.path])
        #expect(cross.status != 0 && cross.err.contains("line 2: estimator.critical_pressure: must be above estimator.pressure_target"), "\(cross)")
        let missing = try run(["config-check", dir.appendingPathComponent("nope.toml").path])
        #expect(missing.status != 0 && missing.err.contains("cannot read config file"), "\(missing)")
    }

    /// `simulate --json` on several hosts is one JSON array of the per-host documents.
    @Test func simulateJSONOnSeveralHostsIsOneArray() throws {
        let r = try run(["simulate", "--json", "--hours", "0.02", "--host-scale", "1.0", "1.5"])
        #expect(r.status == 0, "\(r)")
        let docs = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]], "\(r.out)")
        #expect(docs.count == 2 && docs.allSatisfy { ($0["scenario"] as? String)?.hasPrefix("default ×") == true && $0["policies"] is [Any] }, "\(r.out)")
        let pools = docs.compactMap { $0["guest_memory_kib"] as? Int }
        #expect(pools.count == 2 && pools[0] < pools[1], "\(pools)")
        let one = try run(["simulate", "--json", "--hours", "0.02"])
        let single = try JSONSerialization.jsonObject(with: Data(one.out.utf8))
        #expect(one.status == 0 && single is [String: Any], "\(one)")
    }

    /// The daemon on the simulated lifecycle scenario (a guest destroyed, one rebooted) records a store;
    /// `list` shows it as a table and as JSON lines in the control socket's shape.
    @Test func listShowsTheRecordedDomainsInTheSocketsShape() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let dir = try scratch("list")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("d.sqlite").path, sock = dir.appendingPathComponent("s.sock").path
        let daemon = Process()
        daemon.executableURL = Self.binary
        daemon.arguments = ["daemon", "--backend", "sim", "--scenario", "lifecycle", "--speed", "1000", "--db", db, "--socket", sock]
        daemon.standardOutput = FileHandle.nullDevice
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }

        // What the socket says of a live domain (as `top` reads it), and a store with a released domain.
        var socketKeys = Set<String>()
        var released = false
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && (socketKeys.isEmpty || !released) {
            try await Task.sleep(for: .milliseconds(250))
            if socketKeys.isEmpty, let reply = try? ControlSocket.request(sock, "{\"cmd\":\"list\"}"),
               let object = try JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any],
               let domains = object["domains"] as? [[String: Any]] {
                socketKeys = Set(domains.flatMap(\.keys))
            }
            if FileManager.default.fileExists(atPath: db), let r = try? run(["list", "--all", "--json", "--db", db]), r.status == 0 {
                // web's restart (at 900 s) releases a lifetime before idle-1's destroy (at 1200 s): wait for idle-1's.
                released = r.out.split(separator: "\n").contains { $0.contains("\"name\":\"idle-1\"") && $0.contains("\"released\":") }
            }
        }
        let top = try run(["top", "--once", "--socket", sock])
        #expect(top.status == 0 && top.out.contains("heavy"), "\(top)")
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        try #require(!socketKeys.isEmpty && released, "no socket reply or no released domain within 60 s")

        let table = try run(["list", "--db", db])
        #expect(table.status == 0, "\(table)")
        let tableLines = table.out.split(separator: "\n")
        #expect(tableLines.first?.hasPrefix("Name") == true && tableLines.first?.contains("Released") == false, "\(table.out)")

        let json = try run(["list", "--json", "--db", db])
        #expect(json.status == 0, "\(json)")
        let lines = json.out.split(separator: "\n")
        #expect(lines.count == tableLines.count - 1, "\(json.out)")
        var names = [String]()
        for line in lines {
            let d = try JSONDecoder().decode(LiveDomain.self, from: Data(line.utf8))
            names.append(d.name)
            #expect(d.released == nil && d.memKiB > 0 && d.targetKiB >= d.floorKiB && d.ceilingKiB >= d.floorKiB, "\(line)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["domid"] as? Int == d.domid && object["id"] == nil, "\(line)")
            // The same keys the socket gives for a live domain (stall is absent for a guest that never reported): one shape.
            #expect(Set(object.keys).union(["stall"]) == socketKeys.union(["stall"]), "\(line) vs \(socketKeys.sorted())")
            // The table shows the same domain on a line of its own.
            #expect(tableLines.contains { $0.hasPrefix(d.name + " ") && $0.split(separator: " ")[1] == "\(d.domid)" }, "\(d.name): \(table.out)")
        }
        #expect(names.contains("heavy") && names.contains("light"), "\(names)")

        // --all adds the released lifetimes, with when.
        let all = try run(["list", "--all", "--json", "--db", db])
        let rows = try all.out.split(separator: "\n").map { try JSONDecoder().decode(LiveDomain.self, from: Data($0.utf8)) }
        let gone = rows.filter { $0.released != nil }
        #expect(gone.contains { $0.name == "idle-1" }, "\(all.out)")
        #expect(gone.allSatisfy { abs($0.released! - Date().timeIntervalSince1970) < 600 }, "\(gone)")
        #expect(rows.count == lines.count + gone.count)
        let allTable = try run(["list", "--all", "--db", db])
        #expect(allTable.out.split(separator: "\n").first?.contains("Released") == true, "\(allTable.out)")
        #expect(allTable.out.split(separator: "\n").contains { $0.hasPrefix("idle-1 ") && $0.hasSuffix("Z") }, "\(allTable.out)")
    }
}
