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
        #expect(ds[0].name == "honest-1" && ds[0].staticMax == KiB(gib: 6) && ds[0].current == KiB(gib: 2))
        let m = try await backend.memory()
        #expect(m.total == KiB(gib: 19))
        #expect(m.free.value == m.total.value - ds.reduce(0) { $0 + $1.current.value })
    }

    @Test func reportsArriveAsEventsAndReadBackBounded() async throws {
        let h = try host()
        let stream = await h.events()
        var introduced = 0, reports = [DomID: Int]()
        var it = stream.makeAsyncIterator()
        // 10 introductions, then the writes of 10 s, taken as they come (a write repeated before the
        // loop took the first is one event: the loop reads the latest value anyway).
        for _ in 0..<10 { if case .domainIntroduced = await it.next() { introduced += 1 } }
        for _ in 0..<40 {
            let before = h.eventCounts.queued
            await h.advance(by: 0.25)
            for _ in 0..<(h.eventCounts.queued - before) {
                switch await it.next() {
                case .reportWritten(let d, let key)?:
                    #expect(key == "data/pressure")
                    reports[d, default: 0] += 1
                case let e: Issue.record("unexpected \(String(describing: e))")
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
        #expect(d.target == KiB(gib: 3) && d.current == KiB(gib: 3))
    }
}
