import Benchmark
import RepoPrimitives
import RepoRepository

/// Per-chunk work of `WriteSession.save` on a new chunk: blob id, compression, encryption.
func storeBenchmarks() {
    let hmac = HMACSHA256(key: benchmarkMaster.blobID)
    Benchmark("Blob id: HMAC-SHA256, 1 MiB", configuration: bulkConfiguration(maxSeconds: 2, maxIterations: 5000)) { benchmark in
        let chunk = sqlChunks[benchmark.currentIteration % sqlChunks.count]
        measureBytes(benchmark, bytes: chunk.count) { hmac.mac(chunk) }
    }

    // What `store` does: ids of a batch of chunks at once, sixteen in the lanes of AVX-512
    // registers (HMACBatch; libcrypto one by one where the CPU lacks AVX-512).
    let batch = HMACBatch(key: benchmarkMaster.blobID)
    let batchBytes = sqlChunks.reduce(0) { $0 + $1.count }
    Benchmark("Blob id: HMAC-SHA256 x16 (AVX-512), 16 x 1 MiB", configuration: bulkConfiguration(maxSeconds: 2, maxIterations: 500)) { benchmark in
        measureBytes(benchmark, bytes: batchBytes) { batch.macs(sqlChunks) }
    }

    // The whole-stream digest of store and dump (StreamDigest's work per chunk, on its own
    // thread): sequential, so its speed caps a single stream.
    Benchmark("SHA-256 (stream digest), 1 MiB", configuration: bulkConfiguration(maxSeconds: 2, maxIterations: 5000)) { benchmark in
        let chunk = sqlChunks[benchmark.currentIteration % sqlChunks.count]
        let hasher = SHA256Hasher()
        measureBytes(benchmark, bytes: chunk.count) { hasher.update(chunk) }
    }

    // A pack key and a blob's nonce and associated data, as PackWriter derives them.
    let packKey = benchmarkMaster.subkey(label: Array("repo/v1/pack".utf8), salt: benchmarkKey)
    let nonce = [UInt8](repeating: 0, count: 12)
    let aes = AESGCM()
    // What is stored per 100 bytes of input (the compression this text gets).
    let storedPercent = BenchmarkMetric.custom("stored % of input", polarity: .prefersSmaller, useScalingFactor: false)
    for level: Int32 in [3, 1] {
        let zstd = ZstdCompressor(level: level)
        var configuration = bulkConfiguration(maxSeconds: 3, maxIterations: 2000)
        configuration.metrics.append(storedPercent)
        Benchmark("Store: zstd-\(level) + AES-GCM seal, 1 MiB SQL", configuration: configuration) { benchmark in
            let chunk = sqlChunks[benchmark.currentIteration % sqlChunks.count]
            let ad = [BlobType.data.rawValue, 1] + hmac.mac(chunk).bytes
            var stored = 0
            try measureBytes(benchmark, bytes: chunk.count) {
                try chunk.withUnsafeBytes { raw in
                    let sealed = try zstd.compressIfSmaller(raw).map {
                        try aes.seal(key: packKey, nonce: nonce, associatedData: ad, plaintext: $0)
                    } ?? aes.seal(key: packKey, nonce: nonce, associatedData: ad, plaintext: raw)
                    stored = sealed.count
                }
            }
            benchmark.measurement(storedPercent, stored * 100 / chunk.count)
        }
    }
    Benchmark("Store: AES-GCM seal only, 1 MiB", configuration: bulkConfiguration(maxSeconds: 2, maxIterations: 5000)) { benchmark in
        let chunk = randomChunks[benchmark.currentIteration % randomChunks.count]
        let ad = [BlobType.data.rawValue, 0] + hmac.mac(chunk).bytes
        try measureBytes(benchmark, bytes: chunk.count) {
            try aes.seal(key: packKey, nonce: nonce, associatedData: ad, plaintext: chunk)
        }
    }
}
