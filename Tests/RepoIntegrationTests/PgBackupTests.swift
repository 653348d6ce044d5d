import XCTest
import Foundation

/// `pg-backup` and `pg-restore` against a real PostgreSQL server (`PostgresServer`) that
/// archives its WAL into the repository with `repo wal-push`: point-in-time recovery to a time
/// and to the end of the archive, the cost of a second base backup, and refusals.
///
/// As in production, the server's user owns the repository (archive_command runs as that
/// user), so `repo` commands that write it run as the server's user too; `pg-restore` runs as
/// the test's user (root in CI), which exercises giving the restored files to the owner of
/// the directory's parent.
final class PgBackupTests: XCTestCase {
    var fx: Fixture!
    var server: PostgresServer!

    override func tearDown() {
        server?.stop()
        server = nil
        fx = nil
    }

    /// A repository owned by the server's user and a running cluster archiving into it.
    func startArchivingCluster() throws {
        let bin = try PostgresServer.requireBinaries()
        fx = Fixture()
        if getuid() == 0 { _ = MountTests.sh("chown", "postgres:", fx.dir) }
        let initialized = asServerUser(["init"])
        XCTAssertEqual(initialized.status, 0, initialized.stderr)
        server = try PostgresServer(bin: bin, settings: [
            "archive_mode = on",
            "archive_command = '\(Fixture.binary) wal-push --repo \(fx.repo) %p'",
            "checkpoint_timeout = 30min",
        ], environment: ["REPO_PASSWORD": fx.password])
    }

    /// `repo ARGS` as the server's user, with libpq pointed at the test server.
    @discardableResult
    func asServerUser(_ args: [String]) -> CLIResult {
        var env = ["REPO_REPOSITORY=\(fx.repo)", "REPO_PASSWORD=\(fx.password)", "REPO_CACHE_DIR=\(fx.dir)/cache-server"]
        if let server { env += ["PGHOST=\(server.dir)", "PGPORT=\(server.port)", "PGUSER=postgres"] }
        let argv = ["env"] + env + [Fixture.binary] + args
        let r = MountTests.sh(getuid() == 0 ? ["runuser", "-u", "postgres", "--"] + argv : argv)
        return CLIResult(status: r.0, stdout: r.1, stderr: r.2)
    }

    /// `repo ARGS` as the test's user, with a cache of its own.
    func asTestUser(_ args: [String]) throws -> CLIResult {
        try fx.run(args, env: ["REPO_CACHE_DIR": fx.dir + "/cache-test"])
    }

    func json(_ r: CLIResult) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], r.out + r.stderr)
    }

    /// A base backup taken while pgbench writes; returns its `--json` output.
    func backupUnderLoad() throws -> [String: Any] {
        XCTAssertEqual(server.client(["\(server.bin)/pgbench", "-i", "-s", "3", "-q", "postgres"]).0, 0)
        let load = Process()
        load.executableURL = URL(fileURLWithPath: server.bin + "/pgbench")
        load.arguments = ["-h", server.dir, "-p", server.port, "-U", "postgres", "-c", "2", "-T", "5", "postgres"]
        load.standardOutput = FileHandle.nullDevice
        load.standardError = FileHandle.nullDevice
        try load.run()
        usleep(500_000)
        let backup = asServerUser(["pg-backup", "--pgdata", server.data, "--fast", "--json"])
        load.waitUntilExit()
        XCTAssertEqual(backup.status, 0, backup.stderr)
        return try json(backup)
    }

    static let checksumSQL = "SELECT md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts"

    /// The server's clock, RFC 3339 in UTC with microseconds.
    func serverTime() -> String {
        server.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    }

    /// Writes after the target, drops a table, switches WAL and waits until that segment is archived.
    func changeAfterTarget() throws {
        _ = server.sql("UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid <= 5000")
        _ = server.sql("DROP TABLE pgbench_history")
        switchAndWaitArchived()
    }

    /// A new directory for a restored cluster, whose parent belongs to the server's user.
    func restoreDirectory(_ name: String) -> String {
        let parent = server.dir + "/restores"
        if !FileManager.default.fileExists(atPath: parent) {
            try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            if getuid() == 0 { _ = MountTests.sh("chown", "postgres:", parent) }
        }
        return parent + "/" + name
    }

    func testRecoveryToATimeBringsBackTheTableAsItWasAndTheDroppedTable() throws {
        try startArchivingCluster()
        let backup = try backupUnderLoad()
        XCTAssertEqual(backup["timeline"] as? Int, 1)
        let checksum = server.sql(Self.checksumSQL)
        let target = serverTime()
        try changeAfterTarget()
        XCTAssertNotEqual(server.sql(Self.checksumSQL), checksum)

        let dir = restoreDirectory("at-time")
        let port = String(Int(server.port)! + 1)
        let restored = try asTestUser(["pg-restore", "--pgdata", dir, "--target-time", target, "--start",
                                       "--server-options", server.options(port: port) + " -c archive_mode=off", "--json"])
        XCTAssertEqual(restored.status, 0, restored.stderr + ((try? String(contentsOfFile: dir + "/pg-restore-start.log", encoding: .utf8)) ?? ""))
        let out = try json(restored)
        XCTAssertEqual(out["snapshot"] as? String, backup["id"] as? String)
        XCTAssertEqual(out["outcome"] as? String, "paused")
        XCTAssertLessThan(out["recovery_seconds"] as? Double ?? 99, 30)
        XCTAssertTrue(restored.stderr.contains("REPO_PASSWORD"), "warns that the server needs the password: \(restored.stderr)")
        let settings = try XCTUnwrap(out["settings"] as? [String: String])
        XCTAssertEqual(settings["recovery_target_action"], "pause")
        XCTAssertEqual(settings["recovery_target_timeline"], "latest")
        XCTAssertTrue(settings["restore_command"]?.hasSuffix(" wal-fetch --repo \(fx.repo) %f %p") == true, settings["restore_command"] ?? "")
        // The launcher, which serves spooled segments without loading repo-core, not repo-core.
        let launcher = URL(fileURLWithPath: Fixture.binary).resolvingSymlinksInPath().path
        XCTAssertTrue(settings["restore_command"]?.hasPrefix(launcher + " wal-fetch ") == true, settings["restore_command"] ?? "")

        XCTAssertEqual(server.sql(Self.checksumSQL, port: port), checksum)
        XCTAssertEqual(server.sql("SELECT to_regclass('pgbench_history') IS NOT NULL", port: port), "t")
        XCTAssertEqual(server.sql("SELECT pg_is_in_recovery()", port: port), "t")
        // PostgreSQL runs only on a directory its user owns, mode 0700.
        let attributes = try FileManager.default.attributesOfItem(atPath: dir)
        XCTAssertEqual(attributes[.posixPermissions] as? Int, 0o700)
        if getuid() == 0 {
            XCTAssertEqual(attributes[.ownerAccountName] as? String, "postgres")
            XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: dir + "/pg_wal/archive_status")[.ownerAccountName] as? String, "postgres")
        }
    }

    /// What `pg-restore` restores is on disk when it exits 0. The server replays WAL onto these
    /// files and first fsyncs them itself, but a power loss between the restore and the start
    /// would leave files that were never written out empty, with nothing to say so. Seen as the
    /// system calls the command makes (strace): every restored file and directory, the recovery
    /// settings and the data directory's entry in its parent are fsynced before it exits.
    func testRestoredDataDirectoryIsOnDiskBeforeExitZero() throws {
        try startArchivingCluster()
        XCTAssertEqual(server.client(["\(server.bin)/pgbench", "-i", "-s", "1", "-q", "postgres"]).0, 0)
        let backup = asServerUser(["pg-backup", "--pgdata", server.data, "--fast"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let dir = restoreDirectory("durable")
        // One trace file per thread (-ff): the restore fsyncs on several threads at once, and
        // in one file their calls would be split into "unfinished" and "resumed" lines.
        let traces = fx.dir + "/strace"
        try FileManager.default.createDirectory(atPath: traces, withIntermediateDirectories: true)
        let r = try fx.shell("strace -ff -qq -y -e trace=fsync -o '\(traces)/t' '\(Fixture.binary)' pg-restore --pgdata '\(dir)' --target latest >/dev/null 2>&1; echo $?",
                             env: ["REPO_CACHE_DIR": fx.dir + "/cache-test"])
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "0")
        let log = try FileManager.default.contentsOfDirectory(atPath: traces)
            .map { try String(contentsOfFile: traces + "/" + $0, encoding: .utf8) }.joined(separator: "\n")
        XCTAssertTrue(log.contains("fsync("), "strace saw no fsync at all")
        let synced = Set(log.split(separator: "\n").compactMap { line -> String? in
            guard let open = line.range(of: "fsync("), line.hasSuffix("= 0"),
                  let start = line[open.upperBound...].firstIndex(of: "<"),
                  let end = line[start...].range(of: ">)")?.lowerBound else { return nil }
            return String(line[line.index(after: start)..<end])
        })
        var expected = [dir, (dir as NSString).deletingLastPathComponent]
        let walker = try XCTUnwrap(FileManager.default.enumerator(atPath: dir))
        while let relative = walker.nextObject() as? String {
            let type = walker.fileAttributes?[.type] as? FileAttributeType
            if type == .typeRegular || type == .typeDirectory { expected.append(dir + "/" + relative) }
        }
        XCTAssertGreaterThan(expected.count, 500, "a data directory's files")
        XCTAssertTrue(expected.contains(dir + "/recovery.signal") && expected.contains(dir + "/pg_wal/archive_status"))
        let missing = expected.filter { !synced.contains($0) }
        XCTAssertEqual(missing, [], "not fsynced before pg-restore exited 0")
    }

    func testRecoveryToTheEndOfTheArchivePromotesWithEveryChange() throws {
        try startArchivingCluster()
        _ = try backupUnderLoad()
        try changeAfterTarget()
        let current = server.sql(Self.checksumSQL)

        let dir = restoreDirectory("latest")
        let port = String(Int(server.port)! + 2)
        let restored = try asTestUser(["pg-restore", "latest", "--pgdata", dir, "--target", "latest", "--start",
                                       "--server-options", server.options(port: port) + " -c archive_mode=off", "--json"])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(try json(restored)["outcome"] as? String, "promoted")
        XCTAssertEqual(server.sql(Self.checksumSQL, port: port), current)
        XCTAssertEqual(server.sql("SELECT to_regclass('pgbench_history') IS NULL", port: port), "t")
        XCTAssertEqual(server.sql("SELECT pg_is_in_recovery()", port: port), "f")
        let conf = try String(contentsOfFile: dir + "/postgresql.auto.conf", encoding: .utf8)
        XCTAssertTrue(conf.contains("recovery_target_time = ''"), conf)
        XCTAssertFalse(conf.contains("recovery_target_action"), "no action without a target: \(conf)")
    }

    /// A restored cluster that is promoted archives on a new timeline into the same repository
    /// (its `.history` file too); pg-status shows both timelines, and a later restore to the
    /// end of the archive follows the new timeline.
    func testPromotedClusterArchivesANewTimelineThatALaterRestoreFollows() throws {
        try startArchivingCluster()
        XCTAssertEqual(server.client(["\(server.bin)/pgbench", "-i", "-s", "2", "-q", "postgres"]).0, 0)
        let backup = asServerUser(["pg-backup", "--pgdata", server.data, "--fast"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        _ = server.sql("CREATE TABLE marks (v text); INSERT INTO marks VALUES ('timeline 1')")
        try changeAfterTarget()
        _ = server.run(server.bin + "/pg_ctl", "-D", server.data, "-m", "fast", "-w", "stop")

        // The restored cluster keeps archiving (its postgresql.conf is the original's).
        let promoted = restoreDirectory("promoted")
        let port2 = String(Int(server.port)! + 3)
        let first = try asTestUser(["pg-restore", "--pgdata", promoted, "--target", "latest", "--start",
                                    "--server-options", server.options(port: port2), "--json"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(server.sql("SELECT timeline_id FROM pg_control_checkpoint()", port: port2), "2")
        _ = server.sql("INSERT INTO marks VALUES ('timeline 2')", port: port2)
        let segment = server.sql("SELECT pg_walfile_name(pg_switch_wal())", port: port2)
        XCTAssertTrue(segment.hasPrefix("00000002"), segment)
        let deadline = Date().addingTimeInterval(30)
        while server.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", port: port2) < segment, Date() < deadline {
            usleep(100_000)
        }
        _ = server.run(server.bin + "/pg_ctl", "-D", promoted, "-m", "fast", "-w", "stop")
        XCTAssertTrue(FileManager.default.fileExists(atPath: fx.repo + "/wal/00000002/00000002.history"))

        let status = try json(try asTestUser(["pg-status", "--json"]))
        let timelines = try XCTUnwrap(status["timelines"] as? [[String: Any]])
        XCTAssertEqual(timelines.map { $0["timeline"] as? Int }, [1, 2])
        XCTAssertEqual(timelines[1]["parent"] as? Int, 1)
        XCTAssertTrue((status["windows"] as? [[String: Any]] ?? []).contains { $0["timeline"] as? Int == 2 }, "\(status)")
        XCTAssertEqual((status["problems"] as? [Any])?.count, 0, "\(status)")

        // A second restore from the same base backup replays timeline 1 and then timeline 2.
        let again = restoreDirectory("again")
        let port3 = String(Int(server.port)! + 4)
        let second = try asTestUser(["pg-restore", "--pgdata", again, "--target", "latest", "--start",
                                     "--server-options", server.options(port: port3) + " -c archive_mode=off", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(server.sql("SELECT string_agg(v, ',' ORDER BY v) FROM marks", port: port3), "timeline 1,timeline 2")
        XCTAssertEqual(server.sql("SELECT timeline_id FROM pg_control_checkpoint()", port: port3), "3")
    }

    /// Waits until the server on `port` has archived the segment it switches away from now.
    func switchAndWaitArchived(port: String? = nil) {
        let segment = server.sql("SELECT pg_walfile_name(pg_switch_wal())", port: port)
        let deadline = Date().addingTimeInterval(30)
        while server.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", port: port) < segment {
            guard Date() < deadline else { return XCTFail("\(segment) was not archived within 30 s") }
            usleep(100_000)
        }
    }

    /// A restored copy promoted with archiving still on (its postgresql.conf is production's)
    /// adds timeline 2 to production's archive while production goes on along timeline 1.
    /// PostgreSQL's 'latest' would then recover a later target along the copy's history and
    /// exit 0 with the wrong data: pg-restore refuses to guess, and --target-timeline chooses.
    func testDivergedHistoriesNeedATimelineAndEachIsRecoverable() throws {
        try startArchivingCluster()
        _ = server.sql("CREATE TABLE marks (v text); INSERT INTO marks VALUES ('a: before the branch')")
        let backup = asServerUser(["pg-backup", "--pgdata", server.data, "--fast"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        _ = server.sql("INSERT INTO marks VALUES ('b: before the branch')")
        let beforeBranch = server.sql("SELECT pg_current_wal_lsn()")
        usleep(20_000)
        let branchTime = serverTime()
        usleep(20_000)
        _ = server.sql("INSERT INTO marks VALUES ('c: production after the branch')")
        switchAndWaitArchived()

        // The copy: recovered to branchTime, promoted, writes, archives timeline 2, stops.
        let copy = restoreDirectory("copy")
        let port2 = String(Int(server.port)! + 5)
        let promoted = try asTestUser(["pg-restore", "--pgdata", copy, "--target-time", branchTime, "--target-action", "promote",
                                       "--start", "--server-options", server.options(port: port2)])
        XCTAssertEqual(promoted.status, 0, promoted.stderr)
        _ = server.sql("INSERT INTO marks VALUES ('d: the copy')", port: port2)
        switchAndWaitArchived(port: port2)
        _ = server.run(server.bin + "/pg_ctl", "-D", copy, "-m", "fast", "-w", "stop")
        XCTAssertTrue(FileManager.default.fileExists(atPath: fx.repo + "/wal/00000002/00000002.history"))

        // Production goes on along timeline 1.
        _ = server.sql("INSERT INTO marks VALUES ('e: production later')")
        usleep(20_000)
        let later = serverTime()
        usleep(20_000)
        // Recovery to a time stops at the first commit past it: there must be one.
        _ = server.sql("INSERT INTO marks VALUES ('f: production after the target')")
        switchAndWaitArchived()
        let marks = "SELECT string_agg(v, ',' ORDER BY v) FROM marks"

        // Without a timeline: refused, naming both, nothing restored.
        let refusedDir = restoreDirectory("refused")
        let refused = try asTestUser(["pg-restore", "--pgdata", refusedDir, "--target-time", later])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("two histories") && refused.stderr.contains("--target-timeline 2")
                      && refused.stderr.contains("--target-timeline 1"), refused.stderr)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: refusedDir)) ?? [], [])
        // The same for the end of the archive.
        XCTAssertEqual(try asTestUser(["pg-restore", "--pgdata", restoreDirectory("refused-latest"), "--target", "latest"]).status, 1)

        // Timeline 1: production's history at `later`.
        let one = restoreDirectory("one")
        let port3 = String(Int(server.port)! + 6)
        let r1 = try asTestUser(["pg-restore", "--pgdata", one, "--target-time", later, "--target-timeline", "1", "--start",
                                 "--archive-mode", "off", "--server-options", server.options(port: port3), "--json"])
        XCTAssertEqual(r1.status, 0, r1.stderr + ((try? String(contentsOfFile: one + "/pg-restore-start.log", encoding: .utf8)) ?? ""))
        XCTAssertEqual(try XCTUnwrap(try json(r1)["settings"] as? [String: String])["recovery_target_timeline"], "1")
        XCTAssertEqual(server.sql("SHOW archive_mode", port: port3), "off", "--archive-mode off wins over the restored postgresql.conf")
        XCTAssertEqual(server.sql(marks, port: port3),
                       "a: before the branch,b: before the branch,c: production after the branch,e: production later")
        _ = server.run(server.bin + "/pg_ctl", "-D", one, "-m", "immediate", "-w", "stop")

        // Timeline 2, asked for by number or as latest: the copy's history.
        let two = restoreDirectory("two")
        let r2 = try asTestUser(["pg-restore", "--pgdata", two, "--target", "latest", "--target-timeline", "latest", "--start",
                                 "--archive-mode", "off", "--server-options", server.options(port: port3)])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(server.sql(marks, port: port3), "a: before the branch,b: before the branch,d: the copy")
        // A fast shutdown lets the archiver finish: with archiving on, 00000003.history would be there.
        _ = server.run(server.bin + "/pg_ctl", "-D", two, "-m", "fast", "-w", "stop")
        XCTAssertFalse(FileManager.default.fileExists(atPath: fx.repo + "/wal/00000003/00000003.history"),
                       "promoted with --archive-mode off: its timeline 3 is not archived")

        // A position before the branch is the same along either: no timeline needed.
        let early = try asTestUser(["pg-restore", "--pgdata", restoreDirectory("early"), "--target-lsn", beforeBranch, "--json"])
        XCTAssertEqual(early.status, 0, early.stderr)
        XCTAssertEqual(try XCTUnwrap(try json(early)["settings"] as? [String: String])["recovery_target_timeline"], "latest")
        // A timeline the archive does not have.
        let missing = try asTestUser(["pg-restore", "--pgdata", restoreDirectory("missing"), "--target", "latest", "--target-timeline", "9"])
        XCTAssertEqual(missing.status, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("00000009.history"), missing.stderr)
        XCTAssertEqual(try asTestUser(["pg-restore", "--pgdata", restoreDirectory("bad"), "--target", "latest", "--target-timeline", "two"]).status, 2)
    }

    /// `repo status` (README, "Monitoring") on a live archive: the base backup is a tree group,
    /// and timeline 1's recovery point is the end of the newest WAL that backup reaches, so
    /// `--max-age` passes; with no base backup left it is late even though WAL keeps arriving.
    func testStatusShowsTheArchiveRecoveryPoint() throws {
        try startArchivingCluster()
        let metrics = fx.dir + "/pg-backup.prom"
        let backup = asServerUser(["pg-backup", "--pgdata", server.data, "--fast", "--json", "--metrics-file", metrics])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let backupID = try XCTUnwrap(try json(backup)["id"] as? String)
        let text = try String(contentsOfFile: metrics, encoding: .utf8)
        XCTAssertTrue(text.contains("repo_command_success{metrics_file=\"pg-backup\",command=\"pg-backup\"} 1\n"), text)
        XCTAssertTrue(text.contains("repo_store_bytes_total{metrics_file=\"pg-backup\",host=") && text.contains("paths=\"\(server.data)\"}"), text)
        _ = server.sql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
        let segment = server.sql("SELECT pg_walfile_name(pg_switch_wal())")
        let deadline = Date().addingTimeInterval(30)
        while server.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < segment {
            guard Date() < deadline else { return XCTFail("\(segment) was not archived within 30 s") }
            usleep(100_000)
        }

        let ok = try asTestUser(["status", "--json", "--max-age", "1h"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let status = try json(ok)
        let group = try XCTUnwrap((status["groups"] as? [[String: Any]])?.first { ($0["paths"] as? [String])?.first == server.data }, "\(status)")
        XCTAssertEqual(group["kind"] as? String, "tree")
        XCTAssertEqual((group["latest"] as? [String: Any])?["id"] as? String, backupID)
        let wal = try XCTUnwrap((status["wal"] as? [[String: Any]])?.first { $0["timeline"] as? Int == 1 }, "\(status)")
        XCTAssertEqual(wal["current"] as? Bool, true)
        let lag = try XCTUnwrap(wal["recovery_point_age_seconds"] as? Double, "the base backup reaches the archived WAL: \(wal)")
        XCTAssertLessThan(lag, 300)
        XCTAssertGreaterThanOrEqual(lag, try XCTUnwrap(wal["archive_lag_seconds"] as? Double) - 1)

        // Without the base backup nothing is restorable: the timeline is late whatever its lag.
        try FileManager.default.removeItem(atPath: fx.repo + "/snapshots/" + backupID)
        let late = try asTestUser(["status", "--max-age", "1h"])
        XCTAssertEqual(late.status, 1, late.out + late.stderr)
        XCTAssertTrue(late.stderr.contains("WAL timeline 1") && late.stderr.contains("no archived WAL can be recovered"), late.stderr)
    }

    func testSecondBackupOfAnUnchangedClusterAddsAlmostNothing() throws {
        try startArchivingCluster()
        XCTAssertEqual(server.client(["\(server.bin)/pgbench", "-i", "-s", "3", "-q", "postgres"]).0, 0)
        _ = server.sql("CHECKPOINT")
        // Files written within 2 s before a backup's start are read again by the next one.
        sleep(3)
        let first = asServerUser(["pg-backup", "--pgdata", server.data, "--fast", "--json"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let a = try json(first)
        XCTAssertGreaterThan(a["bytes"] as? Int ?? 0, 40_000_000)
        sleep(3)
        let second = asServerUser(["pg-backup", "--pgdata", server.data, "--fast", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)
        let b = try json(second)
        XCTAssertEqual(b["parent"] as? String, a["id"] as? String)
        XCTAssertLessThan(b["new_bytes"] as? Int ?? .max, 200_000, "\(b)")
        XCTAssertGreaterThan(b["unchanged_files"] as? Int ?? 0, (b["files"] as? Int ?? 0) * 9 / 10, "\(b)")

        // The stored tree: backup_label at the root, pg_wal kept empty, postmaster.pid left out.
        let id = try XCTUnwrap(b["id"] as? String)
        let label = asServerUser(["dump", id, server.data + "/backup_label"])
        XCTAssertEqual(label.status, 0, label.stderr)
        XCTAssertTrue(label.out.contains("START TIMELINE: 1") && label.out.contains("LABEL: repo pg-backup"), label.out)
        let listing = asServerUser(["ls", id, server.data, "--json"])
        let paths = Set(try XCTUnwrap(JSONSerialization.jsonObject(with: listing.stdout) as? [[String: Any]]).compactMap { $0["path"] as? String })
        XCTAssertTrue(paths.contains(server.data + "/pg_wal"))
        XCTAssertTrue(paths.contains(server.data + "/base"))
        XCTAssertFalse(paths.contains { $0.hasPrefix(server.data + "/pg_wal/") }, "pg_wal's contents are left out")
        XCTAssertFalse(paths.contains(server.data + "/postmaster.pid"))
        let snapshots = try JSONSerialization.jsonObject(with: asServerUser(["snapshots", "--json", "--tag", "pg-backup"]).stdout) as? [[String: Any]]
        XCTAssertEqual(snapshots?.count, 2)
    }

    func testLostConnectionCommitsNoSnapshotAndLeavesNoBackupRunning() throws {
        try startArchivingCluster()
        // Slow the copy down (REPO_TEST_OPEN_DELAY_MS, a test seam) so the session can be ended during it.
        var env = ["REPO_REPOSITORY=\(fx.repo)", "REPO_PASSWORD=\(fx.password)", "REPO_CACHE_DIR=\(fx.dir)/cache-server",
                   "PGHOST=\(server.dir)", "PGPORT=\(server.port)", "PGUSER=postgres", "REPO_TEST_OPEN_DELAY_MS=20"]
        env = ["env"] + env + [Fixture.binary, "pg-backup", "--pgdata", server.data, "--fast"]
        let argv = getuid() == 0 ? ["runuser", "-u", "postgres", "--"] + env : env
        final class Box: @unchecked Sendable { var result: (Int32, Data, String) = (0, Data(), "") }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.result = MountTests.sh(argv)
            done.signal()
        }
        let deadline = Date().addingTimeInterval(20)
        var terminated = false
        while !terminated && Date() < deadline {
            terminated = server.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'repo pg-backup' AND backend_type = 'client backend' AND query LIKE '%pg_backup_start%'") == "1"
            if !terminated { usleep(50_000) }
        }
        XCTAssertTrue(terminated, "the backup's session was seen and ended")
        done.wait()
        let backup = box.result
        XCTAssertEqual(backup.0, 1, backup.2)
        XCTAssertTrue(backup.2.contains("connection"), backup.2)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: asServerUser(["snapshots", "--json"]).stdout) as? [[String: Any]])?.count, 0)
        // The server left backup mode with the session: the next base backup runs.
        let again = asServerUser(["pg-backup", "--pgdata", server.data, "--fast"])
        XCTAssertEqual(again.status, 0, again.stderr)
    }

    func testNonEmptyDataDirectoryIsRefusedAndLeftAlone() throws {
        fx = Fixture()
        try fx.initRepo()
        let dir = fx.dir + "/pgdata"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dir + "/PG_VERSION", contents: Data("15\n".utf8))
        let r = try fx.run(["pg-restore", "--pgdata", dir, "--target", "latest"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("is not empty"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["PG_VERSION"])
        // No base backup at all: a clear error, and no directory made.
        let none = try fx.run(["pg-restore", "--pgdata", fx.dir + "/new", "--target-time", "2026-11-30T10:29:59.123Z"])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("no base backup"), none.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fx.dir + "/new"))
        // Usage: exactly one target.
        XCTAssertEqual(try fx.run(["pg-restore", "--pgdata", fx.dir + "/new"]).status, 2)
        XCTAssertEqual(try fx.run(["pg-restore", "--pgdata", fx.dir + "/new", "--target", "latest", "--target-lsn", "0/1"]).status, 2)
        XCTAssertEqual(try fx.run(["pg-restore", "--pgdata", fx.dir + "/new", "--target", "latest", "--target-action", "promote"]).status, 2)
    }

    func testBackupWithoutAServerOrOfAnotherDirectoryCommitsNothing() throws {
        fx = Fixture()
        try fx.initRepo()
        // Not a data directory: a usage error before connecting.
        let notData = try fx.run(["pg-backup", "--pgdata", fx.dir])
        XCTAssertEqual(notData.status, 2, notData.stderr)
        XCTAssertTrue(notData.stderr.contains("not a PostgreSQL data directory"), notData.stderr)
        // A data directory whose server does not run: libpq's message, exit 1, no snapshot.
        let data = fx.dir + "/data"
        try FileManager.default.createDirectory(atPath: data + "/global", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: data + "/PG_VERSION", contents: Data("15\n".utf8))
        _ = FileManager.default.createFile(atPath: data + "/global/pg_control", contents: Data(count: 8192))
        let down = try fx.run(["pg-backup", "--pgdata", data], env: ["PGHOST": fx.dir, "PGPORT": "1"])
        XCTAssertEqual(down.status, 1, down.stderr)
        XCTAssertTrue(down.stderr.contains("cannot connect to PostgreSQL"), down.stderr)
        XCTAssertEqual(try fx.snapshots().count, 0)
    }
}
