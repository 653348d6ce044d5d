import XCTest
import Foundation
import RepoFuzzing

/// Replays every committed fuzz input (Fuzz/corpus/<harness>/, seeds, coverage finds and the
/// inputs that once crashed a parser) through the same harness entry points libFuzzer drives,
/// without libFuzzer: a regression in any parser of repository bytes traps here, in a second.
/// Real fuzzing is `scripts/fuzz.sh` (Fuzz/README.md).
final class FuzzCorpusTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fuzz/corpus").standardized.path

    func testEveryHarnessHasACorpus() throws {
        for h in FuzzHarness.allCases {
            let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus + "/" + h.rawValue)
            XCTAssertFalse(files.isEmpty, "Fuzz/corpus/\(h.rawValue) is empty")
        }
    }

    /// Fuzz/regressions/<harness>/: inputs that crashed a parser before its fix.
    static let regressions = URL(fileURLWithPath: corpus).deletingLastPathComponent().appendingPathComponent("regressions").path

    func testReplayCorpus() throws {
        var total = 0
        for h in FuzzHarness.allCases {
            for dir in [Self.corpus + "/" + h.rawValue, Self.regressions + "/" + h.rawValue] {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: dir).sorted()) ?? []
                // If a harness traps, the last line names it; `REPO_FUZZ_HARNESS=<harness>
                // Fuzz/.build/release/repo-fuzz <file>` then finds and explains the input.
                print("fuzz corpus: replaying \(names.count) inputs of \(h.rawValue) from \(dir)")
                for name in names {
                    let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
                    h.run([UInt8](data))
                    total += 1
                }
            }
        }
        XCTAssertGreaterThan(total, FuzzHarness.allCases.count)
    }
}
