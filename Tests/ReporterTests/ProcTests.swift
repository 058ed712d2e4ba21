import Foundation
import Testing
import GuestModel
@testable import ReporterCore

/// /proc files from kernels of several generations. linux-6.18 is this machine's own kernel, copied
/// verbatim; the others follow the formats of those versions: 5.4 (PSI, one workingset_refault
/// counter), 4.19 (no PSI), 3.10 (no PSI, no MemAvailable).
func fixture(_ kernel: String, _ file: String) -> String? {
    guard let url = Bundle.module.url(forResource: "Fixtures/\(kernel)/\(file)", withExtension: nil) else { return nil }
    return try? String(contentsOf: url, encoding: .utf8)
}

@Suite("Guest reporter: /proc parsing and the report line")
struct ProcTests {
    func report(_ kernel: String) throws -> GuestReport {
        let m = Proc.meminfo(try #require(fixture(kernel, "meminfo")))
        let v = Proc.vmstat(fixture(kernel, "vmstat") ?? "")
        let p = fixture(kernel, "pressure-memory").flatMap(Proc.pressure)
        return try #require(Proc.report(meminfo: m, vmstat: v, pressure: p, seqMs: 123_456))
    }

    @Test(arguments: ["linux-6.18", "linux-5.4", "linux-4.19", "linux-3.10"])
    func everyKernelRoundTripsThroughTheArbitersParser(kernel: String) throws {
        let r = try report(kernel)
        let parsed = try ReportParser.parse(r.line()).get()
        #expect(parsed == r, "\(kernel): \(r.line())")
        #expect(parsed.memAvailable <= parsed.memTotal)
    }

    @Test func linux54HasPSIAndTheOldRefaultCounter() throws {
        let r = try report("linux-5.4")
        #expect(r.memTotal == KiB(4_030_132) && r.memAvailable == KiB(1_894_204))
        #expect(r.psiSomeAvg10 == 1.53 && r.psiFullAvg10 == 0.41)
        #expect(r.counters.psiSomeTotalUs == 18_829_471 && r.counters.psiFullTotalUs == 5_120_342)
        #expect(r.counters.refaultFile == 412_990 && r.counters.refaultAnon == nil)
        #expect(r.counters.pgmajfault == 61_533 && r.counters.pswpin == 22_015 && r.counters.pswpout == 44_310)
        #expect(r.swapTotal == KiB(1_048_572) && r.swapFree == KiB(960_508))
        #expect(r.committedAS == KiB(4_391_508) && r.dirty == KiB(1412))
        #expect(r.activeFile == KiB(1_010_928) && r.inactiveAnon == KiB(262_644))
    }

    @Test func withoutPSITheLineHasNoPSIFields() throws {
        let line = try report("linux-4.19").line()
        #expect(!line.contains("psi_"))
        #expect(line.contains("workingset_refault_file=10021"))
    }

    @Test func withoutMemAvailableItIsEstimated() throws {
        let r = try report("linux-3.10")
        // MemFree + Active(file) + Inactive(file) + SReclaimable = 210120 + 224720 + 208644 + 31880
        #expect(r.memAvailable == KiB(675_364))
    }

    @Test func thisKernelsSplitRefaultCounters() throws {
        let r = try report("linux-6.18")
        #expect(r.counters.refaultAnon != nil && r.counters.refaultFile != nil)
        #expect(r.psiSomeAvg10 != nil)
    }

    @Test func pressureParsingIsForgiving() {
        #expect(Proc.pressure("") == nil)
        #expect(Proc.pressure("some avg10=nan avg60=0 avg300=0 total=1\n") == nil)
        let onlySome = Proc.pressure("some avg10=2.00 avg60=0.00 avg300=0.00 total=77\n")
        #expect(onlySome == Proc.Pressure(someAvg10: 2, fullAvg10: 0, someTotalUs: 77, fullTotalUs: 0))
        #expect(Proc.pressure("some avg10=250 avg60=0 avg300=0 total=9\nfull avg10=1 avg60=0 avg300=0 total=3\n")?.someAvg10 == 100)
    }

    /// A read that raced an allocation (anon + MemAvailable past MemTotal by more than the parser's
    /// tolerance) loses its anon fields rather than the whole report.
    @Test func racyAnonIsDroppedSoTheLineStillParses() throws {
        let m = Proc.meminfo("MemTotal: 1000000 kB\nMemFree: 600000 kB\nMemAvailable: 700000 kB\nActive(anon): 300000 kB\nInactive(anon): 100000 kB\nActive(file): 50000 kB\nInactive(file): 50000 kB\n")
        let r = try #require(Proc.report(meminfo: m, vmstat: [:], pressure: nil, seqMs: 1))
        #expect(r.activeAnon == nil && r.inactiveAnon == nil && r.activeFile == KiB(50_000))
        #expect(try ReportParser.parse(r.line()).get() == r)
    }

    @Test func garbageMeminfoGivesNoReport() {
        #expect(Proc.report(meminfo: Proc.meminfo("nonsense\n"), vmstat: [:], pressure: nil, seqMs: 1) == nil)
        #expect(Proc.meminfo("MemTotal: -5 kB\nMemFree: x kB\n").isEmpty)
    }
}
