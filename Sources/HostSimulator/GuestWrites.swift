import GuestModel

/// What a simulated guest writes to xenstore: its reporter's line from its own kernel's counters, a
/// legacy agent's keys, or a hostile guest's garbage.
extension SimGuest {
    /// The reporter's `~/data/pressure` line, from the guest kernel's own counters (what /proc shows),
    /// formatted by the same code as the real reporter's.
    func pressureLine(seqMs: Int64) -> String {
        func kib(_ x: Double) -> KiB { KiB(Int64(Swift.max(0, x))) }
        let total = kib(usableSize)
        var r = GuestReport(source: .reporter, seq: UInt64(seqMs), memTotal: total, memAvailable: min(total, kib(available)))
        r.memFree = min(kib(free), total)
        r.buffers = .zero                    // no block-device metadata modelled: Cached holds every file page
        r.cached = min(kib(file.total), total - r.memFree!)
        r.activeFile = min(kib(file.active), total)
        r.inactiveFile = min(kib(file.inactive), max(.zero, total - r.activeFile!))
        r.activeAnon = min(kib(anon.active), max(.zero, total - r.activeFile! - r.inactiveFile!))
        r.inactiveAnon = min(kib(anon.inactive), max(.zero, total - r.activeFile! - r.inactiveFile! - r.activeAnon!))
        r.dirty = min(kib(dirty), total)
        r.committedAS = kib(committedAS)
        r.swapTotal = spec.swap
        r.swapFree = max(.zero, spec.swap - kib(swapUsed))
        r.psiSomeAvg10 = someAvg[0] * 100
        r.psiFullAvg10 = Swift.min(someAvg[0], fullAvg[0]) * 100
        r.counters.psiSomeTotalUs = UInt64(psiSomeUs)
        r.counters.psiFullTotalUs = UInt64(Swift.min(psiFullUs, psiSomeUs))
        r.counters.pgmajfault = UInt64(majorFaults)
        r.counters.refaultAnon = UInt64(refaultAnon)
        r.counters.refaultFile = UInt64(refaultFile)
        r.counters.pswpin = UInt64(swapIns)
        r.counters.pswpout = UInt64(swapOuts)
        return r.line()
    }

    /// What this guest writes at time `t`, if anything. `rng` drives delivery delay and hostile choices.
    mutating func writes(at t: Double, rng: inout SplitMix64) -> [XenstoreWrite] {
        var out = [XenstoreWrite]()
        func delay() -> Double { Double(rng.next() % 300) / 1000 }
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
                out.append(XenstoreWrite(domid: domid, key: .pressure, value: pressureLine(seqMs: seq), visibleAt: t + delay()))
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
