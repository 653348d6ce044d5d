// index-scale: fills an existing repository's index with synthetic blobs, to measure repo with
// millions of indexed blobs (Benchmarks/index_scale.py drives it; see there for the measurement).
//
//   cd Benchmarks && swift build -c release --product index-scale
//   .build/release/index-scale fill --repo PATH [--password P] --blobs 5000000
//       [--segment-blobs 100000] [--cache-dir DIR] [--seed S] [--pack-files]
//
// --pack-files also creates an empty file `data/<hh>/<name>` for every synthetic pack, so that
// the listing of `data/` every command does on open costs what it would in a real repository
// of that size (the files are in the index, so their headers are never read).
//
// It adds `--blobs` random 32-byte blob ids in ~16 MiB packs of ~1 MiB blobs, written as real
// encrypted index segments (one per `--segment-blobs` blobs) through the repository layer
// (`IndexSegment` + `Repository.saveObject(kind: .index)`). The packs themselves are never
// written, so only use this on a throwaway repository: `repo check` reports them missing and
// `repo prune` would drop the entries. The local catalog is not touched; the next `repo`
// command loads the new segments into it. The password comes from --password or REPO_PASSWORD,
// the cache directory from --cache-dir, REPO_CACHE_DIR, $XDG_CACHE_HOME/repo or ~/.cache/repo
// (as for repo itself).
import BenchmarkSupport
import Foundation
import RepoIndex
import RepoPrimitives
import RepoRepository
import RepoStorage

struct Options {
    var repo = ""
    var password: String?
    var blobs = 0
    var segmentBlobs = 100_000
    var cacheDir: String?
    var seed: UInt64?
    var packFiles = false
}

func usage(_ message: String) -> Never {
    FileHandle.standardError.write(Data("""
        index-scale: \(message)
        usage: index-scale fill --repo PATH [--password P] --blobs N [--segment-blobs N] [--cache-dir DIR] [--seed S]

        """.utf8))
    exit(2)
}

func parse(_ args: [String]) -> Options {
    guard args.first == "fill" else { usage("the only command is `fill`") }
    var o = Options()
    var i = 1
    func value() -> String {
        i += 1
        guard i < args.count else { usage("\(args[i - 1]) needs a value") }
        return args[i]
    }
    func number(_ text: String) -> Int {
        guard let n = Int(text.replacingOccurrences(of: "_", with: "")), n >= 0 else { usage("not a count: \(text)") }
        return n
    }
    while i < args.count {
        switch args[i] {
        case "--repo": o.repo = value()
        case "--password": o.password = value()
        case "--blobs": o.blobs = number(value())
        case "--segment-blobs": o.segmentBlobs = max(1, number(value()))
        case "--cache-dir": o.cacheDir = value()
        case "--seed":
            let text = value()
            guard let s = UInt64(text) else { usage("not a seed: \(text)") }
            o.seed = s
        case "--pack-files": o.packFiles = true
        case "-h", "--help": usage("help")
        default: usage("unknown argument \(args[i])")
        }
        i += 1
    }
    if o.repo.isEmpty { usage("--repo is required") }
    if o.blobs == 0 { usage("--blobs N (N > 0) is required") }
    return o
}

/// The cache directory `repo` itself would use.
func defaultCacheDirectory() -> String {
    let env = ProcessInfo.processInfo.environment
    if let d = env["REPO_CACHE_DIR"], !d.isEmpty { return d }
    if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return x + "/repo" }
    return (env["HOME"] ?? NSTemporaryDirectory()) + "/.cache/repo"
}

func fill(_ o: Options) throws {
    guard let password = o.password ?? ProcessInfo.processInfo.environment["REPO_PASSWORD"] else {
        usage("no password: pass --password P or set REPO_PASSWORD")
    }
    let repository = try Repository.open(backend: LocalBackend(path: o.repo), password: Array(password.utf8),
                                         cacheDirectory: o.cacheDir ?? defaultCacheDirectory(),
                                         warn: { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) })
    let seed = o.seed ?? UInt64.random(in: 0...UInt64.max)
    let clock = ContinuousClock()
    let start = clock.now
    var written = 0, packs = 0, segments = 0, bytes = 0
    while written < o.blobs {
        let n = min(o.segmentBlobs, o.blobs - written)
        let segmentPacks = Synthetic.packs(blobs: n, first: written, seed: seed, packSize: repository.config.packSize)
        let body = IndexSegment(packs: segmentPacks).encoded()
        try repository.saveObject(body, kind: .index)
        if o.packFiles {
            for p in segmentPacks {
                let dir = o.repo + "/data/" + String(p.name.hex.prefix(2))
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                guard FileManager.default.createFile(atPath: dir + "/" + p.name.hex, contents: nil) else {
                    throw CocoaError(.fileWriteUnknown)
                }
            }
        }
        written += n
        packs += segmentPacks.count
        segments += 1
        bytes += body.count
        FileHandle.standardError.write(Data("\rindex-scale: \(written)/\(o.blobs) blobs".utf8))
    }
    let elapsed = start.duration(to: clock.now).components
    let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
    FileHandle.standardError.write(Data("\n".utf8))
    print("added \(written) blobs in \(packs) packs as \(segments) index segments (\(bytes / 1_000_000) MB of entries) "
          + "in \(String(format: "%.1f", seconds)) s; seed \(seed)")
}

do {
    try fill(parse(Array(CommandLine.arguments.dropFirst())))
} catch {
    FileHandle.standardError.write(Data("index-scale: \(error)\n".utf8))
    exit(1)
}
