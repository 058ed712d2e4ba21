import Foundation

/// Tests that run the real `arbiter` binary (built beside the test bundle by `swift build`).
protocol ArbiterProcessTest {
    /// Prefix of the scratch folders the suite makes.
    static var scratchPrefix: String { get }
}

extension ArbiterProcessTest {
    /// The `arbiter` binary built beside the test bundle.
    static var binary: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("arbiter").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("arbiter")
    }

    /// Runs a binary (the CLI by default) to completion: exit status, stdout, stderr.
    func run(_ args: [String], executable: URL = Self.binary) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// A fresh folder for one test's files (the caller removes it).
    func scratch(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(Self.scratchPrefix)-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
