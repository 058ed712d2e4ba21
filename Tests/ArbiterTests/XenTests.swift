import Foundation
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
