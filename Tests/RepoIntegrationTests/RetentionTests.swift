import XCTest
import Foundation

/// `forget`, `prune`, `pin` and `policy` end to end, through the built binary.
final class RetentionTests: XCTestCase {
    /// A deterministic history: several snapshots on some days, gaps of weeks, across years.
    static func history(start: Date, count: Int, seed: UInt64) -> [Date] {
        var s = seed | 1
        func next() -> UInt64 { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s &* 2685821657736338717 }
        var t = start
        var out: [Date] = []
        for _ in 0..<count {
            switch next() % 4 {
            case 0: t += Double(600 + next() % 7200)              // same day, or just past midnight
            case 1: t += Double(86400 * (1 + next() % 3))
            case 2: t += Double(86400 * (5 + next() % 20))
            default: t += Double(86400 * (25 + next() % 60))
            }
            out.append(t)
        }
        return out
    }

    static func iso(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: d)
    }

    /// The kept set, computed independently of the engine: the rules read literally.
    static func expectedKept(_ snaps: [(id: String, time: Date)], now: Date, hot: Double, warm: Double, cold: Double,
                             zone: TimeZone, pinned: Set<String>) -> Set<String> {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = zone
        let newestFirst = snaps.sorted { ($0.time, $0.id) > ($1.time, $1.id) }
        var kept: Set<String> = pinned.intersection(snaps.map(\.id))
        if let first = newestFirst.first { kept.insert(first.id) }
        var days = Set<String>(), months = Set<String>()
        for s in newestFirst {
            let age = now.timeIntervalSince(s.time)
            let c = cal.dateComponents([.year, .month, .day], from: s.time)
            if age < hot { kept.insert(s.id) }
            if age < warm, days.insert("\(c.year!)-\(c.month!)-\(c.day!)").inserted { kept.insert(s.id) }
            if age < cold, months.insert("\(c.year!)-\(c.month!)").inserted { kept.insert(s.id) }
        }
        return kept
    }

    func forgetJSON(_ fx: Fixture, _ args: [String]) throws -> [String: Any] {
        let r = try fx.ok(["forget", "--json"] + args)
        return try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] ?? [:]
    }

    /// Years of `--time`-stamped snapshots of two streams: the kept set equals the expectation,
    /// the pinned snapshot survives, prune frees the forgotten data, every kept snapshot dumps
    /// byte-identical and `check --read-data` passes; a second run changes nothing.
    func testForgetAcrossYearsMatchesIndependentExpectation() throws {
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "16K"])
        let zone = "America/New_York"
        let now = ISO8601DateFormatter().date(from: "2026-02-01T12:00:00Z")!
        let base = TestData.random(120_000)
        var contents: [String: Data] = [:]
        var byStream: [String: [(id: String, time: Date)]] = [:]
        for (stream, seed) in [("main.sql", UInt64(3)), ("users.sql", UInt64(5))] {
            for (i, t) in Self.history(start: now - 3.2 * 365 * 86400, count: 22, seed: seed).enumerated() where t < now {
                var data = base
                data.append(TestData.random(20_000 + i * 97))
                let path = fx.file("in-\(stream)-\(i)", data)
                let id = try fx.store(stream, from: path, extra: ["--time", Self.iso(t)])["id"] as! String
                contents[id] = data
                byStream[stream, default: []].append((id, t))
            }
        }
        let pinnedID = byStream["main.sql"]![1].id
        try fx.ok(["pin", pinnedID, "--reason", "audit 2023"])
        let before = fx.repositorySize()

        let out = try forgetJSON(fx, ["--now", Self.iso(now), "--tz", zone, "--keep-hot", "5d", "--keep-warm", "3w",
                                      "--keep-cold", "2y", "--prune", "--safety-margin", "0"])
        var expected = Set<String>()
        for (_, snaps) in byStream {
            expected.formUnion(Self.expectedKept(snaps, now: now, hot: 5 * 86400, warm: 21 * 86400, cold: 2 * 365 * 86400,
                                                 zone: TimeZone(identifier: zone)!, pinned: [pinnedID]))
        }
        let items = out["snapshots"] as! [[String: Any]]
        XCTAssertEqual(items.count, contents.count)
        let kept = Set(items.filter { $0["keep"] as! Bool }.map { $0["id"] as! String })
        XCTAssertEqual(kept, expected)
        XCTAssertTrue(kept.contains(pinnedID))
        XCTAssertGreaterThan(contents.count - kept.count, 10, "the history should forget a good part")
        for item in items {
            XCTAssertFalse((item["reasons"] as! [String]).isEmpty)
            XCTAssertEqual(item["decision"] as? String, (item["keep"] as! Bool) ? "keep" : "forget")
        }
        XCTAssertEqual(Set(try fx.snapshots().map { $0["id"] as! String }), expected)

        let prune = out["prune"] as! [String: Any]
        XCTAssertGreaterThan(prune["bytes_freed"] as! Int, 0)
        let after = fx.repositorySize()
        XCTAssertLessThan(after, before - (prune["bytes_freed"] as! Int) / 2)

        let check = try fx.run(["check", "--read-data"])
        XCTAssertEqual(check.status, 0, check.out + check.stderr)
        for id in kept { XCTAssertEqual(try fx.ok(["dump", id]).stdout, contents[id], "snapshot \(id)") }

        // Idempotent: nothing more to forget or prune.
        let again = try forgetJSON(fx, ["--now", Self.iso(now), "--tz", zone, "--keep-hot", "5d", "--keep-warm", "3w",
                                        "--keep-cold", "2y", "--prune", "--safety-margin", "0"])
        XCTAssertEqual(again["forgotten"] as? Int, 0)
        let p2 = again["prune"] as! [String: Any]
        XCTAssertEqual(p2["packs_deleted"] as? Int, 0)
        XCTAssertEqual(p2["packs_repacked"] as? Int, 0)
        XCTAssertEqual(p2["segments_written"] as? Int, 0)
    }

    /// Dry run changes nothing and explains every decision; the table has tiers and reasons.
    func testDryRunExplainsAndChangesNothing() throws {
        let fx = Fixture()
        try fx.initRepo()
        let input = fx.file("in", TestData.random(5000))
        for t in ["2018-01-01T10:00:00Z", "2018-01-01T11:00:00Z", "2026-01-30T10:00:00Z"] {
            _ = try fx.store("x", from: input, extra: ["--time", t])
        }
        let r = try fx.ok(["forget", "--dry-run", "--now", "2026-02-01T00:00:00Z", "--tz", "UTC"])
        XCTAssertTrue(r.out.contains("older than the cold horizon 7y"), r.out)
        XCTAssertTrue(r.out.contains("hot: younger than 7d"), r.out)
        XCTAssertTrue(r.out.contains("2 would be forgotten"), r.out)
        XCTAssertEqual(try fx.snapshots().count, 3)
        // keep-last 0 is refused: a group's newest snapshot is never forgotten.
        XCTAssertEqual(try fx.run(["forget", "--keep-last", "0"]).status, 2)
        XCTAssertEqual(try fx.run(["forget", "--keep-hot", "7x"]).status, 2)
        XCTAssertEqual(try fx.run(["forget", "--tz", "Nowhere/Land"]).status, 2)
    }

    /// Pins win over the policy until they expire or are removed; the repository's default
    /// policy (set from a YAML file) applies when forget has no flags.
    func testPinsAndRepositoryPolicy() throws {
        let fx = Fixture()
        try fx.initRepo()
        let input = fx.file("in", TestData.random(5000))
        var ids: [String] = []
        for t in ["2019-03-01T10:00:00Z", "2019-04-01T10:00:00Z", "2019-05-01T10:00:00Z", "2026-01-31T10:00:00Z"] {
            ids.append(try fx.store("x", from: input, extra: ["--time", t])["id"] as! String)
        }
        let policyFile = fx.file("policy.yaml", Data("""
            # nightly policy
            keep-hot: 2d
            keep-warm: 10d
            keep-cold: 1y
            keep-last: 1
            group-by: [host, name]
            tz: Europe/Berlin
            """.utf8))
        try fx.ok(["policy", "set", "--file", policyFile])
        let show = try JSONSerialization.jsonObject(with: try fx.ok(["policy", "show", "--json"]).stdout) as! [String: Any]
        XCTAssertEqual((show["stored"] as! [String: Any])["keep-cold"] as? String, "1y")
        XCTAssertEqual((show["effective"] as! [String: Any])["tz"] as? String, "Europe/Berlin")

        try fx.ok(["pin", String(ids[0].prefix(10)), "--reason", "legal hold"])
        try fx.ok(["pin", ids[1], "--until", "2026-01-15", "--reason", "expired hold"])
        try fx.ok(["pin", ids[2], "--until", "2027-01-01"])
        let pins = try JSONSerialization.jsonObject(with: try fx.ok(["pin", "--json"]).stdout) as! [[String: Any]]
        XCTAssertEqual(pins.count, 3)

        let out = try forgetJSON(fx, ["--now", "2026-02-01T00:00:00Z", "--prune", "--safety-margin", "0"])
        XCTAssertEqual((out["sources"] as! [String]).last, "repository default")
        let keep = Dictionary(uniqueKeysWithValues: (out["snapshots"] as! [[String: Any]]).map { ($0["id"] as! String, $0["keep"] as! Bool) })
        XCTAssertEqual(keep[ids[0]], true)
        XCTAssertEqual(keep[ids[1]], false, "an expired pin no longer holds")
        XCTAssertEqual(keep[ids[2]], true)
        XCTAssertEqual(keep[ids[3]], true)
        XCTAssertEqual(try fx.ok(["dump", ids[0]]).stdout, try Data(contentsOf: URL(fileURLWithPath: input)))

        // Unpinned, the old snapshot goes on the next run; flags override the stored policy.
        try fx.ok(["unpin", ids[0]])
        XCTAssertNotEqual(try fx.run(["unpin", ids[0]]).status, 0)
        let out2 = try forgetJSON(fx, ["--now", "2026-02-01T00:00:00Z", "--keep-cold", "10y"])
        XCTAssertEqual((out2["policy"] as! [String: Any])["keep-cold"] as? String, "10y")
        XCTAssertEqual(out2["forgotten"] as? Int, 0)
        let out3 = try forgetJSON(fx, ["--now", "2026-02-01T00:00:00Z"])
        XCTAssertEqual(out3["forgotten"] as? Int, 1)
        XCTAssertEqual(try fx.snapshots().count, 2)

        try fx.ok(["policy", "unset"])
        let shown = try fx.ok(["policy", "show"]).out
        XCTAssertTrue(shown.contains("none set"), shown)
        // A malformed policy file is a usage error naming the key.
        let bad = fx.file("bad.yaml", Data("keep-hot: soon\n".utf8))
        let r = try fx.run(["forget", "--policy", bad, "--dry-run"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("keep-hot"), r.stderr)
    }

    /// Packs whose unused share exceeds --max-unused are repacked; the rest stay; leftover
    /// temporary files are removed; the freed space shows on disk.
    func testPruneRepacksAndRemovesTemporaryFiles() throws {
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "16K"])
        // Shared and unshared data interleave finely, so every pack the first store writes
        // (whichever worker's batch it took) ends up partly used once it is forgotten.
        var a = Data(), b = Data()
        for _ in 0..<16 {
            let shared = TestData.random(40_000)
            a.append(shared); a.append(TestData.random(30_000))
            b.append(shared); b.append(TestData.random(2_000))
        }
        _ = try fx.store("db", from: fx.file("a", a), extra: ["--time", "2020-01-01T00:00:00Z"])
        let idB = try fx.store("db", from: fx.file("b", b), extra: ["--time", "2020-01-02T00:00:00Z"])["id"] as! String
        let tmpDir = fx.repo + "/data/00"
        try FileManager.default.createDirectory(atPath: tmpDir, withIntermediateDirectories: true)
        let stale = tmpDir + "/.tmp-deadbeef"
        FileManager.default.createFile(atPath: stale, contents: Data(count: 1000))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: stale)
        let fresh = tmpDir + "/.tmp-cafe"
        FileManager.default.createFile(atPath: fresh, contents: Data(count: 10))

        _ = try forgetJSON(fx, ["--now", "2026-01-01T00:00:00Z", "--tz", "UTC"])
        let dry = try JSONSerialization.jsonObject(with: try fx.ok(["prune", "--dry-run", "--json", "--safety-margin", "0"]).stdout) as! [String: Any]
        XCTAssertEqual(dry["dry_run"] as? Bool, true)
        XCTAssertGreaterThanOrEqual(dry["packs_repacked"] as! Int, 1)
        let sizeBefore = fx.repositorySize()
        let r = try JSONSerialization.jsonObject(with: try fx.ok(["prune", "--json", "--safety-margin", "0"]).stdout) as! [String: Any]
        XCTAssertGreaterThanOrEqual(r["packs_repacked"] as! Int, 1, "\(r)")
        XCTAssertGreaterThanOrEqual(r["packs_written"] as! Int, 1)
        XCTAssertEqual(r["packs_deleted"] as? Int, dry["packs_deleted"] as? Int)
        XCTAssertEqual(r["temporary_files_removed"] as? Int, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh))
        XCTAssertLessThan(fx.repositorySize(), sizeBefore - 250_000)
        XCTAssertEqual(try fx.ok(["dump", idB]).stdout, b)
        let check = try fx.run(["check", "--read-data"])
        XCTAssertEqual(check.status, 0, check.out + check.stderr)
        // With a high threshold nothing more is repacked, and a store after prune dedups against the new packs.
        _ = try fx.store("db", from: fx.file("b2", b), extra: ["--time", "2020-01-03T00:00:00Z"])
        let r2 = try JSONSerialization.jsonObject(with: try fx.ok(["prune", "--json", "--max-unused", "50", "--safety-margin", "0"]).stdout) as! [String: Any]
        XCTAssertEqual(r2["packs_repacked"] as? Int, 0)
        XCTAssertEqual(try fx.ok(["check", "--read-data"]).status, 0)
    }

    /// Prune needs the exclusive lock: a running store makes it fail with exit 11 naming the
    /// holder; a lock left by a killed process on this host is removed by the next locker.
    func testPruneLockedByRunningStore() throws {
        let fx = Fixture()
        try fx.initRepo()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Fixture.binary)
        p.arguments = ["store", "--name", "slow.sql"]
        p.environment = fx.environment
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        input.fileHandleForWriting.write(TestData.random(100_000))
        var lockFiles: [String] = []
        for _ in 0..<100 where lockFiles.isEmpty {
            Thread.sleep(forTimeInterval: 0.1)
            lockFiles = (try? FileManager.default.contentsOfDirectory(atPath: fx.repo + "/locks").filter { !$0.hasPrefix(".tmp") }) ?? []
        }
        let r = try fx.run(["prune"])
        XCTAssertEqual(r.status, 11, r.stderr)
        XCTAssertTrue(r.stderr.contains("shared lock held by"), r.stderr)
        XCTAssertTrue(r.stderr.contains("store --name slow.sql"), r.stderr)
        XCTAssertTrue(r.stderr.contains("repo unlock"), r.stderr)
        // A dry run changes nothing: it takes a shared lock and runs beside the store.
        XCTAssertEqual(try fx.run(["forget", "--dry-run"]).status, 0)
        XCTAssertEqual(try fx.run(["forget"]).status, 11)

        kill(p.processIdentifier, SIGKILL)
        try? input.fileHandleForWriting.close()
        p.waitUntilExit()
        let after = try fx.run(["prune"])
        XCTAssertEqual(after.status, 0, after.stderr)
        // The killed store's lock (a dead process on this host) is removed, and that is said once.
        XCTAssertTrue(after.stderr.contains("removed 1 stale lock"), after.stderr)
        XCTAssertEqual(try fx.run(["prune"]).stderr, "")
    }
    /// A catalog that loaded the index before another machine's prune must not keep pointing
    /// at deleted packs: it is rebuilt when a new segment supersedes one it knows, so dumps and
    /// dedup through it use the repacked copies.
    func testOtherCatalogsFollowPrune() throws {
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "16K"])
        let base = TestData.random(300_000)
        var a = base; a.append(TestData.random(200_000))
        var b = base; b.append(TestData.random(20_000))
        _ = try fx.store("db", from: fx.file("a", a), extra: ["--time", "2020-01-01T00:00:00Z"])
        let idB = try fx.store("db", from: fx.file("b", b), extra: ["--time", "2020-01-02T00:00:00Z"])["id"] as! String
        XCTAssertEqual(try fx.ok(["snapshots"]).status, 0)   // the fixture's catalog now knows every segment

        let other = ["REPO_CACHE_DIR": fx.dir + "/other-cache"]
        let r = try fx.run(["forget", "--now", "2026-01-01T00:00:00Z", "--tz", "UTC", "--prune", "--json", "--safety-margin", "0"], env: other)
        XCTAssertEqual(r.status, 0, r.stderr)
        let prune = (try JSONSerialization.jsonObject(with: r.stdout) as! [String: Any])["prune"] as! [String: Any]
        XCTAssertGreaterThanOrEqual(prune["packs_repacked"] as! Int, 1, "\(prune)")

        // Through the old catalog: dump the survivor, and store data that dedups against moved blobs.
        XCTAssertEqual(try fx.ok(["dump", idB]).stdout, b)
        var c = base; c.append(TestData.random(10_000))
        let stored = try fx.store("db", from: fx.file("c", c), extra: ["--time", "2020-01-03T00:00:00Z"])
        XCTAssertLessThan(stored["new_bytes"] as! Int, 150_000, "the shared base must dedup")
        XCTAssertEqual(try fx.ok(["dump", stored["id"] as! String]).stdout, c)
        let check = try fx.run(["check", "--read-data"], env: other)
        XCTAssertEqual(check.status, 0, check.out + check.stderr)
    }
}
