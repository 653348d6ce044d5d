// swift-tools-version:6.1
// Benchmarks for repo, kept in their own package so that package-benchmark and its
// dependencies stay out of the main build.
//
//   cd Benchmarks
//   swift package benchmark                                   # micro benchmarks (built in release)
//   swift package benchmark --filter 'Chunker.*'              # a subset
//   swift package --allow-writing-to-package-directory benchmark baseline update main   # keep a baseline
//   swift build -c release --product index-scale              # then: python3 index_scale.py
//
// Benchmark targets live in Benchmarks/Benchmarks/<Name>/ (the plugin discovers them there);
// plain tools and support code live in Benchmarks/Tools/<name>/.
import PackageDescription

let swiftSettings: [SwiftSetting] = [.enableUpcomingFeature("InternalImportsByDefault")]

let package = Package(
    name: "repo-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "repo", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "RepoMicro",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "RepoKit", package: "repo"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/RepoMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "index-scale",
            dependencies: ["BenchmarkSupport", .product(name: "RepoKit", package: "repo")],
            path: "Tools/index-scale",
            swiftSettings: swiftSettings
        ),
        // Deterministic synthetic inputs (ids, pack descriptors) shared by the two above.
        .target(
            name: "BenchmarkSupport",
            dependencies: [.product(name: "RepoKit", package: "repo")],
            path: "Tools/BenchmarkSupport",
            swiftSettings: swiftSettings
        ),
    ]
)
