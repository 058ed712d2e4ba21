import BundledScenarios
import Foundation
import Logging
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

@Suite("Reports over a recorded run")
struct ReportTests {
    /// Records 3 minutes of the default scenario through the control loop into an in-memory store.
    func recorded() async throws -> DecisionStore { try await recordDefaultScenario(rounds: 90, step: 2) }

    @Test func textCsvJsonAndHtmlCoverTheRun() async throws {
        let store = try await recorded()
        let r = try store.report(since: nil, until: nil)
        #expect(r.rounds == 91 && r.domains.count == 13)
        #expect(r.domains.allSatisfy { !$0.points.isEmpty })
        #expect(r.until - r.from == 180)
        #expect(r.domains.first { $0.name == "hostile" }!.rejections > 0)
        #expect(r.domains.first { $0.name == "web-1" }!.targetChanges > 0)

        let text = r.text()
        #expect(text.contains("91 rounds") && text.contains("web-1") && text.contains("held:no-report"))

        let csv = r.csv().split(separator: "\n")
        #expect(csv[0] == "time,domain,domid,actual_kib,target_kib,floor_kib,allocation_kib,stall,reason")
        #expect(csv.count == 1 + r.domains.reduce(0) { $0 + $1.points.count })

        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.json().utf8)) as? [String: Any])
        #expect(json["rounds"] as? Int == 91 && (json["domains"] as? [[String: Any]])?.count == 13)

        let html = r.html()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<svg ").count - 1 == 13)      // a chart per domain
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://") && !html.contains("src="))
        #expect(html.contains("Alerts"))
    }

    @Test func aWindowSelectsRounds() async throws {
        let store = try await recorded()
        let all = try store.report(since: nil, until: nil)
        let half = try store.report(since: Date(timeIntervalSince1970: all.from + 90), until: nil)
        #expect(half.rounds == 46)
        #expect(half.from >= all.from + 90)
    }

    @Test func thinningKeepsTheWorstStall() {
        let points = (0..<1000).map { i in
            Report.Point(at: Double(i), actualKiB: 1, targetKiB: 1, floorKiB: 1, allocationKiB: 1, stall: i == 501 ? 0.9 : 0, reason: .known(.steady))
        }
        let thin = Report.thin(points, to: 100)
        #expect(thin.count <= 101 && thin.count >= 99)
        #expect(thin.contains { $0.stall == 0.9 })
        #expect(Report.thin(Array(points.prefix(50)), to: 100).count == 50)
    }

    @Test func namesAreEscapedInHtml() {
        let r = Report(from: 0, until: 1, rounds: 1, phases: [:], minFreeKiB: 0, meanFreeKiB: 0, hostTotalKiB: 1,
                       domains: [Report.Domain(name: "<b>x</b>", domid: 1, ceilingKiB: 4,
                                               points: [Report.Point(at: 0, actualKiB: 1, targetKiB: 1, floorKiB: 1, allocationKiB: 1, stall: nil, reason: .known(.steady))],
                                               targetChanges: 0, maxStall: 0, minTargetKiB: 1, maxTargetKiB: 1, meanActualKiB: 1, rejections: 0)],
                       alerts: [], sampled: false)
        #expect(!r.html().contains("<b>x</b>") && r.html().contains("&lt;b&gt;x&lt;/b&gt;"))
    }
}

/// A manual wall clock for recorded times.
final class WallClock: @unchecked Sendable {
    private var t = 1_800_000_000.0
    private let lock = NSLock()
    func now() -> Date { lock.lock(); defer { lock.unlock() }; return Date(timeIntervalSince1970: t) }
    func advance(_ s: Double) { lock.lock(); t += s; lock.unlock() }
}

@Suite("Long reports")
struct LongReportTests {
    @Test func longPeriodsAreChartedFromSampledSnapshotsButCountedInFull() throws {
        let store = try DecisionStore()
        var arb = Arbitration()
        let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2))]
        var d = arb.step(HostSnapshot(free: KiB(gib: 1), domains: facts), now: TimePoint(ms: 0))
        for k in 0..<(Report.maxChartRounds + 1000) {
            d.outcomes[0].previousTarget = d.outcomes[0].target
            d.outcomes[0].target = KiB(gib: 2) + KiB(Int64(k % 2) * 4096)       // a change every round
            try store.record(d, at: Date(timeIntervalSince1970: Double(k)), trigger: .tick, hostTotal: KiB(gib: 8),
                             outcomes: d.outcomes, fullSnapshot: k % 10 == 0, names: [DomID(1): "a"])
        }
        let r = try store.report(since: nil, until: nil)
        #expect(r.sampled)
        #expect(r.domains[0].points.count == (Report.maxChartRounds + 1000) / 10)
        #expect(r.domains[0].targetChanges == Report.maxChartRounds + 1000 - 1)
    }
}
