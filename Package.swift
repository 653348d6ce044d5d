// swift-tools-version:6.1
import PackageDescription

/// Settings shared by every Swift target.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "repo",
    platforms: [.macOS(.v15)],
    products: [
        // `repo` is a small launcher (RepoLaunch) that serves spooled `wal-fetch` calls itself
        // and hands every other command line to `repo-core`, installed next to it.
        .executable(name: "repo", targets: ["repo"]),
        .executable(name: "repo-core", targets: ["repo-core"]),
        // The layers below the CLI, for the separate Benchmarks/ package.
        .library(name: "RepoKit", targets: ["RepoPrimitives", "RepoStorage", "RepoIndex", "RepoRepository",
                                            "RepoSnapshot", "RepoOperations"]),
        // Fuzz harnesses over every parser of repository bytes, for the separate Fuzz/ package
        // (libFuzzer) and the corpus replay test.
        .library(name: "RepoFuzzing", targets: ["RepoFuzzing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // C modules: system libraries from Debian, wrapped in shims.
        .systemLibrary(name: "CRepoZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CRepoCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CRepoXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        // Linux calls Glibc's Swift module lacks (xattrs, O_NOATIME); header-only.
        .systemLibrary(name: "CRepoPosix"),
        .systemLibrary(name: "CRepoFuse", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        // libpq, PostgreSQL's client library, for `pg-backup` and `pg-restore --start`: loaded
        // with dlopen on first use, not linked (Sources/CRepoPQ/include/crepo_pq.h says why).
        .target(name: "CRepoPQ", linkerSettings: [.linkedLibrary("dl")]),

        // Multi-buffer HMAC-SHA256 (AVX-512, sixteen messages at once) for blob ids; plain C.
        .target(name: "CRepoSHA256x16"),

        // Primitives: chunker, crypto, compression, checksums.
        .target(name: "RepoPrimitives", dependencies: ["CRepoZstd", "CRepoCrypto", "CRepoXXHash", "CRepoSHA256x16"],
                swiftSettings: swiftSettings),
        // The launcher's code: command lines read without the parser and the WAL prefetch
        // spool's layout, with no Foundation (FORMAT.md §27.6; Sources/RepoLaunch/Launcher.swift).
        .target(name: "RepoLaunch", dependencies: ["CRepoXXHash", "CRepoPosix"], swiftSettings: swiftSettings),
        // Storage backend: named immutable objects.
        .target(name: "RepoStorage", dependencies: ["CRepoPosix"], swiftSettings: swiftSettings),
        // S3 backend: SigV4 signing, requests over async-http-client, ListObjectsV2 (README, "S3").
        .target(name: "RepoS3", dependencies: [
            "RepoStorage", "RepoPrimitives",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ], swiftSettings: swiftSettings),
        // Key management services for `kms` key slots: AWS KMS (signed like S3) and the
        // external-command protocol (README, "Keys").
        .target(name: "RepoKMS", dependencies: [
            "RepoRepository", "RepoS3", "RepoPrimitives",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ], swiftSettings: swiftSettings),
        // Index catalog: SQLite view of index segments + in-memory membership filter.
        .target(name: "RepoIndex", dependencies: ["RepoPrimitives", .product(name: "GRDB", package: "GRDB.swift")],
                swiftSettings: swiftSettings),
        // Repository: keys, packs, index segments, blob save/load, locks.
        .target(name: "RepoRepository", dependencies: ["RepoPrimitives", "RepoStorage", "RepoIndex"],
                swiftSettings: swiftSettings),
        // Snapshot model: plain values.
        .target(name: "RepoSnapshot", dependencies: ["RepoPrimitives"], swiftSettings: swiftSettings),
        // Operations: store, dump, check, stats.
        .target(name: "RepoOperations", dependencies: ["RepoRepository", "RepoSnapshot", "RepoLaunch", "CRepoPosix", "CRepoPQ"],
                swiftSettings: swiftSettings),
        // Mount: read-only filesystem model over snapshots, served through libfuse 3.
        .target(name: "RepoMount", dependencies: ["RepoOperations", "CRepoFuse"], swiftSettings: swiftSettings),
        // Command line.
        .target(name: "RepoCLI", dependencies: [
            "RepoOperations",
            "RepoLaunch",
            "RepoMount",
            "RepoS3",
            "RepoKMS",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Yams", package: "Yams"),
        ], swiftSettings: swiftSettings),
        .executableTarget(name: "repo", dependencies: ["RepoLaunch"], swiftSettings: swiftSettings),
        .executableTarget(name: "repo-core", dependencies: ["RepoCLI"], swiftSettings: swiftSettings),
        // What tests share: a real S3 server (radosgw) started and stopped by scripts/s3-server.sh.
        .target(name: "RepoTestSupport", swiftSettings: swiftSettings),
        // Fuzz harnesses: one entry point per parser of repository bytes (Fuzz/README.md).
        .target(name: "RepoFuzzing", dependencies: ["RepoOperations", "RepoMount"], swiftSettings: swiftSettings),

        .testTarget(name: "RepoPrimitivesTests", dependencies: ["RepoPrimitives"], swiftSettings: swiftSettings),
        .testTarget(name: "RepoSnapshotTests", dependencies: ["RepoSnapshot"], swiftSettings: swiftSettings),
        .testTarget(name: "RepoStorageTests", dependencies: ["RepoStorage", "RepoS3", "RepoTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RepoRepositoryTests", dependencies: ["RepoOperations"], swiftSettings: swiftSettings),
        .testTarget(name: "RepoMountTests", dependencies: ["RepoMount"], swiftSettings: swiftSettings),
        .testTarget(name: "RepoIntegrationTests", dependencies: ["repo", "repo-core", "RepoCLI", "RepoLaunch", "RepoFuzzing", "RepoTestSupport"], swiftSettings: swiftSettings),
    ]
)
