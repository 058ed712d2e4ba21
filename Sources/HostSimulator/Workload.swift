import GuestModel

/// What a guest's applications do to memory over time: the working set (hot memory) and, for
/// leaks, cold anonymous memory that is allocated and never touched again. Pure functions of time.
public enum Workload: Sendable, Equatable {
    /// A small constant working set.
    case idle(KiB)
    /// A constant working set.
    case steady(KiB)
    /// Linear from `from` to `to` over `seconds`, starting at `start`, then flat.
    case ramp(from: KiB, to: KiB, start: Double, seconds: Double)
    /// `base`, jumping to `peak` at `at` for `seconds`, then back; repeats every `every` seconds if set.
    case spike(base: KiB, peak: KiB, at: Double, seconds: Double, every: Double?)
    /// A sine between base − amplitude and base + amplitude with the given period.
    case periodic(base: KiB, amplitude: KiB, period: Double)
    /// A steady working set plus cold anonymous memory growing at `rate` KiB/s up to `limit`.
    case leak(base: KiB, rate: KiB, limit: KiB)
    /// A real trace: working set follows `points` (time in seconds, KiB), held between samples.
    case trace(Trace.Series)

    /// The hot working set at `t` seconds, in KiB.
    public func workingSet(at t: Double) -> Double {
        switch self {
        case .idle(let k), .steady(let k): return k.asDouble
        case .ramp(let from, let to, let start, let seconds):
            if t <= start { return from.asDouble }
            if t >= start + seconds || seconds <= 0 { return to.asDouble }
            return from.asDouble + (to.asDouble - from.asDouble) * (t - start) / seconds
        case .spike(let base, let peak, let at, let seconds, let every):
            var local = t - at
            if let every, every > 0, local > 0 { local = local.truncatingRemainder(dividingBy: every) }
            return local >= 0 && local < seconds ? peak.asDouble : base.asDouble
        case .periodic(let base, let amplitude, let period):
            return Swift.max(0, base.asDouble + amplitude.asDouble * sine(2 * Double.pi * t / Swift.max(period, 1)))
        case .leak(let base, _, _):
            return base.asDouble
        case .trace(let series):
            return series.value(at: t)
        }
    }

    /// Cold anonymous memory at `t` (only leaks have any).
    public func coldAnon(at t: Double) -> Double {
        if case .leak(_, let rate, let limit) = self { return Swift.min(limit.asDouble, rate.asDouble * Swift.max(0, t)) }
        return 0
    }

    /// Start times of the spikes in `0..<horizon` (for the time-to-satisfy metric).
    public func spikeStarts(until horizon: Double) -> [Double] {
        guard case .spike(let base, let peak, let at, _, let every) = self, peak > base else { return [] }
        var out = [Double]()
        var s = at
        while s < horizon {
            if s >= 0 { out.append(s) }
            guard let every, every > 0 else { break }
            s += every
        }
        return out
    }

    /// The largest working set over `t..<t+window` (the clairvoyant reference's look-ahead), sampled every `step` s.
    public func peakWorkingSet(from t: Double, window: Double, step: Double = 5) -> Double {
        var m = workingSet(at: t)
        var x = t + step
        while x <= t + window { m = Swift.max(m, workingSet(at: x)); x += step }
        return m + coldAnon(at: t + window)
    }
}

/// sin(x) without Foundation (HostSimulator depends on GuestModel only): range-reduce to [−π, π],
/// then a 9th-order Taylor series; error below 1e-4, plenty for a workload shape.
func sine(_ x: Double) -> Double {
    let twoPi = 2 * Double.pi
    var y = x - twoPi * (x / twoPi).rounded()
    // Fold into [−π/2, π/2] where the series is accurate.
    if y > Double.pi / 2 { y = Double.pi - y } else if y < -Double.pi / 2 { y = -Double.pi - y }
    let y2 = y * y
    return y * (1 - y2 / 6 * (1 - y2 / 20 * (1 - y2 / 42 * (1 - y2 / 72))))
}

/// e^x without Foundation: x = k·ln 2 + r with |r| ≤ ln 2 / 2, then a Taylor series (relative error
/// below 1e-15), scaled by 2^k.
func exp1(_ x: Double) -> Double {
    if x < -700 { return 0 }
    if x > 700 { return .infinity }
    let ln2 = 0.693_147_180_559_945_3
    let k = (x / ln2).rounded()
    let r = x - k * ln2
    var term = 1.0, sum = 1.0
    for n in 1...16 { term *= r / Double(n); sum += term }
    return sum * Double(sign: .plus, exponent: Int(k), significand: 1)
}

/// b^n for a whole n ≥ 0.
func pow1(_ b: Double, _ n: Double) -> Double {
    var out = 1.0
    for _ in 0..<Int(n) { out *= b }
    return out
}
