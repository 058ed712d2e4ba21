import Arbiter
import ArgumentParser

struct Alerts: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Recorded alerts (floors that do not fit the host, …).")

    @Option(name: .long, help: "Only since then: 10m, 2h, 3d, Unix seconds or ISO 8601.")
    var since: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        let rows = try store.open().alerts(since: parseTime(since))
        if rows.isEmpty { print("no alerts"); return }
        for a in rows { print("\(timeText(a.at))  \(a.kind)  \(a.message)") }
    }
}
