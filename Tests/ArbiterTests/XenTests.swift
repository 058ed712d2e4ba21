import Foundation
import GuestModel
import Testing
@testable import Arbiter

/// The CXen call sites, run for real. On a machine without Xen each must fail with a typed error
/// naming the operation (never crash, never hang); on a dom0 each must open. Whichever machine this
/// is, one of the two branches is asserted.
@Suite("Xen handles")
struct XenTests {
    static var hasXen: Bool {
        FileManager.default.fileExists(atPath: "/dev/xen/privcmd") || FileManager.default.fileExists(atPath: "/proc/xen/privcmd")
    }

    @Test func xenstore() {
        do {
            _ = try XenstoreConnection()
            #expect(Self.hasXen, "xs_open succeeded on a machine without Xen")
        } catch {
            #expect(!Self.hasXen, "xs_open failed on a Xen host: \(error)")
            #expect(error.operation == "xs_open" && error.meansNoXen, "\(error)")
        }
    }

    @Test func libxl() {
        do {
            _ = try LibxlContext(quiet: true)
            #expect(Self.hasXen)
        } catch {
            #expect(!Self.hasXen, "\(error)")
            #expect(error.operation == "libxl_ctx_alloc")
            #expect(error.description.contains("ERROR_FAIL"), "\(error)")
        }
    }

    @Test func xenctrl() {
        do {
            _ = try XenControl(quiet: true)
            #expect(Self.hasXen)
        } catch {
            #expect(!Self.hasXen, "\(error)")
            #expect(error.operation == "xc_interface_open" && error.meansNoXen, "\(error)")
        }
    }

    @Test func errorTextNamesOperationDomainAndCode() {
        let e = XenError(operation: "libxl_set_memory_target", domid: 7, code: -6, errno: 22)
        #expect(e.description == "libxl_set_memory_target (domid 7) failed: ERROR_INVAL, errno 22 (Invalid argument)")
    }
}

@Suite("Xenstore paths")
struct XenstorePathTests {
    @Test(arguments: [("/local/domain/7/data/pressure", 7, "data/pressure"),
                      ("/local/domain/12/data/meminfo_free", 12, "data/meminfo_free"),
                      ("/local/domain/0/data/meminfo_total", 0, "data/meminfo_total"),
                      ("/local/domain/32751/data/pressure", 32751, "data/pressure")])
    func reportWritesMapToTheirDomain(path: String, domid: UInt16, key: String) {
        let m = XenstorePaths.reportKey(fromWatchPath: path)
        #expect(m?.0 == DomID(domid) && m?.1 == key)
    }

    @Test(arguments: ["/local/domain/7/memory/target", "/local/domain/7/data/pressure/extra", "/local/domain/7/data",
                      "/local/domain/07/data/pressure", "/local/domain/+7/data/pressure", "/local/domain/7 /data/pressure",
                      "/local/domain/32752/data/pressure", "/local/domain/99999/data/pressure", "/local/domain//data/pressure",
                      "/local/domain/7/../8/data/pressure", "/local/domain/7/data/./pressure", "/vm/7/data/pressure",
                      "@introduceDomain", "/local/domain", "/local/domain/7/data/pressure" + String(repeating: "x", count: 200)])
    func everythingElseIsIgnored(path: String) {
        #expect(XenstorePaths.reportKey(fromWatchPath: path) == nil, "\(path)")
    }

    @Test func toolstackValuesAreParsedStrictly() {
        #expect(XenstorePaths.kib(Array("1048576".utf8)) == KiB(1_048_576))
        for bad in ["", "-1", "1e6", "0x10", " 5", "99999999999999999999999", "12a"] {
            #expect(XenstorePaths.kib(Array(bad.utf8)) == nil, "\(bad)")
        }
        #expect(XenstorePaths.kib(nil) == nil)
    }

    @Test func uuidsAreCanonical() {
        #expect(XenHost.uuidString([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08])
                == "12345678-9abc-def0-0102-030405060708")
        #expect(XenHost.uuidString([1, 2, 3]) == nil)
    }

    @Test func libxlErrorsKeepTheirContext() {
        let e = XenError(operation: "libxl_set_memory_target", domid: 3, code: ERROR_DOMAIN_NOTFOUND_CODE, errno: 3)
        #expect(e.description.hasPrefix("libxl_set_memory_target (domid 3) failed: ERROR_DOMAIN_NOTFOUND"))
        #expect(XenError(operation: "xs_open", code: -1, errno: 2).meansNoXen)
        #expect(!XenError(operation: "xs_read", code: -1, errno: 13).meansNoXen)
    }
}

/// libxl's ERROR_DOMAIN_NOTFOUND (-21, libxl_types.idl), spelled out so the test does not import CXen.
let ERROR_DOMAIN_NOTFOUND_CODE: Int32 = -21

/// What `XenHost` keeps between rounds instead of reading every domain's name, static-max and target
/// from xenstore each round: kept until the watch sees a write to it, and never kept across a write
/// that raced the read.
@Suite("Xen domain facts kept between rounds")
struct XenDomainFactsTests {
    let uuid = "12345678-9abc-def0-0102-030405060708"

    private func read(_ f: XenDomainFacts, _ d: DomID, _ key: XenDomainFacts.Key, _ value: String?,
                      uuid: String? = nil, now: ContinuousClock.Instant = .now) {
        let t = f.ticket(now: now)
        f.keep(d, uuid: uuid ?? self.uuid, key, value, ticket: t)
    }

    @Test func aKeptValueLastsUntilItsKeyIsWritten() {
        let f = XenDomainFacts()
        let d = DomID(5)
        read(f, d, .target, "524288")
        read(f, d, .staticMax, "1048576")
        read(f, d, .name, "web1")
        #expect(f.kept(d, uuid: uuid, .target) == "524288")
        #expect(f.written("/local/domain/5/memory/target"))
        #expect(f.kept(d, uuid: uuid, .target) == nil)
        #expect(f.kept(d, uuid: uuid, .staticMax) == "1048576")
        #expect(f.kept(d, uuid: uuid, .name) == "web1")
        read(f, d, .target, "262144")
        #expect(f.kept(d, uuid: uuid, .target) == "262144")
        #expect(f.written("/local/domain/5/name"))
        #expect(f.kept(d, uuid: uuid, .name) == nil && f.kept(d, uuid: uuid, .target) == "262144")
        // Other domains' writes and reports touch nothing kept.
        #expect(!f.written("/local/domain/5/data/pressure"))
        #expect(f.written("/local/domain/6/memory/target"))
        #expect(f.kept(d, uuid: uuid, .target) == "262144")
        #expect(f.counted == XenDomainFacts.Counts(kept: 6, read: 4))
    }

    @Test func aWriteSeenAfterTheReadBeganIsNeverHiddenByIt() {
        let f = XenDomainFacts()
        let d = DomID(5)
        // The read returns the old value; the write lands and its watch event arrives before it is kept.
        let t = f.ticket()
        f.written("/local/domain/5/memory/target")
        f.keep(d, uuid: uuid, .target, "524288", ticket: t)
        #expect(f.kept(d, uuid: uuid, .target) == nil)
        read(f, d, .target, "262144")
        #expect(f.kept(d, uuid: uuid, .target) == "262144")
    }

    @Test func removalsReusedDomidsAndReconnectsForgetEverything() {
        let f = XenDomainFacts()
        let d = DomID(5)
        read(f, d, .staticMax, "1048576")
        #expect(f.kept(d, uuid: "00000000-0000-0000-0000-000000000001", .staticMax) == nil)
        #expect(f.written("/local/domain/5/memory"))
        #expect(f.kept(d, uuid: uuid, .staticMax) == nil)
        for path in ["/local/domain/5", "/local/domain"] {
            read(f, d, .name, "web1")
            #expect(f.kept(d, uuid: uuid, .name) == "web1")
            #expect(f.written(path))
            #expect(f.kept(d, uuid: uuid, .name) == nil, "\(path)")
        }
        read(f, d, .name, "web1")
        f.forgetAll()
        #expect(f.kept(d, uuid: uuid, .name) == nil)
        read(f, d, .name, "web1")
        f.retain([DomID(6)])
        #expect(f.kept(d, uuid: uuid, .name) == nil)
    }

    /// Values kept past `maxAge` are read again a few domains a round, the longest kept first, never all
    /// in one round.
    @Test func oldValuesAreReadAgainAFewDomainsARound() {
        let f = XenDomainFacts(maxAge: .seconds(30))
        let start = ContinuousClock.now
        let domains = (1...12).map { DomID(UInt16($0)) }
        for (k, d) in domains.enumerated() {
            for key in XenDomainFacts.Key.allCases { read(f, d, key, "1", now: start + .seconds(k)) }
        }
        #expect(f.due(among: domains, limit: 2, now: start + .seconds(29)).isEmpty)
        #expect(f.due(among: domains, limit: 2, now: start + .seconds(40)) == [DomID(1), DomID(2)])
        #expect(f.due(among: domains, limit: 20, now: start + .seconds(32)) == [DomID(1), DomID(2), DomID(3)])
        // Read again, a domain is not due until its turn comes round again; one key read alone leaves it due.
        for key in XenDomainFacts.Key.allCases { read(f, DomID(1), key, "1", now: start + .seconds(40)) }
        read(f, DomID(2), .name, "1", now: start + .seconds(40))
        #expect(f.due(among: domains, limit: 2, now: start + .seconds(40)) == [DomID(2), DomID(3)])
        // Kept values stay usable while they wait for their turn.
        #expect(f.kept(DomID(12), uuid: uuid, .target) == "1")
    }

    @Test func aMissingKeyIsReadAgainEveryTime() {
        let f = XenDomainFacts()
        let d = DomID(5)
        read(f, d, .target, "524288")
        read(f, d, .target, nil)
        #expect(f.kept(d, uuid: uuid, .target) == nil)
    }

    @Test(arguments: ["/local/domain/5/data/pressure", "/local/domain/5/memory/target/x", "/local/domain/05/name",
                      "/local/domain/5/device/vbd", "/local/domainx", "/local/domain/", "/local/domain//name",
                      "/local/domain/32752/name", "/vm/5/name", "@releaseDomain",
                      "/local/domain/5/name" + String(repeating: "x", count: 200)])
    func otherPathsTouchNothing(path: String) {
        #expect(XenDomainFacts.keys(fromWatchPath: path) == nil, "\(path)")
    }
}
