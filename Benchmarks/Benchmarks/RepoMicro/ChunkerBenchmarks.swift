import Benchmark
import RepoPrimitives

/// Cuts the whole of `data` the way StreamStore does (`final` only for the stream's tail).
/// Returns the number of chunks.
func chunkAll(_ chunker: FastCDC, _ data: [UInt8]) -> Int {
    data.withUnsafeBytes { buffer in
        let max = chunker.parameters.max
        var offset = 0, count = 0
        while offset < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[offset...])
            offset += chunker.cut(rest, final: rest.count < max)
            count += 1
        }
        return count
    }
}

/// FastCDC over 64 MiB at the default parameters (256 KiB / 1 MiB / 4 MiB); target ≥ 1.5 GB/s.
func chunkerBenchmarks() {
    let chunker = FastCDC(key: benchmarkMaster.chunker, parameters: .default)
    Benchmark("Chunker: FastCDC cut, 64 MiB random", configuration: bulkConfiguration(maxIterations: 60)) { benchmark in
        let data = random64MiB
        measureBytes(benchmark, bytes: data.count) { chunkAll(chunker, data) }
    }
    Benchmark("Chunker: FastCDC cut, 64 MiB SQL text", configuration: bulkConfiguration(maxIterations: 60)) { benchmark in
        let data = sql64MiB
        measureBytes(benchmark, bytes: data.count) { chunkAll(chunker, data) }
    }
}
