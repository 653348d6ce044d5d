import Benchmark

/// Bytes per second, in MB/s (10^6 bytes), of the measured part of each iteration.
let megabytesPerSecond = BenchmarkMetric.custom("MB/s (1e6 B/s)", polarity: .prefersLarger, useScalingFactor: false)

/// Measures `body` as one iteration (everything before the call is setup) and records its rate
/// over `bytes` in `megabytesPerSecond`, next to the plugin's own wall-clock figure.
@inline(__always)
func measureBytes<T>(_ benchmark: Benchmark, bytes: Int, _ body: () throws -> T) rethrows {
    let clock = ContinuousClock()
    benchmark.startMeasurement()
    let start = clock.now
    let result = try body()
    let elapsed = start.duration(to: clock.now)
    benchmark.stopMeasurement()
    blackHole(result)
    let (seconds, attoseconds) = elapsed.components
    let nanoseconds = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    if nanoseconds > 0 {
        benchmark.measurement(megabytesPerSecond, Int((Double(bytes) * 1e3 / nanoseconds).rounded()))
    }
}

/// Configuration for benchmarks over large buffers: few, long iterations.
func bulkConfiguration(maxSeconds: Int = 3, maxIterations: Int = 200) -> Benchmark.Configuration {
    .init(metrics: [.wallClock, megabytesPerSecond, .mallocCountTotal],
          warmupIterations: 1, maxDuration: .seconds(maxSeconds), maxIterations: maxIterations)
}

/// Configuration for point lookups: 1000 lookups per iteration, throughput in lookups/s.
func lookupConfiguration(maxSeconds: Int = 2) -> Benchmark.Configuration {
    .init(metrics: [.wallClock, .throughput, .mallocCountTotal],
          warmupIterations: 3, scalingFactor: .kilo, maxDuration: .seconds(maxSeconds), maxIterations: 100_000)
}
