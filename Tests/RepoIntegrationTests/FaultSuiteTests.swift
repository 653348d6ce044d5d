import XCTest
import Foundation

/// The short run of the project's fault suite (scripts/faults.py --quick): kill -9 at random
/// moments and at exact system calls during store, backup, forget --prune, prune and check;
/// damage to every kind of repository object and to the cache; stores racing a prune; a full
/// disk and a read-only repository. Nothing may be lost and no damage may go undetected. The
/// long run is the same script without --quick (README, "Reliability").
final class FaultSuiteTests: XCTestCase {
    func testQuickFaultSuiteLosesNothingAndDetectsAllDamage() throws {
        let json = NSTemporaryDirectory() + "faults-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let (status, text) = try Fixture.runProjectScript("python3", "scripts/faults.py",
                                                          ["--repo-bin", Fixture.binary, "--quick", "--json", json])
        XCTAssertEqual(status, 0, text)
        let result = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any] ?? [:]
        XCTAssertEqual(result["lost"] as? Int, 0, text)
        XCTAssertEqual(result["undetected"] as? Int, 0, text)
        // The run really exercised every suite.
        let suites = result["suites"] as? [[String: Any]] ?? []
        XCTAssertEqual(suites.count, 6, text)
        for s in suites { XCTAssertGreaterThan(s["tried"] as? Int ?? 0, 0, "\(s["name"] ?? "?") tried nothing: \(text)") }
    }
}
