import Arbiter
import ArgumentParser
import Foundation
import GuestModel

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Domains as last recorded: memory, target, floor, ceiling, weight, stall, report and reason (like xl list).")

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "One JSON object per domain, one per line, in the control socket's shape (domid, mem_kib, target_kib, …).")
    var json = false

    @Flag(name: .long, help: "Also domains Xen has released (destroyed, saved), with when.")
    var all = false

    func run() throws {
        let rows = try store.open().latest(all: all)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for r in rows { print(String(decoding: try encoder.encode(LiveDomain(r)), as: UTF8.self)) }
            return
        }
        var table = [["Name", "ID", "Mem", "Target", "Floor", "Ceiling", "Weight", "Stall", "Report", "Reason"] + (all ? ["Released"] : [])]
        for r in rows {
            table.append([r.name, String(r.domid), formatSize(r.actual), formatSize(r.target), formatSize(r.floor), formatSize(r.ceiling),
                          formatFixed(r.weight, decimals: r.weight == r.weight.rounded() ? 0 : 2),
                          r.stall.map { formatFixed($0 * 100, decimals: 2) + "%" } ?? "-", r.status.description, r.reason.description]
                         + (all ? [r.released.map(timeText) ?? "-"] : []))
        }
        print(DecisionTable.table(table, rightAligned: [1, 2, 3, 4, 5, 6, 7]))
    }
}

extension LiveDomain {
    /// A recorded row in the shape the control socket gives a live domain.
    init(_ r: DecisionStore.DomainState) {
        self.init(name: r.name, domid: r.domid, memKiB: r.actual.value, targetKiB: r.target.value, floorKiB: r.floor.value,
                  ceilingKiB: r.ceiling.value, demandKiB: r.demand.value, weight: r.weight, stall: r.stall, report: r.status.description,
                  reason: r.reason.description, released: r.released)
    }
}
