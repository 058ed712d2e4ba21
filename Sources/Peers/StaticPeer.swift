import GuestModel

/// Static partitioning: each guest gets a fixed share of the guests' memory in proportion to its
/// provisioned size (static-max), set when it is first seen (the shares are worked out again when the
/// set of domains changes) and never ballooned otherwise. What a host without any balancer does.
public struct StaticPeer: RoundPolicy {
    public let name = "static"
    var shares = [DomID: KiB]()

    public init() {}

    public mutating func ingest(_ domid: DomID, parsed: Result<GuestReport, ReportRejection>, at: TimePoint,
                                staticMax: KiB?, allocation: KiB?) -> IngestOutcome {
        .ignoring(parsed)
    }

    public mutating func forget(_ domid: DomID) { shares[domid] = nil }
    public mutating func reconfigure(_ config: PolicyConfig) {}

    public mutating func step(_ snapshot: HostSnapshot, now: TimePoint) -> Decision {
        let ds = snapshot.domains
        if Set(ds.map(\.domid)) != Set(shares.keys) {
            let pool = ds.reduce(snapshot.free.asDouble) { $0 + $1.actual.asDouble }
            let total = ds.reduce(0.0) { $0 + $1.staticMax.asDouble }
            shares = Dictionary(uniqueKeysWithValues: ds.map {
                ($0.domid, min($0.staticMax, KiB.pageFloor(pool * $0.staticMax.asDouble / Swift.max(total, 1))))
            })
        }
        let choices = ds.map { d in
            PeerChoice(target: shares[d.domid], floor: shares[d.domid] ?? d.actual, ceiling: d.staticMax,
                       demand: shares[d.domid] ?? d.actual, reported: false)
        }
        return .peer(snapshot, now: now, choices: choices, reserve: .zero, contended: false)
    }
}
