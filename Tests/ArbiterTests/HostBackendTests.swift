import BundledScenarios
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

@Suite("The simulated host behind the backend protocol")
struct HostBackendTests {
    func host() throws -> SimulatedHost {
        SimulatedHost(scenario: try ScenarioFile.parse(BundledScenarios.named("hostile")!))
    }

    @Test func listsDomainsAndMemory() async throws {
        let h = try host()
        let backend: any HostBackend = h
        let ds = try await backend.domains()
        #expect(ds.count == 10 && ds.map(\.domid.raw) == Array(1...10))
        #expect(ds[0].name == "honest-1" && ds[0].staticMax == KiB(gib: 6) && ds[0].actual == KiB(gib: 2))
        let m = try await backend.memory()
        #expect(m.total == KiB(gib: 19))
        #expect(m.free.value == m.total.value - ds.reduce(0) { $0 + $1.actual.value })
    }

    @Test func reportsArriveAsEventsAndReadBackBounded() async throws {
        let h = try host()
        var introduced = 0, reports = [DomID: Int]()
        // 10 introductions, then the writes of 10 s, taken a quarter second at a time as the daemon
        // takes them (a write repeated before the loop took the first is one event: the loop reads
        // the latest value anyway).
        for e in await h.takeEvents() { if case .domainIntroduced = e.event { introduced += 1 } }
        for _ in 0..<40 {
            await h.advance(by: 0.25)
            for e in await h.takeEvents().map(\.event) {
                switch e {
                case .reportWritten(let d, let key):
                    #expect(key == "data/pressure")
                    reports[d, default: 0] += 1
                default: Issue.record("unexpected \(e)")
                }
            }
        }
        #expect(introduced == 10 && reports[DomID(1), default: 0] >= 4 && reports[DomID(5), default: 0] >= 4, "\(reports)")
        // The liars' bursts of 20 writes in one instant each reached the loop as one event.
        #expect(h.eventCounts.offered - h.eventCounts.queued >= 19, "\(h.eventCounts)")
        #expect(reports[DomID(8)] == nil)                                      // "mute" is silent
        let line = try #require(try await h.readReport(DomID(1), key: "data/pressure", limit: 1024))
        #expect((try? ReportParser.parse(String(decoding: line, as: UTF8.self)).get()) != nil)
        // A hostile guest's 3 KiB of garbage comes back cut at limit + 1, so the parser refuses it.
        await h.advance(by: 30)
        var sawLong = false
        for _ in 0..<20 {
            if let raw = try await h.readReport(DomID(5), key: "data/pressure", limit: 64), raw.count == 65 { sawLong = true; break }
            await h.advance(by: 2)
        }
        #expect(sawLong)
        #expect(try await h.readReport(DomID(8), key: "data/pressure", limit: 64) == nil)
    }

    @Test func targetsFollowXenRules() async throws {
        let h = try host()
        await #expect(throws: HostError.self) { try await h.setTarget(DomID(1), KiB(gib: 7)) }
        await #expect(throws: HostError.noSuchDomain(DomID(99))) { try await h.setTarget(DomID(99), KiB(gib: 1)) }
        try await h.setTarget(DomID(1), KiB(gib: 3))
        await h.advance(by: 10)
        let d = try #require(await h.domains().first)
        #expect(d.target == KiB(gib: 3) && d.actual == KiB(gib: 3))
    }
}
