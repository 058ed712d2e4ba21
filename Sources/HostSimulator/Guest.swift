import GuestModel

/// The memory physics of one guest, stepped on the virtual clock: a small model of the Linux kernel that
/// shows dom0 only what a real kernel shows. All sizes are KiB as Doubles.
///
/// Inside the domain's allocation (`actual`) the kernel keeps `overhead` for itself; the rest (`usable`,
/// MemTotal) holds anonymous and file pages, each on the kernel's two LRU lists, and free pages:
/// - the working set (the workload's hot pages, touched every `touchSeconds`) and cold pages (cache read
///   once, leaked anon) are tracked separately, but dom0 sees only the lists: a new page enters the
///   inactive list, a second touch promotes it to the active list (mm/swap.c `folio_mark_accessed`), a
///   refault of a recently evicted page is activated at once (mm/workingset.c), and when the inactive list
///   is short of `inactive_ratio` × the active list, the active list's oldest pages — cold ones first —
///   are demoted (mm/vmscan.c `inactive_is_low`, `shrink_active_list`);
/// - reclaim (kswapd keeping free memory between the low and high watermarks, and the balloon driver's
///   allocations) takes the inactive list's pages: clean cache at once, dirty cache as fast as it is
///   written back, anon as fast as swap takes it, and only then the working set's own pages;
/// - a working-set page that is not resident is faulted in when touched, at the disk's latency and
///   bandwidth; tasks wait on those faults, and that waiting is both what PSI reports (some/full, the
///   kernel's 2 s averaging: kernel/sched/psi.c) and what the simulator scores. Nothing a report carries
///   is derived from the score or from the hidden working set directly.
///
/// Constants, and where they come from:
/// - kernel overhead 45 MiB + 2.2 % of static-max: measured on real Xen (a Debian 6.1 PV guest, the
///   integration/xen harness; README "real Xen");
/// - watermarks: min_free_kbytes = √(16 × MemTotal) clamped to 128 KiB–256 MiB, low/high = min + 1×/2×
///   max(min / 4, MemTotal × 0.1 %) (mm/page_alloc.c `calculate_min_free_kbytes`,
///   `__setup_per_zone_wmarks`; watermark_scale_factor 10); totalreserve = high;
/// - MemAvailable = free − totalreserve + page cache − min(page cache / 2, low) (mm/show_mem.c
///   `si_mem_available`);
/// - inactive_ratio = √(10 × GiB of the list pair), 1 below 1 GiB (mm/vmscan.c `inactive_is_low`);
/// - PSI: averages over 10/60/300 s updated every 2 s (psi.c `PSI_FREQ`, `EXP_10s` …);
/// - assumptions (no measurement on this stack: the lab's guests have no disk): a virtual disk on SSD,
///   0.2 ms per 4 KiB read and 200 MiB/s; write-back 100 MiB/s; swap 50 MiB/s; 4 runnable tasks per
///   guest; cache filling free memory at 8 MiB/s of I/O; a working-set page touched every 10 s.
public struct SimGuest: Sendable {
    /// A domain's life on the simulated host.
    public enum Life: Sendable, Equatable {
        /// Being built until then: its memory is allocated, `memory/target` is not written yet.
        case building(until: Double)
        case running
        /// Destroyed: its memory went back to Xen.
        case destroyed
    }

    /// Pages of one kind (anon or file) on the two LRU lists, split by whether the workload still uses them.
    struct Lists: Sendable {
        var activeHot = 0.0, inactiveHot = 0.0, activeCold = 0.0, inactiveCold = 0.0
        var hot: Double { activeHot + inactiveHot }
        var cold: Double { activeCold + inactiveCold }
        var active: Double { activeHot + activeCold }
        var inactive: Double { inactiveHot + inactiveCold }
        var total: Double { hot + cold }

        /// Hot pages the workload stopped using become cold where they are.
        mutating func cool(_ x: Double) {
            guard x > 0, hot > 0 else { return }
            let f = Swift.min(1, x / hot)
            let a = activeHot * f, i = inactiveHot * f
            activeHot -= a; activeCold += a
            inactiveHot -= i; inactiveCold += i
        }

        /// Removes `x` hot pages (freed by the workload), proportionally.
        mutating func dropHot(_ x: Double) {
            guard x > 0, hot > 0 else { return }
            let f = Swift.min(1, x / hot)
            activeHot -= activeHot * f; inactiveHot -= inactiveHot * f
        }

        /// Removes `x` cold pages, proportionally.
        mutating func dropCold(_ x: Double) {
            guard x > 0, cold > 0 else { return }
            let f = Swift.min(1, x / cold)
            activeCold -= activeCold * f; inactiveCold -= inactiveCold * f
        }

        /// A second touch within `dt`: inactive hot pages are promoted (each is touched every `period`).
        mutating func promote(dt: Double, period: Double) {
            let m = inactiveHot * (1 - exp1(-dt / period))
            inactiveHot -= m; activeHot += m
        }

        /// Demotes the active list's oldest pages (cold ones first) while the inactive list is short.
        mutating func age(dt: Double) {
            let gib = total / (1024 * 1024)
            let ratio = gib >= 1 ? (10 * gib).squareRoot() : 1
            guard inactive * ratio < active else { return }
            var want = Swift.min((active - inactive * ratio) / (1 + ratio), active * 0.1 * dt)
            let c = Swift.min(activeCold, want); activeCold -= c; inactiveCold += c; want -= c
            let h = Swift.min(activeHot, want); activeHot -= h; inactiveHot += h
        }
    }

    public let spec: GuestSpec
    public let domid: DomID
    public internal(set) var life = Life.running
    public internal(set) var actual: Double
    public internal(set) var target: Double
    public let overhead: Double
    var file = Lists(), anon = Lists()
    /// The dirty part of the cold file pages on the inactive list.
    var dirty = 0.0
    /// Anonymous memory in swap: hot (the workload will touch it again) and cold.
    var swappedHot = 0.0, swappedCold = 0.0
    // Counters and PSI, as the guest kernel keeps them.
    var psiSomeUs = 0.0, psiFullUs = 0.0
    var someAvg = [0.0, 0.0, 0.0], fullAvg = [0.0, 0.0, 0.0]
    var psiWindowSome = 0.0, psiWindowFull = 0.0, psiNextUpdate = 2.0
    var majorFaults = 0.0, refaultAnon = 0.0, refaultFile = 0.0, swapIns = 0.0, swapOuts = 0.0
    var nextReportAt: Double
    var nextLegacyAt: Double
    var nextSelfballoonAt: Double
    /// MemTotal at boot (xen-selfballoon's reserved_mb default is a tenth of it).
    let bootTotal: Double
    var hostileTurn = 0
    /// Share of time (0–1) some task waited on memory in the last step, and the working set missing.
    public internal(set) var stall = 0.0
    public internal(set) var deficit = 0.0
    public internal(set) var workingSet = 0.0

    // Rates, KiB/s, and times, s (see the type's comment for their sources).
    static let diskBandwidth = 200.0 * 1024
    static let faultLatency = 0.0002
    static let writebackSpeed = 100.0 * 1024
    static let swapSpeed = 50.0 * 1024
    static let cacheFillSpeed = 8.0 * 1024
    static let touchSeconds = 10.0
    /// What the guest's own system (init, journald, udevd, sshd) keeps in anonymous use whatever the
    /// workload does: a Linux guest never runs on its workload alone.
    public static let systemAnon = 32.0 * 1024
    static let tasks = 4.0
    /// PSI's averaging windows and update period (kernel/sched/psi.c).
    static let psiWindows = [10.0, 60.0, 300.0], psiPeriod = 2.0

    /// `bornAt`: when it starts running (its reporter starts then).
    public init(spec: GuestSpec, domid: DomID, reportPhase: Double, bornAt: Double = 0) {
        self.spec = spec
        self.domid = domid
        let boot = Swift.min(spec.boot, spec.staticMax).asDouble
        actual = boot
        target = boot
        overhead = Self.kernelOverhead(staticMax: spec.staticMax)
        nextReportAt = bornAt + reportPhase
        nextLegacyAt = bornAt + reportPhase
        nextSelfballoonAt = bornAt + reportPhase * 2.5
        bootTotal = Swift.max(0, boot - overhead)
        let ws = spec.workload.workingSet(at: 0)
        let usable = usableSize
        anon.activeHot = Swift.min(ws * spec.anonFraction + Self.systemAnon, usable)
        file.activeHot = Swift.min(ws - ws * spec.anonFraction, usable - anon.activeHot)
        workingSet = ws + Self.systemAnon
        psiNextUpdate = bornAt + Self.psiPeriod
    }

    /// What a guest kernel keeps of its allocation (struct pages, the kernel itself): 45 MiB + 2.2 % of
    /// static-max, measured on a Debian 6.1 PV guest on real Xen.
    public static func kernelOverhead(staticMax: KiB) -> Double { 45 * 1024 + staticMax.asDouble * 0.022 }

    public var usableSize: Double { Swift.max(0, actual - overhead) }
    var resident: Double { anon.total + file.total }
    public var free: Double { Swift.max(0, usableSize - resident) }
    var swapUsed: Double { swappedHot + swappedCold }

    /// The kernel's watermarks for this MemTotal (KiB): min, low, high.
    var watermarks: (min: Double, low: Double, high: Double) {
        let total = usableSize
        let m = Swift.min(Swift.max((16 * total).squareRoot(), 128), 256 * 1024)
        let step = Swift.max(m / 4, total * 0.001)
        return (m, m + step, m + 2 * step)
    }

    var totalReserve: Double { watermarks.high }

    /// MemAvailable, as si_mem_available works it out.
    public var available: Double {
        let cache = file.total
        return Swift.max(0, Swift.min(usableSize, free - totalReserve + cache - Swift.min(cache / 2, watermarks.low)))
    }

    /// Committed_AS: the anonymous memory the workload has allocated, resident or swapped (applications
    /// here commit only what they touch: the least a kernel shows).
    var committedAS: Double { anon.total + swapUsed }

    var balloonSpeed: Double {
        switch spec.behaviour {
        case .uncooperative: 0
        case .slowBalloon: 1024
        default: spec.balloonSpeed.asDouble
        }
    }

    /// Frees up to `want` KiB of resident pages the way reclaim does, inactive list first: cold clean
    /// cache, dirty cache at write-back speed, cold anon to swap, then (demoting from the active list)
    /// the working set's own pages. Returns what it freed.
    mutating func reclaim(_ want: Double, swapBudget: inout Double, writeBudget: inout Double) -> Double {
        var left = want
        func take(_ pool: inout Double, _ limit: Double = .infinity) -> Double {
            let x = Swift.max(0, Swift.min(pool, left, limit))
            pool -= x; left -= x
            return x
        }
        let swapRoom = { [spec] (used: Double) in Swift.max(0, spec.swap.asDouble - used) }
        // Cold cache on the inactive list: clean first, the dirty part as fast as it is written back.
        let clean = Swift.max(0, file.inactiveCold - dirty)
        var c = clean
        _ = take(&c)
        var d = dirty
        let w = take(&d, writeBudget)
        writeBudget -= w
        file.inactiveCold -= (clean - c) + w
        dirty = d
        // Cold anon to swap.
        let ca = take(&anon.inactiveCold, Swift.min(swapBudget, swapRoom(swapUsed)))
        swappedCold += ca; swapBudget -= ca; swapOuts += ca / 4
        // The active list's cold pages, demoted and reclaimed.
        let cleanActive = file.activeCold
        var fa = cleanActive
        _ = take(&fa)
        file.activeCold = fa
        let caa = take(&anon.activeCold, Swift.min(swapBudget, swapRoom(swapUsed)))
        swappedCold += caa; swapBudget -= caa; swapOuts += caa / 4
        // The working set itself, only once nothing cold is left: pages being written back or swapped out
        // are waited for (the next step takes them), not replaced by pages the workload touches.
        if dirty > 0 || (anon.cold > 0 && swapRoom(swapUsed) > 0) { return want - left }
        // File pages (they will refault), then hot anon to swap.
        _ = take(&file.inactiveHot)
        _ = take(&file.activeHot)
        let ha = take(&anon.inactiveHot, Swift.min(swapBudget, swapRoom(swapUsed)))
        swapBudget -= ha
        let hb = take(&anon.activeHot, Swift.min(swapBudget, swapRoom(swapUsed + ha)))
        swapBudget -= hb
        swappedHot += ha + hb; swapOuts += (ha + hb) / 4
        return want - left
    }

    /// Advances `dt` seconds to time `t`. `hostFree` is Xen's free memory, which growing takes from and
    /// shrinking gives back to. In order: the applications' working set moves, the balloon moves, missing
    /// pages fault back in, the LRU ages, the page cache fills and kswapd and write-back run, and the
    /// waiting is scored.
    mutating func step(dt: Double, t: Double, hostFree: inout Double) {
        let w = spec.workload
        let load = w.workingSet(at: t)
        let wantAnon = load * spec.anonFraction + Self.systemAnon, wantFile = load - load * spec.anonFraction
        workingSet = wantAnon + wantFile
        let wantCold = w.coldAnon(at: t)
        var io = IOBudget(swap: Self.swapSpeed * dt, writeback: Self.writebackSpeed * dt)
        use(anon: wantAnon, file: wantFile, cold: wantCold)
        balloon(dt: dt, hostFree: &hostFree, io: &io)
        fault(anon: wantAnon, file: wantFile, cold: wantCold, dt: dt, io: &io)
        // LRU ageing: second touches promote, a short inactive list demotes the oldest active pages.
        anon.promote(dt: dt, period: Self.touchSeconds)
        file.promote(dt: dt, period: Self.touchSeconds)
        anon.age(dt: dt)
        file.age(dt: dt)
        background(dt: dt, io: &io)
        scoreWaiting(anon: wantAnon, file: wantFile, dt: dt, t: t)
    }

    /// What a step may still swap out and write back.
    struct IOBudget {
        var swap: Double
        var writeback: Double
    }

    /// What the applications released: anon is freed (swapped copies first), file pages go cold; working-set
    /// file pages still in the page cache are hits (a second touch promotes them).
    private mutating func use(anon wantAnon: Double, file wantFile: Double, cold wantCold: Double) {
        if anon.hot + swappedHot > wantAnon {
            let drop = anon.hot + swappedHot - wantAnon
            let fromSwap = Swift.min(swappedHot, drop); swappedHot -= fromSwap
            anon.dropHot(drop - fromSwap)
        }
        if file.hot > wantFile { file.cool(file.hot - wantFile) }
        if anon.cold + swappedCold > wantCold {
            let drop = anon.cold + swappedCold - wantCold
            let fromSwap = Swift.min(swappedCold, drop); swappedCold -= fromSwap
            anon.dropCold(drop - fromSwap)
        }
        if wantFile > file.hot && file.cold > 0 {
            let hit = Swift.min(wantFile - file.hot, file.cold)
            let f = hit / file.cold
            dirty -= dirty * f
            file.activeHot += hit
            file.activeCold -= file.activeCold * f; file.inactiveCold -= file.inactiveCold * f
        }
    }

    /// The balloon: a shrink takes free pages, then what reclaim frees; a grow takes what Xen has free.
    private mutating func balloon(dt: Double, hostFree: inout Double, io: inout IOBudget) {
        let speed = balloonSpeed * dt
        if target < actual - 1 && speed > 0 {
            let want = Swift.min(actual - target, speed)
            // GFP_BALLOON may not dip below the min watermark (no __GFP_MEMALLOC): free pages above it,
            // then what reclaim frees.
            var taken = Swift.min(Swift.max(0, free - watermarks.min), want)
            taken += reclaim(want - taken, swapBudget: &io.swap, writeBudget: &io.writeback)
            actual -= taken
            hostFree += taken
        } else if target > actual + 1 && speed > 0 {
            let grow = Swift.min(target - actual, speed, Swift.max(0, hostFree))
            actual += grow
            hostFree -= grow
        }
    }

    /// Missing working-set pages are touched, fault and wait; the disk brings them back as fast as it
    /// can, into free memory or into room reclaim makes (a refault is activated at once). New cold anon
    /// (a leak) must be resident when allocated.
    private mutating func fault(anon wantAnon: Double, file wantFile: Double, cold wantCold: Double, dt: Double, io: inout IOBudget) {
        let missingAnon = Swift.max(0, wantAnon - anon.hot)
        let missingFile = Swift.max(0, wantFile - file.hot)
        let faultRate = (missingAnon + missingFile) / 4 / Self.touchSeconds          // pages/s touched while missing
        var bandwidth = Self.diskBandwidth * dt
        func room(_ amount: Double) -> Double {
            var got = Swift.min(Swift.max(0, free - watermarks.min), amount)
            if got < amount { got += reclaim(amount - got, swapBudget: &io.swap, writeBudget: &io.writeback) }
            return got
        }
        if missingAnon > 0 {
            // Swapped pages come back from swap; never-resident anon needs only a free page.
            let fromSwap = Swift.min(swappedHot, missingAnon)
            let inSwap = Swift.min(fromSwap, Swift.min(faultRate * 4 * dt, bandwidth))
            let fresh = missingAnon - fromSwap
            // Faulting a hot page in may evict another: what stays missing is what is still short.
            let got = room(inSwap + fresh)
            let fromDisk = Swift.min(got, inSwap)
            swappedHot -= fromDisk; bandwidth -= fromDisk
            anon.activeHot += got
            swapIns += fromDisk / 4; majorFaults += fromDisk / 4; refaultAnon += fromDisk / 4
        }
        let stillFile = Swift.max(0, wantFile - file.hot)
        if stillFile > 0 && bandwidth > 0 {
            let got = room(Swift.min(stillFile, faultRate * 4 * dt, bandwidth))
            file.activeHot += got
            majorFaults += got / 4; refaultFile += got / 4
        }
        let missingCold = wantCold - anon.cold - swappedCold
        if missingCold > 0 { anon.inactiveCold += room(missingCold) }
    }

    /// The page cache grows into free memory above the high watermark (I/O), some of it dirty; kswapd
    /// keeps free memory at the high watermark once it falls below the low one; write-back cleans.
    private mutating func background(dt: Double, io: inout IOBudget) {
        let wm = watermarks
        let fill = Swift.min(Swift.max(0, free - wm.high), Self.cacheFillSpeed * dt)
        file.inactiveCold += fill
        dirty += fill * 0.1
        if free < wm.low { _ = reclaim(wm.high - free, swapBudget: &io.swap, writeBudget: &io.writeback) }
        let wb = Swift.min(dirty, Swift.max(0, io.writeback) * 0.1)
        dirty -= wb
    }

    /// Waiting: faults arrive at `rate` and each waits the disk's latency, longer once the disk is
    /// saturated; some = P(at least one task waits), full = P(all of them do). PSI's totals and its
    /// 2 s averaging periods take the step's waiting.
    private mutating func scoreWaiting(anon wantAnon: Double, file wantFile: Double, dt: Double, t: Double) {
        deficit = Swift.max(0, wantAnon - anon.hot) + Swift.max(0, wantFile - file.hot)
        if deficit < 1 { deficit = 0 }                  // rounding of the list arithmetic, not a page
        let rate = deficit / 4 / Self.touchSeconds
        let latency = Self.faultLatency * Swift.max(1, rate * 4 / Self.diskBandwidth)
        let busy = rate * latency
        stall = 1 - exp1(-busy)
        let perTask = 1 - exp1(-busy / Self.tasks)
        let full = Swift.min(stall, pow1(perTask, Self.tasks))
        psiSomeUs += stall * dt * 1_000_000
        psiFullUs += full * dt * 1_000_000
        // The step's waiting goes into each 2 s averaging period it spans, in proportion.
        var cursor = t - dt
        while cursor < t - 1e-9 {
            let edge = Swift.min(t, psiNextUpdate)
            psiWindowSome += stall * (edge - cursor)
            psiWindowFull += full * (edge - cursor)
            cursor = edge
            guard edge >= psiNextUpdate - 1e-9 else { break }
            let some = Swift.min(1, psiWindowSome / Self.psiPeriod), fullShare = Swift.min(1, psiWindowFull / Self.psiPeriod)
            for (k, window) in Self.psiWindows.enumerated() {
                let decay = exp1(-Self.psiPeriod / window)
                someAvg[k] = someAvg[k] * decay + some * (1 - decay)
                fullAvg[k] = fullAvg[k] * decay + fullShare * (1 - decay)
            }
            psiWindowSome = 0; psiWindowFull = 0
            psiNextUpdate += Self.psiPeriod
        }
    }

    /// xen-selfballoon, the guest kernel's own balloon policy (drivers/xen/xen-selfballoon.c as last
    /// shipped, before its removal with tmem in Linux 5.3; lines "F:" of that file). Every 5 s
    /// (F:96, 240-241): cur = totalram (MemTotal now, F:192); goal = Committed_AS + totalreserve_pages +
    /// reserved_mb (F:194-196), reserved_mb a tenth of boot RAM (F:571-574); down by 1/8 of the gap, up
    /// by all of it (downhysteresis 8, uphysteresis 1: F:92-93, 202-209); never below the piecewise
    /// floor on max_pfn (F:211-228); the target in balloon units adds back what the kernel keeps
    /// (F:229-230). No frontswap: tmem, which it needs for that, left Xen in 4.13. Growth takes what
    /// Xen has free, as the balloon driver retries populate_physmap until it gets it.
    mutating func selfballoon(at t: Double) {
        guard t >= nextSelfballoonAt else { return }
        nextSelfballoonAt += 5
        let cur = usableSize
        let goal = committedAS + totalReserve + bootTotal / 10
        var tgt = cur > goal ? cur - (cur - goal) / 8 : goal
        let maxPfn = spec.staticMax.asDouble
        tgt = Swift.max(tgt, totalReserve + Floors.selfballoon(KiB(Int64(Swift.max(0, maxPfn - totalReserve)))).asDouble)
        target = Swift.min(tgt + overhead, maxPfn)
    }
}
