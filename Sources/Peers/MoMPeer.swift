import GuestModel

/// oVirt MoM's balloon policy as oVirt ships it (vdsm `static/etc/vdsm/mom.d/02-balloon.policy`, MoM's
/// engine `mom/Entity.py`, `mom/Monitor.py`; settings from vdsm `static/etc/vdsm/mom.conf.in`). Line
/// numbers below are of oVirt/vdsm@4310de52 (policy), oVirt/vdsm@cbad9d14 (mom.conf.in) and oVirt/mom
/// (Entity.py@eef25b5d, Monitor.py@9e57053e).
///
/// - Every 15 s (`policy-engine-interval`, mom.conf.in:25) it samples the host and each guest (host- and
///   guest-monitor-interval 15 s, :8, :11) and keeps the last 10 samples (`sample-history-length`, :32;
///   Monitor.py:122-124). `StatAvg` is the mean of the samples that have the value (Entity.py:103-121).
/// - Host free share = StatAvg(host free) / host memory (02-balloon.policy:113). On KVM host free is
///   MemFree + Buffers + Cached (HostMemory.py:51-54); on Xen the memory the host can hand out is Xen's
///   free memory, so that is what is sampled, over the memory guests share (Σ allocation + free).
/// - A guest's `balloon_cur` is its current allocation (libvirt `balloon.current`, vmstats.py:160,165),
///   not its target; `mem_unused` is the guest's MemFree (libvirt `balloon.unused`, vmstats.py:436),
///   never MemAvailable. A guest without MemFree in its report has no stats and is skipped (:121-124).
/// - used = StatAvg(balloon_cur) − StatAvg(mem_unused); guest free share = host free share, or host free
///   share − 0.05 at or below 5 % (:40-47, :71-78); floor = max(balloon_min, used + share × balloon_cur)
///   (:52-53, :85-86).
/// - Host free share below 0.20 (:9): shrink to max(0.95 × balloon_cur, floor) when that is below
///   balloon_cur (:55-64). Otherwise grow to min(max(1.05 × balloon_cur, floor), balloon_max) while below
///   balloon_max (:81-98). A change of at most 0.25 % of balloon_cur is not made (:24, :30-35).
/// - A guest below balloon_min (oVirt's guaranteed memory: the admin min here) is raised to it (:130-136).
///
/// Assumed: ballooning enabled for the cluster (`balloonEnabled`, 00-defines.policy:12, is 0 until oVirt
/// Engine switches it on: without it MoM only ever grows guests). balloon_max is the admin max, else
/// static-max.
public struct MoMPeer: RoundPolicy {
    public let name = "mom"
    public static let interval = 15.0
    public static let history = 10
    static let pressureThreshold = 0.20, pressureCritical = 0.05
    static let maxChange = 0.05, minChange = 0.0025

    var book = ReportBook()
    var nextTick: TimePoint?
    var hostFree = [Double]()
    var balloonCur = [DomID: [Double]]()
    var memUnused = [DomID: [Double?]]()

    public init() {}

    public mutating func ingest(_ domid: DomID, parsed: Result<GuestReport, ReportRejection>, at: TimePoint,
                                staticMax: KiB?, allocation: KiB?) -> IngestOutcome {
        book.ingest(domid, parsed)
    }

    public mutating func forget(_ domid: DomID) {
        book.forget(domid); balloonCur[domid] = nil; memUnused[domid] = nil
    }

    public mutating func reconfigure(_ config: PolicyConfig) {}

    static func push<T>(_ xs: inout [T], _ x: T) {
        xs.append(x)
        if xs.count > history { xs.removeFirst(xs.count - history) }
    }

    /// Entity.StatAvg: the mean of the stored samples that have a value (0 when none has).
    static func statAvg(_ xs: [Double?]) -> Double {
        let v = xs.compactMap { $0 }
        return v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count)
    }

    public mutating func step(_ snapshot: HostSnapshot, now: TimePoint) -> Decision {
        let ds = snapshot.domains
        // Memory held for a VM about to be built is not free to the guests.
        let free = Swift.max(0, snapshot.free.asDouble - snapshot.held.asDouble)
        let pool = ds.reduce(free) { $0 + $1.actual.asDouble }
        var targets = [KiB?](repeating: nil, count: ds.count)
        var floors = ds.map { $0.adminMin ?? .zero }
        var pressured = false
        if now >= (nextTick ?? now) {
            nextTick = now.adding(seconds: Self.interval)
            Self.push(&hostFree, free)
            for d in ds {
                Self.push(&balloonCur[d.domid, default: []], d.actual.asDouble)
                Self.push(&memUnused[d.domid, default: []], book[d.domid]?.memFree?.asDouble)
            }
            let hostFreePct = Self.statAvg(hostFree) / Swift.max(pool, 1)
            pressured = hostFreePct < Self.pressureThreshold
            let guestFreePct = hostFreePct <= Self.pressureCritical ? hostFreePct - Self.pressureCritical : hostFreePct
            for (i, d) in ds.enumerated() {
                let cur = d.actual.asDouble
                let balloonMin = (d.adminMin ?? .zero).asDouble
                let balloonMax = min(d.adminMax ?? d.staticMax, d.staticMax).asDouble
                // QoS: a guest below its guaranteed memory is raised to it, whatever else holds.
                if cur < balloonMin { targets[i] = KiB.pageCeil(balloonMin); continue }
                // valid(balloon_cur, Stat mem_unused): the latest sample has both.
                guard book[d.domid]?.memFree != nil else { continue }
                let used = Self.statAvg(balloonCur[d.domid]!) - Self.statAvg(memUnused[d.domid]!)
                let floor = Swift.max(balloonMin, used + guestFreePct * cur)
                floors[i] = KiB.pageFloor(Swift.min(Swift.max(floor, 0), balloonMax))
                var size: Double
                if pressured {
                    size = Swift.max(cur * (1 - Self.maxChange), floor)
                    guard size <= cur else { continue }
                } else {
                    guard cur < balloonMax else { continue }
                    size = Swift.min(Swift.max(cur * (1 + Self.maxChange), floor), balloonMax)
                }
                if abs(size - cur) > Self.minChange * cur { targets[i] = KiB.pageFloor(size) }
            }
        }
        let choices = ds.indices.map { i in
            PeerChoice(target: targets[i], floor: min(floors[i], ds[i].actual), ceiling: min(ds[i].adminMax ?? ds[i].staticMax, ds[i].staticMax),
                       demand: targets[i] ?? ds[i].actual, reported: book[ds[i].domid]?.memFree != nil)
        }
        return .peer(snapshot, now: now, choices: choices, reserve: .zero, contended: pressured)
    }
}
