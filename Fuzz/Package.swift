// swift-tools-version:6.1
// Coverage-guided fuzzing of repo's parsers with libFuzzer, in its own package so that the
// sanitizer build stays out of the main one. The harnesses themselves are the main package's
// RepoFuzzing library (the corpus replay test runs the same code); this package only adds the
// libFuzzer entry point. Build and run through the script:
//
//   scripts/fuzz.sh --seconds 60 tree            # or --runs N, any harnesses; see Fuzz/README.md
//
// which builds with
//
//   swift build -c release --package-path Fuzz --product repo-fuzz \
//       --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// `--sanitize=fuzzer` makes SwiftPM link libFuzzer's `main` instead of the target's; the
// combined `-sanitize=fuzzer,address` after it is what swiftc keeps (of several `-sanitize=`
// flags the last wins, so `--sanitize=fuzzer --sanitize=address` would build without coverage).
import PackageDescription

let package = Package(
    name: "repo-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "repo", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "repo-fuzz",
            dependencies: [
                .product(name: "RepoKit", package: "repo"),
                .product(name: "RepoFuzzing", package: "repo"),
            ],
            swiftSettings: [.enableUpcomingFeature("InternalImportsByDefault")]
        ),
    ]
)
