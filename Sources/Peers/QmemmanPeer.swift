import GuestModel

/// Qubes OS qmemman (QubesOS/qubes-core-admin `qubes/qmemman/`, and the guest's meminfo-writer in
/// QubesOS/qubes-linux-utils `qmemman/meminfo-writer.c`). Line numbers are of algo.py @173b4156 (AL),
/// systemstate.py @37e21f28 (SS), qmemmand.py @fce8bad8 (QD) and meminfo-writer.c @2f5ef8e2 (MW).
///
/// - The guest's demand: used = MemTotal − MemFree − Buffers − Cached + SwapTotal − SwapFree, with
///   MemTotal replaced by the balloon driver's current size (MW:62-69): here the domain's allocation
///   when the report was read. A guest whose report lacks MemFree, Buffers or Cached has no `used`
///   and is left alone (AL:240-241).
/// - meminfo-writer writes only when used moved by more than 30000 kB since its last write, or on an
///   urgent rise (used > MemTotal / 1.3 and a move of over 15000 kB) (MW:73-88, T from
///   qubes-meminfo-writer.service:8): reports that would not have been written are not seen.
/// - Every written report (and a domain list change) runs a balance (QD:74-79, 144-164); no timer.
/// - pref = max(min(used × 1.3, max), 200 MiB) (AL:54-60); Xen free = free / 1.00781 − Σ max(0,
///   last target − current) (SS:83-114); actual = max(current, last target) (SS:125-128).
/// - F = Xen free − 50 MiB (SS:385-387); avail = F − Σ (pref − actual). With avail > 0 each gets
///   0.999 × (pref + pref / Σpref × avail), capped at its max with the excess shared again (AL:109-170).
///   Otherwise donors at least 10 MiB above pref go to pref, and acceptors share F − Σ surplus (if
///   positive) in proportion to pref, times 0.999 (AL:175-210).
/// - Only a significant change is applied: Xen free under 35 MiB, a guest under its pref raised by more
///   than 15 MiB, or Σ|new − last target| + |Xen free − 50 MiB| over 150 MiB (SS:288-322).
/// - Applied donors first; an acceptor whose rise Xen cannot cover (free − rise < 0.9 × 50 MiB) gets
///   free + actual − 50 MiB and the rest wait, and every earlier-asked donor more than 12.5 MiB above its
///   target that has not moved is marked `no_progress` (SS:403-426, 344-374): left out of balancing until
///   it is within 25 MiB of its target or below its pref (SS:151-166).
///
/// The pushed target is qmemman's `set_target_mem` value (SS:170-194).
public struct QmemmanPeer: RoundPolicy {
    public let name = "qmemman"
    static let mib = 1024.0
    static let cacheFactor = 1.3, minPref = 200 * mib, freeLeft = 50 * mib, overheadFactor = 1 / 1.00781
    static let writeThreshold = 30000.0, donorMin = 10 * mib
    static let minTransfer = 150 * mib, minChangeUnderPref = 15 * mib

    /// The `used` figure (KiB) meminfo-writer last wrote for each guest.
    var used = [DomID: Double]()
    var pending = false
    var known = Set<DomID>()
    var noProgress = Set<DomID>()
    /// Actual sizes at the last balance (debug_stuck_balance compares against them).
    var actualAtBalance = [DomID: Int64]()

    public init() {}

    /// meminfo-writer's rule: would this reading have been written (MW:73-88)?
    static func written(_ u: Double, previous: Double?, memTotal: Double) -> Bool {
        guard let p = previous, p > 0 else { return true }
        if abs(u - p) > writeThreshold { return true }
        return u > p && u / 10 > (memTotal + 12) / 13 && abs(u - p) > writeThreshold / 2
    }

    public mutating func ingest(_ domid: DomID, parsed: Result<GuestReport, ReportRejection>, at: TimePoint,
                                staticMax: KiB?, allocation: KiB?) -> IngestOutcome {
        let r: GuestReport
        switch parsed {
        case .failure(let why): return .rejected(why)
        case .success(let x): r = x
        }
        guard let free = r.memFree, let buffers = r.buffers, let cached = r.cached else { return .accepted }
        let total = (allocation ?? r.memTotal).asDouble
        let swap = Swift.max(0, (r.swapTotal?.asDouble ?? 0) - (r.swapFree?.asDouble ?? 0))
        let u = total - free.asDouble - buffers.asDouble - cached.asDouble + swap
        guard u >= 0 else { return .accepted }          // MW:70-71: dropped
        guard Self.written(u, previous: used[domid], memTotal: total) else { return .unchanged }
        used[domid] = u
        pending = true
        return .accepted
    }

    public mutating func forget(_ domid: DomID) {
        used[domid] = nil; noProgress.remove(domid); actualAtBalance[domid] = nil; known.remove(domid)
        pending = true
    }

    public mutating func reconfigure(_ config: PolicyConfig) {}

    static func pref(used: Double, max: Double) -> Double { Swift.max(Swift.min(used * cacheFactor, max), minPref) }

    /// algo.balance: the new size of each considered domain (index into `members`); nil where qmemman
    /// issues no request for it (a donor under 10 MiB above its pref, acceptors when donors' memory is
    /// not free yet).
    static func balance(members: [(actual: Double, pref: Double, max: Double)], available F: Double) -> [Double?] {
        let needs = members.map { $0.pref - $0.actual }
        let avail = F - needs.reduce(0, +)
        if avail > 0 {
            let sumPref = members.reduce(0) { $0 + $1.pref }
            var out = members.map { (0.999 * ($0.pref + $0.pref / sumPref * avail)).rounded(.down) }
            var left = 0.0
            var acceptors = [Int]()
            for k in out.indices {
                if out[k] > members[k].max { left += out[k] - members[k].max; out[k] = members[k].max } else { acceptors.append(k) }
            }
            while left > 0 && !acceptors.isEmpty {
                let bonus = (0.999 * left / Double(acceptors.count)).rounded(.down)
                if bonus < 1 { break }
                left = 0
                var still = [Int]()
                for k in acceptors {
                    out[k] += bonus
                    if out[k] > members[k].max { left += out[k] - members[k].max; out[k] = members[k].max } else { still.append(k) }
                }
                acceptors = still
            }
            return out
        }
        var out = [Double?](repeating: nil, count: members.count)
        var squeezed = F
        var sumPrefAcc = 0.0
        for (k, m) in members.enumerated() {
            let donor = needs[k] < 0 || m.actual >= m.max
            if donor {
                let surplus = m.actual - m.pref
                if surplus >= donorMin { out[k] = m.pref; squeezed -= surplus }
            } else {
                sumPrefAcc += m.pref
            }
        }
        guard squeezed >= 0, sumPrefAcc > 0 else { return out }
        for (k, m) in members.enumerated() where !(needs[k] < 0 || m.actual >= m.max) {
            out[k] = Swift.min((0.999 * (m.actual + m.pref / sumPrefAcc * squeezed)).rounded(.down), m.max)
        }
        return out
    }

    public mutating func step(_ snapshot: HostSnapshot, now: TimePoint) -> Decision {
        let ds = snapshot.domains
        let ids = Set(ds.map(\.domid))
        if ids != known { known = ids; pending = true }
        var targets = [KiB?](repeating: nil, count: ds.count)
        var prefs = [Double?](repeating: nil, count: ds.count)
        let maxOf = { (d: DomainFacts) in min(d.adminMax ?? d.staticMax, d.staticMax).asDouble }
        for (i, d) in ds.enumerated() { if let u = used[d.domid] { prefs[i] = Self.pref(used: u, max: maxOf(d)) } }
        // no_progress clears once the domain is near its target or below its pref (SS:151-166).
        for (i, d) in ds.enumerated() where noProgress.contains(d.domid) {
            if d.actual.asDouble <= d.target.asDouble + 25 * Self.mib || (prefs[i].map { d.actual.asDouble < $0 } ?? false) {
                noProgress.remove(d.domid)
            }
        }
        if pending {
            pending = false
            // Memory held for a VM about to be built is not free to the guests either.
            let xenFree = Swift.max(0, snapshot.free.asDouble - snapshot.held.asDouble) * Self.overheadFactor
                - ds.reduce(0.0) { $0 + Swift.max(0, $1.target.asDouble - $1.actual.asDouble) }
            let members = ds.indices.filter { prefs[$0] != nil && !noProgress.contains(ds[$0].domid) }
            let actual = { (i: Int) in Swift.max(ds[i].actual.asDouble, ds[i].target.asDouble) }
            let new = Self.balance(members: members.map { (actual($0), prefs[$0]!, maxOf(ds[$0])) }, available: xenFree - Self.freeLeft)
            // is_balance_req_significant (SS:288-322).
            var total = abs(xenFree - Self.freeLeft)
            var significant = Self.freeLeft - xenFree > 15 * Self.mib
            for (k, i) in members.enumerated() {
                guard let n = new[k] else { continue }
                let last = ds[i].target.asDouble
                total += abs(n - last)
                if last > 0 && last < prefs[i]! && n - last > Self.minChangeUnderPref { significant = true }
            }
            if significant || total > Self.minTransfer {
                // Donors first, then acceptors while Xen can cover them. qmemman waits up to 0.5 s for the
                // donors' memory (SS:403-416); a balloon does that in well under a second, so what the donors
                // were asked to give counts as free here.
                var free = xenFree
                let asked = members.indices.filter { new[$0] != nil }
                let order = asked.sorted { (new[$0]! < actual(members[$0]) ? 0 : 1) < (new[$1]! < actual(members[$1]) ? 0 : 1) }
                for k in order {
                    let i = members[k]
                    let rise = new[k]! - actual(i)
                    if rise > 0 && free - rise < 0.9 * Self.freeLeft {
                        // debug_stuck_balance: a donor well above its target that has not moved since the last balance.
                        for d in ds where d.actual.asDouble > d.target.asDouble + Self.freeLeft / 4 && actualAtBalance[d.domid] == d.actual.value {
                            noProgress.insert(d.domid)
                        }
                        let give = free + actual(i) - Self.freeLeft
                        if give > actual(i) { targets[i] = KiB.pageFloor(give) }
                        break
                    }
                    targets[i] = KiB.pageFloor(new[k]!)
                    free -= rise
                }
            }
            actualAtBalance = Dictionary(uniqueKeysWithValues: ds.map { ($0.domid, $0.actual.value) })
        }
        let choices = ds.indices.map { i in
            PeerChoice(target: targets[i], floor: .zero, ceiling: KiB(Int64(maxOf(ds[i]))),
                       demand: prefs[i].map { KiB(Int64($0)) } ?? ds[i].actual, reported: prefs[i] != nil)
        }
        return .peer(snapshot, now: now, choices: choices, reserve: KiB(Int64(Self.freeLeft)), contended: false)
    }
}
