import XCTest
import Foundation

/// kill -9 during prune, at every durable step and at random moments: afterwards
/// `check --read-data` passes, every kept snapshot dumps byte-identical, and running prune
/// again finishes the job.
final class PruneFaultTests: XCTestCase {
    /// A repository where prune has work of every kind: fully unused packs to delete, partly
    /// used packs to repack (data and tree), and many index segments to replace.
    private func buildRepository() throws -> (Fixture, [String: Data]) {
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "16K"])
        let base = TestData.random(200_000)
        var kept: [String: Data] = [:]
        for i in 0..<8 {
            var data = base
            data.append(TestData.random(60_000 + 1000 * i))
            let day = String(format: "%02d", i + 1)
            let id = try fx.store("db.sql", from: fx.file("in\(i)", data), extra: ["--time", "2024-03-\(day)T12:00:00Z"])["id"] as! String
            if i % 3 == 2 || i == 7 { kept[id] = data }
            // Another stream, entirely forgotten except its newest.
            let other = TestData.random(40_000)
            let oid = try fx.store("logs", from: fx.file("log\(i)", other), extra: ["--time", "2024-03-\(day)T13:00:00Z"])["id"] as! String
            if i == 7 { kept[oid] = other }
        }
        for (id, data) in kept where data.count != 60_000 + 7000 + 200_000 { try fx.ok(["pin", id]) }
        // Forget everything not pinned (keep-last 1 keeps the newest of each stream, also pinned).
        let r = try fx.ok(["forget", "--now", "2026-01-01T00:00:00Z", "--tz", "UTC", "--keep-hot", "0", "--keep-warm", "0",
                           "--keep-cold", "0"])
        XCTAssertTrue(r.out.contains("forgotten"), r.out)
        XCTAssertEqual(try fx.snapshots().count, kept.count)
        return (fx, kept)
    }

    private func copyRepository(_ fx: Fixture) throws -> Fixture {
        let copy = Fixture()
        try FileManager.default.copyItem(atPath: fx.repo, toPath: copy.repo)
        return copy
    }

    private func verify(_ fx: Fixture, _ kept: [String: Data], _ label: String) throws {
        let check = try fx.run(["check", "--read-data"])
        XCTAssertEqual(check.status, 0, "\(label): \(check.out) \(check.stderr)")
        for (id, data) in kept {
            let d = try fx.run(["dump", id])
            XCTAssertEqual(d.status, 0, "\(label): dump \(id): \(d.stderr)")
            XCTAssertTrue(d.stdout == data, "\(label): snapshot \(id) differs")
        }
    }

    private func pruneJSON(_ fx: Fixture, _ label: String) throws -> [String: Any] {
        let r = try fx.run(["prune", "--json", "--safety-margin", "0"])
        XCTAssertEqual(r.status, 0, "\(label): \(r.stderr)")
        return (try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]) ?? [:]
    }

    /// Kill at each durable step in turn (pack written, segment written, segment deleted, pack
    /// deleted), on a fresh copy each time, until prune completes without reaching the step.
    func testKill9AtEveryPruneStep() throws {
        let (fx, kept) = try buildRepository()
        let dry = try JSONSerialization.jsonObject(with: try fx.ok(["prune", "--dry-run", "--json", "--safety-margin", "0"]).stdout) as! [String: Any]
        XCTAssertGreaterThan(dry["packs_deleted"] as! Int, 0)
        XCTAssertGreaterThan(dry["packs_repacked"] as! Int, 0)
        var step = 1
        var killedRuns = 0
        while step < 200 {
            let copy = try copyRepository(fx)
            let r = try copy.run(["prune", "--safety-margin", "0"], env: ["REPO_TEST_PRUNE_KILL_AT": String(step)])
            if r.status == 0 { break }
            XCTAssertEqual(r.status, 128 + SIGKILL, "step \(step): \(r.stderr)")
            killedRuns += 1
            try verify(copy, kept, "after kill at step \(step)")
            // The re-run finishes the job: a third run finds nothing left to do.
            _ = try pruneJSON(copy, "re-run after step \(step)")
            let third = try pruneJSON(copy, "third run after step \(step)")
            XCTAssertEqual(third["packs_deleted"] as? Int, 0, "step \(step): \(third)")
            XCTAssertEqual(third["packs_repacked"] as? Int, 0, "step \(step): \(third)")
            XCTAssertEqual(third["segments_written"] as? Int, 0, "step \(step): \(third)")
            try verify(copy, kept, "after re-run, step \(step)")
            // Every early step, then a sample of the (many, alike) deletions.
            step += step < 12 ? 1 : 3
        }
        XCTAssertGreaterThan(killedRuns, 8, "prune should have many durable steps")
        // The uninterrupted prune frees what the dry run promised.
        let full = try pruneJSON(fx, "uninterrupted")
        XCTAssertEqual(full["packs_deleted"] as? Int, dry["packs_deleted"] as? Int)
        XCTAssertEqual(full["packs_repacked"] as? Int, dry["packs_repacked"] as? Int)
        try verify(fx, kept, "uninterrupted")
    }

    /// kill -9 at random moments (also mid-write), with a fresh catalog or the stale one.
    func testKill9AtRandomMoments() throws {
        let (fx, kept) = try buildRepository()
        var g = SystemRandomNumberGenerator()
        for round in 0..<6 {
            let copy = try copyRepository(fx)
            if round % 2 == 1 {
                // Warm the copy's catalog so the killed prune leaves it stale.
                try copy.ok(["snapshots"])
            }
            let started = try copy.start(["prune", "--safety-margin", "0"])
            Thread.sleep(forTimeInterval: Double(UInt64.random(in: 0...400, using: &g)) / 1000)
            kill(started.0.processIdentifier, SIGKILL)
            _ = copy.collect(started)
            try verify(copy, kept, "round \(round)")
            _ = try pruneJSON(copy, "round \(round) re-run")
            let third = try pruneJSON(copy, "round \(round) third run")
            XCTAssertEqual(third["packs_deleted"] as? Int, 0, "round \(round): \(third)")
            XCTAssertEqual(third["packs_repacked"] as? Int, 0, "round \(round): \(third)")
            try verify(copy, kept, "round \(round) after re-run")
        }
    }
}
