import Testing
@testable import GuestModel

let fullLine = "v=1 seq=120000 mem_total_kb=4000000 mem_available_kb=1000000 mem_free_kb=150000 buffers_kb=50000 cached_kb=820000 active_anon_kb=1500000 inactive_anon_kb=500000 active_file_kb=600000 inactive_file_kb=300000 dirty_kb=2000 committed_as_kb=3500000 swap_total_kb=1000000 swap_free_kb=900000 psi_some_avg10=1.25 psi_full_avg10=0.50 psi_some_total_us=5000000 psi_full_total_us=1000000 pgmajfault=1000 workingset_refault_anon=10 workingset_refault_file=200 pswpin=5 pswpout=7"

@Suite("Reporter line parsing")
struct ReportParserTests {
    @Test func parsesEveryKey() throws {
        let r = try ReportParser.parse(fullLine).get()
        #expect(r.source == .reporter)
        #expect(r.seq == 120000)
        #expect(r.memTotal == KiB(4_000_000) && r.memAvailable == KiB(1_000_000))
        #expect(r.activeAnon == KiB(1_500_000) && r.inactiveAnon == KiB(500_000))
        #expect(r.activeFile == KiB(600_000) && r.inactiveFile == KiB(300_000))
        #expect(r.dirty == KiB(2000) && r.committedAS == KiB(3_500_000))
        #expect(r.swapTotal == KiB(1_000_000) && r.swapFree == KiB(900_000))
        #expect(r.psiSomeAvg10 == 1.25 && r.psiFullAvg10 == 0.5)
        #expect(r.counters.psiSomeTotalUs == 5_000_000 && r.counters.psiFullTotalUs == 1_000_000)
        #expect(r.counters.pgmajfault == 1000 && r.counters.refaultAnon == 10 && r.counters.refaultFile == 200)
        #expect(r.counters.pswpin == 5 && r.counters.pswpout == 7)
        #expect(r.used == KiB(3_000_000))
        #expect(r.memFree == KiB(150_000) && r.buffers == KiB(50_000) && r.cached == KiB(820_000))
        #expect(ReportParser.keys.count == 24)
        #expect(r.line() == fullLine)
    }

    @Test func minimalLineAndTrailingNewline() throws {
        let r = try ReportParser.parse("v=1 seq=5 mem_total_kb=100000 mem_available_kb=40\n").get()
        #expect(r.memTotal == KiB(100_000) && r.psiSomeAvg10 == nil && r.counters.pgmajfault == nil)
    }

    static let hostile: [(String, String)] = [
        ("", "empty"),
        ("\n", "empty"),
        (String(repeating: "x", count: 5000), "too-long"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40\u{7}", "invalid-character"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 é=1", "invalid-character"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40\nv=1", "invalid-character"),
        ("v=1 seq=1 mem_total_kb mem_available_kb=40", "malformed-field"),
        ("v=1 seq=1 mem_total_kb= mem_available_kb=40", "malformed-field"),
        ("v=1 seq=1 =100 mem_available_kb=40", "malformed-field"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 evil=1", "unknown-key"),
        ("v=1 seq=1 mem_total_kb=100 mem_total_kb=100 mem_available_kb=40", "duplicate-key"),
        ("v=1 seq=1 mem_total_kb=100", "missing-key"),
        ("seq=1 mem_total_kb=100 mem_available_kb=40", "missing-key"),
        ("v=2 seq=1 mem_total_kb=100 mem_available_kb=40", "unsupported-version"),
        ("v=1 seq=1 mem_total_kb=0x100 mem_available_kb=40", "not-a-number"),
        ("v=1 seq=1 mem_total_kb=1e9 mem_available_kb=40", "not-a-number"),
        ("v=1 seq=1 mem_total_kb=+100 mem_available_kb=40", "not-a-number"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 psi_some_avg10=nan", "not-a-number"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 psi_some_avg10=inf", "not-a-number"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 psi_some_avg10=1.2.3", "not-a-number"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 psi_some_avg10=.", "not-a-number"),
        ("v=1 seq=1 mem_total_kb=-100 mem_available_kb=40", "negative"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 psi_some_avg10=-1", "negative"),
        ("v=1 seq=1 mem_total_kb=99999999999999999 mem_available_kb=40", "overflow"),
        ("v=1 seq=18446744073709551616 mem_total_kb=100 mem_available_kb=40", "overflow"),
        ("v=1 seq=9999999999999999999 mem_total_kb=100 mem_available_kb=40", "overflow"),
        ("v=1 seq=1 mem_total_kb=100000000000000000000000 mem_available_kb=40", "value-too-long"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 psi_some_avg10=100.5", "out-of-range"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=400", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=0 mem_available_kb=0", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 active_anon_kb=80 active_file_kb=80", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 swap_total_kb=10 swap_free_kb=20", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 mem_free_kb=40 buffers_kb=10 cached_kb=51", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 swap_total_kb=10", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 psi_some_avg10=1 psi_full_avg10=5", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=100 mem_available_kb=40 psi_some_total_us=1 psi_full_total_us=5", "inconsistent"),
        (Array(repeating: "a=1", count: 40).joined(separator: " "), "too-many-fields"),
    ]

    @Test(arguments: hostile)
    func rejectsHostileInput(line: String, code: String) {
        switch ReportParser.parse(line) {
        case .success(let r): Issue.record("accepted hostile line \(line.prefix(60)): \(r)")
        case .failure(let why):
            #expect(why.code == code, "line \(line.prefix(60)): \(why)")
            #expect(!why.description.isEmpty)
        }
    }

    @Test func rejectionTextIsBoundedAndPrintable() {
        let key = String(repeating: "k", count: 500)
        guard case .failure(let why) = ReportParser.parse("v=1 \(key)=1") else { Issue.record("accepted"); return }
        #expect(why.description.count < 80)
    }

    /// The word-at-a-time first pass must agree with the byte loop on every line: the same token count,
    /// or the same problem at the same offset (spaces at the ends, doubled, bytes outside 0x20…0x7E).
    @Test func wordScanAgreesWithByteScan() {
        var rng = SplitMix64(seed: 0xF023)
        let alphabet: [UInt8] = Array("ab=1 ".utf8) + [0x00, 0x1F, 0x20, 0x7E, 0x7F, 0x80, 0xFF, 0x09]
        for _ in 0..<50_000 {
            let n = Int.random(in: 0...40, using: &rng)
            let rare = Int.random(in: 0...3, using: &rng) == 0
            let bytes: [UInt8] = (0..<n).map { _ in
                rare ? alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] : alphabet[Int.random(in: 0..<5, using: &rng)]
            }
            bytes.withUnsafeBufferPointer { b in
                let fast = ReportParser.tokenCount(b, n), slow = ReportParser.tokenCountByByte(b, n)
                #expect(fast == slow, "\(bytes)")
            }
        }
    }

    @Test func fuzzNeverCrashesAndNeverAcceptsInconsistency() {
        var rng = SplitMix64(seed: 0xF022)
        let alphabet = Array("v=1 seq mem_total_kb_available0123456789.-+e\u{0}\t=x".utf8)
        for _ in 0..<20_000 {
            let n = Int.random(in: 0...120, using: &rng)
            let bytes = (0..<n).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
            let result = bytes.withUnsafeBufferPointer { ReportParser.parse($0) }
            if case .success(let r) = result {
                #expect(r.memAvailable <= r.memTotal && r.memTotal.value > 0)
            }
        }
    }
}

@Suite("Legacy meminfo keys")
struct LegacyParserTests {
    @Test func parsesBothKeys() throws {
        let r = try ReportParser.parseLegacy(total: "2048000", free: "1024000\n").get()
        #expect(r.source == .legacy && r.seq == nil && r.memTotal == KiB(2_048_000) && r.memAvailable == KiB(1_024_000))
    }

    @Test(arguments: [("", "1", "missing-key"), ("abc", "1", "not-a-number"), ("-5", "1", "negative"),
                      ("100", "200", "inconsistent"), ("0", "0", "inconsistent"),
                      ("123456789012345678901234", "1", "value-too-long"), ("99999999999999", "1", "overflow")])
    func rejects(total: String, free: String, code: String) {
        guard case .failure(let why) = ReportParser.parseLegacy(total: total, free: free) else {
            Issue.record("accepted \(total)/\(free)"); return
        }
        #expect(why.code == code)
    }
}

@Suite("Report tracking: sequences, counters, rates")
struct ReportTrackerTests {
    func report(seq: UInt64, some: UInt64 = 0, full: UInt64 = 0, majfault: UInt64 = 0, total: Int64 = 1_000_000) -> GuestReport {
        var r = GuestReport(source: .reporter, seq: seq, memTotal: KiB(total), memAvailable: KiB(total / 2))
        r.counters.psiSomeTotalUs = some
        r.counters.psiFullTotalUs = full
        r.counters.pgmajfault = majfault
        return r
    }

    @Test func ratesComeFromCounterDeltas() {
        var t = ReportTracker()
        guard case .accepted(nil) = t.track(report(seq: 10_000), at: TimePoint(ms: 0), staticMax: nil) else { Issue.record("first"); return }
        // 2 s later: 100 ms of some-stall (5 %), 20 ms full (1 %), 400 major faults (200/s).
        let out = t.track(report(seq: 12_000, some: 100_000, full: 20_000, majfault: 400), at: TimePoint(ms: 2000), staticMax: nil)
        guard case .accepted(let rates?) = out else { Issue.record("\(out)"); return }
        #expect(abs(rates.psiSome! - 0.05) < 1e-9)
        #expect(abs(rates.psiFull! - 0.01) < 1e-9)
        #expect(abs(rates.majorFaults! - 200) < 1e-9)
        #expect(rates.seconds == 2)
    }

    @Test func guestClockCanOnlyLengthenTheInterval() {
        var t = ReportTracker()
        _ = t.track(report(seq: 10_000), at: TimePoint(ms: 0), staticMax: nil)
        // Delivery jitter: host sees 0.5 s, guest measured 2 s. Rates use 2 s (no false absurd rate).
        guard case .accepted(let r?) = t.track(report(seq: 12_000, some: 1_500_000), at: TimePoint(ms: 500), staticMax: nil) else {
            Issue.record("rejected"); return
        }
        #expect(abs(r.psiSome! - 0.75) < 1e-9)
        // A guest claiming a tiny interval does not shorten the host's 2 s.
        guard case .accepted(let r2?) = t.track(report(seq: 12_001, some: 1_700_000), at: TimePoint(ms: 2500), staticMax: nil) else {
            Issue.record("rejected"); return
        }
        #expect(abs(r2.psiSome! - 0.1) < 1e-9)
    }

    @Test func unchangedReportIsNotNewsAndNotHostile() {
        var t = ReportTracker()
        let r = report(seq: 1000)
        _ = t.track(r, at: TimePoint(ms: 0), staticMax: nil)
        #expect(t.track(r, at: TimePoint(ms: 50), staticMax: nil) == .unchanged)
    }

    @Test func sequenceRulesAndResync() {
        var t = ReportTracker()
        _ = t.track(report(seq: 50_000), at: TimePoint(ms: 0), staticMax: nil)
        var changed = report(seq: 50_000); changed.memAvailable = KiB(1)
        #expect(t.track(changed, at: TimePoint(ms: 1000), staticMax: nil) == .rejected(.sequenceReused(50_000)))
        #expect(t.track(report(seq: 100), at: TimePoint(ms: 2000), staticMax: nil) == .rejected(.sequenceRegression(previous: 50_000, got: 100)))
        #expect(t.track(report(seq: 200), at: TimePoint(ms: 3000), staticMax: nil) == .rejected(.sequenceRegression(previous: 50_000, got: 200)))
        // Third increasing regression in a row: the reporter restarted; re-based, rates start afresh.
        #expect(t.track(report(seq: 300), at: TimePoint(ms: 4000), staticMax: nil) == .accepted(nil))
        #expect(t.track(report(seq: 400), at: TimePoint(ms: 5000), staticMax: nil) != .rejected(.sequenceRegression(previous: 300, got: 400)))
    }

    @Test func counterRegressionIsRejectedThenRebased() {
        var t = ReportTracker()
        _ = t.track(report(seq: 1000, majfault: 500), at: TimePoint(ms: 0), staticMax: nil)
        #expect(t.track(report(seq: 3000, majfault: 10), at: TimePoint(ms: 2000), staticMax: nil) == .rejected(.counterRegression(key: "pgmajfault")))
        guard case .accepted(let r?) = t.track(report(seq: 5000, majfault: 30), at: TimePoint(ms: 4000), staticMax: nil) else {
            Issue.record("not rebased"); return
        }
        #expect(abs(r.majorFaults! - 10) < 1e-9)
    }

    @Test func absurdRatesAreRejected() {
        var t = ReportTracker()
        _ = t.track(report(seq: 1000), at: TimePoint(ms: 0), staticMax: nil)
        // 10 s of stall in 2 s.
        guard case .rejected(let why) = t.track(report(seq: 3000, some: 10_000_000), at: TimePoint(ms: 2000), staticMax: nil) else {
            Issue.record("accepted"); return
        }
        #expect(why.code == "absurd-rate")
        // A billion major faults in 2 s (rebased after the last rejection).
        guard case .rejected(let why2) = t.track(report(seq: 5000, some: 10_000_000, majfault: 1_000_000_000), at: TimePoint(ms: 4000), staticMax: nil) else {
            Issue.record("accepted"); return
        }
        #expect(why2.code == "absurd-rate")
    }

    @Test func floodsAndImpossibleSizesAreRejected() {
        var t = ReportTracker()
        _ = t.track(report(seq: 1000), at: TimePoint(ms: 0), staticMax: nil)
        #expect(t.track(report(seq: 1050), at: TimePoint(ms: 50), staticMax: nil) == .rejected(.tooFrequent(intervalMs: 50, minimumMs: 200)))
        guard case .rejected(let why) = t.track(report(seq: 3000, total: 9_000_000), at: TimePoint(ms: 2000), staticMax: KiB(4_000_000)) else {
            Issue.record("accepted"); return
        }
        #expect(why.code == "exceeds-host")
    }
}
