// swift-tools-version: 6.1
// The Xen host memory arbiter. Dependency rule: GuestModel (pure) ← Peers (pure) ← Arbiter (service library; in it
// only Arbiter/Xen uses CXen) ← ArbiterCLI (the `arbiter` executable) and ArbiterBench. The guest reporter
// (ArbiterReporter, on ReporterCore and GuestModel) uses CXenStore, libxenstore alone: the guest binary never
// links dom0's libxenlight or libxenctrl.
import PackageDescription

let package = Package(
    name: "arbiter",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "arbiter", targets: ["ArbiterCLI"]),
        .executable(name: "arbiter-bench", targets: ["ArbiterBench"]),
        .executable(name: "arbiter-reporter", targets: ["ArbiterReporter"]),
        .library(name: "GuestModel", targets: ["GuestModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        // Metrics: the swift-metrics API over swift-prometheus's registry (text exposition; no NIO).
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        // The pure decision core: no Foundation, no C types, no I/O.
        // `.rounded()` lowers to libm's round/ceil/floor; without Foundation nothing else links libm.
        .target(name: "GuestModel", linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]),
        // The simulated Xen host: guest memory physics, balloons, reporters, xenstore, workloads, traces,
        // baseline policies and the evaluation harness. Pure like GuestModel (no Foundation, no I/O).
        .target(name: "HostSimulator", dependencies: ["GuestModel"]),
        // The peers' rules (squeezed, qmemman, MoM, static) as round policies, each written from its
        // own source: pure like GuestModel. The daemon can run or shadow any of them.
        .target(name: "Peers", dependencies: ["GuestModel"]),
        // The decision store's schema: migrations/V*.sql, embedded in the binary, applied in order.
        .target(
            name: "ArbiterMigrations", path: "migrations", exclude: ["README.md"], sources: ["Migrations.swift"],
            resources: [.embedInCode("V0001_initial.sql"), .embedInCode("V0002_policies.sql"),
                        .embedInCode("V0003_quiet_rounds.sql"),
                        .embedInCode("V0004_hourly.sql"),
                        .embedInCode("V0005_compact_hours.sql")]),
        // The shipped scenarios (scenarios/*.toml), embedded in the binary.
        .target(
            name: "BundledScenarios", path: "scenarios", exclude: ["README.md"], sources: ["BundledScenarios.swift"],
            resources: [.embedInCode("default.toml"), .embedInCode("idle-fleet.toml"), .embedInCode("spikes.toml"),
                        .embedInCode("hostile.toml"), .embedInCode("lifecycle.toml")]),
        // The guest reporter: /proc parsing (pure) and the executable that writes ~/data/pressure.
        .target(name: "ReporterCore", dependencies: ["GuestModel"]),
        .executableTarget(name: "ArbiterReporter", dependencies: ["ReporterCore", "GuestModel", "CXenStore"]),
        // The guest reporter's C boundary: libxenstore alone, from Debian's libxen-dev.
        .systemLibrary(
            name: "CXenStore", path: "Sources/CXenStore", pkgConfig: "xenstore",
            providers: [.apt(["libxen-dev"])]),
        // The arbiter's C boundary over Debian's libxen-dev (libxenctrl, libxenstore, libxenlight).
        .systemLibrary(
            name: "CXen", path: "Sources/CXen", pkgConfig: "xenlight",
            providers: [.apt(["libxen-dev"])]),
        .target(
            name: "Arbiter",
            dependencies: [
                "GuestModel", "Peers", "HostSimulator", "BundledScenarios", "ArbiterMigrations", "CXen",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .executableTarget(
            name: "ArbiterCLI",
            dependencies: [
                "Arbiter", "GuestModel", "HostSimulator", "BundledScenarios",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "ArbiterBench",
            dependencies: ["GuestModel", "HostSimulator", "Arbiter", "BundledScenarios", .product(name: "Logging", package: "swift-log"),
                           .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "GuestModelTests", dependencies: ["GuestModel"]),
        .testTarget(name: "HostSimulatorTests", dependencies: ["HostSimulator", "GuestModel"]),
        .testTarget(name: "PeersTests", dependencies: ["Peers", "GuestModel"]),
        .testTarget(name: "ReporterTests", dependencies: ["ReporterCore", "GuestModel"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "ArbiterTests",
            dependencies: ["Arbiter", "GuestModel", "Peers", "HostSimulator", "BundledScenarios", "ArbiterMigrations",
                           "ArbiterBench", .product(name: "GRDB", package: "GRDB.swift")],
            exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
