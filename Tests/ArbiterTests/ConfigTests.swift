import Foundation
import Testing
@testable import Arbiter
import GuestModel
import BundledScenarios
import Logging

/// The package root, found from this file's path (tests run from anywhere).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("config.toml")
struct ConfigTests {
    @Test func shippedExampleIsTheGeneratedOneAndLoadsToTheDefaults() throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("config.toml.example"), encoding: .utf8)
        #expect(text == ConfigFile.example(), "config.toml.example is out of date: run `arbiter config-example > config.toml.example`")
        #expect(try ConfigFile.load(text) == ArbiterConfig())
        for key in ConfigFile.keys { #expect(text.contains("\n\(key.name) = "), "\(key.path) undocumented") }
    }

    @Test func emptyFileIsTheDefaults() throws {
        #expect(try ConfigFile.load("") == ArbiterConfig())
    }

    @Test func valuesOverrideDefaults() throws {
        let all = try ConfigFile.load("""
            [floors]
            absolute_min = "256M"
            silent = "admin-floor"
            [share]
            host_reserve = 131072
            surplus = "keep-free"
            default_weight = 2
            [pacing]
            shrink_fraction_per_second = 0.02
            max_shrink_per_second = "1G"
            [reports]
            min_interval_ms = 500
            [daemon]
            backend = "xen"
            database = "/tmp/x.sqlite"
            dry_run = true
            [sim]
            speed = 60
            """)
        let c = all.policy
        #expect(all.daemon.backend == .xen && all.daemon.database == "/tmp/x.sqlite" && all.daemon.dryRun && all.daemon.simSpeed == 60)
        #expect(c.floors.absoluteMin == KiB(mib: 256) && c.floors.silent == .adminFloor)
        #expect(c.share.hostReserve == KiB(mib: 128) && c.share.surplus == .keepFree && c.share.defaultWeight == 2)
        #expect(c.pacing.shrinkFractionPerSecond == 0.02 && c.pacing.maxShrinkPerSecond == KiB(gib: 1))
        #expect(c.tracker.minIntervalMs == 500)
    }

    func errors(_ text: String) -> [ConfigError] {
        do { _ = try ConfigFile.load(text); return [] } catch { return error.errors }
    }

    @Test func unknownKeysAndSectionsNameKeyAndLine() {
        let e = errors("""
            [estimator]
            headroom = 0.2
            hedroom = 0.3

            [tuning]
            x = 1
            """)
        #expect(e.count == 2)
        #expect(e.contains(ConfigError(key: "estimator.hedroom", line: 3, message: "unknown key")))
        #expect(e.contains { $0.key == "tuning" && $0.line == 5 && $0.message.hasPrefix("unknown section") })
    }

    @Test func badValuesNameKeyLineAndExpectedType() {
        let e = errors("""
            [estimator]
            max_boost = "lots"
            [floors]
            absolute_min = "-5M"
            selfballoon = 1
            silent = "shrink-anyway"
            [reports]
            resync_after = 2.5
            """)
        #expect(e.count == 5)
        #expect(e.contains { $0.key == "estimator.max_boost" && $0.line == 2 && $0.message.contains("expected a number") })
        #expect(e.contains { $0.key == "floors.absolute_min" && $0.line == 4 && $0.message.contains("expected a size") })
        #expect(e.contains { $0.key == "floors.selfballoon" && $0.line == 5 && $0.message.contains("true or false") })
        #expect(e.contains { $0.key == "floors.silent" && $0.line == 6 && $0.message.contains("\"hold\"") })
        #expect(e.contains { $0.key == "reports.resync_after" && $0.line == 8 && $0.message.contains("whole number") })
        #expect(e.map { $0.line ?? 0 } == e.map { $0.line ?? 0 }.sorted())
    }

    @Test func outOfRangeValuesAreRejectedWithTheirLine() {
        let e = errors("""
            [pacing]
            deadband_fraction = 0.9
            """)
        #expect(e.count == 1)
        #expect(e[0].line == 2 && e[0].key == "pacing.deadband_fraction" && e[0].message.contains("must be between"))
        let crit = errors("[estimator]\ncritical_pressure = 0.001\n")
        #expect(crit.contains { $0.key == "estimator.critical_pressure" && $0.line == 2 && $0.message.contains("must be above") })
        let daemon = errors("[daemon]\nbackend = \"kvm\"\ntick_seconds = 0\n")
        #expect(daemon.contains { $0.key == "daemon.backend" && $0.line == 2 && $0.message.contains("\"xen\"") })
    }

    @Test func syntaxErrorsCarryTheLine() {
        let e = errors("[pacing]\ndeadband = \n")
        #expect(e.count == 1 && e[0].line == 2 && e[0].message.hasPrefix("syntax error"))
    }
}

@Suite("Sizes")
struct SizeTests {
    @Test(arguments: [("512M", KiB(mib: 512)), ("4G", KiB(gib: 4)), ("1.5G", KiB(mib: 1536)), ("131072", KiB(131_072)),
                      ("16K", KiB(16)), ("2g", KiB(gib: 2)), ("256MiB", KiB(mib: 256)), ("1T", KiB(gib: 1024)), (" 8M ", KiB(mib: 8))])
    func parses(text: String, expected: KiB) {
        #expect(KiB(parsing: text) == expected)
    }

    @Test(arguments: ["", "M", "-1G", "1.2.3G", "0x10M", "1e3", "5000T", ".5G", "1.0000001K", "12Q", "nan", "99999999999999999999999"])
    func rejects(text: String) {
        #expect(KiB(parsing: text) == nil, "accepted \(text)")
    }

    @Test func formatsLikeXl() {
        #expect(formatSize(KiB(mib: 512)) == "512M")
        #expect(formatSize(KiB(gib: 4)) == "4G")
        #expect(formatSize(KiB(mib: 1536)) == "1.5G")
        #expect(formatSize(KiB(100)) == "100K")
    }
}

@Suite("Backend choice")
struct BackendChoiceTests {
    static func procXen(_ capabilities: String?) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arbiter-procxen-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if let capabilities { try capabilities.write(to: dir.appendingPathComponent("capabilities"), atomically: true, encoding: .utf8) }
        return dir.path
    }

    @Test func theRoleIsReadFromProcXen() throws {
        #expect(XenRole.detect(procXen: "/nonexistent/proc/xen") == .none)
        #expect(XenRole.detect(procXen: try Self.procXen("control_d\n")) == .controlDomain)
        #expect(XenRole.detect(procXen: try Self.procXen("")) == .guest)
        #expect(XenRole.detect(procXen: try Self.procXen(nil)) == .unknown)
    }

    /// The default (`auto`) runs Xen on a dom0 and the simulator elsewhere; an explicit `sim` on a dom0
    /// is refused (it recorded simulated history into the real store) unless `sim.on_dom0` says so.
    @Test func autoPicksByRoleAndSimOnADom0NeedsTheFlag() throws {
        var d = DaemonSettings()
        #expect(d.backend == .auto)
        #expect(try d.resolvedBackend(role: .controlDomain).0 == .xen)
        #expect(try d.resolvedBackend(role: .unknown).0 == .xen)
        #expect(try d.resolvedBackend(role: .none).0 == .sim)
        #expect(try d.resolvedBackend(role: .guest).0 == .sim)
        d.backend = .sim
        #expect(try d.resolvedBackend(role: .none).0 == .sim)
        #expect {
            try d.resolvedBackend(role: .controlDomain)
        } throws: { e in
            (e as? StartupError).map { $0.exitCode == 2 && $0.description.contains("on_dom0") } ?? false
        }
        d.simOnDom0 = true
        #expect(try d.resolvedBackend(role: .controlDomain).0 == .sim)
        d.backend = .xen
        #expect(try d.resolvedBackend(role: .none).0 == .xen)
        // The shipped example says so too.
        let example = ConfigFile.example()
        #expect(example.contains("backend = \"auto\"") && example.contains("on_dom0 = false"))
    }
}

@Suite("Config against the host")
struct HostConfigTests {
    /// A reserve that would leave the guests less than their floors is refused once the floors are
    /// known (it shrank every guest to its floor with no alert); what the host can give is named.
    @Test func aReserveTheFloorsCannotAffordIsRefused() async throws {
        let host = SimulatedHost(scenario: try ScenarioFile.parse(BundledScenarios.named("default")!))
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let loop = ControlLoop(backend: host, store: nil, config: ArbiterConfig(), logger: logger,
                               now: { TimePoint(seconds: await host.seconds) }, settings: { await host.adminSettings() })
        #expect(await loop.hostProblems(ArbiterConfig()).isEmpty)
        await loop.round(trigger: .startup)
        for _ in 0..<60 {
            for e in await host.advance(by: 2) { await loop.note(e) }
            await loop.round(trigger: .tick)
        }
        let floors = await loop.lastDecision!.outcomes.reduce(KiB.zero) { $0 + $1.staticFloor }
        let total = await host.memory().total
        var c = ArbiterConfig()
        c.policy.share.hostReserve = KiB(total.value - floors.value + KiB(gib: 1).value)
        let p = await loop.hostProblems(c)
        #expect(p.count == 1 && p[0].key == "share.host_reserve" && p[0].message.contains("less than their floors"), "\(p)")
        let placed = ConfigFile.place(p, in: "[share]\nhost_reserve = \"\(c.policy.share.hostReserve.value)\"\n")
        #expect(placed.first?.line == 2)
        c.policy.share.hostReserve = KiB(mib: 128)
        let fine = await loop.hostProblems(c)
        #expect(fine.isEmpty, "\(fine)")
        c.policy.share.hostReserve = KiB(gib: 64)
        #expect(await loop.hostProblems(c).first.map { $0.key == "share.host_reserve" && $0.message.contains("is not below the host's") } == true)
        c = ArbiterConfig()
        c.policy.floors.absoluteMin = KiB(gib: 16)
        #expect(await loop.hostProblems(c).contains { $0.key == "floors.absolute_min" && $0.message.hasPrefix("16G is above") })
    }
}
