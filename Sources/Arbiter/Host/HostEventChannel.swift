import Synchronization

/// Host events on their way to the control loop, coalesced: an event still waiting to be taken is not
/// queued again (the loop reads a domain's latest report when its round runs, so a second copy says
/// nothing new). However fast a guest writes (as fast as xenstored lets it), the queue holds at most
/// one event per domain and key, the loop takes at most that many, and no other guest's event is ever
/// dropped to make room, as a bounded buffer of the newest events would.
public final class HostEventChannel: Sendable {
    private let waiting = Mutex<Set<HostEvent>>([])
    private let counts = Mutex(Counts())
    private let continuation: AsyncStream<HostEvent>.Continuation
    private let iterator: IteratorBox

    /// Events offered by the backend, and how many of them were queued (the rest were already waiting).
    public struct Counts: Sendable, Equatable {
        public var offered = 0
        public var queued = 0
    }

    public var counted: Counts { counts.withLock { $0 } }

    public init() {
        let (stream, continuation) = AsyncStream.makeStream(of: HostEvent.self, bufferingPolicy: .unbounded)
        self.continuation = continuation
        iterator = IteratorBox(stream.makeAsyncIterator())
    }

    /// Offers an event (any thread). Returns whether it was queued.
    @discardableResult
    public func send(_ e: HostEvent) -> Bool {
        let fresh = waiting.withLock { $0.insert(e).inserted }
        counts.withLock { $0.offered += 1; if fresh { $0.queued += 1 } }
        if fresh { continuation.yield(e) }
        return fresh
    }

    /// The events, for their one consumer: taking one lets the same event be queued again.
    public var events: AsyncStream<HostEvent> {
        AsyncStream(unfolding: { [self] in
            guard let e = await iterator.next() else { return nil }
            waiting.withLock { _ = $0.remove(e) }
            return e
        })
    }

    public func finish() { continuation.finish() }

    /// The one consumer's position in the stream.
    private final class IteratorBox: @unchecked Sendable {
        var base: AsyncStream<HostEvent>.Iterator
        init(_ base: AsyncStream<HostEvent>.Iterator) { self.base = base }
        func next() async -> HostEvent? { await base.next() }
    }
}
