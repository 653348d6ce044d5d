import Benchmark
import BenchmarkSupport
import Foundation
import RepoIndex
import RepoPrimitives

/// Seed of the ids held by the filters and the catalog; unknown ids come from another family.
let indexedSeed: UInt64 = 11
let unknownSeed: UInt64 = 12

func filterOver(_ count: Int) -> MembershipFilter {
    MembershipFilter(prefixes: (0..<count).map { Synthetic.hash($0, seed: indexedSeed).prefix64 })
}

let filter1M = filterOver(1_000_000)
let filter5M = filterOver(5_000_000)

/// 1000 probes: ids of indexed blobs spread over the whole set, or ids no index holds.
func probes(known: Bool, among count: Int) -> [BlobID] {
    (0..<1000).map { j in
        known ? Synthetic.hash(Int(mix64(UInt64(j) &+ 99) % UInt64(count)), seed: indexedSeed)
              : Synthetic.hash(j, seed: unknownSeed)
    }
}

/// A catalog holding 1M blobs in ~62k packs, built once under $TMPDIR and reused by later runs
/// (rebuilt when it is missing, incomplete or of another schema).
let catalog1M: Catalog = {
    let count = 1_000_000
    let dir = FileManager.default.temporaryDirectory.path + "/repo-bench-catalog-\(count)"
    let path = dir + "/catalog.sqlite", marker = dir + "/complete"
    if FileManager.default.fileExists(atPath: marker), let catalog = try? Catalog(path: path),
       (try? catalog.lookup(Synthetic.hash(count - 1, seed: indexedSeed))) != nil {
        return catalog
    }
    try? FileManager.default.removeItem(atPath: dir)
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let catalog = try! Catalog(path: path)
    let perSegment = 100_000
    for s in 0..<(count / perSegment) {
        let packs = Synthetic.packs(blobs: perSegment, first: s * perSegment, seed: indexedSeed)
        try! catalog.addSegment("segment-\(s)", packs: packs)
    }
    _ = FileManager.default.createFile(atPath: marker, contents: nil)
    return catalog
}()

/// The dedup check of the write path: the in-memory filter first, the SQLite catalog for
/// ids the filter may hold; and the catalog lookup restore/dump make per chunk.
func indexBenchmarks() {
    for (count, label) in [(1_000_000, "1M"), (5_000_000, "5M")] {
        for known in [true, false] {
            let ids = probes(known: known, among: count)
            Benchmark("Filter: mayContain \(known ? "known" : "unknown") id, \(label) entries",
                      configuration: lookupConfiguration()) { benchmark in
                let filter = count == 1_000_000 ? filter1M : filter5M
                benchmark.startMeasurement()
                for i in benchmark.scaledIterations { blackHole(filter.mayContain(ids[i])) }
            }
        }
    }
    for known in [true, false] {
        let ids = probes(known: known, among: 1_000_000)
        let what = known ? "known" : "unknown"
        Benchmark("Catalog: lookup \(what) id, 1M blobs", configuration: lookupConfiguration(maxSeconds: 3)) { benchmark in
            let catalog = catalog1M
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations { blackHole(try catalog.lookup(ids[i])) }
        }
        Benchmark("Catalog: contains \(what) id, 1M blobs", configuration: lookupConfiguration(maxSeconds: 3)) { benchmark in
            let catalog = catalog1M
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations { blackHole(try catalog.contains(ids[i], type: .data)) }
        }
    }
}
