import Testing
@testable import HostSimulator
import GuestModel

func guest(ws: KiB, staticMax: KiB = KiB(gib: 4), boot: KiB, anon: Double = 0.6, swap: KiB = .zero,
           behaviour: Behaviour = .reporter) -> SimGuest {
    var spec = GuestSpec(name: "g", workload: .steady(ws), staticMax: staticMax, boot: boot, behaviour: behaviour)
    spec.anonFraction = anon
    spec.swap = swap
    return SimGuest(spec: spec, domid: DomID(1), reportPhase: 0)
}

/// Runs `seconds` one-second steps with `target` in force; returns the mean stall over the last 10 s.
func settle(_ g: inout SimGuest, target: Double, seconds: Int, hostFree: inout Double) -> Double {
    g.target = target
    var stall = 0.0
    for s in 0..<seconds {
        g.step(dt: 1, t: Double(s + 1), hostFree: &hostFree)
        if s >= seconds - 10 { stall += g.stall / 10 }
    }
    return stall
}

@Suite("Simulated guest physics")
struct PhysicsTests {
    @Test func aGuestAtItsWorkingSetDoesNotStall() {
        var g = guest(ws: KiB(gib: 1), boot: KiB(mib: 1200))
        var free = 0.0
        // The working set, what the kernel keeps for itself and the free pages it keeps (its high watermark).
        let need = KiB(gib: 1).asDouble + SimGuest.systemAnon + g.overhead + g.totalReserve
        #expect(settle(&g, target: need + 4096, seconds: 120, hostFree: &free) == 0)
        #expect(g.deficit == 0)
    }

    @Test func squeezedDeeperStallsMore() {
        var stalls = [Double]()
        for squeeze in [0.0, 0.1, 0.2, 0.4] {
            var g = guest(ws: KiB(gib: 2), boot: KiB(gib: 3), swap: KiB(gib: 2))
            var free = 0.0
            let need = KiB(gib: 2).asDouble + SimGuest.systemAnon + g.overhead + g.totalReserve + 4096
            stalls.append(settle(&g, target: need * (1 - squeeze), seconds: 300, hostFree: &free))
        }
        #expect(stalls[0] == 0)
        for k in 1..<stalls.count { #expect(stalls[k] > stalls[k - 1], "\(stalls)") }
        #expect(stalls[3] > 0.5)
    }

    @Test func balloonSpeedIsRespectedInBothDirections() {
        for (behaviour, limit) in [(Behaviour.reporter, 256.0 * 1024), (.slowBalloon, 1024), (.uncooperative, 0)] {
            var g = guest(ws: KiB(mib: 200), boot: KiB(gib: 4), behaviour: behaviour)
            var free = 0.0
            let before = g.actual
            g.target = KiB(gib: 1).asDouble
            g.step(dt: 1, t: 1, hostFree: &free)
            #expect(before - g.actual <= limit + 1, "\(behaviour)")
            #expect(abs(free - (before - g.actual)) < 1, "freed memory goes to Xen")
            if limit > 0 { #expect(before - g.actual > 0) }
        }
        // Growing: bounded by the speed and by what Xen has free.
        var g = guest(ws: KiB(mib: 200), boot: KiB(gib: 1))
        var free = KiB(mib: 100).asDouble
        g.target = KiB(gib: 3).asDouble
        g.step(dt: 1, t: 1, hostFree: &free)
        #expect(abs(g.actual - KiB(mib: 1124).asDouble) < 1 && free == 0)
    }

    @Test func withoutSwapTheBalloonCannotTakeAnonymousMemory() {
        var g = guest(ws: KiB(gib: 2), boot: KiB(gib: 3), anon: 1.0)
        var free = 0.0
        _ = settle(&g, target: KiB(mib: 512).asDouble, seconds: 60, hostFree: &free)
        #expect(g.actual >= KiB(gib: 2).asDouble + g.overhead - 1)
        #expect(g.stall == 0)
        // With swap, it can: the guest pays in stall.
        var s = guest(ws: KiB(gib: 2), boot: KiB(gib: 3), anon: 1.0, swap: KiB(gib: 4))
        var free2 = 0.0
        let stall = settle(&s, target: KiB(gib: 1).asDouble, seconds: 120, hostFree: &free2)
        #expect(s.actual < KiB(mib: 1100).asDouble)
        #expect(stall > 0.9)
    }

    @Test func pageCacheGrowsIntoFreeMemoryAndIsReclaimedFirst() {
        var g = guest(ws: KiB(mib: 500), boot: KiB(gib: 4))
        var free = 0.0
        _ = settle(&g, target: g.actual, seconds: 200, hostFree: &free)
        #expect(g.file.cold > KiB(mib: 1000).asDouble)
        // Read once, it sits on the inactive list.
        #expect(g.file.inactiveCold > g.file.activeCold)
        // Taking 1 GiB back costs nothing: it was cache.
        let stall = settle(&g, target: g.actual - KiB(gib: 1).asDouble, seconds: 30, hostFree: &free)
        #expect(stall == 0 && g.deficit == 0)
    }

    @Test func reporterLinesParseAndTellTheTruth() throws {
        var g = guest(ws: KiB(gib: 1), boot: KiB(gib: 2), swap: KiB(gib: 1))
        var free = 0.0
        _ = settle(&g, target: g.actual, seconds: 30, hostFree: &free)
        let r = try ReportParser.parse(g.pressureLine(seqMs: 30_000)).get()
        #expect(abs(r.memTotal.asDouble - g.usableSize) < 1)
        #expect(abs(r.memAvailable.asDouble - g.available) < 1)
        #expect(abs(r.memFree!.asDouble - g.free) < 1 && abs(r.cached!.asDouble - g.file.total) < 1)
        #expect(r.swapTotal == KiB(gib: 1) && r.swapFree == KiB(gib: 1))
        #expect(r.psiSomeAvg10 == 0)
        // The kernel keeps free memory near its high watermark once the cache has filled it.
        var h = guest(ws: KiB(mib: 300), boot: KiB(gib: 1))
        var hf = 0.0
        _ = settle(&h, target: h.actual, seconds: 600, hostFree: &hf)
        #expect(h.free >= h.watermarks.min && h.free <= h.watermarks.high + 1)
    }

    /// What the lists show lags what the workload does, as on a real kernel: pages that left the working
    /// set stay on the active list until the inactive list runs short, so Active(file) is no reading of
    /// the hidden working set.
    @Test func activeFileLagsTheWorkingSet() throws {
        var spec = GuestSpec(name: "g", workload: .spike(base: KiB(mib: 200), peak: KiB(gib: 1), at: 0, seconds: 60, every: nil),
                             staticMax: KiB(gib: 4), boot: KiB(gib: 3))
        spec.anonFraction = 0
        var g = SimGuest(spec: spec, domid: DomID(1), reportPhase: 0)
        var free = 0.0
        for s in 1...70 { g.step(dt: 1, t: Double(s), hostFree: &free) }
        let r = try ReportParser.parse(g.pressureLine(seqMs: 70_000)).get()
        // 10 s after the working set fell to 200 MiB, the active list still holds the spike's pages.
        #expect(r.activeFile!.asDouble > KiB(mib: 900).asDouble)
        #expect(g.file.hot <= KiB(mib: 200).asDouble + 1)
    }

    /// PSI comes from the time tasks wait on faults, averaged the kernel's way every 2 s: its total is
    /// the waiting the simulator scores, and avg10 trails it.
    @Test func psiIsTheWaitingAveragedEveryTwoSeconds() throws {
        var g = guest(ws: KiB(gib: 2), boot: KiB(gib: 3), swap: KiB(gib: 2))
        var free = 0.0
        g.target = KiB(mib: 1600).asDouble
        var scored = 0.0
        for s in 1...41 {
            g.step(dt: 1, t: Double(s), hostFree: &free)
            scored += g.stall
            if s == 1 { #expect(g.someAvg[0] == 0, "no update before 2 s") }
        }
        let r = try ReportParser.parse(g.pressureLine(seqMs: 41_000)).get()
        #expect(abs(Double(r.counters.psiSomeTotalUs!) / 1_000_000 - scored) < 0.01)
        #expect(r.psiSomeAvg10! > 0 && r.psiSomeAvg10! <= 100)
        #expect(r.counters.psiFullTotalUs! < r.counters.psiSomeTotalUs!)
        #expect(r.counters.refaultFile! > 0)
    }
}

@Suite("Workloads and traces")
struct WorkloadTests {
    @Test func shapes() {
        #expect(Workload.ramp(from: KiB(gib: 1), to: KiB(gib: 3), start: 10, seconds: 20).workingSet(at: 20) == KiB(gib: 2).asDouble)
        let spike = Workload.spike(base: KiB(gib: 1), peak: KiB(gib: 4), at: 100, seconds: 50, every: 300)
        #expect(spike.workingSet(at: 99) == KiB(gib: 1).asDouble && spike.workingSet(at: 120) == KiB(gib: 4).asDouble)
        #expect(spike.workingSet(at: 420) == KiB(gib: 4).asDouble && spike.workingSet(at: 460) == KiB(gib: 1).asDouble)
        #expect(spike.spikeStarts(until: 1000) == [100, 400, 700])
        let p = Workload.periodic(base: KiB(gib: 2), amplitude: KiB(gib: 1), period: 400)
        #expect(abs(p.workingSet(at: 100) - KiB(gib: 3).asDouble) < 200)
        #expect(abs(p.workingSet(at: 300) - KiB(gib: 1).asDouble) < 200)
        let leak = Workload.leak(base: KiB(gib: 1), rate: KiB(mib: 1), limit: KiB(mib: 100))
        #expect(leak.coldAnon(at: 50) == KiB(mib: 50).asDouble && leak.coldAnon(at: 500) == KiB(mib: 100).asDouble)
    }

    @Test func traceParsingIgnoresExtraColumnsAndSortsSamples() throws {
        let csv = """
            cpu_pct,vm_id,mem_used_kb,t_seconds,mem_provisioned_kb,note
            1,b,2000,600,4000,x
            1,a,100,300,1000,y
            1,a,50,0,1000,z
            1,b,1000,0,4000,
            1,a,999999,600,1000,capped at provisioned
            """
        let vms = try Trace.parse(csv)
        #expect(vms.map(\.id) == ["b", "a"])
        #expect(vms[1].series.times == [0, 300, 600] && vms[1].series.values == [50, 100, 1000])
        #expect(vms[1].series.value(at: 450) == 100)      // held between samples
        #expect(vms[0].provisioned == KiB(4000))
        #expect(try Trace.parse(csv, maxVMs: 1).count == 1)
    }

    @Test(arguments: [("vm_id,t_seconds,mem_used_kb\na,0,1\n", 1), ("vm_id,t_seconds,mem_provisioned_kb,mem_used_kb\na,x,1,1\n", 2),
                      ("vm_id,t_seconds,mem_provisioned_kb,mem_used_kb\na,0,1,-5\n", 2), ("vm_id,t_seconds,mem_provisioned_kb,mem_used_kb\na,0\n", 2),
                      ("vm_id,t_seconds,mem_provisioned_kb,mem_used_kb\n", 1)])
    func traceErrorsNameTheLine(csv: String, line: Int) {
        do { _ = try Trace.parse(csv); Issue.record("accepted") } catch { #expect(error.line == line, "\(error)") }
    }
}

/// xen-selfballoon as the guest kernel runs it (drivers/xen/xen-selfballoon.c, F:185-242), pinned on a
/// hand-computed 4 GiB guest booted at 2 GiB.
@Suite("selfballoon in the guest kernel")
struct SelfballoonTests {
    @Test func downAnEighthOfTheGapUpAtOnceEveryFiveSeconds() {
        var spec = GuestSpec(name: "g", workload: .steady(KiB(gib: 1)), staticMax: KiB(gib: 4), boot: KiB(gib: 2))
        spec.anonFraction = 0.6
        var g = SimGuest(spec: spec, domid: DomID(1), reportPhase: 0)
        // Kernel overhead 45 MiB + 2.2 % of 4 GiB = 138,354.7 KiB; MemTotal = 2 GiB − that = 1,958,797.3 KiB.
        let overhead = 46_080 + 4_194_304 * 0.022, cur = 2_097_152 - overhead
        #expect(abs(g.usableSize - cur) < 0.01)
        // totalreserve = high watermark: min = √(16 × MemTotal) = 5,598.3; high = min + 2 × max(min/4, MemTotal/1000).
        let minWM = (16 * cur).squareRoot(), high = minWM + 2 * Swift.max(minWM / 4, cur * 0.001)
        // Committed_AS = the anon in use: 60 % of 1 GiB + the guest's 32 MiB system.
        let committed = 0.6 * 1_048_576 + 32 * 1024
        #expect(abs(g.committedAS - committed) < 0.01)
        let goal = committed + high + cur / 10                       // + reserved_mb, a tenth of boot RAM
        g.selfballoon(at: 0)
        #expect(abs(g.target - (cur - (cur - goal) / 8 + overhead)) < 0.01)
        // The next tick is 5 s later: nothing before it.
        let first = g.target
        g.selfballoon(at: 4.9)
        #expect(g.target == first)
        // Up at once: with the guest below its goal, the whole gap.
        var small = SimGuest(spec: GuestSpec(name: "s", workload: .steady(KiB(gib: 2)), staticMax: KiB(gib: 4), boot: KiB(gib: 1)),
                             domid: DomID(2), reportPhase: 0)
        small.anon.activeHot = 0.6 * 2_097_152 + 32 * 1024          // its anon, all resident (the test's shortcut)
        small.selfballoon(at: 0)
        let sCur = small.usableSize, sMin = (16 * sCur).squareRoot(), sHigh = sMin + 2 * Swift.max(sMin / 4, sCur * 0.001)
        let sGoal = small.committedAS + sHigh + small.bootTotal / 10
        #expect(abs(small.target - (sGoal + small.overhead)) < 0.01)
    }
}
