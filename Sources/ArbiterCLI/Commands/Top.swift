import Arbiter
import ArgumentParser
import Foundation
import GuestModel

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Live view of the running daemon's decisions, refreshed.")

    @Option(name: .long, help: "Seconds between refreshes.")
    var interval: Double = 2

    @Flag(name: .long, help: "Print once and exit.")
    var once = false

    @OptionGroup var socket: SocketOptions

    func run() throws {
        while true {
            let reply = try socket.request(ControlRequest(cmd: "list"))
            var table = [["Name", "ID", "Mem", "Target", "Floor", "Ceiling", "Demand", "Weight", "Stall", "Report", "Reason"]]
            for d in reply.domains ?? [] {
                table.append([d.name, String(d.domid), formatSize(KiB(d.memKiB)), formatSize(KiB(d.targetKiB)), formatSize(KiB(d.floorKiB)),
                              formatSize(KiB(d.ceilingKiB)), formatSize(KiB(d.demandKiB)), formatFixed(d.weight, decimals: d.weight == d.weight.rounded() ? 0 : 2),
                              d.stall.map { formatFixed($0 * 100, decimals: 2) + "%" } ?? "-", d.report, d.reason])
            }
            var header = "arbiter top — Xen free \(formatSize(KiB(reply.freeKiB ?? 0))), \(reply.phase ?? "?"), \(timeText(Date().timeIntervalSince1970))"
            if let lost = reply.unrecordedRounds, lost > 0 { header += "\n\(lost) round(s) not recorded since the daemon started (see the daemon log and `arbiter alerts`)" }
            let held = (reply.reservations ?? []).map { "\n" + $0.summary }.joined()
            if !once { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            print(header + "\n" + DecisionTable.table(table, rightAligned: [1, 2, 3, 4, 5, 6, 7, 8]) + held)
            if once { return }
            Thread.sleep(forTimeInterval: max(0.2, interval))
        }
    }
}
