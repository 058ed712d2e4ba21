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
}
