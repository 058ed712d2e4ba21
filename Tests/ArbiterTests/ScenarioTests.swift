import BundledScenarios
import Foundation
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

@Suite("Scenario files and the simulate harness")
struct ScenarioTests {
    @Test func everyShippedScenarioIsBundledAndParses() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("scenarios").path)
            .filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }.sorted()
        #expect(BundledScenarios.all.map(\.name).sorted() == files, "list every scenarios/*.toml in Package.swift and BundledScenarios.swift")
        for (name, text) in BundledScenarios.all {
            let s = try ScenarioFile.parse(text)
            #expect(s.name == name)
            #expect(s.problems().isEmpty)
        }
    }

    @Test(arguments: BundledScenarios.all.map(\.name))
    func ourPolicyHasNoFloorViolationsOnShippedScenarios(name: String) async throws {
        let s = try ScenarioFile.parse(BundledScenarios.named(name)!)
        let r = await LoopEvaluation.run(s)
        let m = r.metrics
        #expect(m.floorViolations == 0, "\(name)")
        #expect(r.violations.isEmpty, "\(name): \(r.violations.prefix(3))")
        #expect(m.refusedTargets == 0, "\(name)")
    }

    @Test func scenarioErrorsNameKeyAndLine() {
        let text = """
            name = "bad"
            colour = "blue"
            [host]
            memory = "lots"
            [arbiter.pacing]
            deadband = "huge"
            [[guest]]
            name = "a"
            static_max = "2G"
            behaviour = "sneaky"
            workload = { kind = "dance" }
            """
        do {
            _ = try ScenarioFile.parse(text)
            Issue.record("accepted")
        } catch {
            let e = error.errors
            #expect(e.contains { $0.key == "colour" && $0.line == 2 })
            #expect(e.contains { $0.key == "host.memory" && $0.line == 4 })
        }
        do {
            _ = try ScenarioFile.parse(text.replacingOccurrences(of: "\"lots\"", with: "\"8G\""))
            Issue.record("accepted")
        } catch {
            let e = error.errors
            #expect(e.contains { $0.key == "arbiter.pacing.deadband" && $0.line == 6 }, "\(e)")
            #expect(e.contains { $0.key == "guest[a].behaviour" && $0.line == 7 }, "\(e)")
            #expect(e.contains { $0.key == "guest[a].workload.kind" && $0.message.contains("dance") }, "\(e)")
        }
    }

    @Test func countExpandsAndArbiterSettingsApply() throws {
        let s = try ScenarioFile.parse("""
            name = "x"
            hours = 0.5
            [host]
            memory = "16G"
            xen_reserve = "1G"
            [arbiter.share]
            surplus = "distribute"
            [[guest]]
            name = "w"
            count = 3
            static_max = "2G"
            boot = "1G"
            behaviour = "legacy"
            workload = { kind = "leak", base = "500M", rate = "1M", limit = "1G" }
            """)
        #expect(s.guests.map(\.name) == ["w-1", "w-2", "w-3"])
        #expect(s.pool == KiB(gib: 15) && s.hours == 0.5 && s.policy.share.surplus == .distribute)
        #expect(s.guests[0].behaviour == .legacy && s.guests[0].boot == KiB(gib: 1))
    }

    @Test func traceScenariosLoadAnyFileInTheFormat() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arbiter-trace-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var csv = "vm_id,t_seconds,mem_provisioned_kb,mem_used_kb,extra\n"
        for vm in 0..<4 { for t in stride(from: 0, through: 3600, by: 300) { csv += "v\(vm),\(t),4194304,\(1_000_000 + vm * 300_000 + t * 100),x\n" } }
        let path = dir.appendingPathComponent("t.csv").path
        try csv.write(toFile: path, atomically: true, encoding: .utf8)
        let s = try TraceFile.scenario(path: path, vms: 3, hours: nil, hostMemory: KiB(gib: 8), policy: PolicyConfig())
        #expect(s.guests.map(\.name) == ["v0", "v1", "v2"])
        #expect(s.hours == 1 && s.pool == KiB(gib: 8))
        #expect(s.problems().isEmpty)
        let r = await LoopEvaluation.run(s)
        #expect(r.metrics.floorViolations == 0 && r.violations.isEmpty)
        // A scenario file can follow one VM of a trace.
        let sc = try ScenarioFile.parse("""
            name = "t"
            [host]
            memory = "8G"
            [[guest]]
            name = "follow"
            static_max = "4G"
            boot = "2G"
            workload = { kind = "trace", file = "t.csv", vm = "v2" }
            """, folder: dir.path)
        #expect(sc.guests[0].workload.workingSet(at: 600) == 1_660_000)
    }

    @Test func theShippedGoogleSampleLoads() throws {
        let path = packageRoot.appendingPathComponent("Tests/ArbiterTests/Fixtures/google2011-sample.csv").path
        try #require(FileManager.default.fileExists(atPath: path), "the sample ships with the repository")
        let vms = try TraceFile.load(path: path, maxVMs: 25)
        #expect(vms.count == 25)
        #expect(vms.allSatisfy { $0.series.times.count > 100 && $0.provisioned.value > 0 })
    }

    @Test func jsonKeepsTheContractNames() async throws {
        let s = try ScenarioFile.parse(BundledScenarios.named("hostile")!)
        var short = s
        short.hours = 0.05
        let results = await LoopEvaluation.compare(short, policies: [.arbiter, .static])
        let json = SimulationReport.json(results, scenario: short)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(doc["scenario"] as? String == "hostile" && doc["seed"] as? Int == 13)
        let policies = try #require(doc["policies"] as? [[String: Any]])
        #expect(policies.map { $0["policy"] as? String } == ["arbiter", "static"])
        for key in ["stall_seconds", "p99_stall_seconds", "reclaimed_gib_hours", "reclaimed_pct", "floor_violations",
                    "target_changes", "jain_fairness", "rejected_reports"] {
            #expect(policies[0][key] != nil, "missing \(key)")
        }
    }
}
