import Synchronization

/// Host events on their way to the control loop, coalesced and taken in batches: an event still
/// waiting to be taken is not queued again (the loop reads a domain's latest report when its round
/// runs, so a second copy says nothing new), and the loop takes what is waiting when it looks for a
/// due round, a few times a second, rather than being woken for each event. However fast a guest
/// writes (as fast as xenstored lets it), the queue holds at most one event per domain and key, the
/// loop pays for at most that many per look, and no other guest's event is ever dropped to make room,
/// as a bounded buffer of the newest events would.
public final class HostEventChannel: Sendable {
    /// An event and when the backend first saw it (the watch fired), for the report-to-round wait.
    public struct TimedEvent: Sendable, Equatable {
        public var event: HostEvent
        public var at: ContinuousClock.Instant
    }

    private let state = Mutex(State())

    private struct State {
        var waiting: [TimedEvent] = []
        var queued: Set<HostEvent> = []
        var counts = Counts()
    }

    /// Events offered by the backend, and how many of them were queued (the rest were already waiting).
    public struct Counts: Sendable, Equatable {
        public var offered = 0
        public var queued = 0
    }

    public var counted: Counts { state.withLock { $0.counts } }

    public init() {}

    /// Offers an event (any thread). Returns whether it was queued.
    @discardableResult
    public func send(_ e: HostEvent) -> Bool {
        state.withLock { s in
            s.counts.offered += 1
            guard s.queued.insert(e).inserted else { return false }
            s.counts.queued += 1
            s.waiting.append(TimedEvent(event: e, at: .now))
            return true
        }
    }

    /// Everything waiting, in the order it came, with when each was first offered; each event can be
    /// queued again once taken.
    public func take() -> [TimedEvent] {
        state.withLock { s in
            defer { s.waiting.removeAll(keepingCapacity: true); s.queued.removeAll(keepingCapacity: true) }
            return s.waiting
        }
    }
}
