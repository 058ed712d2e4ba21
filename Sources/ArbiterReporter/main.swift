// arbiter-reporter: runs inside a Linux guest. Every --interval seconds (default 2) it reads
// /proc/pressure/memory, /proc/meminfo and /proc/vmstat and writes one protocol v1 line to its own
// xenstore key `data/pressure` (relative: the guest's /local/domain/<domid>/data/pressure), which dom0's
// arbiter watches. Without PSI (kernels before 4.20) the line has no PSI fields; without a xenstore
// device it says so once a minute and keeps retrying; it never writes faster than the interval.
//   --once --stdout   print one line and exit (no xenstore); --help for the rest (ReporterOptions)
// Glibc only, no Foundation: built with --static-swift-stdlib it is a few MB, which matters in a
// guest's initramfs and page cache.
import CXenStore
import Glibc
import GuestModel
import ReporterCore

func say(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { b in _ = Glibc.write(2, b.baseAddress, b.count) }
}

/// The command line (ReporterOptions: one table for the parser, the usage and the manual page).
func parseOptions() -> ReporterOptions {
    switch ReporterOptions.parse(Array(CommandLine.arguments.dropFirst())) {
    case .run(let o): return o
    case .help:
        say(ReporterOptions.usage)
        exit(0)
    case .version:
        print(ArbiterRelease.version)
        exit(0)
    case .manual:
        print(ReporterOptions.manual(date: manualDate()), terminator: "")
        exit(0)
    case .usage(let why):
        say("arbiter-reporter: \(why)")
        say(ReporterOptions.usage)
        exit(64)
    }
}

/// The manual page's date: SOURCE_DATE_EPOCH when set (reproducible packages), else today.
func manualDate() -> String {
    var t = time_t(0)
    if let e = getenv("SOURCE_DATE_EPOCH"), let v = Int(String(cString: e)) { t = time_t(v) } else { t = time(nil) }
    var tm = tm()
    gmtime_r(&t, &tm)
    let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
    return "\(months[Int(tm.tm_mon)]) \(tm.tm_mday), \(1900 + Int(tm.tm_year))"
}

/// A /proc file, at most 1 MiB; nil when absent (e.g. no PSI).
func read(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 16384)
    while bytes.count < 1 << 20 {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes.prefix(1 << 20), as: UTF8.self)
}

func now(_ clock: clockid_t) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Milliseconds of CLOCK_BOOTTIME: increases across reporter restarts within one boot, so the
/// arbiter never sees the sequence go backwards.
func bootMs() -> UInt64 { UInt64(now(CLOCK_BOOTTIME) * 1000) }

func makeLine(_ o: ReporterOptions) -> String? {
    guard let meminfo = read(o.proc + "/meminfo") else { return nil }
    let vmstat = read(o.proc + "/vmstat") ?? ""
    let pressure = read(o.proc + "/pressure/memory").flatMap(Proc.pressure)
    return Proc.report(meminfo: Proc.meminfo(meminfo), vmstat: Proc.vmstat(vmstat), pressure: pressure, seqMs: bootMs())?.line()
}

/// The guest's xenstore connection, opened lazily and reopened after a failure.
final class Xenstore {
    var handle: OpaquePointer?
    var lastComplaint: Double?

    func write(_ key: String, _ value: String) -> Bool {
        if handle == nil { handle = xs_open(0) }
        guard let h = handle else {
            complain("cannot open xenstore: \(String(cString: strerror(cxenstore_errno()))) (is this a Xen guest with /dev/xen/xenbus?); retrying")
            return false
        }
        let ok = value.withCString { xs_write(h, CXENSTORE_XBT_NULL, key, $0, UInt32(strlen($0))) }
        if !ok {
            complain("cannot write \(key): \(String(cString: strerror(cxenstore_errno()))); reconnecting")
            xs_close(h)
            handle = nil
        }
        return ok
    }

    func complain(_ s: String) {
        let t = now(CLOCK_MONOTONIC)
        if let last = lastComplaint, t - last < 60 { return }
        lastComplaint = t
        say("arbiter-reporter: \(s)")
    }
}

let options = parseOptions()
let store = Xenstore()
var next = now(CLOCK_MONOTONIC)
while true {
    if let line = makeLine(options) {
        if options.stdout {
            print(line)
            fflush(nil)
        } else if !store.write(options.key, line) && options.once {
            exit(1)
        }
    } else {
        say("arbiter-reporter: cannot read \(options.proc)/meminfo")
        if options.once { exit(1) }
    }
    if options.once { exit(0) }
    // A fixed schedule: never faster than the interval, whatever the write cost.
    next = Swift.max(next + options.interval, now(CLOCK_MONOTONIC))
    var wait = next - now(CLOCK_MONOTONIC)
    while wait > 0 {
        var ts = timespec(tv_sec: Int(wait), tv_nsec: Int((wait - wait.rounded(.down)) * 1e9))
        _ = nanosleep(&ts, nil)
        wait = next - now(CLOCK_MONOTONIC)
    }
}
