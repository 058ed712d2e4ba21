import Arbiter
import ArgumentParser
import Foundation

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run our policy on a simulated host and print its decisions as an admin would see them.")

    @Option(name: .long, help: "A shipped scenario name or a scenario file (default: default).")
    var scenario: String = "default"

    @Option(name: .long, help: "Simulated hours (default: the scenario's).")
    var hours: Double?

    @Option(name: .long, help: "A config.toml whose policy replaces the scenario's [arbiter.*] settings (keys it does not set are at their defaults).")
    var config: String?

    func validate() throws {
        if let hours, !(hours > 0 && hours <= 744) { throw ValidationError("--hours must be between 0 and 744") }
    }

    func run() async throws {
        var s = try loadScenario(scenario)
        if let hours { s.hours = hours }
        if let config { s.policy = try loadConfig(config).policy }
        let problems = s.problems()
        guard problems.isEmpty else { throw CLIError(problems.map { "\(s.name): \($0)" }.joined(separator: "\n")) }
        let result = await DemoRun.run(s)
        print(result.render(), terminator: "")
        if !result.violations.isEmpty || result.metrics.floorViolations > 0 { throw ExitCode(2) }
    }
}
