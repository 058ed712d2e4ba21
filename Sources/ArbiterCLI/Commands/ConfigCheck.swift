import Arbiter
import ArgumentParser
import Foundation
import GuestModel

struct ConfigCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-check", abstract: "Validate a config.toml and print the effective configuration, defaults filled in.",
        discussion: """
            Every key of every section at the value the daemon would use: the file's, else the default. Keys the \
            file changes say their default in a comment. The output is itself a valid config.toml; its last line \
            is 'PATH: ok'. An invalid file prints each problem with its key and line and exits 1.
            """)

    @Argument(help: "The file to check.")
    var path: String

    func run() throws {
        let config = try loadConfig(path)
        print("# \(path): the effective configuration (keys the file does not set are at their defaults)")
        print(ConfigFile.effective(config), terminator: "")
        print("\(path): ok")
    }
}
