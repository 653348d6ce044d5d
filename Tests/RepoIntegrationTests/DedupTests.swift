import XCTest
import Foundation

/// Deduplication as the user sees it: repository growth and reused chunks.
final class DedupTests: XCTestCase {
    func testSameStreamAgainGrowsLessThanOnePercent() throws {
        let fx = Fixture()
        try fx.initRepo()
        let path = fx.file("big", TestData.random(100_000_000))
        _ = try fx.store("big.bin", from: path)
        let before = fx.repositorySize()
        let again = try fx.store("big.bin", from: path)
        let growth = fx.repositorySize() - before
        XCTAssertEqual(again["new_chunks"] as? Int, 0)
        XCTAssertLessThan(Double(growth), Double(before) * 0.01, "grew by \(growth) bytes")
    }

    func testInsertionNearStartReusesNinetyPercent() throws {
        let fx = Fixture()
        try fx.initRepo()
        let original = TestData.random(100_000_000)
        let first = try fx.store("big.bin", from: fx.file("a", original))
        var edited = original
        edited.insert(contentsOf: TestData.random(100), at: 5000)
        let second = try fx.store("big.bin", from: fx.file("b", edited))
        let chunks = second["chunks"] as! Int, fresh = second["new_chunks"] as! Int
        XCTAssertGreaterThanOrEqual(Double(chunks - fresh) / Double(chunks), 0.9, "\(fresh) of \(chunks) chunks were new")
        XCTAssertGreaterThan(first["chunks"] as! Int, 50)
        XCTAssertTrue(try fx.ok(["dump", second["id"] as! String]).stdout == edited)
    }

    func testStatsReportDedup() throws {
        let fx = Fixture()
        try fx.initRepo()
        let sql = TestData.sqlDump(bytes: 10_000_000)
        let path = fx.file("sql", sql)
        _ = try fx.store("db.sql", from: path)
        _ = try fx.store("db.sql", from: path)
        let r = try fx.ok(["stats", "--json"])
        let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(stats["snapshots"] as? Int, 2)
        XCTAssertEqual(stats["logicalBytes"] as? Int, 2 * sql.count)
        XCTAssertGreaterThan(stats["dedupRatio"] as! Double, 4)   // 2× from dedup, more from compression
    }
}
