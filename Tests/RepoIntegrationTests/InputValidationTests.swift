import XCTest
import Foundation

/// What the command line accepts: times, names, tags, repository locations and configs, and
/// the keys of JSON output. Every rejected value exits 2 with a message naming it.
final class InputValidationTests: XCTestCase {
    private func json(_ r: CLIResult) throws -> Any { try JSONSerialization.jsonObject(with: r.stdout) }

    private func expectUsage(_ fx: Fixture, _ args: [String], mentions: [String], stdinPath: String? = nil,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try fx.run(args, stdinPath: stdinPath ?? fx.file("usage-in", Data("x\n".utf8)))
        XCTAssertEqual(r.status, 2, "repo \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        for m in mentions {
            XCTAssertTrue(r.stderr.contains(m), "repo \(args.joined(separator: " ")): \(r.stderr) should mention \(m)", file: file, line: line)
        }
    }

    // MARK: times

    /// The tracker's example: a time of day was dropped (filed at midnight), so `dump latest`
    /// picked any of several same-day dumps.
    func testSameDayDumpsKeepTheirTimeOfDay() throws {
        let fx = Fixture()
        try fx.initRepo()
        let utc = ["TZ": "UTC"]
        for (t, text) in [("2024-05-10 06:00:00", "morning"), ("2024-05-10 18:00:00", "evening"), ("2024-05-10 12:00", "noon")] {
            let r = try fx.run(["store", "--name", "db.sql", "--time", t], stdinPath: fx.file(text, Data(text.utf8)), env: utc)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let times = try fx.snapshots().map { ($0["time"] as! String).prefix(19) }
        XCTAssertEqual(times, ["2024-05-10T06:00:00", "2024-05-10T12:00:00", "2024-05-10T18:00:00"])
        XCTAssertEqual(try fx.ok(["dump", "latest", "--name", "db.sql"]).out, "evening")
    }

    func testInvalidTimesExitTwoNamingTheValue() throws {
        let fx = Fixture()
        try fx.initRepo()
        let id = try fx.store("db.sql", from: fx.file("in", Data("x".utf8)))["id"] as! String
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        for bad in ["2023-02-29", "2024-04-31", "2024-05-10T25:00", "2024-05-10T23:60", "2024-05-10T12:00:00+25:00",
                    "2024-05-10 18:00:00 UTC", "tomorrow", "2024-5-1"] {
            try expectUsage(fx, ["store", "--name", "t", "--time", bad], mentions: ["--time", "\"\(bad)\""])
            try expectUsage(fx, ["backup", src, "--time", bad], mentions: ["--time", "\"\(bad)\""])
            try expectUsage(fx, ["forget", "--dry-run", "--now", bad], mentions: ["--now", "\"\(bad)\""])
            try expectUsage(fx, ["pin", id, "--until", bad], mentions: ["--until", "\"\(bad)\""])
        }
        try expectUsage(fx, ["store", "--name", "t", "--time", "2024-05-10 18:00", "--tz", "Mars/Olympus"], mentions: ["Mars/Olympus"])
        XCTAssertEqual(try fx.snapshots().count, 1, "nothing was stored")
        XCTAssertEqual((try json(try fx.ok(["pin", "--json"])) as? [Any])?.count, 0, "nothing was pinned")
    }

    /// Times without an offset are read in --tz, else in the local zone (TZ); the same parser
    /// serves --now and pin --until, so a hold ends at the hour given.
    func testTimesWithoutOffsetUseTzOrTheLocalZone() throws {
        let fx = Fixture()
        try fx.initRepo()
        let input = fx.file("in", Data("x".utf8))
        var r = try fx.run(["store", "--name", "a", "--time", "2024-05-10 20:00", "--tz", "Europe/Berlin"], stdinPath: input)
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try fx.run(["store", "--name", "b", "--time", "2024-05-10T14:00:00"], stdinPath: input, env: ["TZ": "America/New_York"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try fx.run(["store", "--name", "c", "--time", "2024-05-10T18:00:00.250+00:00"], stdinPath: input, env: ["TZ": "Asia/Tokyo"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let snaps = try fx.snapshots()
        XCTAssertEqual(snaps.map { $0["time"] as! String },
                       ["2024-05-10T18:00:00.000Z", "2024-05-10T18:00:00.000Z", "2024-05-10T18:00:00.250Z"])

        // pin --until keeps the hour (it used to end the hold at midnight, 18 h early).
        let id = snaps[0]["id"] as! String
        r = try fx.run(["pin", id, "--until", "2030-01-15 18:00", "--json"], env: ["TZ": "UTC"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual((try json(r) as? [String: Any])?["until"] as? String, "2030-01-15T18:00:00.000Z")
        r = try fx.run(["pin", id, "--until", "2030-01-15 18:00", "--tz", "Europe/Berlin", "--json"])
        XCTAssertEqual((try json(r) as? [String: Any])?["until"] as? String, "2030-01-15T17:00:00.000Z")

        // forget --now without an offset is read in the policy's zone.
        r = try fx.run(["forget", "--dry-run", "--json", "--now", "2026-01-01 00:00", "--tz", "Europe/Berlin"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual((try json(r) as? [String: Any])?["now"] as? String, "2025-12-31T23:00:00.000Z")
    }

    func testHelpStatesTheGrammarAndTheZone() throws {
        let fx = Fixture()
        for cmd in [["store"], ["backup"], ["pin"], ["forget"]] {
            let r = try fx.run(cmd + ["--help"])
            let text = (r.out + r.stderr).replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            XCTAssertTrue(text.contains("RFC 3339"), "\(cmd): \(text)")
            XCTAssertTrue(text.contains("YYYY-MM-DD HH:MM[:SS[.frac]]"), "\(cmd): \(text)")
            XCTAssertTrue(text.contains("local zone"), "\(cmd): \(text)")
        }
    }

    // MARK: names and tags

    /// Stream names become file names (restore, mount); every label is one table cell.
    func testNamesTagsAndHostsAreValidatedByEveryCommand() throws {
        let fx = Fixture()
        try fx.initRepo()
        let long = String(repeating: "n", count: 5000)
        let badStreamNames: [(String, String)] = [
            ("", "empty"), (".", "file name"), ("..", "file name"), ("a/b", "\"/\""), ("db\nsql", "control"),
            ("tab\there", "control"), (long, "5000 bytes"), (String(repeating: "x", count: 256), "256 bytes"),
        ]
        for (bad, rule) in badStreamNames {
            try expectUsage(fx, ["store", "--name", bad], mentions: ["--name", "stream name", rule])
            try expectUsage(fx, ["store", "--stream", "\(bad)=echo x"], mentions: bad.isEmpty ? ["--stream", "NAME=COMMAND"] : ["--stream", rule])
        }
        // A snapshot of several streams may be named with a slash; a stream may not.
        try expectUsage(fx, ["store", "--name", "a\nb", "--stream", "x=echo x"], mentions: ["snapshot name", "control"])
        for args in [["store", "--name", "db.sql", "--tag", "a,b"], ["backup", fx.dir, "--tag", "a,b"],
                     ["forget", "--dry-run", "--keep-tag", "a,b"], ["snapshots", "--tag", "a,b"], ["pin", "latest", "--tag", "a,b"]] {
            try expectUsage(fx, args, mentions: ["tag \"a,b\"", "\",\""])
        }
        try expectUsage(fx, ["store", "--name", "db.sql", "--tag", "night\nly"], mentions: ["tag", "control"])
        let policy = fx.file("policy.yaml", Data("keep-tag: [\"release\\n\"]\n".utf8))
        try expectUsage(fx, ["forget", "--dry-run", "--policy", policy], mentions: ["keep-tag", "control"])
        try expectUsage(fx, ["store", "--name", "db.sql", "--host", "db1\n"], mentions: ["host", "control"])
        try expectUsage(fx, ["backup", fx.dir, "--host", ""], mentions: ["host", "empty"])
        XCTAssertEqual(try fx.snapshots().count, 0, "nothing was stored")

        // Valid names of every kind still work, and the table has one line per snapshot.
        let input = fx.file("in", Data("x".utf8))
        _ = try fx.store("données du 10.05.sql", from: input, extra: ["--tag", "nightly", "--tag", "prod"])
        _ = try fx.store(String(repeating: "y", count: 255), from: input)
        try fx.ok(["store", "--name", "pg/nightly", "--stream", "a.sql=echo a", "--stream", "b.sql=echo b"])
        let table = try fx.ok(["snapshots"]).out.split(separator: "\n")
        XCTAssertEqual(table.count, 2 + 3 + 1, table.joined(separator: "\n"))
        XCTAssertTrue(table.contains { $0.contains("nightly,prod") })
    }

    // MARK: repository locations and config values

    /// Another tool's repository, or a directory without a config, is "no repository" (exit 10)
    /// with what was found; it used to be exit 13 ("malformed config") for restic.
    func testOtherToolsRepositoriesExitTen() throws {
        let fx = Fixture()
        let fm = FileManager.default
        let restic = fx.dir + "/restic"
        for d in ["keys", "data", "snapshots", "index", "locks"] {
            try fm.createDirectory(atPath: restic + "/" + d, withIntermediateDirectories: true)
        }
        // restic's config is encrypted: IV, ciphertext, MAC.
        fm.createFile(atPath: restic + "/config", contents: TestData.random(155))
        let borg = fx.dir + "/borg"
        try fm.createDirectory(atPath: borg + "/data/0", withIntermediateDirectories: true)
        fm.createFile(atPath: borg + "/config", contents: Data("[repository]\nversion = 1\nsegments_per_dir = 1000\n".utf8))
        fm.createFile(atPath: borg + "/README", contents: Data("This is a Borg Backup repository.\nSee https://borgbackup.readthedocs.io/\n".utf8))
        let other = fx.dir + "/other"
        try fm.createDirectory(atPath: other, withIntermediateDirectories: true)
        fm.createFile(atPath: other + "/config", contents: Data("{\"name\": \"something else\"}".utf8))
        let empty = fx.dir + "/empty"
        try fm.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let cases: [(String, String)] = [(restic, "restic repository"), (borg, "Borg repository"),
                                         (other, "not a repo config"), (empty, "no config file"),
                                         (fx.dir + "/missing", "does not exist")]
        for (path, found) in cases {
            for cmd in [["snapshots"], ["check"], ["stats"]] {
                let r = try fx.run(cmd + ["--repo", path])
                XCTAssertEqual(r.status, 10, "\(cmd) on \(path): \(r.stderr)")
                XCTAssertTrue(r.stderr.contains(found), "\(path): \(r.stderr)")
            }
        }
        let r = try fx.run(["init", "--repo", restic])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("restic repository"), r.stderr)
    }

    /// Config values out of range are a clear error naming the field (exit 13), not a crash
    /// or silently something else (an unknown compression used to mean none).
    func testConfigValuesOutOfRangeAreRejected() throws {
        let fx = Fixture()
        try fx.initRepo()
        let path = fx.repo + "/config"
        let original = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        let cases: [(String, Any, String)] = [
            ("packSize", 5, "packSize 5"), ("packSize", 0, "packSize 0"), ("packSize", -1, "packSize -1"),
            ("packSize", 2 << 30, "packSize 2147483648"), ("compression", "zstd:42", "zstd:42"),
            ("compression", "lz4", "\"lz4\""), ("compression", "zstd:", "\"zstd:\""), ("compression", "", "compression \"\""),
            ("chunker", ["min": 1, "avg": 3000, "max": 2], "chunker"),
            ("chunker", ["min": 65536, "avg": 262144, "max": 1 << 30], "256 MiB"),
        ]
        for (key, value, mention) in cases {
            var changed = object
            changed[key] = value
            FileManager.default.createFile(atPath: path, contents: try JSONSerialization.data(withJSONObject: changed))
            let r = try fx.run(["snapshots"])
            XCTAssertEqual(r.status, 13, "\(key)=\(value): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(mention), "\(key)=\(value): \(r.stderr)")
        }
        // The limits themselves are legal.
        for size in [1 << 20, 1 << 30] {
            var changed = object
            changed["packSize"] = size
            FileManager.default.createFile(atPath: path, contents: try JSONSerialization.data(withJSONObject: changed))
            try fx.ok(["snapshots"])
        }
    }

    // MARK: JSON keys

    /// Keys the README documents are present with `null` rather than left out.
    func testJSONOutputEmitsDocumentedKeysAsNull() throws {
        let fx = Fixture()
        try fx.initRepo()
        func object(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
            try XCTUnwrap(try json(try fx.ok(args, file: file, line: line)) as? [String: Any], file: file, line: line)
        }
        func assertNull(_ o: [String: Any], _ keys: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
            for k in keys {
                XCTAssertTrue(o.keys.contains(k), "\(what): key \(k) is missing in \(o)", file: file, line: line)
                XCTAssertTrue(o[k] is NSNull, "\(what): \(k) should be null, is \(o[k] ?? "absent")", file: file, line: line)
            }
        }
        let stored = try fx.store("db.sql", from: fx.file("in", Data("x".utf8)))
        assertNull(stored, ["streams"], "store")

        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src + "/sub", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: src + "/a.txt", contents: Data("a".utf8))
        let backup = try object(["backup", src, "--json"])
        assertNull(backup, ["parent"], "backup")

        let snaps = try fx.snapshots()
        assertNull(snaps[0], ["paths"], "snapshots (stream)")
        assertNull(snaps[1], ["name"], "snapshots (tree)")

        let ls = try XCTUnwrap(try json(try fx.ok(["ls", "latest", "--json"])) as? [[String: Any]])
        let dir = try XCTUnwrap(ls.first { ($0["path"] as? String)?.hasSuffix("/sub") == true })
        assertNull(dir, ["size", "path_raw", "target"], "ls (directory)")
        let file = try XCTUnwrap(ls.first { ($0["path"] as? String)?.hasSuffix("/a.txt") == true })
        assertNull(file, ["path_raw", "target"], "ls (file)")

        FileManager.default.createFile(atPath: src + "/b.txt", contents: Data("b".utf8))
        try fx.ok(["backup", src])
        let ids = try fx.snapshots().map { $0["id"] as! String }
        let diff = try object(["diff", ids[1], ids[2], "--json"])
        let added = try XCTUnwrap((diff["changes"] as? [[String: Any]])?.first { $0["change"] as? String == "+" })
        assertNull(added, ["old_size"], "diff (added)")

        let pin = try object(["pin", ids[0], "--json"])
        assertNull(pin, ["until", "reason"], "pin")
        let pins = try XCTUnwrap(try json(try fx.ok(["pin", "--json"])) as? [[String: Any]])
        assertNull(pins[0], ["until", "reason"], "pin list")

        assertNull(try object(["policy", "show", "--json"]), ["stored", "set_at", "set_by"], "policy show")
        assertNull(try object(["forget", "--dry-run", "--json"]), ["prune"], "forget")
    }
}
