import GuestModel
import HostSimulator
import Peers
import Synchronization

/// What the simulated guests will do, handed to the clairvoyant reference before each round.
final class TruthFeed: Sendable {
    private let truth = Mutex<[DomID: GuestTruth]>([:])
    func set(_ t: [DomID: GuestTruth]) { truth.withLock { $0 = t } }
    func get() -> [DomID: GuestTruth] { truth.withLock { $0 } }
}

/// A clairvoyant reference, not a bound: it reads each guest's true working set over the next
/// look-ahead window (which no real policy can), gives everyone that plus 5 % by weighted
/// water-filling when it does not fit (`FairShare.solve`, the arbiter's own solver), keeps the rest
/// free, and moves targets at once. A policy that reacts well to what it measures can beat it: it knows
/// the future working set but not the cost of moving memory, and it chases every wiggle.
struct ClairvoyantPolicy: RoundPolicy {
    let name = "clairvoyant"
    let reserve: KiB
    let feed: TruthFeed

    func ingest(_ domid: DomID, parsed: Result<GuestReport, ReportRejection>, at: TimePoint, staticMax: KiB?, allocation: KiB?) -> IngestOutcome {
        .ignoring(parsed)
    }
    func forget(_ domid: DomID) {}
    func reconfigure(_ config: PolicyConfig) {}

    func step(_ snapshot: HostSnapshot, now: TimePoint) -> Decision {
        let ds = snapshot.domains
        let truth = feed.get()
        let ceilings = ds.map { min($0.adminMax ?? $0.staticMax, $0.staticMax) }
        let floors = ds.indices.map { i in
            min(max(truth[ds[i].domid]?.workingSet ?? ds[i].actual, ds[i].adminMin ?? .zero), ceilings[i]).pageCeil
        }
        let demands = ds.indices.map { i in KiB.pageCeil((truth[ds[i].domid]?.peakAhead ?? ds[i].actual).asDouble * 1.05) }
        let budget = KiB(ds.reduce(Int64(0)) { $0 + $1.actual.value } + snapshot.free.value - reserve.value)
        let share = FairShare.solve(floors: floors, demands: demands, ceilings: ceilings, weights: ds.map { $0.weight ?? 1 },
                                    budget: budget, surplus: .keepFree)
        return .peer(snapshot, now: now, choices: ds.indices.map { i in
            PeerChoice(target: share.allocations[i], floor: .zero, ceiling: ceilings[i], demand: demands[i], reported: truth[ds[i].domid] != nil)
        }, reserve: reserve, contended: share.phase != .uncontended)
    }
}
