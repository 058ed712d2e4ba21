import Arbiter
import ArgumentParser
import Foundation

struct ConfigExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-example", abstract: "Print a config.toml with every key documented at its default.")

    @Flag(name: .long, help: "Print the arbiter.toml(5) manual page (mdoc) instead, from the same key table.")
    var man = false

    func run() {
        if man { print(ConfigFile.manual(date: manualDate()), terminator: "") } else { print(ConfigFile.example(), terminator: "") }
    }
}

/// A manual page's date: SOURCE_DATE_EPOCH when set (reproducible packages), else today.
func manualDate() -> String {
    let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap(TimeInterval.init)
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "MMMM d, yyyy"
    return f.string(from: epoch.map { Date(timeIntervalSince1970: $0) } ?? Date())
}
