// arbiter-reporter: runs inside a Linux guest. Every --interval seconds (default 2) it reads
// /proc/pressure/memory, /proc/meminfo and /proc/vmstat and writes one protocol v1 line to its own
// xenstore key `data/pressure` (relative: the guest's /local/domain/<domid>/data/pressure), which dom0's
// arbiter watches. Without PSI (kernels before 4.20) the line has no PSI fields; without a xenstore
// device it says so once a minute and keeps retrying; it never writes faster than the interval.
//   --once --stdout   print one line and exit (no xenstore)
import CXen
import Foundation
import GuestModel
import ReporterCore

struct Options {
    var interval = 2.0
    var once = false
    var stdout = false
    var proc = "/proc"
    var key = "data/pressure"
}

func usage() -> Never {
    FileHandle.standardError.write(Data("""
        usage: arbiter-reporter [--interval SECONDS] [--once] [--stdout] [--proc DIR]
          --interval  seconds between reports (default 2, at least 0.5)
          --once      one report, then exit
          --stdout    print the line instead of writing it to xenstore
          --proc      where /proc is (default /proc; for tests)

        """.utf8))
    exit(64)
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    while let a = args.popFirst() {
        switch a {
        case "--interval":
            guard let v = args.popFirst().flatMap(Double.init), v >= 0.5, v <= 3600 else { usage() }
            o.interval = v
        case "--once": o.once = true
        case "--stdout": o.stdout = true
        case "--proc":
            guard let v = args.popFirst() else { usage() }
            o.proc = v
        case "-h", "--help": usage()
        default:
            FileHandle.standardError.write(Data("arbiter-reporter: unknown option \(a)\n".utf8))
            usage()
        }
    }
    return o
}

/// A /proc file, at most 1 MiB; nil when absent (e.g. no PSI).
func read(_ path: String) -> String? {
    guard let h = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? h.close() }
    guard let data = try? h.read(upToCount: 1 << 20) else { return nil }
    return String(decoding: data, as: UTF8.self)
}

/// Milliseconds of CLOCK_BOOTTIME: increases across reporter restarts within one boot, so the
/// arbiter never sees the sequence go backwards.
func bootMs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_BOOTTIME, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}

func makeLine(_ o: Options) -> String? {
    guard let meminfo = read(o.proc + "/meminfo") else { return nil }
    let vmstat = read(o.proc + "/vmstat") ?? ""
    let pressure = read(o.proc + "/pressure/memory").flatMap(Proc.pressure)
    return Proc.report(meminfo: Proc.meminfo(meminfo), vmstat: Proc.vmstat(vmstat), pressure: pressure, seqMs: bootMs())?.line()
}

/// The guest's xenstore connection, opened lazily and reopened after a failure.
final class Xenstore {
    var handle: OpaquePointer?
    var lastComplaint: Date?

    func write(_ key: String, _ value: String) -> Bool {
        if handle == nil { handle = xs_open(0) }
        guard let h = handle else {
            complain("cannot open xenstore: \(String(cString: strerror(cxen_errno()))) (is this a Xen guest with /dev/xen/xenbus?); retrying")
            return false
        }
        let ok = value.withCString { xs_write(h, CXEN_XBT_NULL, key, $0, UInt32(strlen($0))) }
        if !ok {
            complain("cannot write \(key): \(String(cString: strerror(cxen_errno()))); reconnecting")
            xs_close(h)
            handle = nil
        }
        return ok
    }

    func complain(_ s: String) {
        if let last = lastComplaint, Date().timeIntervalSince(last) < 60 { return }
        lastComplaint = Date()
        FileHandle.standardError.write(Data("arbiter-reporter: \(s)\n".utf8))
    }
}

let options = parseOptions()
let store = Xenstore()
var next = Date()
while true {
    if let line = makeLine(options) {
        if options.stdout {
            print(line)
            fflush(nil)
        } else if !store.write(options.key, line) && options.once {
            exit(1)
        }
    } else {
        FileHandle.standardError.write(Data("arbiter-reporter: cannot read \(options.proc)/meminfo\n".utf8))
        if options.once { exit(1) }
    }
    if options.once { exit(0) }
    // A fixed schedule: never faster than the interval, whatever the write cost.
    next = Swift.max(next.addingTimeInterval(options.interval), Date())
    Thread.sleep(until: next)
}
