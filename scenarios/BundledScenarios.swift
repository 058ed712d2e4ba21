// The shipped scenarios, embedded in the binary so `arbiter simulate` works wherever it is installed.
// Every .toml here must be listed in Package.swift (embedInCode works per file); a test checks that.

/// Scenario files compiled into the binary, by name (the file name without `.toml`).
public enum BundledScenarios {
    public static let all: [(name: String, text: String)] = [
        ("default", String(decoding: PackageResources.default_toml, as: UTF8.self)),
        ("idle-fleet", String(decoding: PackageResources.idle_fleet_toml, as: UTF8.self)),
        ("spikes", String(decoding: PackageResources.spikes_toml, as: UTF8.self)),
        ("hostile", String(decoding: PackageResources.hostile_toml, as: UTF8.self)),
        ("lifecycle", String(decoding: PackageResources.lifecycle_toml, as: UTF8.self)),
    ]

    public static func named(_ name: String) -> String? { all.first { $0.name == name }?.text }
}
