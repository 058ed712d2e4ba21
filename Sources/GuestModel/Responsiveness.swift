/// Uncooperative balloons: a guest asked to give memory back that gives it too slowly for too long is
/// marked uncooperative; until it is given another chance, the arbiter counts only what it really holds
/// (its promised memory is not handed to anyone) and stops asking.
///
/// Slowness is measured, not guessed from "no progress in 5 s" (squeezed's loopholes: one page every
/// 5 s, or 19 s idle and 1 s busy): each round in which the guest owes more than `tolerance` and freed
/// less than half of min(what it owes, minRate × Δt) adds Δt to a lag; a round of good progress takes
/// Δt off. A lag of `patience` marks it; after `retryAfter` it is asked again.
public struct ResponsivenessConfig: Sendable, Equatable {
    public var minRate = KiB(mib: 8)
    public var patienceSeconds = 30.0
    public var retryAfterSeconds = 300.0
    public var tolerance = KiB(mib: 16)
    public init() {}
}

/// One guest's balloon record. Time is passed in.
public struct Responsiveness: Sendable, Equatable {
    var lastActual: KiB?
    var lastAt: TimePoint?
    /// Seconds of insufficient progress, net of good rounds.
    public private(set) var lagSeconds = 0.0
    public private(set) var uncooperativeSince: TimePoint?

    public init() {}

    public var isUncooperative: Bool { uncooperativeSince != nil }

    /// Updates the record from the allocation Xen shows now and the target that was in force.
    public mutating func observe(actual: KiB, target: KiB, at now: TimePoint, config c: ResponsivenessConfig) {
        defer { lastActual = actual; lastAt = now }
        guard let before = lastActual, let then = lastAt else { return }
        let dt = now.seconds(since: then)
        guard dt > 0 else { return }
        if let since = uncooperativeSince {
            if now.seconds(since: since) >= c.retryAfterSeconds { uncooperativeSince = nil; lagSeconds = 0 }
            return
        }
        let owes = actual.value - target.value
        guard owes > c.tolerance.value else { lagSeconds = Swift.max(0, lagSeconds - dt); return }
        let freed = Double(before.value - actual.value)
        let expected = Swift.min(Double(owes), c.minRate.asDouble * dt)
        if freed < 0.5 * expected { lagSeconds += dt } else { lagSeconds = Swift.max(0, lagSeconds - dt) }
        if lagSeconds >= c.patienceSeconds { uncooperativeSince = now }
    }
}
