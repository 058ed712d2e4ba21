import GuestModel

/// The built-in example host that `arbiter demo` runs the decision core on until the simulated host
/// (a richer model, with scenarios and traces) replaces it. Six guests on a 12 GiB host, one of each
/// kind the arbiter meets: idle, hungry, steady, legacy agent, silent, hostile. Balloons move at a
/// bounded speed and grow only from free memory; a guest below its working set stalls in proportion
/// to the deficit, and that stall is what it reports.
public struct ExampleHost: Sendable {
    public enum Reporting: Sendable, Equatable { case reporter, legacy, silent, hostile }

    public struct Guest: Sendable {
        public var name: String
        public var domid: DomID
        public var staticMax: KiB
        public var actual: KiB
        public var target: KiB
        public var reporting: Reporting
        public var adminMin: KiB?
        public var weight: Double?
        /// Working set (KiB) as a function of seconds since start.
        var workingSet: @Sendable (Double) -> Double
        var psiTotalUs: UInt64 = 0
        var majorFaults: UInt64 = 0
        /// Stall seconds accumulated (the demo's quality figure).
        public var stallSeconds = 0.0

        /// Share of time stalled: 0 at or above the working set, rising steeply below it.
        func stall(at t: Double) -> Double {
            let ws = workingSet(t)
            let usable = Double(actual.value) * 0.97
            guard usable < ws else { return 0 }
            return min(1, 4 * (ws - usable) / ws)
        }
    }

    public var guests: [Guest]
    public var free: KiB
    /// Balloon speed of every guest, KiB/s.
    public var balloonSpeed = KiB(mib: 512)
    public private(set) var seconds = 0.0

    public static func builtIn() -> ExampleHost {
        func g(_ name: String, _ id: UInt16, staticMax: KiB, boot: KiB, _ reporting: Reporting,
               adminMin: KiB? = nil, weight: Double? = nil, ws: @escaping @Sendable (Double) -> Double) -> Guest {
            Guest(name: name, domid: DomID(id), staticMax: staticMax, actual: boot, target: boot, reporting: reporting,
                  adminMin: adminMin, weight: weight, workingSet: ws)
        }
        let mib = 1024.0
        let guests = [
            g("web-idle", 1, staticMax: KiB(gib: 4), boot: KiB(gib: 4), .reporter) { _ in 600 * mib },
            // Grows from 1 GiB to 5 GiB over the first two minutes, then stays.
            g("db-hungry", 2, staticMax: KiB(gib: 8), boot: KiB(gib: 2), .reporter, weight: 2) { t in
                (1024 + 4096 * min(1, t / 120)) * mib
            },
            g("batch-steady", 3, staticMax: KiB(gib: 4), boot: KiB(gib: 3), .reporter, adminMin: KiB(gib: 2)) { _ in 2200 * mib },
            g("legacy-agent", 4, staticMax: KiB(gib: 2), boot: KiB(gib: 2), .legacy) { _ in 900 * mib },
            g("silent", 5, staticMax: KiB(gib: 2), boot: KiB(gib: 2), .silent) { _ in 1500 * mib },
            g("hostile", 6, staticMax: KiB(gib: 2), boot: KiB(gib: 1), .hostile) { _ in 700 * mib },
        ]
        let total = KiB(gib: 12)
        let used = guests.reduce(Int64(0)) { $0 + $1.actual.value }
        return ExampleHost(guests: guests, free: KiB(total.value - used))
    }

    public var snapshot: HostSnapshot {
        HostSnapshot(free: free, domains: guests.map {
            DomainFacts(domid: $0.domid, staticMax: $0.staticMax, actual: $0.actual, target: $0.target,
                        adminMin: $0.adminMin, weight: $0.weight)
        })
    }

    public var now: TimePoint { TimePoint(seconds: seconds) }

    /// What each guest writes this round: a reporter line, legacy keys, garbage, or nothing.
    public func reports(round: Int) -> [(DomID, Result<GuestReport, ReportRejection>)] {
        var out = [(DomID, Result<GuestReport, ReportRejection>)]()
        for g in guests {
            let total = Int64(Double(g.actual.value) * 0.97)
            let ws = Int64(g.workingSet(seconds))
            let available = max(0, total - ws)
            let stall = g.stall(at: seconds)
            switch g.reporting {
            case .silent:
                continue
            case .legacy:
                out.append((g.domid, ReportParser.parseLegacy(total: String(total), free: String(available))))
            case .reporter:
                let line = "v=1 seq=\(Int64(seconds * 1000) + 1) mem_total_kb=\(total) mem_available_kb=\(available) active_file_kb=0"
                    + " psi_some_avg10=\(formatFixed(stall * 100, decimals: 2)) psi_full_avg10=\(formatFixed(stall * 50, decimals: 2))"
                    + " psi_some_total_us=\(g.psiTotalUs) psi_full_total_us=\(g.psiTotalUs / 2) pgmajfault=\(g.majorFaults)"
                out.append((g.domid, ReportParser.parse(line)))
            case .hostile:
                // Alternates between garbage, impossible values and a lie about its own size.
                let lines = ["v=1 seq=1 mem_total_kb=NaN mem_available_kb=0",
                             "v=1 seq=\(round) mem_total_kb=999999999999999999999 mem_available_kb=1",
                             String(repeating: "A", count: 4096),
                             "v=1 seq=\(round + 10) mem_total_kb=100 mem_available_kb=200 psi_some_avg10=100"]
                out.append((g.domid, ReportParser.parse(lines[round % lines.count])))
            }
        }
        return out
    }

    /// Moves time on by `dt` seconds with the targets of `decision` in force.
    public mutating func advance(_ dt: Double, applying decision: Decision) {
        for o in decision.outcomes {
            guard let i = guests.firstIndex(where: { $0.domid == o.domid }) else { continue }
            guests[i].target = o.target
        }
        let speed = Int64(Double(balloonSpeed.value) * dt)
        // Shrinks first (they free memory), then grows from what is free.
        for i in guests.indices where guests[i].target < guests[i].actual {
            let step = min(speed, guests[i].actual.value - guests[i].target.value)
            guests[i].actual -= KiB(step)
            free += KiB(step)
        }
        for i in guests.indices where guests[i].target > guests[i].actual {
            let step = min(speed, guests[i].target.value - guests[i].actual.value, free.value)
            guests[i].actual += KiB(step)
            free -= KiB(step)
        }
        seconds += dt
        for i in guests.indices {
            let s = guests[i].stall(at: seconds)
            guests[i].stallSeconds += s * dt
            guests[i].psiTotalUs += UInt64(s * dt * 1_000_000)
            guests[i].majorFaults += UInt64(s * dt * 2000)
        }
    }
}
