// The decision store's schema, in order. Each entry is a shipped migration: never edited, only appended
// (a change is a new V000N file, listed here and in Package.swift; a test compares this list with the
// folder). SwiftPM mangles a leading digit, hence the V prefix.

/// Every migration, oldest first: (identifier recorded in the database, SQL).
public enum ArbiterMigrations {
    public static let all: [(id: String, sql: String)] = [
        ("V0001_initial", String(decoding: PackageResources.V0001_initial_sql, as: UTF8.self)),
        ("V0002_policies", String(decoding: PackageResources.V0002_policies_sql, as: UTF8.self)),
        ("V0003_quiet_rounds", String(decoding: PackageResources.V0003_quiet_rounds_sql, as: UTF8.self)),
        ("V0004_hourly", String(decoding: PackageResources.V0004_hourly_sql, as: UTF8.self)),
        ("V0005_compact_hours", String(decoding: PackageResources.V0005_compact_hours_sql, as: UTF8.self)),
    ]
}
