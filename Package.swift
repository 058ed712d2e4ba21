// swift-tools-version: 6.1
// The Xen host memory arbiter. Dependency rule: GuestModel (pure) ← Arbiter (service library, the only
// user of CXen) ← ArbiterCLI (the `arbiter` executable). The benchmark depends on GuestModel only.
import PackageDescription

let package = Package(
    name: "arbiter",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "arbiter", targets: ["ArbiterCLI"]),
        .executable(name: "arbiter-bench", targets: ["ArbiterBench"]),
        .library(name: "GuestModel", targets: ["GuestModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
    ],
    targets: [
        // The pure decision core: no Foundation, no C types, no I/O.
        // `.rounded()` lowers to libm's round/ceil/floor; without Foundation nothing else links libm.
        .target(name: "GuestModel", linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]),
        // The simulated Xen host: guest memory physics, balloons, reporters, xenstore, workloads, traces,
        // baseline policies and the evaluation harness. Pure like GuestModel (no Foundation, no I/O).
        .target(name: "HostSimulator", dependencies: ["GuestModel"]),
        // The shipped scenarios (scenarios/*.toml), embedded in the binary.
        .target(
            name: "BundledScenarios", path: "scenarios", exclude: ["README.md"], sources: ["BundledScenarios.swift"],
            resources: [.embedInCode("default.toml"), .embedInCode("idle-fleet.toml"), .embedInCode("spikes.toml"),
                        .embedInCode("hostile.toml")]),
        // The C boundary over Debian's libxen-dev (libxenctrl, libxenstore, libxenlight).
        .systemLibrary(
            name: "CXen", path: "Sources/CXen", pkgConfig: "xenlight",
            providers: [.apt(["libxen-dev"])]),
        .target(
            name: "Arbiter",
            dependencies: [
                "GuestModel", "HostSimulator", "BundledScenarios", "CXen",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]),
        .executableTarget(
            name: "ArbiterCLI",
            dependencies: [
                "Arbiter", "GuestModel", "HostSimulator", "BundledScenarios",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "ArbiterBench", dependencies: ["GuestModel", "HostSimulator"]),
        .testTarget(name: "GuestModelTests", dependencies: ["GuestModel"]),
        .testTarget(name: "HostSimulatorTests", dependencies: ["HostSimulator", "GuestModel"]),
        .testTarget(name: "ArbiterTests", dependencies: ["Arbiter", "GuestModel", "HostSimulator", "BundledScenarios"]),
    ],
    swiftLanguageModes: [.v6]
)
