import XCTest
import Foundation

/// `repo status` (README, "Monitoring"): groups, ages and `--max-age`, `--json`, the check
/// records `check` leaves (FORMAT.md §30), a read-only repository, and Prometheus metrics from
/// `--prometheus` and `--metrics-file`, read back with the `prometheus_client` package's parser.
final class StatusTests: XCTestCase {
    var fx: Fixture!

    override func setUpWithError() throws {
        fx = Fixture()
        try fx.initRepo()
    }

    override func tearDown() { fx = nil }

    /// RFC 3339 (UTC, whole seconds) for `--time`.
    static func rfc3339(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    func json(_ args: [String], status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let r = try fx.run(args + ["--json"])
        XCTAssertEqual(r.status, status, "repo \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], r.out, file: file, line: line)
    }

    func group(_ status: [String: Any], name: String) -> [String: Any]? {
        (status["groups"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    /// Parses exposition text with prometheus_client; one entry per sample: name, labels, value, family type.
    func parsePrometheus(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [(name: String, labels: [String: String], value: Double, type: String)] {
        let input = fx.file("metrics-\(UUID().uuidString).prom", Data(text.utf8))
        let script = fx.file("parse-\(UUID().uuidString).py", Data("""
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = []
            for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in fam.samples:
                    out.append({"name": s.name, "labels": s.labels, "value": s.value, "type": fam.type})
            print(json.dumps(out))
            """.utf8))
        let r = try fx.shell("python3 '\(script)' '\(input)' 2>&1")
        XCTAssertEqual(r.status, 0, "prometheus_client could not parse the metrics (pip install prometheus_client; scripts/install-deps.sh):\n\(r.out)\n\(text)", file: file, line: line)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]], r.out, file: file, line: line)
        return list.map { ($0["name"] as! String, $0["labels"] as! [String: String], ($0["value"] as! NSNumber).doubleValue, $0["type"] as! String) }
    }

    /// A repository whose `db.sql` is two and three days old, `fresh.sql` and a tree are new:
    /// plain status exits 0; `--max-age 26h` exits 1 with exactly one line, for db.sql.
    /// A limit on a group that has no snapshot (a typo in --name, a job that never ran) is
    /// late too: a monitor must not read it as fine.
    func testMaxAgeOnAGroupWithoutSnapshotsIsLate() throws {
        try fx.store("db.sql", from: fx.file("a", TestData.random(1000)))
        XCTAssertEqual(try fx.run(["status", "--name", "db.sql", "--max-age", "1h"]).status, 0)
        let missing = try fx.run(["status", "--name", "db.sq", "--max-age", "1h"])
        XCTAssertEqual(missing.status, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("late: no snapshot matches name db.sq"), missing.stderr)
        XCTAssertEqual(try fx.run(["status", "--name", "db.sq"]).status, 0, "without a limit nothing is late")
    }

    func testMaxAgeNamesEachLateGroupAndExits1() throws {
        let old = Date().addingTimeInterval(-3 * 86400), older = Date().addingTimeInterval(-2 * 86400)
        try fx.store("db.sql", from: fx.file("a", TestData.random(100_000)), extra: ["--time", Self.rfc3339(old)])
        try fx.store("db.sql", from: fx.file("b", TestData.random(150_000)), extra: ["--time", Self.rfc3339(older)])
        try fx.store("fresh.sql", from: fx.file("c", TestData.random(1000)))
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: src + "/f", contents: Data("x".utf8))
        try fx.ok(["backup", src])

        let plain = try fx.run(["status"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertTrue(plain.out.contains("db.sql") && plain.out.contains("fresh.sql") && plain.out.contains(src), plain.out)
        XCTAssertTrue(plain.out.contains("drill      never"), plain.out)
        XCTAssertFalse(plain.out.contains("LATE"), plain.out)

        let late = try fx.run(["status", "--max-age", "26h"])
        XCTAssertEqual(late.status, 1, late.stderr)
        let lines = late.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, late.stderr)
        XCTAssertTrue(lines.first?.contains("late:") == true && lines.first?.contains("db.sql") == true, late.stderr)
        XCTAssertTrue(late.out.contains("LATE"), late.out)

        XCTAssertEqual(try fx.run(["status", "--max-age", "3d"]).status, 0, "the newest db.sql is 2 days old")

        // The limit stored in the repository's default policy applies without the flag; the flag wins.
        try fx.ok(["policy", "set", "--max-age", "26h"])
        let stored = try fx.run(["status"])
        XCTAssertEqual(stored.status, 1, stored.stderr)
        XCTAssertEqual(stored.stderr.split(separator: "\n").count, 1, stored.stderr)
        XCTAssertEqual(try fx.run(["status", "--max-age", "3d"]).status, 0)
        XCTAssertEqual(try fx.run(["policy", "set", "--max-age", "26m"]).status, 2, "m is ambiguous")
        XCTAssertEqual(try fx.run(["status", "--max-age", "1d", "--name", "fresh.sql"]).status, 0, "filters choose the groups")
        let ambiguous = try fx.run(["status", "--max-age", "26m"])
        XCTAssertEqual(ambiguous.status, 2)
        XCTAssertTrue(ambiguous.stderr.contains("min"), ambiguous.stderr)
    }

    /// `--json`: every documented key, with values that follow from the snapshots.
    func testJSONFields() throws {
        // 10:00 and 10:10 UTC of the day two days ago: one calendar day whatever the time now.
        let day = ((Date().timeIntervalSince1970 - 2 * 86400) / 86400).rounded(.down) * 86400
        let older = Date(timeIntervalSince1970: day + 36000), newer = Date(timeIntervalSince1970: day + 36600)
        try fx.store("db.sql", from: fx.file("a", TestData.random(100_000)), extra: ["--time", Self.rfc3339(older)])
        let last = try fx.store("db.sql", from: fx.file("b", TestData.random(150_000)), extra: ["--time", Self.rfc3339(newer)])

        let s = try json(["status", "--max-age", "26h"], status: 1)
        for key in ["now", "max_age_seconds", "max_wal_age_seconds", "groups", "wal", "wal_problems", "check", "damaged_snapshots", "late"] {
            XCTAssertTrue(s.keys.contains(key), "missing \(key): \(s.keys)")
        }
        XCTAssertEqual(s["max_age_seconds"] as? Double, 26 * 3600)
        XCTAssertEqual((s["late"] as? [String])?.count, 1)
        let g = try XCTUnwrap(group(s, name: "db.sql"), "\(s)")
        for key in ["kind", "host", "name", "paths", "snapshots", "latest", "size_trend", "size_change", "tiers", "policy_keeps",
                    "policy_forgets", "recovery_point", "recovery_point_age_seconds", "last_drill", "late"] {
            XCTAssertTrue(g.keys.contains(key), "missing group key \(key): \(g.keys)")
        }
        XCTAssertEqual(g["kind"] as? String, "stream")
        XCTAssertTrue(g["paths"] is NSNull && g["last_drill"] is NSNull, "absent values are null: \(g)")
        XCTAssertEqual(g["snapshots"] as? Int, 2)
        XCTAssertEqual(g["late"] as? Bool, true)
        let latest = try XCTUnwrap(g["latest"] as? [String: Any])
        XCTAssertEqual(latest["id"] as? String, last["id"] as? String)
        XCTAssertEqual(latest["size"] as? Int, 150_000)
        let age = try XCTUnwrap(latest["age_seconds"] as? Double)
        XCTAssertEqual(age, Date().timeIntervalSince(newer), accuracy: 120)
        XCTAssertEqual(g["recovery_point_age_seconds"] as! Double, age, accuracy: 1)
        XCTAssertEqual((g["size_trend"] as? [[String: Any]])?.map { $0["size"] as? Int }, [100_000, 150_000])
        XCTAssertEqual(try XCTUnwrap(g["size_change"] as? Double), 0.5, accuracy: 1e-9)
        let tiers = try XCTUnwrap(g["tiers"] as? [String: Int])
        XCTAssertEqual(tiers, ["hot": 2, "warm": 0, "cold": 0, "expired": 0], "both younger than the default hot tier (7d)")
        XCTAssertEqual(g["policy_keeps"] as? Int, 2)

        // The stored policy is the one status applies: with hot 1d both are warm, and only the
        // newest of the day stays.
        try fx.ok(["policy", "set", "--keep-hot", "1d", "--tz", "UTC"])
        let g2 = try XCTUnwrap(group(try json(["status"]), name: "db.sql"))
        XCTAssertEqual(g2["tiers"] as? [String: Int], ["hot": 0, "warm": 2, "cold": 0, "expired": 0])
        XCTAssertEqual(g2["policy_forgets"] as? Int, 1, "\(g2)")

        let check = try XCTUnwrap(s["check"] as? [String: Any])
        XCTAssertTrue(check["last"] is NSNull && check["last_ok"] is NSNull && check["last_full_read"] is NSNull, "\(check)")
        XCTAssertEqual(check["records"] as? Int, 0)
    }

    private func records() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: fx.repo + "/checks")) ?? []).filter { !$0.hasPrefix(".") }
    }

    /// `check` leaves a sealed record (FORMAT.md §30) that status shows: the last check, the
    /// last that passed, the last full read and the data covered; a failing check is shown as
    /// failing while the last passing one stays; prune keeps the records; their number is bounded.
    func testCheckIsRecordedAndShown() throws {
        try fx.store("db.sql", from: fx.file("a", TestData.random(300_000)))
        try fx.ok(["check"])
        XCTAssertEqual(records().count, 1)
        var c = try XCTUnwrap(try json(["status"])["check"] as? [String: Any])
        let last = try XCTUnwrap(c["last"] as? [String: Any], "\(c)")
        XCTAssertEqual(last["ok"] as? Bool, true)
        XCTAssertEqual(last["read_data"] as? String, "none")
        XCTAssertTrue(c["last_full_read"] is NSNull)
        XCTAssertEqual(c["covered_bytes"] as? Int, 0)

        try fx.ok(["check", "--read-data"])
        c = try XCTUnwrap(try json(["status"])["check"] as? [String: Any])
        XCTAssertEqual((c["last_full_read"] as? [String: Any])?["read_data"] as? String, "all", "\(c)")
        XCTAssertGreaterThan(c["pack_bytes"] as! Int, 0)
        XCTAssertEqual(c["covered_bytes"] as? Int, c["pack_bytes"] as? Int, "a full read covers every pack: \(c)")
        XCTAssertEqual(c["coverage"] as? Double, 1)
        let text = try fx.ok(["status"]).out
        XCTAssertTrue(text.contains("read all data") && text.contains("100.0%"), text)

        // A new pack after the full read is not covered by it.
        try fx.store("other.sql", from: fx.file("b", TestData.random(300_000)))
        c = try XCTUnwrap(try json(["status"])["check"] as? [String: Any])
        XCTAssertLessThan(c["covered_bytes"] as! Int, c["pack_bytes"] as! Int, "\(c)")

        // Many checks: the records stay bounded, and the last full read is kept however many
        // checks came after it.
        for _ in 0..<12 { try fx.ok(["check"]) }
        XCTAssertLessThanOrEqual(records().count, 11, "newest 10 per host plus the last full read: \(records())")
        c = try XCTUnwrap(try json(["status"])["check"] as? [String: Any])
        XCTAssertFalse(c["last_full_read"] is NSNull, "the last full read must survive trimming: \(c)")

        // Prune leaves the records alone.
        let before = Set(records())
        try fx.ok(["prune", "--safety-margin", "0"])
        XCTAssertEqual(Set(records()), before)

        // A damaged pack: the check fails (13) and is recorded as failing; the last passing
        // one is still shown.
        let pack = try XCTUnwrap(fx.packFiles().first)
        let h = try XCTUnwrap(FileHandle(forUpdatingAtPath: pack))
        h.seek(toFileOffset: 100)
        h.write(Data(repeating: 0xAA, count: 64))
        try h.close()
        XCTAssertEqual(try fx.run(["check", "--read-data"]).status, 13)
        c = try XCTUnwrap(try json(["status"])["check"] as? [String: Any])
        let failed = try XCTUnwrap(c["last"] as? [String: Any])
        XCTAssertEqual(failed["ok"] as? Bool, false)
        XCTAssertGreaterThan(failed["errors"] as! Int, 0)
        XCTAssertEqual((c["last_ok"] as? [String: Any])?["ok"] as? Bool, true, "\(c)")
        XCTAssertTrue(try fx.ok(["status"]).out.contains("ERRORS"))
    }

    /// A host that may not delete keeps its new record and leaves the trimming to the next
    /// writer: an immutable record (chattr +i, so even root cannot delete it) stands in for an
    /// append-only host; the check still passes, and the next check that may delete trims.
    func testCheckRecordWhoseTrimmingFailsIsKept() throws {
        try fx.store("db.sql", from: fx.file("a", TestData.random(1000)))
        for _ in 0..<10 { try fx.ok(["check"]) }
        XCTAssertEqual(records().count, 10)
        let oldest = try XCTUnwrap(records().min { a, b in
            let ta = (try? FileManager.default.attributesOfItem(atPath: fx.repo + "/checks/" + a)[.modificationDate] as? Date) ?? nil
            let tb = (try? FileManager.default.attributesOfItem(atPath: fx.repo + "/checks/" + b)[.modificationDate] as? Date) ?? nil
            return (ta ?? .distantFuture) < (tb ?? .distantFuture)
        })
        let path = fx.repo + "/checks/" + oldest
        XCTAssertEqual(quietShell("chattr +i '\(path)'"), 0, "this test needs chattr on an ext4 (or similar) /tmp")
        addTeardownBlock { quietShell("chattr -i '\(path)'") }
        let r = try fx.run(["check", "-v"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("recorded the check") && r.stderr.contains("left for another host"), r.stderr)
        XCTAssertEqual(records().count, 11, "the new record is kept, the oldest could not go")
        XCTAssertEqual(quietShell("chattr -i '\(path)'"), 0)
        try fx.ok(["check"])
        XCTAssertEqual(records().count, 10)
        XCTAssertFalse(records().contains(oldest))
    }

    /// A drill's record (FORMAT.md §30) is its group's `last_drill`, in text, JSON and metrics;
    /// the drill's own metrics file has it too. Other groups still say never.
    func testDrillIsShownForItsGroup() throws {
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        _ = fx.file("src/a", TestData.random(20_000))
        try fx.ok(["backup", src])
        try fx.store("db.sql", from: fx.file("d", TestData.random(1000)))
        let path = fx.dir + "/drill.prom"
        try fx.ok(["drill", "latest", "--name", "db.sql", "--metrics-file", path])
        let s = try json(["status"])
        let drilled = try XCTUnwrap((s["groups"] as? [[String: Any]])?.first { $0["name"] as? String == "db.sql" })
        let drill = try XCTUnwrap(drilled["last_drill"] as? [String: Any], "\(drilled)")
        XCTAssertEqual(drill["ok"] as? Bool, true)
        XCTAssertEqual(drill["failed_checks"] as? Int, 0)
        let tree = try XCTUnwrap((s["groups"] as? [[String: Any]])?.first { $0["kind"] as? String == "tree" })
        XCTAssertTrue(tree["last_drill"] is NSNull)
        XCTAssertTrue(try fx.ok(["status", "--name", "db.sql"]).out.contains("passed, "))

        let own = try parsePrometheus(try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(own.first { $0.name == "repo_drill_last_success" && $0.labels["name"] == "db.sql" }?.value, 1)
        let shown = try parsePrometheus(try fx.ok(["status", "--prometheus"]).out)
        XCTAssertEqual(shown.first { $0.name == "repo_drill_last_success" && $0.labels["name"] == "db.sql" }?.value, 1)
        XCTAssertNil(shown.first { $0.name == "repo_drill_last_success" && $0.labels["name"] == "" }, "the tree was never drilled")
    }

    /// `--read-data-subset` checks add up: each records the packs it read, and the coverage
    /// status reports is the union over the passing records, never more than what was read.
    func testSubsetChecksAddUp() throws {
        for i in 0..<3 { try fx.store("s\(i).sql", from: fx.file("in\(i)", TestData.random(200_000))) }
        XCTAssertGreaterThanOrEqual(fx.packFiles().count, 4)
        try fx.ok(["check", "--read-data-subset", "30%"])
        var c = try XCTUnwrap(try json(["status"])["check"] as? [String: Any])
        XCTAssertEqual((c["last"] as? [String: Any])?["read_data"] as? String, "subset")
        let first = c["covered_bytes"] as! Int, total = c["pack_bytes"] as! Int
        XCTAssertGreaterThan(first, 0, "\(c)")
        XCTAssertLessThan(first, total, "30% of the packs is not all of them: \(c)")
        let since = c["covered_since"] as? String
        XCTAssertNotNil(since)
        var last = first
        for _ in 0..<5 {
            try fx.ok(["check", "--read-data-subset", "30%"])
            c = try XCTUnwrap(try json(["status"])["check"] as? [String: Any])
            XCTAssertGreaterThanOrEqual(c["covered_bytes"] as! Int, last, "coverage only grows while records are kept: \(c)")
            last = c["covered_bytes"] as! Int
        }
        XCTAssertEqual(c["covered_since"] as? String, since, "coverage counts from the oldest subset check kept")
        XCTAssertTrue(c["last_full_read"] is NSNull, "subsets are not a full read")
    }

    /// A command stopped by SIGTERM still leaves its metrics file: success 0, exit code 143.
    func testMetricsFileOnASignal() throws {
        let path = fx.dir + "/repo.prom"
        let started = try fx.start(["store", "--name", "slow", "--metrics-file", path], stdinPath: "/dev/zero")
        let deadline = Date().addingTimeInterval(30)
        while ((try? FileManager.default.contentsOfDirectory(atPath: fx.repo + "/locks")) ?? []).filter({ !$0.hasPrefix(".") }).isEmpty && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        Thread.sleep(forTimeInterval: 0.5)
        kill(started.0.processIdentifier, SIGTERM)
        let r = fx.collect(started)
        XCTAssertEqual(r.status, 143, r.stderr)
        let samples = try parsePrometheus(try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(samples.first { $0.name == "repo_command_success" }?.value, 0)
        XCTAssertEqual(samples.first { $0.name == "repo_command_exit_code" }?.value, 143)
        XCTAssertEqual(samples.first { $0.name == "repo_command_success" }?.labels["command"], "store")
    }

    /// From a host that can only read (a read-only bind mount, as in ReadOnlyTests; needs
    /// root): status works and its exit codes hold, and check passes without recording
    /// anything (saying so only with -v).
    func testReadOnlyRepository() throws {
        try fx.store("db.sql", from: fx.file("a", TestData.random(100_000)), extra: ["--time", Self.rfc3339(Date().addingTimeInterval(-2 * 86400))])
        try fx.ok(["check"])
        let ro = fx.dir + "/ro"
        try mountReadOnly(fx.repo, at: ro)
        let env = ["REPO_REPOSITORY": ro]

        let status = try fx.run(["status"], env: env)
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertEqual(status.stderr, "")
        XCTAssertTrue(status.out.contains("db.sql"), status.out)
        let late = try fx.run(["status", "--max-age", "26h", "--no-lock"], env: env)
        XCTAssertEqual(late.status, 1, late.stderr)
        XCTAssertTrue(late.stderr.contains("db.sql"), late.stderr)

        let check = try fx.run(["check"], env: env)
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertEqual(check.stderr, "", "nothing to say without -v")
        let verbose = try fx.run(["check", "-v"], env: env)
        XCTAssertEqual(verbose.status, 0, verbose.stderr)
        XCTAssertTrue(verbose.stderr.contains("not recorded"), verbose.stderr)
        let noLock = try fx.run(["check", "--no-lock"], env: env)
        XCTAssertEqual(noLock.status, 0, "a refused record write must not fail the check: \(noLock.stderr)")
        XCTAssertEqual(records().count, 1, "only the check made before the repository became read-only")
        let shown = try fx.run(["status", "--json"], env: env)
        let c = try XCTUnwrap((try JSONSerialization.jsonObject(with: shown.stdout) as? [String: Any])?["check"] as? [String: Any])
        XCTAssertEqual(c["records"] as? Int, 1)
    }

    /// `--prometheus`: valid exposition text whose samples carry the group's labels (escaped
    /// where needed) and the values status computed.
    func testPrometheusOutput() throws {
        let when = Date().addingTimeInterval(-5 * 3600)
        let weird = "we\"ird\\name.sql"
        try fx.store("db.sql", from: fx.file("a", TestData.random(123_456)), extra: ["--time", Self.rfc3339(when)])
        try fx.store(weird, from: fx.file("b", TestData.random(1000)))
        try fx.ok(["check", "--read-data"])
        let r = try fx.run(["status", "--prometheus", "--max-age", "1h"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.out.contains("we\\\"ird\\\\name.sql"), "label values are escaped: \(r.out)")
        let samples = try parsePrometheus(r.out)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }?.value
        }
        let ts = try XCTUnwrap(value("repo_snapshot_last_timestamp_seconds", ["name": "db.sql"]))
        XCTAssertEqual(ts, when.timeIntervalSince1970.rounded(.down), accuracy: 1)
        XCTAssertEqual(value("repo_snapshot_last_size_bytes", ["name": "db.sql"]), 123_456)
        XCTAssertNotNil(value("repo_snapshot_last_size_bytes", ["name": weird]), "the parser reads the escaped label back: \(samples.map(\.labels))")
        XCTAssertEqual(value("repo_snapshots", ["name": "db.sql", "tier": "hot"]), 1)
        XCTAssertEqual(value("repo_group_late", ["name": "db.sql"]), 1)
        XCTAssertEqual(value("repo_group_late", ["name": weird]), 0)
        XCTAssertEqual(value("repo_status_late"), 1)
        XCTAssertEqual(value("repo_check_last_errors"), 0)
        XCTAssertEqual(value("repo_check_read_data_coverage_ratio"), 1)
        XCTAssertNotNil(value("repo_check_last_full_read_timestamp_seconds"))
        XCTAssertEqual(value("repo_recovery_point_age_seconds", ["name": "db.sql"]) ?? 0, 5 * 3600, accuracy: 120)
        XCTAssertTrue(samples.allSatisfy { $0.type == "gauge" || $0.type == "counter" })
    }

    /// `--metrics-file`: written atomically for a command that succeeds, for one that fails
    /// (success 0; the last success time carried over), and for a usage error; a file that
    /// cannot be written is a warning that leaves the exit code alone.
    func testMetricsFile() throws {
        let dir = fx.dir + "/textfile"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/repo.prom"
        let data = TestData.random(200_000)
        let stored = try fx.ok(["store", "--name", "db.sql", "--metrics-file", path, "--json"], stdinPath: fx.file("a", data))
        let out = try JSONSerialization.jsonObject(with: stored.stdout) as! [String: Any]
        var samples = try parsePrometheus(try String(contentsOfFile: path, encoding: .utf8))
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }?.value
        }
        XCTAssertEqual(value("repo_command_success", ["command": "store"]), 1)
        XCTAssertEqual(value("repo_command_exit_code", ["command": "store"]), 0)
        XCTAssertGreaterThan(try XCTUnwrap(value("repo_command_duration_seconds", ["command": "store"])), 0)
        let success = try XCTUnwrap(value("repo_command_last_success_timestamp_seconds", ["command": "store"]))
        XCTAssertEqual(success, Date().timeIntervalSince1970, accuracy: 60)
        XCTAssertEqual(value("repo_store_bytes_total", ["name": "db.sql"]), 200_000)
        XCTAssertEqual(value("repo_store_added_bytes_total", ["name": "db.sql"]), Double(out["new_bytes"] as! Int))
        XCTAssertEqual(samples.first { $0.name == "repo_store_bytes_total" }?.type, "counter")
        XCTAssertTrue(samples.allSatisfy { $0.labels["metrics_file"] == "repo" }, "every sample names its file: \(samples)")

        // A failing store: the file says so, and still knows when the store last succeeded.
        Thread.sleep(forTimeInterval: 1.1)
        let failed = try fx.run(["store", "--name", "db.sql", "--metrics-file", path, "--", "false"])
        XCTAssertEqual(failed.status, 1, failed.stderr)
        samples = try parsePrometheus(try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(value("repo_command_success", ["command": "store"]), 0)
        XCTAssertEqual(value("repo_command_exit_code", ["command": "store"]), 1)
        XCTAssertEqual(value("repo_command_last_success_timestamp_seconds", ["command": "store"]), success)
        XCTAssertNil(value("repo_store_bytes_total"), "nothing was stored")

        // Other commands and a usage error.
        XCTAssertEqual(try fx.run(["dump", "0123abcd", "--metrics-file", path]).status, 1)
        samples = try parsePrometheus(try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(value("repo_command_success", ["command": "dump"]), 0)
        XCTAssertEqual(try fx.run(["status", "--max-age", "soon", "--metrics-file", path]).status, 2)
        samples = try parsePrometheus(try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(value("repo_command_exit_code", ["command": "status"]), 2)
        try fx.ok(["key", "list", "--metrics-file", path])
        samples = try parsePrometheus(try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(value("repo_command_success", ["command": "key list"]), 1)

        // status writes its metrics into the file too.
        try fx.ok(["status", "--metrics-file", path])
        samples = try parsePrometheus(try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(value("repo_snapshot_last_size_bytes", ["name": "db.sql"]), 200_000)
        XCTAssertEqual(value("repo_command_success", ["command": "status"]), 1)

        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["repo.prom"], "no temporary file is left")
        let unwritable = try fx.run(["snapshots", "--metrics-file", fx.dir + "/no/such/dir/repo.prom"])
        XCTAssertEqual(unwritable.status, 0, unwritable.stderr)
        XCTAssertTrue(unwritable.stderr.contains("cannot write the metrics file"), unwritable.stderr)
    }

    /// A WAL archive's timelines are groups too: the archive lag, and no recovery point while
    /// no base backup can use the WAL (a late line for the current timeline under --max-age).
    func testWALTimelines() throws {
        let dir = fx.dir + "/pg_wal"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for n: UInt64 in 1...2 {
            let path = dir + "/" + WALArchiveTests.name(n)
            FileManager.default.createFile(atPath: path, contents: WALArchiveTests.segment(n))
            try fx.ok(["wal-push", path])
        }
        let s = try json(["status", "--max-age", "1d"], status: 1)
        let wal = try XCTUnwrap(s["wal"] as? [[String: Any]])
        XCTAssertEqual(wal.count, 1)
        XCTAssertEqual(wal.first?["timeline"] as? Int, 1)
        XCTAssertEqual(wal.first?["segments"] as? Int, 2)
        XCTAssertEqual(wal.first?["last_segment"] as? String, WALArchiveTests.name(2))
        XCTAssertEqual(try XCTUnwrap(wal.first?["archive_lag_seconds"] as? Double), 0, accuracy: 120)
        XCTAssertTrue(wal.first?["recovery_point"] is NSNull, "no base backup: nothing is restorable")
        XCTAssertEqual(wal.first?["late"] as? Bool, true)
        XCTAssertTrue((s["late"] as? [String])?.first?.contains("WAL timeline 1") == true, "\(s)")
        XCTAssertFalse((s["wal_problems"] as? [String] ?? []).isEmpty)

        let samples = try parsePrometheus(try fx.ok(["status", "--prometheus"]).out)
        let archived = try XCTUnwrap(samples.first { $0.name == "repo_wal_last_archived_timestamp_seconds" && $0.labels["timeline"] == "1" })
        XCTAssertEqual(archived.value, Date().timeIntervalSince1970, accuracy: 120)
        XCTAssertNotNil(samples.first { $0.name == "repo_wal_archive_lag_seconds" })
    }
}
