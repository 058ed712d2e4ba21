import GuestModel

/// How a simulated guest's reporter and balloon behave.
public enum Behaviour: String, Sendable, Equatable, CaseIterable {
    /// Runs our reporter (`~/data/pressure`) every report interval.
    case reporter
    /// Only a XenServer-style agent: `~/data/meminfo_total` and `meminfo_free` every 60 s.
    case legacy
    /// Writes nothing.
    case silent
    /// Runs the reporter, then stops reporting after `staleAfter` seconds.
    case stale
    /// Writes garbage, absurd values, floods of writes and lies about its pressure, in turn.
    case hostile
    /// Reports, but its balloon ignores every target.
    case uncooperative
    /// Reports, but its balloon moves at 1 MiB/s.
    case slowBalloon = "slow-balloon"
}

/// One guest of a scenario, as written in the scenario file.
public struct GuestSpec: Sendable, Equatable {
    public var name: String
    public var workload: Workload
    public var staticMax: KiB
    public var boot: KiB
    public var adminMin: KiB?
    public var adminMax: KiB?
    public var weight: Double?
    public var behaviour: Behaviour
    /// Share of the working set that is anonymous memory (the rest is hot page cache).
    public var anonFraction = 0.6
    /// Swap space; zero for none.
    public var swap = KiB.zero
    /// Booted with the host (false: only a scenario event creates it).
    public var autostart = true
    public var reportInterval = 2.0
    public var legacyInterval = 60.0
    /// For `.stale`: seconds after which the reporter stops.
    public var staleAfter = 600.0
    /// Balloon speed, KiB/s (Linux PV guests manage several hundred MiB/s).
    public var balloonSpeed = KiB(mib: 256)

    public init(name: String, workload: Workload, staticMax: KiB, boot: KiB, behaviour: Behaviour = .reporter,
                adminMin: KiB? = nil, adminMax: KiB? = nil, weight: Double? = nil) {
        self.name = name
        self.workload = workload
        self.staticMax = staticMax
        self.boot = boot
        self.behaviour = behaviour
        self.adminMin = adminMin
        self.adminMax = adminMax
        self.weight = weight
    }
}

/// The xenstore keys a guest writes.
public enum ReportKey: Sendable, Equatable {
    case pressure, meminfoTotal, meminfoFree
    public var path: String {
        switch self {
        case .pressure: "data/pressure"
        case .meminfoTotal: "data/meminfo_total"
        case .meminfoFree: "data/meminfo_free"
        }
    }
}

/// One guest write, visible to dom0 from `visibleAt` (xenstore and watch delivery take time).
public struct XenstoreWrite: Sendable, Equatable {
    public var domid: DomID
    public var key: ReportKey
    public var value: String
    public var visibleAt: Double
}

/// The memory physics of one guest, stepped on the virtual clock. All sizes are KiB as Doubles.
///
/// Inside the domain's allocation (`actual`) the kernel keeps `overhead` for itself; the rest (`usable`,
/// what the guest calls MemTotal) holds, in order of what the guest protects: hot anonymous memory and
/// hot page cache (the working set), cold anonymous memory (leaks: it can only leave through swap),
/// clean and dirty cold page cache (which grows into free memory), and free memory.
///
/// The balloon takes memory in the order Linux reclaims it: free pages, clean cache, dirty cache as
/// fast as it is written back, cold anon as fast as it can be swapped, then hot cache (which the
/// guest will fault back) and hot anon to swap. Without swap, anon cannot leave and the balloon stalls.
/// Whatever part of the working set is not resident is the deficit; a guest with a deficit faults and
/// stalls in proportion to it, and that stall is what PSI reports.
public struct SimGuest: Sendable {
    /// A domain's life on the simulated host.
    public enum Life: Sendable, Equatable {
        /// Being built until then: its memory is allocated, `memory/target` is not written yet.
        case building(until: Double)
        case running
        /// Destroyed: its memory went back to Xen.
        case destroyed
    }

    public let spec: GuestSpec
    public let domid: DomID
    public internal(set) var life = Life.running
    public internal(set) var actual: Double
    public internal(set) var target: Double
    public let overhead: Double
    var hotAnon = 0.0, hotFile = 0.0, coldAnon = 0.0, clean = 0.0, dirty = 0.0
    /// Anonymous memory in swap: hot (the guest will fault it back) and cold.
    var swappedHot = 0.0, swappedCold = 0.0
    // Counters and PSI, as the guest kernel keeps them.
    var psiSomeUs = 0.0, psiFullUs = 0.0, someAvg10 = 0.0, fullAvg10 = 0.0
    var majorFaults = 0.0, refaultAnon = 0.0, refaultFile = 0.0, swapIns = 0.0, swapOuts = 0.0
    var nextReportAt: Double
    var nextLegacyAt: Double
    var hostileTurn = 0
    /// Current stall share (0–1) and deficit (KiB), after the last step.
    public internal(set) var stall = 0.0
    public internal(set) var deficit = 0.0
    public internal(set) var workingSet = 0.0

    // Physical rates, KiB/s.
    static let faultInSpeed = 200.0 * 1024
    static let writebackSpeed = 100.0 * 1024
    static let swapSpeed = 50.0 * 1024
    static let cacheFillSpeed = 8.0 * 1024
    /// Losing this share of the working set means stalling all the time.
    static let stallGain = 4.0

    /// `bornAt`: when it starts running (its reporter starts then).
    public init(spec: GuestSpec, domid: DomID, reportPhase: Double, bornAt: Double = 0) {
        self.spec = spec
        self.domid = domid
        let boot = Swift.min(spec.boot, spec.staticMax).asDouble
        actual = boot
        target = boot
        // struct page (≈1.6 % of static-max) plus a kernel base.
        overhead = spec.staticMax.asDouble * 0.016 + 24 * 1024
        nextReportAt = bornAt + reportPhase
        nextLegacyAt = bornAt + reportPhase
        let ws = spec.workload.workingSet(at: 0)
        let usable = usableSize
        hotAnon = Swift.min(ws * spec.anonFraction, usable)
        hotFile = Swift.min(ws - ws * spec.anonFraction, usable - hotAnon)
        workingSet = ws
    }

    public var usableSize: Double { Swift.max(0, actual - overhead) }
    var resident: Double { hotAnon + hotFile + coldAnon + clean + dirty }
    public var free: Double { Swift.max(0, usableSize - resident) }
    var swapUsed: Double { swappedHot + swappedCold }

    /// What the guest could give back without swapping (its MemAvailable).
    public var available: Double { free + clean + dirty + hotFile }

    var balloonSpeed: Double {
        switch spec.behaviour {
        case .uncooperative: 0
        case .slowBalloon: 1024
        default: spec.balloonSpeed.asDouble
        }
    }

    /// Advances `dt` seconds to time `t`. `hostFree` is Xen's free memory, which growing takes from and
    /// shrinking gives back to.
    mutating func step(dt: Double, t: Double, hostFree: inout Double) {
        let w = spec.workload
        let ws = w.workingSet(at: t)
        workingSet = ws
        let wantAnon = ws * spec.anonFraction, wantFile = ws - wantAnon
        let wantCold = w.coldAnon(at: t)
        let swapCap = spec.swap.asDouble

        // Memory the applications released: anon is freed (swapped copies first), file becomes cold cache.
        if hotAnon + swappedHot > wantAnon {
            let drop = hotAnon + swappedHot - wantAnon
            let fromSwap = Swift.min(swappedHot, drop); swappedHot -= fromSwap
            hotAnon -= drop - fromSwap
        }
        if hotFile > wantFile { clean += hotFile - wantFile; hotFile = wantFile }
        if coldAnon + swappedCold > wantCold {
            let drop = coldAnon + swappedCold - wantCold
            let fromSwap = Swift.min(swappedCold, drop); swappedCold -= fromSwap
            coldAnon -= drop - fromSwap
        }

        // Balloon.
        let speed = balloonSpeed * dt
        if target < actual - 1 && speed > 0 {
            var want = Swift.min(actual - target, speed)
            var taken = 0.0
            func take(_ pool: inout Double, _ limit: Double = .infinity) -> Double {
                let x = Swift.max(0, Swift.min(pool, want, limit))
                pool -= x; want -= x; taken += x
                return x
            }
            var freeNow = free
            _ = take(&freeNow)
            _ = take(&clean)
            _ = take(&dirty, Self.writebackSpeed * dt)
            var swapBudget = Swift.min(Swift.max(0, swapCap - swapUsed), Self.swapSpeed * dt)
            let cold = take(&coldAnon, swapBudget)
            swappedCold += cold; swapBudget -= cold
            _ = take(&hotFile)                                  // the guest will fault it back: deficit
            let hot = take(&hotAnon, swapBudget)
            swappedHot += hot
            swapOuts += (cold + hot) / 4
            actual -= taken
            hostFree += taken
        } else if target > actual + 1 && speed > 0 {
            let grow = Swift.min(target - actual, speed, Swift.max(0, hostFree))
            actual += grow
            hostFree -= grow
        }

        // The working set comes back in from free memory, then by evicting cold memory, at disk speed.
        var budget = Self.faultInSpeed * dt
        func makeRoom(_ amount: Double) -> Double {
            var got = Swift.min(free, amount)
            var need = amount - got
            let c = Swift.min(clean, need); clean -= c; got += c; need -= c
            let d = Swift.min(dirty, need, Self.writebackSpeed * dt); dirty -= d; got += d; need -= d
            let room = Swift.max(0, swapCap - swapUsed)
            let s = Swift.max(0, Swift.min(coldAnon, need, room, Self.swapSpeed * dt))
            coldAnon -= s; swappedCold += s; got += s
            swapOuts += s / 4
            return got
        }
        let missingAnon = wantAnon - hotAnon
        if missingAnon > 0 {
            let got = makeRoom(Swift.min(missingAnon, budget))
            hotAnon += got; budget -= got
            let fromSwap = Swift.min(got, swappedHot)
            swappedHot -= fromSwap
            swapIns += fromSwap / 4; majorFaults += fromSwap / 4; refaultAnon += fromSwap / 4
        }
        let missingFile = wantFile - hotFile
        if missingFile > 0 && budget > 0 {
            let got = makeRoom(Swift.min(missingFile, budget))
            hotFile += got
            majorFaults += got / 4; refaultFile += got / 4
        }
        // New cold anon (a leak) must be resident when allocated: free memory, clean cache, and without
        // swap room, the page cache the working set uses.
        let missingCold = wantCold - coldAnon - swappedCold
        if missingCold > 0 {
            var got = Swift.min(free, missingCold)
            var need = missingCold - got
            let c = Swift.min(clean, need); clean -= c; got += c; need -= c
            let h = Swift.min(hotFile, need); hotFile -= h; got += h
            coldAnon += got
        }

        // Page cache grows into free memory (I/O), some of it dirty; background write-back cleans it.
        let fill = Swift.min(free, Self.cacheFillSpeed * dt)
        clean += fill * 0.9; dirty += fill * 0.1
        let wb = Swift.min(dirty, Self.writebackSpeed * 0.1 * dt)
        dirty -= wb; clean += wb
        if resident > usableSize {
            // Less memory than the guest holds (a shrink the kernel could not refuse): cold first.
            var over = resident - usableSize
            let c = Swift.min(clean, over); clean -= c; over -= c
            let d = Swift.min(dirty, over); dirty -= d; over -= d
            let h = Swift.min(hotFile, over); hotFile -= h; over -= h
            let a = Swift.min(coldAnon, over); coldAnon -= a; over -= a
            hotAnon = Swift.max(0, hotAnon - over)
        }

        // Deficit and stall.
        deficit = Swift.max(0, wantAnon - hotAnon) + Swift.max(0, wantFile - hotFile)
        stall = ws > 0 ? Swift.min(1, Self.stallGain * deficit / ws) : 0
        let full = stall * stall
        psiSomeUs += stall * dt * 1_000_000
        psiFullUs += full * dt * 1_000_000
        let a = dt / (10 + dt)
        someAvg10 += a * (stall - someAvg10)
        fullAvg10 += a * (full - fullAvg10)
        // A missing working set keeps faulting: about a tenth of the missing pages every second.
        let churn = deficit / 4 * 0.1 * dt
        majorFaults += churn
        refaultFile += churn * (1 - spec.anonFraction)
        refaultAnon += churn * spec.anonFraction
        if swappedHot > 0 { swapIns += churn * spec.anonFraction }
    }

    /// The reporter's `~/data/pressure` line, from the guest's own view (with `noise`, a relative error),
    /// formatted by the same code as the real reporter's.
    func pressureLine(seqMs: Int64, noise: Double) -> String {
        let k = 1 + noise
        func kib(_ x: Double) -> KiB { KiB(Int64(Swift.max(0, x))) }
        let total = kib(usableSize)
        var r = GuestReport(source: .reporter, seq: UInt64(seqMs), memTotal: total, memAvailable: min(total, kib(available * k)))
        let activeFile = min(kib(hotFile + clean * 0.2), total)
        let inactiveFile = min(kib((clean + dirty) * 0.8), max(.zero, total - activeFile))
        let activeAnon = min(kib(hotAnon * k), max(.zero, total - activeFile - inactiveFile))
        r.activeFile = activeFile
        r.inactiveFile = inactiveFile
        r.activeAnon = activeAnon
        r.inactiveAnon = min(kib(coldAnon), max(.zero, total - activeFile - inactiveFile - activeAnon))
        r.dirty = min(kib(dirty), total)
        r.committedAS = kib((workingSet * spec.anonFraction + coldAnon) * 1.25 + 100 * 1024)
        r.swapTotal = spec.swap
        r.swapFree = max(.zero, spec.swap - kib(swapUsed))
        r.psiSomeAvg10 = someAvg10 * 100
        r.psiFullAvg10 = Swift.min(someAvg10, fullAvg10) * 100
        r.counters.psiSomeTotalUs = UInt64(psiSomeUs)
        r.counters.psiFullTotalUs = UInt64(Swift.min(psiFullUs, psiSomeUs))
        r.counters.pgmajfault = UInt64(majorFaults)
        r.counters.refaultAnon = UInt64(refaultAnon)
        r.counters.refaultFile = UInt64(refaultFile)
        r.counters.pswpin = UInt64(swapIns)
        r.counters.pswpout = UInt64(swapOuts)
        return r.line()
    }

    /// What this guest writes at time `t`, if anything. `rng` drives noise, delay and hostile choices.
    mutating func writes(at t: Double, rng: inout SplitMix64) -> [XenstoreWrite] {
        var out = [XenstoreWrite]()
        func delay() -> Double { Double(rng.next() % 300) / 1000 }
        func noise() -> Double { (Double(rng.next() % 2001) / 1000 - 1) * 0.005 }
        let seq = Int64(t * 1000) + 1
        switch spec.behaviour {
        case .silent:
            break
        case .legacy:
            if t >= nextLegacyAt {
                nextLegacyAt += spec.legacyInterval
                let v = t + delay()
                out.append(XenstoreWrite(domid: domid, key: .meminfoTotal, value: String(Int64(usableSize)), visibleAt: v))
                out.append(XenstoreWrite(domid: domid, key: .meminfoFree, value: String(Int64(Swift.min(available, usableSize))), visibleAt: v))
            }
        case .reporter, .stale, .uncooperative, .slowBalloon:
            if t >= nextReportAt && !(spec.behaviour == .stale && t >= spec.staleAfter) {
                nextReportAt += spec.reportInterval
                out.append(XenstoreWrite(domid: domid, key: .pressure, value: pressureLine(seqMs: seq, noise: noise()), visibleAt: t + delay()))
            }
        case .hostile:
            if t >= nextReportAt {
                nextReportAt += spec.reportInterval
                hostileTurn += 1
                let v = t + delay()
                let total = Int64(usableSize)
                switch hostileTurn % 4 {
                case 0:
                    out.append(XenstoreWrite(domid: domid, key: .pressure, value: "v=1 seq=\(seq) mem_total_kb=NaN \u{1}\u{2}" + String(repeating: "x", count: 3000), visibleAt: v))
                case 1:
                    out.append(XenstoreWrite(domid: domid, key: .pressure, value: "v=1 seq=\(seq) mem_total_kb=99999999999999999999 mem_available_kb=0", visibleAt: v))
                case 2:
                    // A flood: 20 writes in the same instant.
                    for i in 0..<20 {
                        out.append(XenstoreWrite(domid: domid, key: .pressure, value: "v=1 seq=\(seq + Int64(i)) mem_total_kb=\(total) mem_available_kb=0", visibleAt: v))
                    }
                default:
                    // A consistent lie: full and stalling hard, to be given more memory.
                    out.append(XenstoreWrite(domid: domid, key: .pressure,
                                             value: "v=1 seq=\(seq) mem_total_kb=\(total) mem_available_kb=0 psi_some_avg10=60.00 psi_full_avg10=30.00",
                                             visibleAt: v))
                }
            }
        }
        return out
    }
}
