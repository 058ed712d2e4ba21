import Foundation
import GRDB
import Testing
@testable import Arbiter
import GuestModel

/// The read models give back GuestModel values, decoded from the text the store keeps; text this
/// arbiter does not know (a newer arbiter's database) reads back as that text.
@Suite("Decision store read models")
struct StoreReadModelTests {
    /// Every value of a UInt8-backed enum (none is CaseIterable).
    func every<T: RawRepresentable>(_: T.Type) -> [T] where T.RawValue == UInt8 { (0...UInt8.max).compactMap(T.init(rawValue:)) }

    func roundTrips<T: RecordedText>(_ values: [T]) -> Bool {
        Set(values.map(\.recordedText)).count == values.count
            && values.allSatisfy { Recorded<T>($0.recordedText) == .known($0) && Recorded<T>($0.recordedText).description == $0.recordedText }
    }

    @Test func everyValueReadsBackAsItselfAndPrintsItsText() {
        #expect(roundTrips(Reason.allCases))
        #expect(roundTrips(every(ReportStatus.self)) && every(ReportStatus.self).count == 4)
        #expect(roundTrips(every(FloorKind.self)) && every(FloorKind.self).count == 6)
        #expect(roundTrips(every(ShareBasis.self)) && every(ShareBasis.self).count == 5)
        #expect(roundTrips(every(SharePhase.self)) && every(SharePhase.self).count == 3)
        #expect(FloorKind.workingSet.recordedText == "working-set" && SharePhase.contended.recordedText == "contended")
    }

    func store() throws -> (DecisionStore, Decision) {
        let store = try DecisionStore()
        var arb = Arbitration()
        let facts = [DomainFacts(domid: DomID(1), staticMax: KiB(gib: 4), actual: KiB(gib: 2), target: KiB(gib: 2))]
        let d = arb.step(HostSnapshot(free: KiB(gib: 1), domains: facts), now: TimePoint(ms: 0))
        try store.record(d, at: Date(timeIntervalSince1970: 100), trigger: .tick, hostTotal: KiB(gib: 8), outcomes: d.outcomes,
                         fullSnapshot: true, names: [DomID(1): "web"], shadowPolicies: ["qmemman"],
                         shadows: [DecisionStore.Shadow(policy: "qmemman", domid: DomID(1), target: KiB(gib: 3), reason: .policyGrow)])
        return (store, d)
    }

    @Test func recordedDecisionsReadBackTyped() throws {
        let (store, d) = try store()
        let o = d.outcomes[0]
        let e = try #require(try store.explain("web"))
        #expect(e.status == .known(o.status) && e.floorKind == .known(o.floorKind) && e.basis == .known(o.basis))
        #expect(e.reason == .known(o.reason) && e.phase == .known(d.phase))
        #expect(e.shadows.map(\.reason) == [.known(.policyGrow)])
        let latest = try #require(try store.latest().first)
        #expect(latest.status == .known(o.status) && latest.reason == .known(o.reason))
        #expect(try store.history("web").map(\.reason) == [.known(o.reason)])
        // What the CLI prints is the recorded text, as when these were strings.
        #expect("\(latest.reason)" == o.reason.rawValue && "\(e.floorKind)" == o.floorKind.description && "\(e.phase)" == "uncontended")
    }

    /// A row from a newer arbiter, with a reason, floor kind and basis this one does not know: read,
    /// shown with its text, never dropped or taken for another value.
    @Test func unknownRecordedTextReadsBackAsText() throws {
        let (store, _) = try store()
        try store.db.write { db in
            try db.execute(sql: "UPDATE allocations SET reason = 'held:from-the-future', floor_kind = 'quota', basis = 'lottery'")
            try db.execute(sql: "UPDATE shadow_targets SET reason = 'policy:sideways'")
        }
        let e = try #require(try store.explain("web"))
        #expect(e.reason == .unknown("held:from-the-future") && e.reason.value == nil && e.reason.description == "held:from-the-future")
        #expect(e.floorKind == .unknown("quota") && e.basis == .unknown("lottery") && "\(e.basis)" == "lottery")
        #expect(e.shadows.map(\.reason) == [.unknown("policy:sideways")])
        #expect(try store.latest().map(\.reason) == [.unknown("held:from-the-future")])
        #expect(try store.history("web").map(\.reason.description) == ["held:from-the-future"])
        // The schema's CHECKs keep report_status and phase to known text today; a later one may not.
        #expect(Recorded<ReportStatus>("dozing") == .unknown("dozing") && Recorded<SharePhase>("").description == "")
    }
}
