import Arbiter
import ArgumentParser
import GuestModel

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A domain's recorded decisions over time.")

    @Argument(help: "Domain name or domid.")
    var domain: String

    @Option(name: .long, help: "Only since then: 10m, 2h, 3d, Unix seconds or ISO 8601.")
    var since: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        let rows = try store.open().history(domain, since: parseTime(since))
        guard !rows.isEmpty else { throw CLIError("no recorded decisions for '\(domain)'") }
        var table = [["Time", "Mem", "Target", "Floor", "Demand", "Stall", "Report", "Reason"]]
        for r in rows {
            table.append([timeText(r.at), formatSize(r.actual), formatSize(r.target), formatSize(r.floor), formatSize(r.demand),
                          r.stall.map { formatFixed($0 * 100, decimals: 2) + "%" } ?? "-", r.status.description, r.reason.description])
        }
        print(DecisionTable.table(table, rightAligned: [1, 2, 3, 4, 5]))
    }
}
