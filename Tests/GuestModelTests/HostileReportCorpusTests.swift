import Testing
@testable import GuestModel

/// Every hostile report line found so far, each with the one code it must be rejected with, and the
/// valid lines (ours and the edge cases) that must keep parsing. A new finding gets a row here.
@Suite("Hostile report corpus")
struct HostileReportCorpusTests {
    static let base = "v=1 seq=1 mem_total_kb=4012345 mem_available_kb=2345678"

    static let hostile: [(String, String)] = [
        // Lenient forms a hostile tester found accepted.
        ("v=1 seq=0001 mem_total_kb=4012345 mem_available_kb=2345678", "leading-zero"),
        ("v=1 seq=00 mem_total_kb=4012345 mem_available_kb=2345678", "leading-zero"),
        ("v=1 seq=1 mem_total_kb=00000000000004012345 mem_available_kb=2345678", "leading-zero"),
        ("v=1 seq=1 mem_total_kb=4012345 mem_available_kb=02345678", "leading-zero"),
        (base + " dirty_kb=00", "leading-zero"),
        (base + " pgmajfault=0100", "leading-zero"),
        (base + " psi_some_total_us=01", "leading-zero"),
        (base + " psi_some_avg10=00.50", "leading-zero"),
        (base + " psi_some_avg10=05", "leading-zero"),
        (base + " psi_some_avg10=.5", "not-a-number"),
        (base + " psi_full_avg10=.50", "not-a-number"),
        (base + " psi_some_avg10=1.", "not-a-number"),
        (base + " psi_some_avg10=+1", "not-a-number"),
        (base + " psi_some_avg10=+1.00", "not-a-number"),
        (base + " psi_some_avg10=1e2", "not-a-number"),
        (base + " psi_some_avg10=1E2", "not-a-number"),
        (base + " psi_some_avg10=1.0e1", "not-a-number"),
        (base + " psi_some_avg10=0x10", "not-a-number"),
        (base + " psi_some_avg10=0.1234567", "not-a-number"),
        ("v=1 seq=+1 mem_total_kb=4012345 mem_available_kb=2345678", "not-a-number"),
        ("v=1 seq=1e3 mem_total_kb=4012345 mem_available_kb=2345678", "not-a-number"),
        (" " + base, "bad-spacing"),
        (base + " ", "bad-spacing"),
        (base + " \n", "bad-spacing"),
        ("v=1  seq=1 mem_total_kb=4012345 mem_available_kb=2345678", "bad-spacing"),
        ("v=1 seq=1 mem_total_kb=4012345   mem_available_kb=2345678", "bad-spacing"),
        ("   ", "bad-spacing"),
        ("v=1 seq=1 mem_total_kb=1 mem_available_kb=1", "out-of-range"),
        ("v=1 seq=1 mem_total_kb=1024 mem_available_kb=512", "out-of-range"),
        ("v=1 seq=1 mem_total_kb=16383 mem_available_kb=0", "out-of-range"),
        // Anon does not fit beside MemAvailable (tolerance max(16 MiB, MemTotal / 16)), swap or not.
        ("v=1 seq=1 mem_total_kb=4000000 mem_available_kb=3000000 active_anon_kb=1500000 inactive_anon_kb=500000", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=4000000 mem_available_kb=1000000 active_anon_kb=3250001 swap_total_kb=0 swap_free_kb=0", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=4000000 mem_available_kb=1000000 inactive_anon_kb=3250001", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=4000000 mem_available_kb=3900000 active_anon_kb=2000000 swap_total_kb=8000000 swap_free_kb=0", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=100000 mem_available_kb=90000 active_anon_kb=26385", "inconsistent"),

        // integration/xen/guest-init's hostile guest.
        (String(repeating: "x", count: 2000), "too-long"),
        ("v=2 seq=1 mem_total_kb=100000 mem_available_kb=50000", "unsupported-version"),
        ("v=1 seq=NaN mem_total_kb=100000 mem_available_kb=50000", "not-a-number"),
        ("v=1 seq=3 mem_total_kb=\u{1}\u{FF}", "invalid-character"),
        ("v=1 seq=5 mem_total_kb=-5 mem_available_kb=1", "negative"),
        ("v=1 seq=6 mem_total_kb=100000 mem_available_kb=1 give_me=everything", "unknown-key"),
        ("v=1 seq=7 seq=7 mem_total_kb=100000 mem_available_kb=1", "duplicate-key"),
        ("", "empty"),
        ("garbage", "malformed-field"),
        // The simulator's hostile guest.
        ("v=1 seq=1 mem_total_kb=NaN \u{1}\u{2}" + String(repeating: "x", count: 3000), "too-long"),
        ("v=1 seq=1 mem_total_kb=99999999999999999999 mem_available_kb=0", "overflow"),
        // A selection of ReportTests' hostile lines, with real sizes.
        ("\n", "empty"),
        (base + "\u{7}", "invalid-character"),
        (base + " é=1", "invalid-character"),
        (base + "\nv=1", "invalid-character"),
        (base + "\t", "invalid-character"),
        ("v=1 seq=1 mem_total_kb mem_available_kb=2345678", "malformed-field"),
        ("v=1 seq=1 mem_total_kb= mem_available_kb=2345678", "malformed-field"),
        ("v=1 seq=1 =4012345 mem_available_kb=2345678", "malformed-field"),
        ("v=01 seq=1 mem_total_kb=4012345 mem_available_kb=2345678", "unsupported-version"),
        ("v=1 seq=1 mem_total_kb=4012345", "missing-key"),
        ("seq=1 mem_total_kb=4012345 mem_available_kb=2345678", "missing-key"),
        ("v=1 seq=1 mem_total_kb=0x100 mem_available_kb=2345678", "not-a-number"),
        ("v=1 seq=1 mem_total_kb=1e9 mem_available_kb=2345678", "not-a-number"),
        (base + " psi_some_avg10=nan", "not-a-number"),
        (base + " psi_some_avg10=inf", "not-a-number"),
        (base + " psi_some_avg10=1.2.3", "not-a-number"),
        (base + " psi_some_avg10=.", "not-a-number"),
        (base + " psi_some_avg10=-1", "negative"),
        ("v=1 seq=1 mem_total_kb=-0 mem_available_kb=2345678", "negative"),
        ("v=1 seq=18446744073709551616 mem_total_kb=4012345 mem_available_kb=2345678", "overflow"),
        ("v=1 seq=1 mem_total_kb=4398046511105 mem_available_kb=0", "overflow"),
        ("v=1 seq=1 mem_total_kb=000000000000000000004012345 mem_available_kb=2345678", "value-too-long"),
        (base + " psi_some_avg10=100.5", "out-of-range"),
        ("v=1 seq=1 mem_total_kb=4012345 mem_available_kb=4012346", "inconsistent"),
        ("v=1 seq=1 mem_total_kb=0 mem_available_kb=0", "inconsistent"),
        (base + " active_anon_kb=2000000 active_file_kb=2100000", "inconsistent"),
        (base + " swap_total_kb=10 swap_free_kb=20", "inconsistent"),
        (base + " swap_total_kb=10", "inconsistent"),
        (base + " psi_some_avg10=1.00 psi_full_avg10=5.00", "inconsistent"),
        (base + " psi_some_total_us=1 psi_full_total_us=5", "inconsistent"),
        (Array(repeating: "a=1", count: 40).joined(separator: " "), "too-many-fields"),
    ]

    @Test(arguments: hostile)
    func rejectedWithItsCode(line: String, code: String) {
        switch ReportParser.parse(line) {
        case .success(let r): Issue.record("accepted hostile line '\(line.prefix(80))': \(r)")
        case .failure(let why):
            #expect(why.code == code, "line '\(line.prefix(80))': \(why)")
            #expect(!why.description.isEmpty && why.description.count < 160)
        }
    }

    /// Bytes that are not UTF-8 at all, as a guest can write them into xenstore.
    @Test(arguments: [[0xFF], [0x76, 0x3D, 0x31, 0x20, 0x80], [0x00], Array(base.utf8) + [0x0A, 0x0A]] as [[UInt8]])
    func rawBytesAreInvalidCharacters(bytes: [UInt8]) {
        let result = bytes.withUnsafeBufferPointer { ReportParser.parse($0) }
        guard case .failure(let why) = result else { Issue.record("accepted \(bytes)"); return }
        #expect(why.code == "invalid-character")
    }

    /// Parses alone, but claims more memory than Xen gave the domain (the tracker's check).
    @Test func guestInitsHugeTotalExceedsTheHost() throws {
        let r = try ReportParser.parse("v=1 seq=4 mem_total_kb=999999999999 mem_available_kb=1").get()
        var t = ReportTracker()
        guard case .rejected(let why) = t.track(r, at: TimePoint(ms: 0), staticMax: KiB(gib: 4)) else { Issue.record("accepted"); return }
        #expect(why.code == "exceeds-host")
    }

    static let valid: [String] = [
        "v=1 seq=0 mem_total_kb=4012345 mem_available_kb=0",
        base + "\n",
        base + " dirty_kb=0 pgmajfault=0 pswpin=0 pswpout=0 psi_some_total_us=0 psi_full_total_us=0",
        base + " swap_total_kb=0 swap_free_kb=0 active_anon_kb=0 inactive_anon_kb=0",
        base + " psi_some_avg10=0.00 psi_full_avg10=0.00",
        base + " psi_some_avg10=100.00 psi_full_avg10=100.00",
        base + " psi_some_avg10=0.50 psi_full_avg10=0.25",
        // Not what the kernel prints, accepted and documented: one reading, the same value.
        base + " psi_some_avg10=1 psi_full_avg10=0",
        base + " psi_some_avg10=0.5 psi_full_avg10=0.500000",
        // Bounds: the smallest guest, the largest sizes and counters, anon at the edge of its tolerance.
        "v=1 seq=1 mem_total_kb=16384 mem_available_kb=0",
        "v=1 seq=4611686018427387904 mem_total_kb=4398046511104 mem_available_kb=4398046511104 pgmajfault=4611686018427387904",
        "v=1 seq=1 mem_total_kb=4000000 mem_available_kb=1000000 active_anon_kb=3250000 swap_total_kb=0 swap_free_kb=0",
        "v=1 seq=1 mem_total_kb=4000000 mem_available_kb=1000000 active_anon_kb=1500000 inactive_anon_kb=1500000",
        "v=1 seq=1 mem_total_kb=100000 mem_available_kb=90000 active_anon_kb=26384",
        fullLine,
        // What our reporter writes for Tests/ReporterTests/Fixtures (ProcTests round-trips them too).
        "v=1 seq=123456 mem_total_kb=4030132 mem_available_kb=1894204 active_anon_kb=1390248 inactive_anon_kb=262644 active_file_kb=1010928 inactive_file_kb=644656 dirty_kb=1412 committed_as_kb=4391508 swap_total_kb=1048572 swap_free_kb=960508 psi_some_avg10=1.53 psi_full_avg10=0.41 psi_some_total_us=18829471 psi_full_total_us=5120342 pgmajfault=61533 workingset_refault_file=412990 pswpin=22015 pswpout=44310",
        "v=1 seq=123456 mem_total_kb=24684096 mem_available_kb=24121860 active_anon_kb=1500 inactive_anon_kb=2384 active_file_kb=1384100 inactive_file_kb=3172572 dirty_kb=228 committed_as_kb=48484 swap_total_kb=0 swap_free_kb=0 psi_some_avg10=0.00 psi_full_avg10=0.00 psi_some_total_us=0 psi_full_total_us=0 pgmajfault=21655 workingset_refault_anon=0 workingset_refault_file=2409179 pswpin=0 pswpout=0",
        "v=1 seq=123456 mem_total_kb=1016916 mem_available_kb=675364 active_anon_kb=285600 inactive_anon_kb=200 active_file_kb=224720 inactive_file_kb=208644 dirty_kb=8 committed_as_kb=612004 swap_total_kb=524284 swap_free_kb=524284 pgmajfault=3011 pswpin=0 pswpout=0",
        "v=1 seq=123456 mem_total_kb=2041196 mem_available_kb=1412672 active_anon_kb=428820 inactive_anon_kb=12848 active_file_kb=443624 inactive_file_kb=389544 dirty_kb=44 committed_as_kb=998824 swap_total_kb=0 swap_free_kb=0 pgmajfault=8812 workingset_refault_file=10021 pswpin=0 pswpout=0",
    ]

    @Test(arguments: valid)
    func validLineParsesAndRoundTrips(line: String) throws {
        let r = try ReportParser.parse(line).get()
        #expect(try ReportParser.parse(r.line()).get() == r)
    }

    /// Every field of every valid line, spelled with a leading zero or with its separator doubled,
    /// is rejected with the matching code: no field type is left lenient.
    @Test(arguments: valid)
    func everyFieldRejectsZeroPaddingAndDoubledSpaces(line: String) {
        let fields = line.split(separator: "\n")[0].split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        for (k, field) in fields.enumerated() {
            var mutated = fields
            if let eq = field.firstIndex(of: "="), !field.hasPrefix("v=") {
                let value = "0" + field[field.index(after: eq)...]
                mutated[k] = field[...eq] + value
                let code = value.utf8.count > 20 ? "value-too-long" : "leading-zero"
                let padded = mutated.joined(separator: " ")
                if case .failure(let why) = ReportParser.parse(padded) { #expect(why.code == code, "\(mutated[k])") } else { Issue.record("accepted \(padded)") }
            }
            if k > 0 {
                let spaced = fields[..<k].joined(separator: " ") + "  " + fields[k...].joined(separator: " ")
                if case .failure(let why) = ReportParser.parse(spaced) { #expect(why.code == "bad-spacing") } else { Issue.record("accepted \(spaced)") }
            }
        }
    }

    static let legacyHostile: [(String, String, String)] = [
        ("0100000", "50000", "leading-zero"),
        ("100000", "050000", "leading-zero"),
        ("1024", "512", "out-of-range"),
        ("16383", "0", "out-of-range"),
        ("lots", "-1", "not-a-number"),
        (" 100000", "1", "not-a-number"),
        ("100000", "1 ", "not-a-number"),
        ("", "1", "missing-key"),
        ("-5", "1", "negative"),
        ("100000", "200000", "inconsistent"),
        ("0", "0", "inconsistent"),
        ("100000\u{1}", "1", "invalid-character"),
        ("123456789012345678901234", "1", "value-too-long"),
        ("99999999999999", "1", "overflow"),
    ]

    @Test(arguments: legacyHostile)
    func legacyRejectedWithItsCode(total: String, free: String, code: String) {
        guard case .failure(let why) = ReportParser.parseLegacy(total: total, free: free) else {
            Issue.record("accepted \(total)/\(free)"); return
        }
        #expect(why.code == code, "\(total)/\(free): \(why)")
    }

    @Test(arguments: [("16384", "0"), ("2048000", "1024000\n"), ("4012345", "4012345")])
    func legacyValid(total: String, free: String) {
        #expect((try? ReportParser.parseLegacy(total: total, free: free).get()) != nil)
    }
}
