import XCTest
import Foundation

/// `archive_command = 'repo wal-push %p'` on a real PostgreSQL server (`PostgresServer`):
/// under pgbench load the archiver keeps up and every segment is archived; failures land in
/// the server's log with their reason and lose nothing once fixed; a second cluster is refused.
/// The server opens the repository with a machine key file, as an unattended host would.
final class PostgresArchiveTests: XCTestCase {
    var fx: Fixture!
    var servers: [PostgresServer] = []
    var keyFile: String { fx.dir + "/archive.key" }

    override func tearDown() {
        servers.forEach { $0.stop() }
        servers = []
        fx = nil
    }

    /// A repository owned by the server's user, a key file for it, and a cluster archiving into
    /// `repository` (default: the fixture's).
    func startCluster(repository: String? = nil) throws -> PostgresServer {
        let bin = try PostgresServer.requireBinaries()
        if fx == nil {
            fx = Fixture()
            try fx.initRepo()
            try fx.ok(["key", "add", "--new-key-file", keyFile])
            if getuid() == 0 { _ = MountTests.sh("chown", "-R", "postgres:", fx.dir) }
        }
        let server = try PostgresServer(bin: bin, settings: [
            "archive_mode = on",
            "archive_command = '\(Fixture.binary) wal-push --repo \(repository ?? fx.repo) --key-file \(keyFile) %p'",
            "archive_timeout = 0",
        ])
        servers.append(server)
        return server
    }

    /// Switches to a new segment and waits until the old one is archived (or `timeout`).
    @discardableResult
    func switchAndWait(_ server: PostgresServer, timeout: TimeInterval = 30) -> String {
        let segment = switchSegment(server)
        let deadline = Date().addingTimeInterval(timeout)
        while server.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < segment, Date() < deadline {
            usleep(100_000)
        }
        return segment
    }

    /// Writes a row (a switch with nothing written since the last one switches nothing) and
    /// ends the segment; returns its name.
    func switchSegment(_ server: PostgresServer) -> String {
        _ = server.sql("CREATE TABLE IF NOT EXISTS marks (at timestamptz); INSERT INTO marks VALUES (now())")
        return server.sql("SELECT pg_walfile_name(pg_switch_wal())")
    }

    func readyFiles(_ server: PostgresServer) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: server.data + "/pg_wal/archive_status")) ?? [])
            .filter { $0.hasSuffix(".ready") }.count
    }

    func status() throws -> [String: Any] {
        let r = try fx.run(["pg-status", "--json"])
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], r.stderr)
    }

    func testArchiverKeepsUpUnderLoadAndEverySegmentIsArchived() throws {
        let server = try startCluster()
        // Loading pgbench's tables writes WAL as fast as this machine can; then a mixed load.
        // A sampler thread counts the segments waiting for archive_command (.ready files).
        final class Sampler: @unchecked Sendable {
            let lock = NSLock()
            var running = true, maxReady = 0
        }
        let sampler = Sampler()
        let statusDirectory = server.data + "/pg_wal/archive_status"
        Thread.detachNewThread {
            while sampler.lock.withLock({ sampler.running }) {
                let n = ((try? FileManager.default.contentsOfDirectory(atPath: statusDirectory)) ?? []).filter { $0.hasSuffix(".ready") }.count
                sampler.lock.withLock { sampler.maxReady = max(sampler.maxReady, n) }
                usleep(100_000)
            }
        }
        XCTAssertEqual(server.client(["\(server.bin)/pgbench", "-i", "-s", "20", "-q", "postgres"]).0, 0)
        XCTAssertEqual(server.client(["\(server.bin)/pgbench", "-c", "4", "-j", "2", "-T", "8", "postgres"]).0, 0)
        let last = switchAndWait(server)
        let maxReady = sampler.lock.withLock { sampler.running = false; return sampler.maxReady }
        XCTAssertEqual(server.sql("SELECT last_archived_wal FROM pg_stat_archiver"), last)
        XCTAssertEqual(server.sql("SELECT failed_count FROM pg_stat_archiver"), "0")
        XCTAssertLessThanOrEqual(maxReady, 4, "the archiver fell behind: \(maxReady) segments waited at once")

        // Every segment from the first to the last is in the archive, with no gap.
        let s = try status()
        let timelines = try XCTUnwrap(s["timelines"] as? [[String: Any]])
        XCTAssertEqual(timelines.count, 1)
        XCTAssertEqual(timelines[0]["last"] as? String, last)
        XCTAssertEqual((s["gaps"] as? [Any])?.count, 0)
        let first = try XCTUnwrap(timelines[0]["first"] as? String)
        XCTAssertEqual(timelines[0]["segments"] as? Int, Int(last.suffix(8), radix: 16)! - Int(first.suffix(8), radix: 16)! + 1)
        // No base backup yet: pg-status says so and fails.
        XCTAssertEqual(try fx.run(["pg-status"]).status, 1)

        // What wal-fetch hands back is the server's own file.
        let dest = fx.dir + "/fetched"
        try fx.ok(["wal-fetch", last, dest, "--prefetch", "0"])
        if let original = FileManager.default.contents(atPath: server.data + "/pg_wal/" + last) {
            XCTAssertEqual(FileManager.default.contents(atPath: dest), original)
        }
        try fx.ok(["check", "--read-data"])
    }

    /// A missing repository or a removed key makes archive_command fail with the reason in the
    /// server's log; once fixed, archiving resumes and nothing is missing. A lock left by a
    /// crashed prune does not stop archiving at all (wal-push takes no lock).
    func testFailuresAreLoggedRetriedAndLoseNothing() throws {
        let server = try startCluster()
        let first = switchAndWait(server)
        XCTAssertEqual(server.sql("SELECT failed_count FROM pg_stat_archiver"), "0")

        // A prune killed while it held the exclusive lock (with garbage to delete, so it gets there).
        _ = try fx.store("scratch", from: fx.file("scratch", TestData.random(100_000)))
        for snapshot in try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/snapshots") {
            try FileManager.default.removeItem(atPath: fx.repo + "/snapshots/" + snapshot)
        }
        let pruned = try fx.run(["prune", "--safety-margin", "0"], env: ["REPO_TEST_PRUNE_KILL_AT": "1"])
        XCTAssertEqual(pruned.status, 137, pruned.stderr)
        XCTAssertFalse((try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/locks")).isEmpty)
        let second = switchAndWait(server)
        XCTAssertEqual(server.sql("SELECT last_archived_wal FROM pg_stat_archiver"), second, "a lock does not stop archiving")

        // The repository disappears (an unmounted disk): PostgreSQL retries and logs why.
        try FileManager.default.moveItem(atPath: fx.repo, toPath: fx.repo + ".away")
        let pending = switchSegment(server)
        let deadline = Date().addingTimeInterval(20)
        while server.sql("SELECT failed_count FROM pg_stat_archiver") == "0", Date() < deadline { usleep(100_000) }
        XCTAssertNotEqual(server.sql("SELECT failed_count FROM pg_stat_archiver"), "0")
        XCTAssertEqual(readyFiles(server), 1, "the segment waits in pg_wal")
        let log = try String(contentsOfFile: server.dir + "/log", encoding: .utf8)
        XCTAssertTrue(log.contains("no repository at \(fx.repo)"), "the server's log says why: \(log.suffix(2000))")

        try FileManager.default.moveItem(atPath: fx.repo + ".away", toPath: fx.repo)
        let after = Date().addingTimeInterval(90)
        while server.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < pending, Date() < after { usleep(200_000) }
        XCTAssertEqual(server.sql("SELECT last_archived_wal FROM pg_stat_archiver"), pending, "archived once the cause is fixed")
        let s = try status()
        XCTAssertEqual((s["gaps"] as? [Any])?.count, 0)
        let timelines = try XCTUnwrap(s["timelines"] as? [[String: Any]])
        XCTAssertLessThanOrEqual(try XCTUnwrap(timelines[0]["first"] as? String), first)
        XCTAssertEqual(timelines[0]["last"] as? String, pending)
    }

    /// forget keeps each remaining base backup's WAL and the WAL from the hot tier's oldest
    /// base backup on, deletes the rest, and explains it with --dry-run changing nothing.
    func testForgetDeletesWALNoRemainingBackupNeeds() throws {
        let server = try startCluster()
        let pg = ["PGHOST": server.dir, "PGPORT": server.port, "PGUSER": "postgres"]
        XCTAssertEqual(server.client(["\(server.bin)/pgbench", "-i", "-s", "2", "-q", "postgres"]).0, 0)
        let old = try fx.run(["pg-backup", "--pgdata", server.data, "--fast", "--json"], env: pg)
        XCTAssertEqual(old.status, 0, old.stderr)
        for _ in 0..<3 { switchAndWait(server) }
        let recent = try fx.run(["pg-backup", "--pgdata", server.data, "--fast", "--json"], env: pg)
        XCTAssertEqual(recent.status, 0, recent.stderr)
        let recentStart = try XCTUnwrap((try JSONSerialization.jsonObject(with: recent.stdout) as? [String: Any])?["start_wal"] as? String)
        let oldInfo = try XCTUnwrap(try JSONSerialization.jsonObject(with: old.stdout) as? [String: Any])
        let oldStart = try XCTUnwrap(oldInfo["start_wal"] as? String), oldStop = try XCTUnwrap(oldInfo["stop_wal"] as? String)
        switchAndWait(server)
        func archived() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/wal/00000001").filter { !$0.hasPrefix(".") }.sorted()
        }
        let before = try archived()
        XCTAssertTrue(before.contains { $0 < oldStart }, "segments before the first backup exist: \(before)")

        // The old backup stays only by its pin, outside the hot tier (there is none): it keeps
        // its own WAL. The recent one is the newest, so the recovery window starts there.
        try fx.ok(["pin", try XCTUnwrap(oldInfo["id"] as? String), "--reason", "audit"])
        let policy = ["--keep-hot", "0", "--keep-warm", "30d", "--keep-cold", "0"]
        let dry = try fx.ok(["forget", "--dry-run"] + policy)
        XCTAssertTrue(dry.out.contains("would be deleted") && dry.out.contains("needed by base backup"), dry.out)
        XCTAssertEqual(try archived(), before, "a dry run deletes nothing")

        let done = try fx.ok(["forget", "--json"] + policy)
        let wal = try XCTUnwrap((try JSONSerialization.jsonObject(with: done.stdout) as? [String: Any])?["wal"] as? [[String: Any]])
        XCTAssertFalse(wal.isEmpty)
        let after = try archived()
        let segments = after.filter { $0.count == 24 }
        XCTAssertTrue(segments.allSatisfy { ($0 >= oldStart && $0 <= oldStop) || $0 >= recentStart },
                      "kept only the old backup's own WAL and the window: \(segments)")
        XCTAssertTrue(segments.contains(oldStart) && segments.contains(recentStart))
        XCTAssertFalse(after.contains { $0.count == 24 && $0 < oldStart }, "WAL before every backup is gone: \(after)")
        XCTAssertTrue(after.contains { $0.hasSuffix(".backup") && $0.hasPrefix(recentStart) })
        let status = try fx.run(["pg-status"])
        XCTAssertEqual(status.status, 0, "retention leaves nothing that blocks recovery: \(status.out)")
        try fx.ok(["check", "--read-data"])
    }

    /// Another cluster (another system identifier) archiving into the same repository is
    /// refused, says so in its log, and stores nothing.
    func testSecondClusterIsRefused() throws {
        let server = try startCluster()
        switchAndWait(server)
        let before = try FileManager.default.subpathsOfDirectory(atPath: fx.repo + "/wal").sorted()
        let other = try startCluster()
        _ = switchSegment(other)
        let deadline = Date().addingTimeInterval(20)
        while other.sql("SELECT failed_count FROM pg_stat_archiver") == "0", Date() < deadline { usleep(100_000) }
        XCTAssertNotEqual(other.sql("SELECT failed_count FROM pg_stat_archiver"), "0")
        let log = try String(contentsOfFile: other.dir + "/log", encoding: .utf8)
        let mine = server.sql("SELECT system_identifier FROM pg_control_system()")
        XCTAssertTrue(log.contains("archives the cluster \(mine)"), log.suffix(2000).description)
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: fx.repo + "/wal").filter { !$0.contains(".tmp-") }.sorted(),
                       before.filter { !$0.contains(".tmp-") })
    }
}
