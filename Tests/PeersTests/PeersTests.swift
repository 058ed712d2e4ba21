import Testing
@testable import Peers
import GuestModel

func dom(_ id: UInt16, staticMax: KiB, actual: KiB, target: KiB? = nil, min: KiB? = nil, max: KiB? = nil) -> DomainFacts {
    DomainFacts(domid: DomID(id), staticMax: staticMax, actual: actual, target: target ?? actual, adminMin: min, adminMax: max)
}

func report(total: KiB, available: KiB, free: KiB? = nil, buffers: KiB? = nil, cached: KiB? = nil) -> Result<GuestReport, ReportRejection> {
    var r = GuestReport(source: .reporter, seq: 1, memTotal: total, memAvailable: available)
    r.memFree = free; r.buffers = buffers; r.cached = cached
    return .success(r)
}

let t0 = TimePoint(seconds: 0)

/// Static partitioning: shares by provisioned size, set once.
@Suite("Static")
struct StaticPeerTests {
    @Test func sharesByProvisionedSize() {
        var p = StaticPeer()
        let d = p.step(HostSnapshot(free: KiB(gib: 1), domains: [dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 1)),
                                                                  dom(2, staticMax: KiB(gib: 2), actual: KiB(gib: 1))]), now: t0)
        #expect(d.outcomes.map(\.target) == [KiB(gib: 2), KiB(gib: 1)])
        #expect(d.outcomes.map(\.reason) == [.policyGrow, .steady])
    }
}

/// squeezed, pinned on squeeze.ml's Proportional policy (SQ:246-326), two-phase rule (SQ:387-403) and
/// stuckness monitor (SQ:146-238), with the 72 MiB host target of squeeze_xen.ml (SX:63-65, 847-849).
@Suite("squeezed")
struct SqueezedPeerTests {
    let gib4 = KiB(gib: 4)

    @Test func everyoneAtTheSameFractionOfTheirRange() {
        var p = SqueezedPeer()
        // dynmin ¼ of 4 GiB = 1 GiB, dynmax 4 GiB. max_free = 2G + 2 × (2G − 1G − 8K); surplus = max_free − 72M;
        // γ = surplus / 6G; target = 1G + γ × 3G = 3G − 36M − 8K.
        let d = p.step(HostSnapshot(free: KiB(gib: 2), domains: [dom(1, staticMax: gib4, actual: KiB(gib: 2)),
                                                                  dom(2, staticMax: gib4, actual: KiB(gib: 2))]), now: t0)
        let want = KiB(gib: 3).value - KiB(mib: 36).value - 8
        #expect(d.outcomes.map(\.target.value) == [want, want])
        #expect(d.outcomes.map(\.floor) == [KiB(gib: 1), KiB(gib: 1)])
    }

    @Test func whileAnyoneMustFreeNobodyGrows() {
        var p = SqueezedPeer()
        // max_free = 0 + (4G − 1G − 8K) + 0; γ = (3G − 8K − 72M) / 6G; both targets 2.5G − 36M − 4K:
        // dom1 must free, so dom2 (at 1 GiB) is not raised this iteration.
        let d = p.step(HostSnapshot(free: .zero, domains: [dom(1, staticMax: gib4, actual: gib4), dom(2, staticMax: gib4, actual: KiB(gib: 1))]), now: t0)
        #expect(d.outcomes[0].target.value == KiB(mib: 2560).value - KiB(mib: 36).value - 4)
        #expect(d.outcomes[1].target == KiB(gib: 1) && d.outcomes[1].reason == .steady)
    }

    @Test func aDomainThatDoesNotMoveForFiveSecondsLeavesTheSums() {
        var p = SqueezedPeer()
        // max_free = (4G − 1G − 8K) + (2G − 1G − 8K); both targets 3G − 36M − 8K: dom1 must free, dom2 waits.
        let ask = KiB(gib: 3).value - KiB(mib: 36).value - 8
        func snap(_ t1: KiB) -> HostSnapshot {
            HostSnapshot(free: .zero, domains: [dom(1, staticMax: gib4, actual: gib4, target: t1), dom(2, staticMax: gib4, actual: KiB(gib: 2))])
        }
        #expect(p.step(snap(gib4), now: t0).outcomes.map(\.target.value) == [ask, KiB(gib: 2).value])
        // dom1 never moves towards its target.
        for s in 1...5 {
            #expect(p.step(snap(KiB(ask)), now: TimePoint(seconds: Double(s))).outcomes[1].reason == .steady)
            #expect(!p.stuck.contains(DomID(1)), "stuck after \(s) s")
        }
        // After more than 5 s it leaves the sums: dom2 alone must leave the host its 72 MiB:
        // γ = (1G − 8K − 72M) / 3G, target 2G − 8K − 72M.
        let d = p.step(snap(KiB(ask)), now: TimePoint(seconds: 6))
        #expect(p.stuck.contains(DomID(1)))
        #expect(d.outcomes[1].target.value == KiB(gib: 2).value - 8 - KiB(mib: 72).value)
        #expect(d.outcomes[0].target.value == ask)
    }

    @Test func nothingHappensWithoutARangeAndChecksEveryTenSeconds() {
        var p = SqueezedPeer()
        let fixed = dom(1, staticMax: gib4, actual: KiB(gib: 2), min: KiB(gib: 2), max: KiB(gib: 2))
        let d = p.step(HostSnapshot(free: KiB(gib: 2), domains: [fixed]), now: t0)
        #expect(d.outcomes[0].reason == .steady && p.run == nil)
        #expect(p.nextCheck == TimePoint(seconds: 10))
    }
}

/// qmemman, pinned on algo.py (AL:54-60, 109-210), systemstate.py (SS:83-114, 288-322) and
/// meminfo-writer.c (MW:62-88).
@Suite("qmemman")
struct QmemmanPeerTests {
    let mib = 1024.0

    /// A report whose used (allocation − MemFree − Buffers − Cached) is `used`.
    func feed(_ p: inout QmemmanPeer, _ id: UInt16, used: KiB, allocation: KiB = KiB(gib: 2)) -> IngestOutcome {
        let free = allocation - used - KiB(mib: 300)
        return p.ingest(DomID(id), parsed: report(total: allocation, available: free, free: free, buffers: KiB(mib: 100), cached: KiB(mib: 200)),
                        at: t0, staticMax: KiB(gib: 16), allocation: allocation)
    }

    @Test func spareMemoryIsSharedInProportionToPreference() {
        var p = QmemmanPeer()
        _ = feed(&p, 1, used: KiB(gib: 1))
        _ = feed(&p, 2, used: KiB(mib: 100))
        let d = p.step(HostSnapshot(free: KiB(gib: 2), domains: [dom(1, staticMax: KiB(gib: 16), actual: KiB(gib: 2)),
                                                                  dom(2, staticMax: KiB(gib: 16), actual: KiB(gib: 2))]), now: t0)
        let pref1 = 1024 * mib * 1.3, pref2 = 200 * mib         // the 200 MiB minimum
        let F = KiB(gib: 2).asDouble / 1.00781 - 50 * mib
        let avail = F - (pref1 - 2048 * mib) - (pref2 - 2048 * mib)
        let t1 = (0.999 * (pref1 + pref1 / (pref1 + pref2) * avail)).rounded(.down)
        let t2 = (0.999 * (pref2 + pref2 / (pref1 + pref2) * avail)).rounded(.down)
        #expect(d.outcomes.map(\.target) == [KiB.pageFloor(t1), KiB.pageFloor(t2)])
    }

    @Test func shortOfMemoryDonorsGoToTheirPreferenceFirst() {
        var p = QmemmanPeer()
        _ = feed(&p, 1, used: KiB(mib: 1300))                     // pref 1690 MiB: a donor of 358 MiB
        _ = feed(&p, 2, used: KiB(mib: 1900))                     // pref 2470 MiB: an acceptor short of 422 MiB
        // F = 20 MiB / 1.00781 − 50 MiB; avail = F + 358 − 422 MiB ≤ 0: low on memory.
        let d = p.step(HostSnapshot(free: KiB(mib: 20), domains: [dom(1, staticMax: KiB(gib: 16), actual: KiB(gib: 2)),
                                                                   dom(2, staticMax: KiB(gib: 16), actual: KiB(gib: 2))]), now: t0)
        #expect(d.outcomes[0].target == KiB.pageFloor(1300 * mib * 1.3))
        // F − surplus < 0: the acceptor gets nothing until the donor's memory has reached Xen.
        #expect(d.outcomes[1].target == KiB(gib: 2))
    }

    @Test func theWriterOnlyWritesMovesOverThirtyThousandKB() {
        var p = QmemmanPeer()
        #expect(feed(&p, 1, used: KiB(gib: 1)) == .accepted)
        #expect(feed(&p, 1, used: KiB(gib: 1) + KiB(29000)) == .unchanged)
        #expect(feed(&p, 1, used: KiB(gib: 1) + KiB(31000)) == .accepted)
        // No MemFree/Buffers/Cached: no `used`, the guest is left alone.
        #expect(p.ingest(DomID(2), parsed: report(total: KiB(gib: 2), available: KiB(gib: 1)), at: t0, staticMax: nil, allocation: nil) == .accepted)
        #expect(p.used[DomID(2)] == nil)
    }

    @Test func smallRebalancesAreNotWorthIt() {
        var p = QmemmanPeer()
        _ = feed(&p, 1, used: KiB(gib: 1))
        // The balance would move a few MiB: under 150 MiB of transfer with free memory near its goal.
        let pref = 1024 * mib * 1.3
        let target = KiB.pageFloor(0.999 * (pref + (KiB(mib: 60).asDouble / 1.00781 - 50 * mib - (pref - pref))))
        let d = p.step(HostSnapshot(free: KiB(mib: 60), domains: [dom(1, staticMax: KiB(gib: 16), actual: KiB(Int64(pref)), target: target)]), now: t0)
        #expect(d.outcomes[0].reason == .steady)
    }
}

/// MoM as oVirt ships it, pinned on vdsm's 02-balloon.policy (:9-136) and MoM's StatAvg (Entity.py:103-121).
@Suite("MoM")
struct MoMPeerTests {
    func guest(_ p: inout MoMPeer, free: KiB, available: KiB) {
        _ = p.ingest(DomID(1), parsed: report(total: KiB(gib: 2), available: available, free: free, buffers: .zero, cached: available - free),
                     at: t0, staticMax: nil, allocation: nil)
    }

    @Test func underPressureShrinksFivePercentAtMost() {
        var p = MoMPeer()
        guest(&p, free: KiB(gib: 1), available: KiB(gib: 1))
        // Host free 200 MiB of 2248 MiB (8.9 %, under 20 %): floor = 1 GiB used + 8.9 % × 2 GiB < 95 % × 2 GiB.
        let d = p.step(HostSnapshot(free: KiB(mib: 200), domains: [dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 2))]), now: t0)
        #expect(d.outcomes[0].target == KiB.pageFloor(KiB(gib: 2).asDouble * 0.95))
    }

    @Test func readsMemFreeNotMemAvailable() {
        var p = MoMPeer()
        // 100 MiB free, 1.5 GiB available (cache): used = 2048 − 100 MiB, so the floor is above what it has.
        guest(&p, free: KiB(mib: 100), available: KiB(mib: 1536))
        let d = p.step(HostSnapshot(free: KiB(mib: 200), domains: [dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 2))]), now: t0)
        #expect(d.outcomes[0].reason == .steady)
    }

    @Test func hostFreeIsAveragedOverTheLastTenSamples() {
        var p = MoMPeer()
        guest(&p, free: KiB(gib: 1), available: KiB(gib: 1))
        let g = { (free: KiB) in HostSnapshot(free: free, domains: [dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 2))]) }
        _ = p.step(g(KiB(mib: 200)), now: t0)
        // Nothing between ticks (15 s).
        #expect(p.step(g(KiB(mib: 600)), now: TimePoint(seconds: 10)).outcomes[0].reason == .steady)
        // At 15 s the latest sample alone (600 of 2648 MiB, 22.7 %) would grow it; the mean of the two
        // samples (400 MiB, 15.1 %) is under 20 %: it shrinks.
        let d = p.step(g(KiB(mib: 600)), now: TimePoint(seconds: 15))
        #expect(d.outcomes[0].reason == .policyShrink)
        #expect(p.hostFree.count == 2)
    }

    @Test func growsAtLeastFivePercentWhenTheHostHasRoom() {
        var p = MoMPeer()
        guest(&p, free: KiB(gib: 1), available: KiB(gib: 1))
        let d = p.step(HostSnapshot(free: KiB(gib: 2), domains: [dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 2))]), now: t0)
        // 50 % free: floor = 1 GiB + 0.5 × 2 GiB = 2 GiB; max(1.05 × 2 GiB, floor).
        #expect(d.outcomes[0].target == KiB.pageFloor(KiB(gib: 2).asDouble * 1.05))
        // A guest without MemFree (no stats) is skipped; one below its guaranteed memory is raised to it.
        var q = MoMPeer()
        let e = q.step(HostSnapshot(free: KiB(gib: 2), domains: [dom(1, staticMax: KiB(gib: 4), actual: KiB(gib: 2)),
                                                                  dom(2, staticMax: KiB(gib: 4), actual: KiB(gib: 1), min: KiB(mib: 1500))]), now: t0)
        #expect(e.outcomes[0].reason == .steady && e.outcomes[1].target == KiB(mib: 1500))
    }
}
