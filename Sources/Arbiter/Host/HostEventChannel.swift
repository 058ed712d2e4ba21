import Synchronization

/// Host events on their way to the control loop, coalesced and taken in batches: an event still
/// waiting to be taken is not queued again (the loop reads a domain's latest report when its round
/// runs, so a second copy says nothing new), and the loop takes what is waiting when it looks for a
/// due round (woken by the first event queued since it last looked, see `wait`, and looking at most
/// every `daemon.min_round_interval_seconds`), rather than once per event. However fast a guest
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
    /// The loop waiting for an event, or (`pending`) an event queued while it was not waiting.
    private let waker = Mutex(Waker())

    private struct Waker {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

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
        let queued = state.withLock { s in
            s.counts.offered += 1
            guard s.queued.insert(e).inserted else { return false }
            s.counts.queued += 1
            s.waiting.append(TimedEvent(event: e, at: .now))
            return true
        }
        if queued {
            let waiter = waker.withLock { w in
                if w.waiter == nil { w.pending = true }
                defer { w.waiter = nil }
                return w.waiter
            }
            waiter?.resume()
        }
        return queued
    }

    /// Returns once an event has been queued since the last wait returned (at once if one has), or after
    /// `timeout`. One waiter at a time (the control loop).
    public func wait(timeout: Duration) async {
        if waker.withLock({ w in defer { w.pending = false }; return w.pending }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.parked() }
            group.addTask { try? await Task.sleep(for: timeout) }
            _ = await group.next()
            group.cancelAll()
        }
    }

    /// Suspends until `send` queues an event or the task is cancelled (the wait's timeout).
    private func parked() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                // Under the lock: a cancellation after this check finds the waiter and resumes it.
                let now = waker.withLock { w in
                    if w.pending || Task.isCancelled { w.pending = false; return true }
                    w.waiter = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            waker.withLock { w in defer { w.waiter = nil }; return w.waiter }?.resume()
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
