/// Configuration problems are typed values with their key, wherever they are found: in the file
/// (`ConfigFile`), in a policy or daemon setting (`problems()`), or in a scenario.

/// A configuration problem, naming the key (and its line where the file has one).
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String?
    public var line: Int?
    public var message: String

    public init(key: String?, line: Int? = nil, message: String) {
        self.key = key
        self.line = line
        self.message = message
    }

    public var description: String {
        var s = ""
        if let line { s += "line \(line): " }
        if let key { s += "\(key): " }
        return s + message
    }
}
