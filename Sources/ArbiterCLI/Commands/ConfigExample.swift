import Arbiter
import ArgumentParser

struct ConfigExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-example", abstract: "Print a config.toml with every key documented at its default.")

    func run() { print(ConfigFile.example(), terminator: "") }
}
