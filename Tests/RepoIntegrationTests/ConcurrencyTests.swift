import XCTest
import Foundation

/// Writers and prune in the windows between their steps.
final class ConcurrencyTests: XCTestCase {
    /// A store opens the repository (and brings its catalog up to date) before it takes its
    /// lock. If a prune runs in between, the store must not deduplicate against blobs the prune
    /// has just deleted: its snapshot would name data that no longer exists.
    func testStoreOpenedBeforeAPruneDoesNotReuseWhatThePruneDeleted() throws {
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "64KiB"])
        let data = TestData.random(1_500_000)
        let input = fx.file("data.bin", data)
        _ = try fx.store("db.bin", from: input, extra: ["--time", "2020-01-01T00:00:00Z"])
        _ = try fx.store("db.bin", from: fx.file("keep.bin", TestData.random(10_000)), extra: ["--time", "2025-12-31T00:00:00Z"])
        try fx.ok(["forget", "--now", "2026-01-01T00:00:00Z", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0"])
        XCTAssertEqual(try fx.snapshots().count, 1)

        // The store syncs its catalog (which still lists the forgotten data), then waits before
        // locking; meanwhile prune deletes that data.
        let store = try fx.start(["store", "--name", "new.bin", "--json"], stdinPath: input,
                                 env: ["REPO_TEST_LOCK_DELAY_MS": "3000"])
        Thread.sleep(forTimeInterval: 1.5)
        // Another host's prune: its own cache, so the store's catalog learns nothing from it.
        let prune = try fx.run(["prune", "--max-unused", "0", "--safety-margin", "0", "--json", "--cache-dir", fx.dir + "/other-host-cache"])
        XCTAssertEqual(prune.status, 0, prune.stderr)
        let freed = (try JSONSerialization.jsonObject(with: prune.stdout) as? [String: Any])?["packs_deleted"] as? Int
        XCTAssertGreaterThan(freed ?? 0, 0, "prune should have deleted the forgotten data: \(prune.out)")
        let stored = fx.collect(store)
        XCTAssertEqual(stored.status, 0, stored.stderr)
        let id = (try JSONSerialization.jsonObject(with: stored.stdout) as? [String: Any])?["id"] as? String ?? ""
        let dump = try fx.run(["dump", id])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertTrue(dump.stdout == data, "the new snapshot does not read back")
        let check = try fx.run(["check", "--read-data"])
        XCTAssertEqual(check.status, 0, check.out + check.stderr)
    }
}
