import GuestModel

/// One guest's figures over a run.
public struct GuestMetrics: Sendable, Equatable, Codable {
    public var name: String
    public var stallSeconds: Double
    /// Time-averaged allocation, KiB.
    public var meanActual: Double
    public var minTarget: KiB
    public var maxTarget: KiB
    /// The target at the end of the run.
    public var endTarget: KiB

    enum CodingKeys: String, CodingKey {
        case name
        case stallSeconds = "stall_seconds"
        case meanActual = "mean_allocation_kib"
        case minTarget = "min_target_kib"
        case maxTarget = "max_target_kib"
        case endTarget = "end_target_kib"
    }
}

/// What one policy did on one scenario. Field names follow the `--json` contract.
public struct PolicyMetrics: Sendable, Equatable, Codable {
    public var policy: String
    /// Σ over guests of stall share × time: seconds some task stalled on memory.
    public var stallSeconds: Double
    /// 99th percentile over (guest, minute) of stall seconds in that minute.
    public var p99StallSeconds: Double
    /// ∫ Σ (static-max − allocation) dt, in GiB·h: memory kept out of guests that could have had it.
    public var reclaimedGiBHours: Double
    /// The same as a time-averaged share of Σ static-max, in percent.
    public var reclaimedPct: Double
    /// Targets pushed below the guest's admin min, or below the floor the policy itself promised.
    public var floorViolations: Int
    public var targetChanges: Int
    /// Targets the host refused (above static-max).
    public var refusedTargets: Int
    /// Mean and worst seconds from a spike's start until the guest's working set was resident again.
    public var spikeSatisfySeconds: Double?
    public var spikeSatisfyMaxSeconds: Double?
    /// Jain's fairness index of per-guest stall seconds (1 = evenly shared; 1 when nobody stalls).
    public var jainFairness: Double
    public var rejectedReports: Int
    public var guests: [GuestMetrics]

    enum CodingKeys: String, CodingKey {
        case policy
        case stallSeconds = "stall_seconds"
        case p99StallSeconds = "p99_stall_seconds"
        case reclaimedGiBHours = "reclaimed_gib_hours"
        case reclaimedPct = "reclaimed_pct"
        case floorViolations = "floor_violations"
        case targetChanges = "target_changes"
        case refusedTargets = "refused_targets"
        case spikeSatisfySeconds = "spike_satisfy_seconds"
        case spikeSatisfyMaxSeconds = "spike_satisfy_max_seconds"
        case jainFairness = "jain_fairness"
        case rejectedReports = "rejected_reports"
        case guests
    }
}

/// The figures of one run, gathered step by step from the simulated host, whoever decides the targets.
public struct MetricsRecorder: Sendable {
    let n: Int
    let names: [String]
    let sumStaticMax: Double
    let horizon: Double
    var stall: [Double], minuteStall: [Double], minuteSamples = [Double](), nextMinute = 60.0
    var actualIntegral: [Double], reclaimed = 0.0, elapsed = 0.0
    var minTarget: [KiB], maxTarget: [KiB], endTarget: [KiB]
    var violations = 0, changes = 0, refused = 0
    /// Spikes (guest, start) not yet satisfied, and the times measured.
    var spikes = [(Int, Double)](), satisfied = [Double]()

    /// Starts with the host as it boots; `horizon` is the run's length in seconds.
    public init(_ host: SimHost, horizon: Double) {
        n = host.guests.count
        names = host.guests.map(\.spec.name)
        sumStaticMax = host.guests.reduce(0.0) { $0 + $1.spec.staticMax.asDouble }
        self.horizon = horizon
        stall = Array(repeating: 0, count: n)
        minuteStall = stall
        actualIntegral = stall
        minuteSamples.reserveCapacity(n * Swift.max(1, Int(horizon / 60)))
        minTarget = host.guests.map { KiB(Int64($0.target)) }
        maxTarget = minTarget
        endTarget = minTarget
        for i in 0..<n { for s in host.guests[i].spec.workload.spikeStarts(until: horizon) { spikes.append((i, s)) } }
    }

    /// After each physics step of `dt` seconds.
    public mutating func observe(_ host: SimHost, dt: Double) {
        let t = host.seconds
        elapsed += dt
        for i in 0..<Swift.min(n, host.guests.count) {
            let s = host.guests[i].stall * dt, actual = host.guests[i].actual
            stall[i] += s
            minuteStall[i] += s
            actualIntegral[i] += actual * dt
            reclaimed += (host.guests[i].spec.staticMax.asDouble - actual) * dt
        }
        if t >= nextMinute - 1e-9 {
            minuteSamples.append(contentsOf: minuteStall)
            for i in 0..<n { minuteStall[i] = 0 }
            nextMinute += 60
        }
        if !spikes.isEmpty {
            spikes.removeAll { (i, start) in
                guard t > start else { return false }
                let g = host.guests[i]
                if g.deficit <= 0.02 * Swift.max(g.workingSet, 1) { satisfied.append(t - start); return true }
                return false
            }
        }
    }

    /// A target the host took for guest `i`.
    public mutating func targetSet(_ i: Int, _ target: KiB) {
        guard i < n else { return }
        changes += 1
        minTarget[i] = Swift.min(minTarget[i], target)
        maxTarget[i] = Swift.max(maxTarget[i], target)
        endTarget[i] = target
    }

    /// A target the host refused (above static-max).
    public mutating func targetRefused() { refused += 1 }

    /// A target pushed below the guest's admin min or the floor the policy itself promised.
    public mutating func floorViolated() { violations += 1 }

    public func finish(policy: String, rejectedReports: Int) -> PolicyMetrics {
        var minuteSamples = self.minuteSamples, satisfied = self.satisfied
        if minuteStall.contains(where: { $0 > 0 }) || minuteSamples.isEmpty { minuteSamples.append(contentsOf: minuteStall) }
        minuteSamples.sort()
        let p99 = minuteSamples.isEmpty ? 0 : minuteSamples[Swift.min(minuteSamples.count - 1, Int((Double(minuteSamples.count) * 0.99).rounded(.down)))]
        let totalStall = stall.reduce(0, +)
        let squares = stall.reduce(0) { $0 + $1 * $1 }
        let jain = squares > 0 ? totalStall * totalStall / (Double(n) * squares) : 1
        // Spikes never satisfied count with the time they waited.
        for (_, start) in spikes where start < horizon { satisfied.append(horizon - start) }
        let duration = Swift.max(elapsed, 1e-9)
        return PolicyMetrics(
            policy: policy, stallSeconds: totalStall, p99StallSeconds: p99,
            reclaimedGiBHours: reclaimed / (1024 * 1024) / 3600,
            reclaimedPct: sumStaticMax > 0 ? 100 * reclaimed / (sumStaticMax * duration) : 0,
            floorViolations: violations, targetChanges: changes, refusedTargets: refused,
            spikeSatisfySeconds: satisfied.isEmpty ? nil : satisfied.reduce(0, +) / Double(satisfied.count),
            spikeSatisfyMaxSeconds: satisfied.max(),
            jainFairness: jain, rejectedReports: rejectedReports,
            guests: (0..<n).map { i in
                GuestMetrics(name: names[i], stallSeconds: stall[i], meanActual: actualIntegral[i] / duration,
                             minTarget: minTarget[i], maxTarget: maxTarget[i], endTarget: endTarget[i])
            })
    }
}
