import Arbiter
import BundledScenarios
import Foundation
import HostSimulator

/// Reads and validates a config file, or returns the defaults when no path is given.
func loadConfig(_ path: String?) throws -> ArbiterConfig {
    guard let path else { return ArbiterConfig() }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIError("cannot read config file \(path)")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(path) is not UTF-8 text") }
    do {
        return try ConfigFile.load(text)
    } catch {
        throw CLIError(error.errors.map { "\(path): \($0)" }.joined(separator: "\n"))
    }
}

/// A shipped scenario by name, or a scenario file.
func loadScenario(_ name: String) throws -> Scenario {
    do {
        if let text = BundledScenarios.named(name) { return try ScenarioFile.parse(text) }
        return try ScenarioFile.load(path: name)
    } catch {
        throw CLIError(error.errors.map { "\(name): \($0)" }.joined(separator: "\n"))
    }
}
