import XCTest
import Foundation

/// A short libFuzzer run of every harness through `scripts/fuzz.sh` (2 seconds each, after a
/// release build of Fuzz/ with libFuzzer and AddressSanitizer, about 5 minutes from scratch on
/// 2 cores). It runs when REPO_FUZZ_SMOKE=1, which `scripts/test.sh` (and so CI) sets; a plain
/// `swift test` skips it and relies on `FuzzCorpusTests`, which replays the committed corpus
/// through the same harnesses in about a second.
final class FuzzSmokeTests: XCTestCase {
    func testShortFuzzRunOfEveryHarness() throws {
        #if !os(Linux)
        throw XCTSkip("libFuzzer runs are set up for Linux")
        #else
        guard ProcessInfo.processInfo.environment["REPO_FUZZ_SMOKE"] == "1" else {
            throw XCTSkip("set REPO_FUZZ_SMOKE=1 to build Fuzz/ and fuzz every harness briefly")
        }
        let (status, text) = try Fixture.runProjectScript("bash", "scripts/fuzz.sh", ["--seconds", "2"])
        print(text)
        XCTAssertEqual(status, 0, "scripts/fuzz.sh --seconds 2 failed:\n\(text)")
        // One line per harness, each with a count of executions.
        let rows = text.split(separator: "\n").filter { $0.hasSuffix("  ok") }
        XCTAssertEqual(rows.count, 14, text)
        #endif
    }
}
