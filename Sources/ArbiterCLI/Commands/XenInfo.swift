import Arbiter
import ArgumentParser
import Foundation
import GuestModel

struct XenInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xen-info", abstract: "Open xenstore, libxl and libxenctrl and print host memory (exit 3 without Xen).")

    func run() throws {
        do {
            let xen = try XenProbe(quiet: true)
            let info = try xen.control.physinfo()
            let free = try xen.libxl.freeMemoryKiB()
            print("Xen host: total \(formatSize(KiB(Int64(info.totalKiB)))), free \(formatSize(KiB(Int64(info.freeKiB)))) (physinfo), "
                  + "\(formatSize(KiB(Int64(free)))) (libxl, incl. scrub)")
        } catch {
            let hint = error.meansNoXen ? " — this machine is not a Xen dom0 (no /dev/xen or /proc/xen)" : ""
            FileHandle.standardError.write(Data("arbiter: \(error)\(hint)\n".utf8))
            throw ExitCode(3)
        }
    }
}
