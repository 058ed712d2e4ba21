import Arbiter
import ArgumentParser
import Foundation

enum ReportFormat: String, ExpressibleByArgument, CaseIterable { case text, csv, json, html }

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "A report over recorded decisions: text, CSV, JSON, or one HTML page with charts.")

    @Option(name: .long, help: "From: 10m, 2h, 3d, Unix seconds or ISO 8601 (default: the beginning).")
    var since: String?

    @Option(name: .long, help: "Until: the same forms (default: now).")
    var until: String?

    @Option(name: .long, help: "text, csv, json or html.")
    var format: ReportFormat = .text

    @Option(name: [.short, .long], help: "Write to this file instead of stdout.")
    var output: String?

    @Flag(name: .long, help: "Compare the shadow policies ([daemon] shadow) with what was pushed, per domain (text or json).")
    var compare = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        let from = try parseTime(since), to = try parseTime(until, flag: "--until")
        if let from, let to, from > to {
            throw usageError("--since \(since!) (\(timeText(from.timeIntervalSince1970))) is after --until \(until!) (\(timeText(to.timeIntervalSince1970)))")
        }
        if compare {
            guard format == .text || format == .json else { throw usageError("--compare writes text or json, not \(format.rawValue)") }
            let rows = try store.open().shadowComparison(since: from, until: to)
            let text: String
            if format == .json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys]
                text = String(decoding: try enc.encode(rows), as: UTF8.self) + "\n"
            } else {
                text = ShadowComparison.text(rows)
            }
            if let output { try text.write(toFile: output, atomically: true, encoding: .utf8) } else { print(text, terminator: "") }
            return
        }
        let r = try store.open().report(since: from, until: to)
        let text: String
        switch format {
        case .text: text = r.text()
        case .csv: text = r.csv()
        case .json: text = r.json() + "\n"
        case .html: text = r.html()
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else { throw CLIError("cannot write \(output)") }
        } else {
            print(text, terminator: "")
        }
    }
}
