import ArgumentParser
import Foundation
import GuestModel

/// `--since`/`--until`: 10m|2h|3d (ago), Unix seconds or ISO 8601; finite, not before 1970 and not
/// more than a day ahead (a typo such as `--since 1e12` is not a time the store can hold).
func parseTime(_ text: String?, flag: String = "--since", now: Date = Date()) throws -> Date? {
    guard let text else { return nil }
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
    var date: Date? = nil
    if let u = text.last, let mult = units[u], let n = Double(text.dropLast()) {
        guard n.isFinite, n >= 0, n <= 100 * 366 else { throw usageError("\(flag) \(text): the amount must be a finite number from 0 to 36600") }
        date = now.addingTimeInterval(-n * mult)
    } else if let t = Double(text) {
        guard t.isFinite else { throw usageError("\(flag) \(text): not a finite time") }
        date = Date(timeIntervalSince1970: t)
    } else if let d = ISO8601DateFormatter().date(from: text) {
        date = d
    }
    guard let date else { throw usageError("\(flag) '\(text.prefix(64))' is not 10m, 2h, 3d, Unix seconds or an ISO 8601 time") }
    guard date.timeIntervalSince1970 >= 0, date <= now.addingTimeInterval(86400) else {
        throw usageError("\(flag) \(text): \(timeText(date.timeIntervalSince1970)) is outside 1970 to tomorrow")
    }
    return date
}

func timeText(_ t: Double) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: Date(timeIntervalSince1970: t))
}

/// A size, or "none" to clear the setting.
enum SizeSetting { case size(KiB), clear }

/// A size option (`--floor 1G`, a bare number is KiB) or `none`/`auto` to clear it: one clear line for
/// anything else, a negative or zero size included.
func parseSizeSetting(_ text: String?, flag: String) throws -> SizeSetting? {
    guard let text else { return nil }
    if text == "none" || text == "auto" { return .clear }
    if text.hasPrefix("-") { throw usageError("\(flag) \(text.prefix(32)): a size cannot be negative") }
    guard let k = KiB(parsing: text) else { throw usageError("\(flag) '\(text.prefix(32))' is not a size such as 512M or 4G (or 'none')") }
    guard k.value > 0 else { throw usageError("\(flag) \(text): a size must be more than 0 (use 'none' to remove the setting)") }
    return .size(k)
}

/// `--timeout` of `reserve` and `start`: 1 to 3600 seconds, one line and exit 64 otherwise.
func validateTimeout(_ seconds: Double) throws {
    guard seconds.isFinite, seconds >= 1, seconds <= 3600 else { throw usageError("--timeout \(seconds): must be between 1 and 3600 seconds") }
}
