import Benchmark
import Foundation
import RepoIndex
import RepoPrimitives
import RepoRepository
import RepoStorage

/// Blob ids of `randomChunks`.
let randomChunkIDs = randomChunks.map { HMACSHA256(key: benchmarkMaster.blobID).mac($0) }

/// A pack as a store of SQL text leaves it: 16 chunks of 1 MiB, zstd-3 compressed and sealed
/// by PackWriter. Also written to a LocalBackend in a temporary directory, so the dump
/// benchmark reads blobs through the same ranged `get` as `Repository.loadBlob`.
let sqlPack: (bytes: [UInt8], descriptor: PackDescriptor, backend: LocalBackend) = {
    let staged = BufferedStagedObject(backend: nil)
    let writer = PackWriter(kind: .data, master: benchmarkMaster, output: staged)
    let hmac = HMACSHA256(key: benchmarkMaster.blobID)
    let zstd = ZstdCompressor(level: 3)
    for chunk in sqlChunks {
        chunk.withUnsafeBytes { raw in
            let compressed = zstd.compressIfSmaller(raw)!
            compressed.withUnsafeBytes {
                try! writer.append(id: hmac.mac(raw), type: .data, flags: PackBlobEntry.flagCompressed,
                                   rawLength: raw.count, stored: $0)
            }
        }
    }
    let descriptor = try! writer.finish()
    let bytes = staged.bytes
    let dir = FileManager.default.temporaryDirectory.path + "/repo-bench-pack-\(getpid())"
    let backend = LocalBackend(path: dir)
    try! backend.put(descriptor.objectName, data: bytes)
    atexit { try? FileManager.default.removeItem(atPath: FileManager.default.temporaryDirectory.path + "/repo-bench-pack-\(getpid())") }
    return (bytes, descriptor, backend)
}()

/// PackWriter as WriteSession uses it: append sealed blobs until the pack reaches 16 MiB, then
/// seal the header (the pack is hashed as it is written). Staged in memory, so this is the CPU
/// cost only; a local repository stages into a temporary file and commits it with fsync.
func packBenchmarks() {
    Benchmark("Pack write: 16 x 1 MiB blobs + finish (16 MiB pack, staged in memory)",
              configuration: bulkConfiguration(maxSeconds: 3, maxIterations: 300)) { benchmark in
        let blobs = randomChunks, ids = randomChunkIDs
        try measureBytes(benchmark, bytes: blobs.reduce(0) { $0 + $1.count }) {
            let staged = BufferedStagedObject(backend: nil)
            let writer = PackWriter(kind: .data, master: benchmarkMaster, output: staged)
            for (blob, id) in zip(blobs, ids) {
                try blob.withUnsafeBytes { try writer.append(id: id, type: .data, flags: 0, rawLength: blob.count, stored: $0) }
            }
            return try writer.finish()
        }
    }
}

/// What `repo dump` does per chunk once the catalog has located it: a decode worker reads the
/// sealed bytes with a ranged `get` and opens them (`Repository.loadBlob(at:)` →
/// `PackReader.open`: pack subkey, AES-GCM open, zstd decompress); the whole-stream SHA-256
/// runs on a thread of its own (StreamDigest; see "SHA-256" in StoreBenchmarks). Blob ids are
/// not recomputed on this path.
func dumpBenchmarks() {
    let reader = PackReader(master: benchmarkMaster)
    Benchmark("Dump: AES-GCM open + zstd decompress, 1 MiB SQL blob",
              configuration: bulkConfiguration(maxSeconds: 2, maxIterations: 5000)) { benchmark in
        let (bytes, pack, _) = sqlPack
        let entry = pack.blobs[benchmark.currentIteration % pack.blobs.count]
        try measureBytes(benchmark, bytes: entry.rawLength) {
            try bytes.withUnsafeBytes {
                try reader.open(UnsafeRawBufferPointer(rebasing: $0[entry.offset..<(entry.offset + entry.length)]),
                                entry: entry, packSalt: pack.salt, pack: pack.name)
            }
        }
    }
    Benchmark("Dump: ranged read of a local pack + open + decompress, 1 MiB SQL blob",
              configuration: bulkConfiguration(maxSeconds: 2, maxIterations: 5000)) { benchmark in
        let (_, pack, backend) = sqlPack
        let entry = pack.blobs[benchmark.currentIteration % pack.blobs.count]
        try measureBytes(benchmark, bytes: entry.rawLength) {
            let sealed = try backend.get(pack.objectName, range: entry.offset..<(entry.offset + entry.length))
            return try sealed.withUnsafeBytes { try reader.open($0, entry: entry, packSalt: pack.salt, pack: pack.name) }
        }
    }
}
