import ArgumentParser
import Foundation

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A mistake in how the command was called: one line on stderr, exit 64 (EX_USAGE), no usage dump.
func usageError(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    return ExitCode(64)
}
