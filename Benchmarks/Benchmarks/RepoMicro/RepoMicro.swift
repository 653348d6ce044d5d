// Micro benchmarks of repo's hot paths (package-benchmark).
//
// How to run (the plugin builds in release; each benchmark runs in its own process; the suite
// takes about a minute and a half after the build):
//
//   cd Benchmarks
//   swift package benchmark
//   swift package benchmark --filter 'Chunker.*'          # one group
//   swift package benchmark list                           # names
//   swift package --allow-writing-to-package-directory benchmark baseline update main
//   swift package benchmark baseline compare main          # against a kept baseline
//
// Byte-oriented benchmarks report "MB/s (1e6 B/s)" (timed around the work itself), lookups report
// throughput per second over 1000 lookups an iteration. The machine's load shows in p75 and
// above; read p0–p50.
//
// The first run of the Catalog benchmarks builds a 1M-blob catalog under $TMPDIR
// (repo-bench-catalog-*); later runs reuse it.
import Benchmark

let benchmarks: @Sendable () -> Void = {
    chunkerBenchmarks()
    storeBenchmarks()
    packBenchmarks()
    indexBenchmarks()
    dumpBenchmarks()
}
