/// Parsing of guest-written reports. Everything a guest writes under its own `~/data` is hostile until
/// this file says otherwise: lengths, characters, numbers and relations are all bounded, and every
/// rejection is a typed value with a stable code and a human reason, never a crash.
///
/// Reporter protocol, version 1 (`~/data/pressure`, one line, space-separated `key=value`):
///
///     v=1 seq=123456 mem_total_kb=4012345 mem_available_kb=2345678 psi_some_avg10=0.12 ...
///
/// | key | unit | required | meaning |
/// |---|---|---|---|
/// | `v` | – | yes | protocol version, must be `1` |
/// | `seq` | ms | yes | the reporter's CLOCK_BOOTTIME in milliseconds; strictly increasing |
/// | `mem_total_kb`, `mem_available_kb` | KiB | yes | /proc/meminfo MemTotal, MemAvailable |
/// | `mem_free_kb`, `buffers_kb`, `cached_kb` | KiB | no | /proc/meminfo MemFree, Buffers, Cached (what qmemman and MoM read) |
/// | `active_anon_kb`, `inactive_anon_kb`, `active_file_kb`, `inactive_file_kb`, `dirty_kb`, `committed_as_kb`, `swap_total_kb`, `swap_free_kb` | KiB | no | /proc/meminfo |
/// | `psi_some_avg10`, `psi_full_avg10` | % | no | /proc/pressure/memory avg10 (0–100) |
/// | `psi_some_total_us`, `psi_full_total_us` | µs counter | no | /proc/pressure/memory total |
/// | `pgmajfault`, `workingset_refault_anon`, `workingset_refault_file`, `pswpin`, `pswpout` | counter | no | /proc/vmstat |
///
/// Unknown keys are rejected (a new key means a new protocol version), as are duplicates.
///
/// Syntax is exactly what the reporter writes, one spelling per value (`bad-spacing`, `leading-zero`,
/// `not-a-number`): fields are separated by exactly one space, with none at either end (one trailing
/// newline, what `echo` adds, is tolerated); integers are decimal digits without sign or leading zero
/// (`0` itself is fine, `007` is not); a PSI average is an integer part without leading zero,
/// optionally a dot and 1–6 decimals (`0.50`, `100.00`; never `.5`, `1.`, `+1`, `1e2`, `05.00`).
/// Accepted although the kernel always prints two decimals (`%lu.%02lu`): `1`, `0.5`, `0.500000`.
/// Each has a single reading and gives the value its two-decimal spelling gives, and a liar gains
/// nothing from them that `1.00` would not give it.
///
/// Relations every real kernel keeps (`inconsistent`, `out-of-range`): MemAvailable ≤ MemTotal; the
/// LRU lists fit in MemTotal; MemFree + Buffers + Cached fit in MemTotal (disjoint page sets); Dirty ≤ MemTotal; SwapFree ≤ SwapTotal, sent together; PSI full ≤ some;
/// MemTotal ≥ 16 MiB (`ReportLimits.minMemTotalKiB`: a PV guest needs ~100 MiB to boot, the
/// smallest floor is 128 MiB); and Active(anon) + Inactive(anon) + MemAvailable ≤ MemTotal +
/// max(16 MiB, MemTotal / 16). Anonymous LRU pages are in use, so they are disjoint from MemFree, the
/// file LRU and reclaimable slab, the only things MemAvailable counts (less reserves), with or without
/// swap (swapped-out pages are on no list). The tolerance covers per-CPU vmstat drift (up to
/// nr_cpus × 125 pages per counter) and pages that move from free to anon while meminfo is printed.
///
/// Legacy guests (XenServer-style agents) write `~/data/meminfo_total` and `~/data/meminfo_free`
/// (KiB, MemAvailable where the agent has it): see `ReportParser.parseLegacy`.

/// Where a report came from.
public enum ReportSource: UInt8, Sendable, Equatable {
    /// Our reporter's `~/data/pressure` line.
    case reporter
    /// XenServer-style `~/data/meminfo_total` / `~/data/meminfo_free` keys.
    case legacy
}

/// Monotonic counters a report carries; rates come from their deltas between accepted reports.
public struct ReportCounters: Sendable, Equatable {
    public var psiSomeTotalUs: UInt64?
    public var psiFullTotalUs: UInt64?
    public var pgmajfault: UInt64?
    public var refaultAnon: UInt64?
    public var refaultFile: UInt64?
    public var pswpin: UInt64?
    public var pswpout: UInt64?
    public init() {}
}

/// A report that passed syntax and self-consistency checks. Values are in the guest's own view
/// (MemTotal is not the domain's allocation: the kernel keeps some for itself).
public struct GuestReport: Sendable, Equatable {
    public var source: ReportSource
    /// Reporter sequence (guest CLOCK_BOOTTIME ms); nil for legacy reports.
    public var seq: UInt64?
    public var memTotal: KiB
    public var memAvailable: KiB
    /// /proc/meminfo MemFree, Buffers and Cached: what qmemman's and MoM's rules read.
    public var memFree: KiB?
    public var buffers: KiB?
    public var cached: KiB?
    public var activeAnon: KiB?
    public var inactiveAnon: KiB?
    public var activeFile: KiB?
    public var inactiveFile: KiB?
    public var dirty: KiB?
    public var committedAS: KiB?
    public var swapTotal: KiB?
    public var swapFree: KiB?
    /// PSI memory avg10, in percent (0–100).
    public var psiSomeAvg10: Double?
    public var psiFullAvg10: Double?
    public var counters: ReportCounters

    public init(source: ReportSource, seq: UInt64?, memTotal: KiB, memAvailable: KiB) {
        self.source = source
        self.seq = seq
        self.memTotal = memTotal
        self.memAvailable = memAvailable
        self.counters = ReportCounters()
    }

    /// Memory the guest uses and cannot drop without swapping (MemTotal − MemAvailable).
    @inlinable public var used: KiB { memTotal - memAvailable }
}
