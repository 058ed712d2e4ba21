/// Every constant the decision uses, in one value. `Arbiter` fills it from `config.toml`; the core
/// never reads files. Defaults are documented here and in `config.toml.example` (same numbers).

/// How the demand / working-set estimator turns reports into KiB. See `Estimator` for the formula.
public struct EstimatorConfig: Sendable, Equatable {
    /// Share of Active(file) counted as working set: page cache touched twice recently is likely hot.
    public var activeFileWeight = 0.5
    /// For reports without an Active(file) figure (legacy agents), the share of MemAvailable counted as
    /// working set: such guests report no stall either, so nothing would warn of a squeeze.
    public var blindAvailableWeight = 0.5
    /// How far back refaults and major faults count as missing memory: a fault rate of r pages/s means
    /// about r × window pages were evicted and needed again within the window.
    public var refaultWindowSeconds = 30.0
    /// PSI `some` share at or below which a guest is calm (senpai's 10 ms per 6 s ≈ 0.17 %).
    public var pressureTarget = 0.002
    /// senpai's COEFF_BACKOFF: stall at `coefficient ×` the target asks for the full `maxBoost`.
    public var boostCoefficient = 20.0
    /// Largest pressure-driven demand above the current allocation, as a fraction of it, per report.
    /// Also bounds how fast a guest may raise its own demand.
    public var maxBoost = 0.5
    /// PSI `some` share at which a guest is in critical pressure: its demand snaps back to the most
    /// memory it recently had (full relief at once, not in steps).
    public var criticalPressure = 0.10
    /// PSI `full` share that is critical on its own.
    public var criticalFullPressure = 0.02
    /// Half-life of the fast average of demand (how quickly a falling demand is believed), seconds.
    public var fastHalfLifeSeconds = 10.0
    /// Half-life of the slow average of demand (ESX keeps max(fast, slow): rise fast, fall slowly).
    public var slowHalfLifeSeconds = 600.0
    /// After a guest stalls above the pressure target, its demand may not fall for this long: the
    /// memory it just needed is likely needed again (oomd's "pressure for a duration", senpai's grace
    /// ticks). Without it, the estimate probes back down into the working set and the guest stalls again.
    public var pressureHoldSeconds = 0.0
    /// ESX's idle memory tax (Waldspurger 2002, default 75 %): under contention, the part of a guest's
    /// demand that only the slow average remembers (memory it used a while ago, not now) counts at
    /// (1 − tax), so memory a guest stopped using goes to guests that need it now.
    public var idleTax = 0.75
    /// Headroom above the working set that makes up demand (Hyper-V's buffer is 20 %).
    public var headroom = 0.25
    /// The kernel keeps some of a domain's allocation for itself (allocation − MemTotal): on real Xen
    /// 45 MiB + 2.2 % of static-max (Debian 6.1 PV), 37 % of a 160 MiB guest. At most this fraction of
    /// the allocation is believed (a sanity bound: the working set stays within the allocation anyway).
    public var maxOverheadFraction = 0.75
    /// A reporter report older than this is stale: the guest is held, never shrunk on old data.
    public var staleAfterSeconds = 30.0
    /// The same for legacy agents, which write every 60 s.
    public var legacyStaleAfterSeconds = 180.0
    public init() {}
}

/// What a guest without usable data gets.
public enum SilentPolicy: String, Sendable, Equatable, CaseIterable {
    /// Keep its current target: never shrink on missing data (the default).
    case hold
    /// Its floor becomes the admin/absolute floor, so contention may shrink it to that (explicit opt-in).
    case adminFloor = "admin-floor"
}

/// Hard lower limits.
public struct FloorConfig: Sendable, Equatable {
    /// No guest is ever targeted below this (Linux PV guests fail to run much below 100 MiB).
    public var absoluteMin = KiB(mib: 128)
    /// Safety padding on the working-set estimate: floor = working set × (1 + padding).
    public var padding = 0.05
    /// Also apply selfballoon's piecewise floor (computed on static-max) as a lower bound.
    public var selfballoonFloor = true
    public var silent: SilentPolicy = .hold
    public init() {}
}

/// What happens to memory left after every guest has its demand.
public enum SurplusPolicy: String, Sendable, Equatable, CaseIterable {
    /// Share it by weight up to the ceilings (guests use it as page cache).
    case distribute
    /// Keep it free in Xen for new domains and spikes.
    case keepFree = "keep-free"
}

/// The host-wide share.
public struct ShareConfig: Sendable, Equatable {
    /// Always left free for Xen and domain builds (squeezed keeps 9 MiB, qmemman 50 MiB).
    public var hostReserve = KiB(mib: 64)
    /// Kept free on top of the reserve when surplus is distributed, so a spike can be met at once.
    public var slack = KiB(mib: 256)
    public var surplus: SurplusPolicy = .keepFree
    public var defaultWeight = 1.0
    /// Kept free on top of the reserve at all times, so a VM start needs no reservation (0: starts ask
    /// with `arbiter reserve`/`arbiter start`; memory kept free is memory no guest uses).
    public var startReserve = KiB.zero
    /// How long a released domain's memory is held for a domain of the same name (a reboot or
    /// `xl destroy` + `xl create`), seconds; then it returns to the pool.
    public var releaseGraceSeconds = 60.0
    public init() {}
}

/// How targets move.
public struct PacingConfig: Sendable, Equatable {
    /// Largest shrink per second into the guest's estimated demand, as a fraction of the current
    /// target (1 %/s ≈ MoM's 5 %/10 s doubled): the guest must drop cache, write back, swap.
    public var shrinkFractionPerSecond = 0.01
    /// Largest shrink per second of memory above the guest's estimated demand (idle cache, surplus it
    /// was lent): 10 %/s, so memory lent out comes back quickly when someone needs it.
    public var surplusShrinkFractionPerSecond = 0.10
    /// Smallest shrink rate, so small guests still converge (KiB/s).
    public var minShrinkPerSecond = KiB(mib: 4)
    /// Largest shrink rate of any one guest (KiB/s).
    public var maxShrinkPerSecond = KiB(mib: 512)
    /// Shrinking slows linearly as PSI `some` rises and stops at this share (1 %).
    public var shrinkStopPressure = 0.01
    /// The longest gap between rounds that still earns shrink allowance (a stalled loop does not
    /// bank a large step).
    public var maxIntervalSeconds = 10.0
    /// While the guest's actual allocation is more than this above its (lower) target, the shrink is
    /// not extended: the arbiter waits for the balloon instead of piling up targets.
    public var maxShrinkLead = KiB(mib: 64)
    /// Changes smaller than `band(at:)` are not pushed: max(deadbandFraction × target, deadband), where
    /// the deadband is at most `deadbandCap` of the target. (On real Xen a 146 MiB guest whose demand
    /// stood 15 MiB above its target was held "steady" for minutes by a flat 16 MiB: 11 % of it.)
    public var deadband = KiB(mib: 16)
    public var deadbandFraction = 0.01
    public static let deadbandCap = 0.05
    /// The deadband at a target of `cur`, KiB.
    @inlinable public func band(at cur: KiB) -> Int64 {
        let v = Double(cur.value)
        return Swift.max(roundedInt64(v * deadbandFraction), Swift.min(deadband.value, roundedInt64(v * Self.deadbandCap)))
    }
    /// A guest with no stall at all grows only when its allocation is at least this fraction above its
    /// target (a stalling guest grows at the deadband): estimate noise must not drive grow/shrink cycles.
    public var calmGrowFraction = 0.05
    public init() {}
}

/// The whole policy.
public struct PolicyConfig: Sendable, Equatable {
    public var limits = ReportLimits()
    public var tracker = TrackerLimits()
    public var estimator = EstimatorConfig()
    public var floors = FloorConfig()
    public var share = ShareConfig()
    public var pacing = PacingConfig()
    public var responsiveness = ResponsivenessConfig()
    public init() {}

    /// Problems that make this policy unusable, each with its key (config.toml's names).
    public func problems() -> [ConfigError] {
        var p = [ConfigError]()
        func fraction(_ v: Double, _ key: String, max: Double = 1) {
            if !(v.isFinite && v >= 0 && v <= max) { p.append(ConfigError(key: key, message: "must be between 0 and \(formatFixed(max, decimals: 2)), got \(v)")) }
        }
        func positive(_ v: Double, _ key: String) {
            if !(v.isFinite && v > 0) { p.append(ConfigError(key: key, message: "must be a positive number, got \(v)")) }
        }
        fraction(estimator.activeFileWeight, "estimator.active_file_weight")
        fraction(estimator.blindAvailableWeight, "estimator.blind_available_weight")
        positive(estimator.refaultWindowSeconds, "estimator.refault_window_seconds")
        fraction(estimator.pressureTarget, "estimator.pressure_target")
        positive(estimator.boostCoefficient, "estimator.boost_coefficient")
        fraction(estimator.maxBoost, "estimator.max_boost", max: 4)
        fraction(estimator.criticalPressure, "estimator.critical_pressure")
        fraction(estimator.criticalFullPressure, "estimator.critical_full_pressure")
        positive(estimator.fastHalfLifeSeconds, "estimator.fast_half_life_seconds")
        positive(estimator.slowHalfLifeSeconds, "estimator.slow_half_life_seconds")
        if !(estimator.pressureHoldSeconds >= 0 && estimator.pressureHoldSeconds.isFinite) {
            p.append(ConfigError(key: "estimator.pressure_hold_seconds", message: "must not be negative"))
        }
        fraction(estimator.headroom, "estimator.headroom", max: 4)
        fraction(estimator.idleTax, "estimator.idle_tax")
        fraction(estimator.maxOverheadFraction, "estimator.max_overhead_fraction", max: 0.95)
        positive(estimator.staleAfterSeconds, "estimator.stale_after_seconds")
        positive(estimator.legacyStaleAfterSeconds, "estimator.legacy_stale_after_seconds")
        if estimator.criticalPressure <= estimator.pressureTarget {
            p.append(ConfigError(key: "estimator.critical_pressure", message: "must be above estimator.pressure_target"))
        }
        if floors.absoluteMin.value < 0 { p.append(ConfigError(key: "floors.absolute_min", message: "must not be negative")) }
        fraction(floors.padding, "floors.padding", max: 4)
        if share.hostReserve.value < 0 { p.append(ConfigError(key: "share.host_reserve", message: "must not be negative")) }
        if share.slack.value < 0 { p.append(ConfigError(key: "share.slack", message: "must not be negative")) }
        if share.startReserve.value < 0 { p.append(ConfigError(key: "share.start_reserve", message: "must not be negative")) }
        if !(share.releaseGraceSeconds >= 0 && share.releaseGraceSeconds <= 3600) {
            p.append(ConfigError(key: "share.release_grace_seconds", message: "must be between 0 and 3600"))
        }
        positive(share.defaultWeight, "share.default_weight")
        fraction(pacing.shrinkFractionPerSecond, "pacing.shrink_fraction_per_second")
        fraction(pacing.surplusShrinkFractionPerSecond, "pacing.surplus_shrink_fraction_per_second")
        if pacing.surplusShrinkFractionPerSecond < pacing.shrinkFractionPerSecond {
            p.append(ConfigError(key: "pacing.surplus_shrink_fraction_per_second", message: "must be at least pacing.shrink_fraction_per_second"))
        }
        if pacing.minShrinkPerSecond.value < 0 { p.append(ConfigError(key: "pacing.min_shrink_per_second", message: "must not be negative")) }
        if pacing.maxShrinkPerSecond < pacing.minShrinkPerSecond {
            p.append(ConfigError(key: "pacing.max_shrink_per_second", message: "must be at least pacing.min_shrink_per_second"))
        }
        fraction(pacing.shrinkStopPressure, "pacing.shrink_stop_pressure")
        positive(pacing.maxIntervalSeconds, "pacing.max_interval_seconds")
        if pacing.maxShrinkLead.value < 0 { p.append(ConfigError(key: "pacing.max_shrink_lead", message: "must not be negative")) }
        if pacing.deadband.value < 0 { p.append(ConfigError(key: "pacing.deadband", message: "must not be negative")) }
        fraction(pacing.deadbandFraction, "pacing.deadband_fraction", max: 0.5)
        fraction(pacing.calmGrowFraction, "pacing.calm_grow_fraction", max: 1)
        if tracker.minIntervalMs < 0 { p.append(ConfigError(key: "reports.min_interval_ms", message: "must not be negative")) }
        if !(tracker.quarantineSeconds >= 0 && tracker.quarantineSeconds.isFinite) { p.append(ConfigError(key: "reports.quarantine_seconds", message: "must not be negative")) }
        if responsiveness.minRate.value <= 0 { p.append(ConfigError(key: "balloon.min_rate", message: "must be positive")) }
        positive(responsiveness.patienceSeconds, "balloon.patience_seconds")
        positive(responsiveness.retryAfterSeconds, "balloon.retry_after_seconds")
        if responsiveness.tolerance.value < 0 { p.append(ConfigError(key: "balloon.tolerance", message: "must not be negative")) }
        return p
    }
}
