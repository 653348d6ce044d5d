import XCTest
import Foundation

/// `repo drill` (README, "Restore drills"): real pg_dumps (plain and custom format) restored into
/// a scratch PostgreSQL that the command starts and removes itself, with passing and failing
/// `--sql` checks; a damaged snapshot; tree and stream drills; the record `repo status` shows.
final class DrillTests: XCTestCase {
    func json(_ r: CLIResult) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], r.out)
    }

    /// Scratch clusters of drills: directories named repo-drill-* under `parent`.
    func scratchLeft(_ parent: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).filter { $0.hasPrefix("repo-drill") }
    }

    func testPostgresDrillOfPlainAndCustomDumps() throws {
        let bin = try PostgresServer.requireBinaries()
        let server = try PostgresServer(bin: bin)
        defer { server.stop() }
        _ = server.sql("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL); INSERT INTO accounts SELECT g, g % 100 FROM generate_series(1, 1000) g")
        _ = server.sql("CREATE SCHEMA \"Audit\"; CREATE TABLE \"Audit\".\"Log\" (t text); INSERT INTO \"Audit\".\"Log\" VALUES ('a'), ('b'), ('c')")
        let fx = Fixture()
        try fx.initRepo()
        let plainFile = fx.dir + "/plain.sql", customFile = fx.dir + "/custom.dump"
        XCTAssertEqual(server.client([bin + "/pg_dump", "-d", "postgres", "-f", plainFile]).0, 0)
        XCTAssertEqual(server.client([bin + "/pg_dump", "-Fc", "-d", "postgres", "-f", customFile]).0, 0)
        let plain = try XCTUnwrap(try fx.store("db.sql", from: plainFile)["id"] as? String)
        let custom = try XCTUnwrap(try fx.store("db.dump", from: customFile)["id"] as? String)
        let pass = fx.file("pass.sql", Data("SELECT count(*) = 1000 AND sum(balance) = 49500 FROM accounts;\n".utf8))
        let fail = fx.file("fail.sql", Data("SELECT count(*) = 999 FROM accounts;\n".utf8))
        let scratch = fx.dir + "/scratch"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        chmod(scratch, 0o755)

        // Plain SQL: restored, every table counted, the --sql check passes; recorded.
        let r1 = try fx.run(["drill", plain, "--postgres", "--sql", pass, "--scratch-dir", scratch, "--json"])
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let o1 = try json(r1)
        XCTAssertEqual(o1["ok"] as? Bool, true)
        XCTAssertEqual(o1["kind"] as? String, "postgres")
        let checks1 = try XCTUnwrap(o1["checks"] as? [[String: Any]])
        XCTAssertEqual(checks1.first { $0["name"] as? String == "rows in public.accounts" }?["detail"] as? String, "1000", "\(checks1)")
        XCTAssertEqual(checks1.first { $0["name"] as? String == "rows in \"Audit\".\"Log\"" }?["detail"] as? String, "3", "\(checks1)")
        XCTAssertEqual(checks1.filter { ($0["name"] as? String)?.hasPrefix("query ") == true }.map { $0["ok"] as? Bool }, [true])
        XCTAssertGreaterThan(o1["restore_seconds"] as? Double ?? 0, 0)
        XCTAssertNotNil(o1["recorded"] as? String)
        XCTAssertTrue(o1["message"] is NSNull, "every key is present, null when it does not apply: \(o1)")
        XCTAssertEqual(scratchLeft(scratch), [], "the scratch cluster is removed")

        // Custom format, detected; a failing --sql check makes the drill fail (exit 1), recorded too.
        let r2 = try fx.run(["drill", custom, "--postgres", "--sql", pass, "--sql", fail, "--scratch-dir", scratch, "--json"])
        XCTAssertEqual(r2.status, 1, r2.stderr)
        let o2 = try json(r2)
        XCTAssertEqual(o2["ok"] as? Bool, false)
        XCTAssertEqual(o2["failed_checks"] as? Int, 1)
        let checks2 = try XCTUnwrap(o2["checks"] as? [[String: Any]])
        XCTAssertEqual(checks2.first?["name"] as? String, "restore (pg_restore)")
        XCTAssertEqual(checks2.first { ($0["name"] as? String)?.hasSuffix("fail.sql") == true }?["detail"] as? String, "returned f")
        XCTAssertEqual(scratchLeft(scratch), [])

        // A failing query reports PostgreSQL's own error line, not just the caret under it.
        let broken = fx.file("broken.sql", Data("SELECT * FROM nosuchtable;\n".utf8))
        let r3 = try fx.run(["drill", plain, "--postgres", "--sql", broken, "--scratch-dir", scratch])
        XCTAssertEqual(r3.status, 1, r3.stderr)
        XCTAssertTrue(r3.out.contains("relation \"nosuchtable\" does not exist"), r3.out)

        // --dsn: into an existing empty database; a database that is not empty is refused
        // before anything is restored, and nothing is recorded for it.
        _ = server.sql("CREATE DATABASE drilltarget")
        let dsn = "host=\(server.dir) port=\(server.port) user=postgres dbname=drilltarget"
        let viaDSN = try fx.run(["drill", plain, "--postgres", "--dsn", dsn, "--sql", pass, "--json"])
        XCTAssertEqual(viaDSN.status, 0, viaDSN.stderr)
        XCTAssertEqual(server.sql("SELECT count(*) FROM accounts", database: "drilltarget"), "1000")
        let drillsBefore = try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/drills").count
        let again = try fx.run(["drill", plain, "--postgres", "--dsn", dsn])
        XCTAssertEqual(again.status, 2, again.stderr)
        XCTAssertTrue(again.stderr.contains("not empty"), again.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/drills").count, drillsBefore)

        // The text report names each check.
        let text = try fx.run(["drill", plain, "--postgres", "--scratch-dir", scratch])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.out.contains("PASSED") && text.out.contains("ok    rows in public.accounts: 1000"), text.out)

        // status shows each group's last drill: db.sql passed, db.dump failed.
        let status = try fx.run(["status", "--json"])
        let groups = try XCTUnwrap((try json(status))["groups"] as? [[String: Any]], status.out)
        let bySnapshotName = Dictionary(uniqueKeysWithValues: groups.compactMap { g in (g["name"] as? String).map { ($0, g) } })
        XCTAssertEqual((bySnapshotName["db.sql"]?["last_drill"] as? [String: Any])?["ok"] as? Bool, true, status.out)
        XCTAssertEqual((bySnapshotName["db.dump"]?["last_drill"] as? [String: Any])?["ok"] as? Bool, false, status.out)
    }

    /// A drill killed with SIGKILL cannot stop its scratch PostgreSQL; the next drill with the
    /// same scratch directory stops it and removes its files.
    func testScratchClusterOfAKilledDrillIsRemovedByTheNext() throws {
        _ = try PostgresServer.requireBinaries()
        let fx = Fixture()
        try fx.initRepo()
        _ = try fx.store("tiny.sql", from: fx.file("tiny.sql", Data("CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (2);\n".utf8)))
        let scratch = fx.dir + "/scratch"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        chmod(scratch, 0o755)
        let slow = fx.file("slow.sql", Data("SELECT pg_sleep(120) IS NOT NULL;\n".utf8))
        let started = try fx.start(["drill", "latest", "--postgres", "--sql", slow, "--scratch-dir", scratch])
        let drill = started.0
        // Wait until its server accepts connections, then give the drill time to reach the slow
        // check. initdb's single-user backends write a postmaster.pid too (with a negative
        // pid, no status line) and remove it, so its mere presence is not a running server.
        var cluster: String?, ready: pid_t?
        for _ in 0..<600 where ready == nil {
            usleep(100_000)
            cluster = scratchLeft(scratch).first { $0.hasPrefix("repo-drill-cluster-") }.map { scratch + "/" + $0 }
            ready = cluster.flatMap { Self.readyPostmaster($0 + "/data") }
        }
        let dir = try XCTUnwrap(cluster, "the drill started no scratch cluster")
        let server = try XCTUnwrap(ready, "the scratch server never became ready")
        usleep(1_500_000)
        kill(drill.processIdentifier, SIGKILL)
        drill.waitUntilExit()
        XCTAssertEqual(kill(server, 0), 0, "the killed drill's server is still running")

        let next = try fx.run(["drill", "latest", "--postgres", "--scratch-dir", scratch, "-v"])
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("stopped and removed \(dir)"), next.stderr)
        XCTAssertEqual(scratchLeft(scratch), [], "the killed drill's cluster and dump file are gone")
        XCTAssertTrue(Self.hasExited(server), "the server of the killed drill was stopped")
    }

    /// The postmaster's pid when `data`/postmaster.pid says it accepts connections: a positive
    /// pid on line 1 and "ready" on line 8 (PostgreSQL's pidfile.h, LOCK_FILE_LINE_PM_STATUS).
    static func readyPostmaster(_ data: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.count >= 8, let pid = pid_t(lines[0]), pid > 0, lines[7] == "ready" else { return nil }
        return pid
    }

    /// True once `pid` no longer runs: gone, or a zombie (the killed drill's server was
    /// reparented to pid 1, which reaps it in its own time), waiting up to 5 s for either.
    static func hasExited(_ pid: pid_t) -> Bool {
        for _ in 0..<50 {
            if kill(pid, 0) != 0 && errno == ESRCH { return true }
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
               let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z") {
                return true
            }
            usleep(100_000)
        }
        return false
    }

    func testDamagedSnapshotFailsItsDrillWith13() throws {
        let fx = Fixture()
        try fx.initRepo()
        let data = TestData.random(4 << 20)
        let id = try XCTUnwrap(try fx.store("blob", from: fx.file("d", data))["id"] as? String)
        XCTAssertEqual(try fx.run(["drill", id]).status, 0)
        let pack = try XCTUnwrap(fx.packFiles().max { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int ?? 0) ?? 0 < (try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int ?? 0) ?? 0 })
        var bytes = try Data(contentsOf: URL(fileURLWithPath: pack))
        bytes[bytes.count / 3] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: pack))
        let r = try fx.run(["drill", id, "--json"])
        XCTAssertEqual(r.status, 13, r.stderr)
        let o = try json(r)
        XCTAssertEqual(o["ok"] as? Bool, false)
        XCTAssertNotNil(o["recorded"] as? String, "a failed drill is recorded too")
        let status = try fx.run(["status", "--json"])
        let group = try XCTUnwrap(((try json(status))["groups"] as? [[String: Any]])?.first)
        XCTAssertEqual((group["last_drill"] as? [String: Any])?["ok"] as? Bool, false, status.out)
    }

    func testSnapshotOfSeveralStreamsIsDrilledByPath() throws {
        let fx = Fixture()
        try fx.initRepo()
        try fx.ok(["store", "--name", "multi", "--stream", "a.txt=seq 1 1000", "--stream", "b.txt=seq 1 10"])
        // Which stream is a usage error (exit 2), not a failed drill: nothing is recorded.
        let ambiguous = try fx.run(["drill", "latest"])
        XCTAssertEqual(ambiguous.status, 2, ambiguous.stderr)
        XCTAssertTrue(ambiguous.stderr.contains("repo drill"), "the hint names the command to run: \(ambiguous.stderr)")
        XCTAssertEqual(((try? FileManager.default.contentsOfDirectory(atPath: fx.repo + "/drills")) ?? []).count, 0, "nothing recorded")
        let one = try fx.run(["drill", "latest", "b.txt", "--json"])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertEqual((try json(one))["kind"] as? String, "stream")
        // --postgres on a tree is a usage error too.
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        _ = fx.file("src/f", Data("x".utf8))
        try fx.ok(["backup", src])
        XCTAssertEqual(try fx.run(["drill", "latest", "--postgres"]).status, 2)
    }

    func testTreeDrillVerifiesEveryFile() throws {
        let fx = Fixture()
        try fx.initRepo()
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src + "/sub", withIntermediateDirectories: true)
        for i in 0..<5 { _ = fx.file("src/sub/f\(i)", TestData.random(10_000 * (i + 1))) }
        try fx.ok(["backup", src])
        let r = try fx.run(["drill", "latest", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try json(r)
        XCTAssertEqual(o["kind"] as? String, "tree")
        XCTAssertEqual((o["checks"] as? [[String: Any]])?.first?["detail"] as? String, "5 of 5")
        // --sql without --postgres is a usage error.
        XCTAssertEqual(try fx.run(["drill", "latest", "--sql", fx.file("q.sql", Data("SELECT true;".utf8))]).status, 2)
    }
}
