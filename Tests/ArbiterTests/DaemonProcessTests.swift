import Foundation
import GRDB
import GuestModel
import Testing
@testable import Arbiter

/// The real `arbiter daemon` process on the simulated host: start it, let rounds happen, SIGHUP with
/// a bad config (kept the old one), SIGHUP with a good one, SIGTERM (a last round recorded, exit 0),
/// restart on the same store.
@Suite("arbiter daemon, as a process", .serialized)
struct DaemonProcessTests: ArbiterProcessTest {
    static let scratchPrefix = "arbiter"

    func start(_ args: [String], stderr: URL) throws -> Process {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        FileManager.default.createFile(atPath: stderr.path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: stderr)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }

    func waitForExit(_ p: Process, seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return !p.isRunning
    }

    @Test func startRoundsReloadStopRestart() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "arbiter binary at \(Self.binary.path)")
        let dir = try scratch("daemon")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("d.sqlite").path
        let sock = dir.appendingPathComponent("s.sock").path
        let config = dir.appendingPathComponent("config.toml")
        let daemonSection = "[daemon]\ndatabase = \"\(db)\"\nsocket = \"\(sock)\"\n[sim]\nspeed = 40\n"
        try daemonSection.write(to: config, atomically: true, encoding: .utf8)
        let log = dir.appendingPathComponent("stderr.log")

        let p = try start(["daemon", "--config", config.path], stderr: log)
        try await Task.sleep(for: .seconds(3))
        #expect(p.isRunning)
        // The socket is root-only.
        var st = stat()
        #expect(stat(sock, &st) == 0 && (st.st_mode & 0o777) == 0o600)
        // top --once lists every domain; set is validated, persisted and applied next round.
        let top = try run(["top", "--once", "--socket", sock])
        #expect(top.status == 0 && top.out.contains("web-1") && top.out.contains("stubborn"))
        let refused = try run(["set", "web-1", "--ceiling", "64G", "--socket", sock])
        #expect(refused.status != 0 && refused.err.contains("static-max"))
        let accepted = try run(["set", "web-1", "--floor", "3G", "--weight", "2", "--socket", sock])
        #expect(accepted.status == 0 && accepted.out.contains("applied from the next round"), "\(accepted)")
        try await Task.sleep(for: .seconds(1.5))
        let after = try run(["top", "--once", "--socket", sock])
        #expect(after.out.split(separator: "\n").first { $0.hasPrefix("web-1") }?.contains("3G") == true, "\(after.out)")
        // Memory for a VM start: refused beyond what the floors leave, else freed and held.
        let tooBig = try run(["reserve", "100G", "--for", "newvm", "--socket", sock])
        #expect(tooBig.status != 0 && tooBig.err.contains("floors leave only"), "\(tooBig)")
        let reserved = try run(["reserve", "512M", "--for", "newvm", "--timeout", "60", "--wait", "--socket", sock])
        #expect(reserved.status == 0 && reserved.out.contains("ready: 512M free for newvm"), "\(reserved)")
        let held = try run(["top", "--once", "--socket", sock])
        #expect(held.out.contains("reservation 1: 512M for newvm"), "\(held.out)")
        #expect(try run(["unreserve", "1", "--socket", sock]).status == 0)
        // A bad config: refused, the daemon keeps running on the old one.
        try "[pacing]\ndeadband = \"lots\"\n".write(to: config, atomically: true, encoding: .utf8)
        kill(p.processIdentifier, SIGHUP)
        try await Task.sleep(for: .seconds(1))
        #expect(p.isRunning)
        // One the host cannot honour (the sim host has 30 GiB): refused with its line, not applied.
        try (daemonSection + "[share]\nhost_reserve = \"64G\"\n").write(to: config, atomically: true, encoding: .utf8)
        kill(p.processIdentifier, SIGHUP)
        try await Task.sleep(for: .seconds(1))
        #expect(p.isRunning)
        // A good one: accepted.
        try (daemonSection + "[pacing]\ndeadband = \"32M\"\n").write(to: config, atomically: true, encoding: .utf8)
        kill(p.processIdentifier, SIGHUP)
        try await Task.sleep(for: .seconds(1))
        kill(p.processIdentifier, SIGTERM)
        #expect(await waitForExit(p, seconds: 10), "daemon did not stop on SIGTERM")
        #expect(p.terminationStatus == 0)
        // The log was folded into the file at shutdown: no -wal is left behind (it used to be 4 MB).
        let wal = (try? FileManager.default.attributesOfItem(atPath: db + "-wal")[.size] as? Int64) ?? 0
        #expect(wal == 0, "\(wal) bytes of WAL left after a clean stop")

        let text = try String(contentsOf: log, encoding: .utf8)
        // No round lost, no push failed: read from the daemon's own log.
        #expect(!text.contains("decision not recorded") && !text.contains("target not set") && text.contains("unrecorded=0"))
        #expect(text.contains("reservation made") && text.contains("reservation cancelled"))
        #expect(text.contains("config refused, keeping the old one") && text.contains("deadband"))
        #expect(text.contains("line 7: share.host_reserve: 64G") && text.contains("is not below the host's 29G"), "\(text)")
        #expect(text.contains("config reloaded"))
        let store = try DecisionStore(readingAt: db)
        let triggers = try await store.db.read { try String.fetchAll($0, sql: "SELECT trigger FROM rounds ORDER BY id") }
        #expect(triggers.first == "startup" && triggers.last == "shutdown" && triggers.count > 5)
        let changes = try await store.db.read { try Row.fetchAll($0, sql: "SELECT accepted FROM config_changes ORDER BY id") }.map { $0[0] as Int }
        #expect(changes == [1, 0, 0, 1])
        let before = try store.latest()

        // Restart on the same store and host scenario: it comes back up and records again.
        let q = try start(["daemon", "--config", config.path], stderr: log)
        try await Task.sleep(for: .seconds(2))
        kill(q.processIdentifier, SIGTERM)
        #expect(await waitForExit(q, seconds: 10))
        #expect(q.terminationStatus == 0)
        #expect(try store.counts()["rounds"]! > triggers.count)
        #expect(before.count == 13)
        // The setting survived the restart (persisted by name) and was applied.
        #expect(try store.settings()["web-1"] == AdminSetting(min: KiB(gib: 3), weight: 2))
        #expect(try store.latest().first { $0.name == "web-1" }!.floor >= KiB(gib: 3))
        let actions = try await store.db.read { try String.fetchAll($0, sql: "SELECT action FROM admin_actions") }
        #expect(actions == ["set web-1"])
    }

    @Test func theReportersLineOnThisMachineIsAcceptedByTheArbiter() throws {
        let reporter = Self.binary.deletingLastPathComponent().appendingPathComponent("arbiter-reporter")
        try #require(FileManager.default.isExecutableFile(atPath: reporter.path))
        let p = Process()
        p.executableURL = reporter
        p.arguments = ["--once", "--stdout"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let line = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        let report = try ReportParser.parse(line).get()
        #expect(report.memTotal.value > 0 && report.seq! > 0)
        // Without a xenstore device: a clear error and a failure exit, not a crash or a hang.
        if !XenTests.hasXen {
            let q = Process()
            q.executableURL = reporter
            q.arguments = ["--once"]
            let err = Pipe()
            q.standardError = err
            try q.run()
            let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            q.waitUntilExit()
            #expect(q.terminationStatus == 1 && e.contains("cannot open xenstore"))
        }
    }

    @Test func xenBackendWithoutXenIsOneClearLine() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        guard !XenTests.hasXen else { return }
        let dir = try scratch("xen")
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("stderr.log")
        let p = try start(["daemon", "--backend", "xen", "--db", dir.appendingPathComponent("d.sqlite").path], stderr: log)
        #expect(await waitForExit(p, seconds: 10))
        #expect(p.terminationStatus == 3)
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("not a Xen dom0"), "\(lines)")
    }

    /// Whether this machine lets a test mount in a namespace of its own (to make a read-only medium).
    static let canMountPrivately: Bool = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["-rm", "true"]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    /// The read verbs on a read-only medium (a store copied off a dead host, a ro bind mount): SQLite
    /// cannot make the WAL's -shm there; they read the file as immutable and say so.
    @Test(.enabled(if: canMountPrivately, "needs unshare -rm to make a read-only mount"))
    func readVerbsWorkOnAReadOnlyMedium() throws {
        let dir = try scratch("ro")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("d.sqlite").path
        do {
            let store = try DecisionStore(path: db)
            var arb = Arbitration()
            let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2))]
            let d = arb.step(HostSnapshot(free: KiB(gib: 1), domains: facts), now: TimePoint(ms: 0))
            try store.record(d, at: Date(), trigger: .tick, hostTotal: KiB(gib: 8), outcomes: d.outcomes, fullSnapshot: true, names: [DomID(1): "web"])
            try store.close()
        }
        for s in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + s) }
        let script = "mount --bind \(dir.path) \(dir.path) && mount -o remount,bind,ro \(dir.path) && exec \(Self.binary.path) list --db \(db)"
        let r = try run(["-rm", "sh", "-c", script], executable: URL(fileURLWithPath: "/usr/bin/unshare"))
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("web"), "\(r)")
        #expect(r.err.contains("read-only medium"), "\(r)")
    }

    /// A store a newer arbiter migrated: the daemon will not write to it (one line, exit 2).
    @Test func theDaemonRefusesANewerStore() async throws {
        let dir = try scratch("newer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("d.sqlite").path
        do {
            let store = try DecisionStore(path: db)
            try await store.db.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('V0042_newer')") }
            try store.close()
        }
        let log = dir.appendingPathComponent("stderr.log")
        let p = try start(["daemon", "--db", db, "--socket", dir.appendingPathComponent("s.sock").path], stderr: log)
        #expect(await waitForExit(p, seconds: 10))
        #expect(p.terminationStatus == 2)
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("newer arbiter") && lines[0].contains("V0042_newer"), "\(lines)")
        let rounds = try DecisionStore(readingAt: db).counts()["rounds"]
        #expect(rounds == 0)
    }

    /// Calling mistakes are one line on stderr and exit 64: times that are not times, a range that
    /// ends before it starts, negative or zero sizes, weights out of range.
    @Test func cliMistakesAreOneLineAndExit64() throws {
        let dir = try scratch("cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("d.sqlite").path
        try DecisionStore(path: db).close()
        let sock = dir.appendingPathComponent("none.sock").path
        let cases: [([String], String)] = [
            (["report", "--since", "1h", "--until", "2h", "--db", db], "is after --until"),
            (["report", "--since", "nan", "--db", db], "not a finite time"),
            (["report", "--until", "inf", "--db", db], "not a finite time"),
            (["alerts", "--since", "1e300", "--db", db], "outside 1970 to tomorrow"),
            (["alerts", "--since", "infm", "--db", db], "finite number"),
            (["history", "web", "--since", "yesterday", "--db", db], "is not 10m, 2h, 3d"),
            (["set", "web", "--floor", "-1G", "--socket", sock], "cannot be negative"),
            (["set", "web", "--ceiling", "0", "--socket", sock], "must be more than 0"),
            (["set", "web", "--weight", "5e-324", "--socket", sock], "from 0.01 to 100"),
            (["set", "web", "--weight", "-2", "--socket", sock], "from 0.01 to 100"),
            (["reserve", "0M", "--socket", sock], "must be more than 0"),
            (["reserve", "1G", "--timeout", "-5", "--socket", sock], "between 1 and 3600"),
            (["start", "--timeout", "inf", "--socket", sock, "/nonexistent.cfg"], "between 1 and 3600"),
        ]
        for (args, expected) in cases {
            let r = try run(args)
            let lines = r.err.split(separator: "\n")
            #expect(r.status == 64 && lines.count == 1 && r.err.contains(expected), "\(args): \(r)")
        }
        // Sane ranges still work.
        #expect(try run(["report", "--since", "2h", "--until", "1h", "--db", db]).status == 0)
    }

    /// A config the host cannot honour stops the daemon before its first round: one line, exit 2.
    @Test func anImpossibleConfigIsRefusedAtStart() async throws {
        let dir = try scratch("impossible")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config.toml")
        try "[share]\nhost_reserve = \"64G\"\n".write(to: config, atomically: true, encoding: .utf8)
        let log = dir.appendingPathComponent("stderr.log")
        let p = try start(["daemon", "--config", config.path, "--db", dir.appendingPathComponent("d.sqlite").path,
                           "--socket", dir.appendingPathComponent("s.sock").path], stderr: log)
        #expect(await waitForExit(p, seconds: 10))
        #expect(p.terminationStatus == 2)
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("line 2: share.host_reserve: 64G") && lines[0].contains("is not below the host's"), "\(lines)")
    }
}
