import Foundation
import GuestModel
import Testing
@testable import Arbiter

/// What scripts/package.sh and the systemd units rely on: one version, a manual page with every config
/// key, a unit whose watchdog leaves the daemon's rounds room.
@Suite("packaging: version, manual pages, units")
struct PackagingTests: ArbiterProcessTest {
    static let scratchPrefix = "arbiter-pkg"

    func file(_ path: String) throws -> String {
        try String(contentsOf: packageRoot.appendingPathComponent(path), encoding: .utf8)
    }

    @Test func theChangelogAndTheBinaryCarryTheOneVersion() throws {
        let first = try #require(try file("dist/debian/changelog").split(separator: "\n").first)
        #expect(first.hasPrefix("arbiter (\(ArbiterRelease.version)) "), "dist/debian/changelog's first entry is not \(ArbiterRelease.version): \(first)")
        let v = try run(["--version"])
        #expect(v.status == 0 && v.out == ArbiterRelease.version + "\n", "\(v)")
    }

    /// Each `.Ss [section]` of the page with the `.It Cm key` lines under it.
    func manualKeys(_ page: String) -> [String] {
        var section = "", out = [String]()
        for line in page.split(separator: "\n") {
            if line.hasPrefix(".Ss \\&[") { section = String(line.dropFirst(7).dropLast()) }
            if line.hasPrefix(".It Cm ") { out.append(section + "." + line.dropFirst(7)) }
        }
        return out
    }

    @Test func theConfigManualDocumentsExactlyTheKeysTheParserReads() throws {
        let page = ConfigFile.manual(date: "January 1, 2027")
        #expect(manualKeys(page) == ConfigFile.keys.map(\.path))
        let defaults = ArbiterConfig()
        for key in ConfigFile.keys {
            // The key's line, its doc, and its default as the file would spell it.
            let lines = page.split(separator: "\n", omittingEmptySubsequences: false)
            let at = try #require(lines.firstIndex(of: Substring(".It Cm " + key.name)))
            #expect(lines[at + 1] == ConfigFile.roffText(key.doc), "\(key.path)")
            #expect(lines[at + 3] == "Default: " + ConfigFile.render(key, defaults), "\(key.path)")
        }
        // Every value the parser accepts under a name the page shows: the page's key names load.
        for path in manualKeys(page) {
            let parts = path.split(separator: ".")
            let key = try #require(ConfigFile.keys.first { $0.path == path })
            let text = "[\(parts[0])]\n\(parts[1]) = \(ConfigFile.render(key, defaults))\n"
            #expect(try ConfigFile.load(text) == defaults, "\(path)")
        }
        #expect(page.hasPrefix(".\\\" Generated") && page.contains(".Dd January 1, 2027\n.Dt ARBITER.TOML 5"))
        // No text line a roff reader would take for a request.
        #expect(!page.split(separator: "\n").contains { $0.hasPrefix("'") })
    }

    @Test func theCLIPrintsTheConfigManualWithAReproducibleDate() throws {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["config-example", "--man"]
        var env = ProcessInfo.processInfo.environment
        env["SOURCE_DATE_EPOCH"] = "1798761600"   // 2027-01-01
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(text == ConfigFile.manual(date: "January 1, 2027"))
    }

    /// `Key=value` settings of a unit file (the last one of a key wins, as systemd reads them).
    func unit(_ path: String) throws -> [String: String] {
        var out = [String: String]()
        for line in try file(path).split(separator: "\n") where !line.hasPrefix("#") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            out[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return out
    }

    @Test func theUnitsRunThePackagedBinariesAndTheWatchdogOutlastsARoundInterval() throws {
        let arbiter = try unit("dist/arbiter.service")
        #expect(arbiter["Type"] == "notify")
        #expect(arbiter["ExecStart"]?.hasPrefix("/usr/sbin/arbiter daemon --config /etc/arbiter/config.toml") == true)
        #expect(arbiter["Documentation"]?.contains("man:arbiter(8)") == true)
        // The daemon pings at least once a round and the longest gap between rounds is tick_seconds.
        let watchdog = try #require(arbiter["WatchdogSec"].flatMap(Double.init))
        #expect(watchdog >= 3 * ArbiterConfig().daemon.tickSeconds)
        // What the daemon writes by default is writable under ProtectSystem=strict.
        let d = ArbiterConfig().daemon
        #expect(arbiter["StateDirectory"] == "arbiter" && d.database.hasPrefix("/var/lib/arbiter/"))
        #expect(arbiter["RuntimeDirectory"] == "arbiter" && d.socket.hasPrefix("/run/arbiter/"))
        let reporter = try unit("dist/arbiter-reporter.service")
        #expect(reporter["ExecStart"]?.hasPrefix("/usr/sbin/arbiter-reporter ") == true)
    }
}
