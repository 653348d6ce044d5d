import RepoFuzzing
#if canImport(Glibc)
import Glibc
#endif

func complain(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// The harness this process runs, from `REPO_FUZZ_HARNESS` (see `FuzzHarness` for the names).
nonisolated(unsafe) var harness: FuzzHarness = .config

/// libFuzzer calls this once before fuzzing: picks the harness, or, with
/// `REPO_FUZZ_SEEDS=REPOSITORY:OUTDIR` (password in `REPO_PASSWORD`), writes seed inputs made
/// from that repository's objects into OUTDIR/<harness>/ and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let env = { (name: String) -> String? in getenv(name).map { String(cString: $0) } }
    if let spec = env("REPO_FUZZ_SEEDS") {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { complain("REPO_FUZZ_SEEDS must be REPOSITORY:OUTDIR"); exit(2) }
        do {
            let counts = try SeedGenerator.generate(repository: parts[0], password: Array((env("REPO_PASSWORD") ?? "").utf8),
                                                    output: parts[1])
            for (h, n) in counts.sorted(by: { $0.key < $1.key }) { print("seeds: \(h) \(n)") }
            exit(0)
        } catch {
            complain("seed generation failed: \(error)")
            exit(1)
        }
    }
    let name = env("REPO_FUZZ_HARNESS") ?? ""
    guard let h = FuzzHarness(rawValue: name) else {
        complain("set REPO_FUZZ_HARNESS to one of: \(FuzzHarness.allCases.map(\.rawValue).joined(separator: " "))")
        exit(2)
    }
    harness = h
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    harness.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
