/// A memory policy as the daemon's control loop runs it: the arbiter's own (`Arbitration`) or a peer's
/// (squeezed, qmemman, MoM, static; module `Peers`). The loop feeds every policy the same parsed reports
/// and the same host snapshot; one decides what is pushed (`[daemon] policy`), the others (`[daemon]
/// shadow`) decide from the same inputs and are only recorded. Pure: no Xen, no clock, no file.
public protocol RoundPolicy: Sendable {
    /// The name `[daemon] policy`, `[daemon] shadow` and the decision store know it by.
    var name: String { get }
    /// Takes one parsed (or refused) report of `domid`, read at `at`. `staticMax` and `allocation` are
    /// Xen's trusted figures for the domain when the caller has them.
    @discardableResult
    mutating func ingest(_ domid: DomID, parsed: Result<GuestReport, ReportRejection>, at: TimePoint,
                         staticMax: KiB?, allocation: KiB?) -> IngestOutcome
    /// One round over a fresh snapshot: a target for every domain in it (the current one: no change).
    mutating func step(_ snapshot: HostSnapshot, now: TimePoint) -> Decision
    /// Forgets a domain Xen released.
    mutating func forget(_ domid: DomID)
    /// New settings (SIGHUP); what the policy learnt of its guests is kept.
    mutating func reconfigure(_ config: PolicyConfig)
}

extension Arbitration: RoundPolicy {
    public var name: String { "arbiter" }
    public mutating func reconfigure(_ config: PolicyConfig) { self.config = config }
}

extension IngestOutcome {
    /// What a policy that reads no guest report (static, squeezed, the simulator's references) makes of
    /// one: refused if the parser refused it, otherwise taken and ignored.
    public static func ignoring(_ parsed: Result<GuestReport, ReportRejection>) -> IngestOutcome {
        if case .failure(let why) = parsed { return .rejected(why) }
        return .accepted
    }
}
