import Arbiter
import ArgumentParser

struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Set a domain's floor, ceiling or weight (validated, persisted, applied next round).",
        discussion: "Sizes like xl: 512M, 4G (a bare number is KiB); 'none' removes a setting. Needs a running daemon.")

    @Argument(help: "Domain name or domid.")
    var domain: String

    // `.unconditional`: `--floor -1G` reaches the validation below instead of reading as an option.
    @Option(name: .long, parsing: .unconditional, help: "Admin floor (never targeted below), e.g. 1G; 'none' to remove.")
    var floor: String?

    @Option(name: .long, parsing: .unconditional, help: "Admin ceiling (never targeted above; at most static-max); 'none' to remove.")
    var ceiling: String?

    @Option(name: .long, parsing: .unconditional, help: "Weight in the fair share, 0.01-100 (default 1); 'none' to remove.")
    var weight: String?

    @Flag(name: .long, help: "Store a floor the host cannot meet now (an alert is recorded) instead of refusing it.")
    var force = false

    @OptionGroup var socket: SocketOptions

    func validate() throws {
        if floor == nil && ceiling == nil && weight == nil { throw ValidationError("give at least one of --floor, --ceiling, --weight") }
        _ = try parseSizeSetting(floor, flag: "--floor")
        _ = try parseSizeSetting(ceiling, flag: "--ceiling")
        if let weight, weight != "none", !(Double(weight).map { $0 >= 0.01 && $0 <= 100 } ?? false) {
            throw usageError("--weight \(weight.prefix(32)): a weight is a number from 0.01 to 100, or 'none'")
        }
    }

    func run() throws {
        var r = ControlRequest(cmd: "set", domain: domain, who: currentUser(), force: force ? true : nil)
        var clear = [String]()
        let floor = try parseSizeSetting(floor, flag: "--floor"), ceiling = try parseSizeSetting(ceiling, flag: "--ceiling")
        switch floor { case .size(let k): r.floorKiB = k.value; case .clear: clear.append("floor"); case nil: break }
        switch ceiling { case .size(let k): r.ceilingKiB = k.value; case .clear: clear.append("ceiling"); case nil: break }
        if let weight { if weight == "none" { clear.append("weight") } else { r.weight = Double(weight) } }
        if !clear.isEmpty { r.clear = clear }
        print(try socket.request(r).message ?? "ok")
    }
}
