import Foundation
import Testing
import GuestModel
@testable import Arbiter

/// Host events under a guest that rewrites its report as fast as it can.
@Suite("Host event channel")
struct HostEventChannelTests {
    /// Another guest's write that was waiting when a flood began used to be dropped (a buffer of the
    /// 4096 newest events) and waited for the next full pass (10 s); now it stays queued, and the
    /// flood itself is one waiting event, however many times the watch fires.
    @Test func aFloodNeitherDropsOthersNorQueuesItsRepeats() {
        let channel = HostEventChannel()
        let other = HostEvent.reportWritten(DomID(2), key: "data/pressure")
        let flood = HostEvent.reportWritten(DomID(7), key: "data/pressure")
        #expect(channel.send(other))
        for _ in 0..<20_000 { channel.send(flood) }
        channel.send(.resync)
        channel.send(.resync)
        #expect(channel.take().map(\.event) == [other, flood, .resync])
        #expect(channel.counted == HostEventChannel.Counts(offered: 20_003, queued: 3))
        // Taken: the next write is news again; nothing else is waiting.
        #expect(channel.take().isEmpty)
        #expect(channel.send(flood))
        #expect(channel.take().map(\.event) == [flood])
    }

    /// The loop sleeps until something is written: a wait returns when an event is queued (at once if one
    /// was queued before it began), and after its timeout when nothing comes.
    @Test func aWaitEndsWithTheFirstEventOrItsTimeout() async {
        let channel = HostEventChannel()
        let clock = ContinuousClock()
        var took = await clock.measure { await channel.wait(timeout: .milliseconds(200)) }
        #expect(took >= .milliseconds(200))
        channel.send(.resync)
        took = await clock.measure { await channel.wait(timeout: .seconds(30)) }
        #expect(took < .seconds(5))
        _ = channel.take()
        let writer = Task {
            try? await Task.sleep(for: .milliseconds(50))
            channel.send(.reportWritten(DomID(3), key: "data/pressure"))
        }
        took = await clock.measure { await channel.wait(timeout: .seconds(30)) }
        #expect(took < .seconds(5))
        await writer.value
        // A repeat of a waiting event is not news: it wakes nobody.
        channel.send(.reportWritten(DomID(3), key: "data/pressure"))
        took = await clock.measure { await channel.wait(timeout: .milliseconds(100)) }
        #expect(took >= .milliseconds(100))
    }
}
