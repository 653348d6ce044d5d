import XCTest
import Foundation

/// `wal-push` and `wal-fetch` as PostgreSQL runs them (archive_command, restore_command), on
/// synthetic segments with a real long page header (FORMAT.md §27). The tests with a running
/// server are in PostgresArchiveTests.
final class WALArchiveTests: XCTestCase {
    var fx: Fixture!

    override func setUpWithError() throws {
        fx = Fixture()
        try fx.initRepo()
    }

    override func tearDown() { fx = nil }

    static let segmentSize = 16 << 20

    /// One 16 MiB WAL segment file: a long page header for segment `number` of timeline
    /// `timeline`, then bytes determined by (number, seed) in the first half and zeros after,
    /// compressible like real WAL.
    static func segment(_ number: UInt64, timeline: UInt32 = 1, system: UInt64 = 7_301_234_567_890_123_456, seed: UInt8 = 0) -> Data {
        var b = [UInt8](repeating: 0, count: segmentSize)
        func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, x) in $0.enumerated() { b[offset + i] = x } }
        }
        put(UInt16(0xD110), at: 0); put(UInt16(0x0002), at: 2); put(timeline, at: 4)
        put(number * UInt64(segmentSize), at: 8); put(system, at: 24)
        put(UInt32(segmentSize), at: 32); put(UInt32(8192), at: 36)
        var state = number &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(seed) &+ 1
        for i in stride(from: 8192, to: segmentSize / 2, by: 8) {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            // Few distinct bytes: compressible, as WAL records are.
            put(state & 0x0F0F_0F0F_0F0F_0F0F, at: i)
        }
        return Data(b)
    }

    static func name(_ number: UInt64, timeline: UInt32 = 1) -> String {
        String(format: "%08X%08X%08X", timeline, UInt32(number >> 8), UInt32(number & 0xFF))
    }

    /// Writes segment `number` under its WAL name in `dir` (pg_wal) and returns the path.
    func walFile(_ number: UInt64, timeline: UInt32 = 1, system: UInt64 = 7_301_234_567_890_123_456, seed: UInt8 = 0) -> String {
        let dir = fx.dir + "/pg_wal"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + Self.name(number, timeline: timeline)
        FileManager.default.createFile(atPath: path, contents: Self.segment(number, timeline: timeline, system: system, seed: seed))
        return path
    }

    func testPushFetchRoundTripEncryptedAndBoundToItsName() throws {
        let a = walFile(1), b = walFile(2)
        try fx.ok(["wal-push", a])
        try fx.ok(["wal-push", b])
        let stored = fx.repo + "/wal/00000001/" + Self.name(1)
        let object = try XCTUnwrap(FileManager.default.contents(atPath: stored))
        XCTAssertLessThan(object.count, Self.segmentSize / 2, "compressed")
        let plain = try XCTUnwrap(FileManager.default.contents(atPath: a))
        XCTAssertNil(object.range(of: plain.subdata(in: 9000..<9064)), "the archive holds no plaintext")

        let dest = fx.dir + "/restored"
        try fx.ok(["wal-fetch", Self.name(1), dest, "--prefetch", "0"])
        XCTAssertEqual(FileManager.default.contents(atPath: dest), plain)

        // An object renamed to another segment's name does not authenticate.
        try FileManager.default.removeItem(atPath: fx.repo + "/wal/00000001/" + Self.name(2))
        try FileManager.default.copyItem(atPath: stored, toPath: fx.repo + "/wal/00000001/" + Self.name(2))
        let swapped = try fx.run(["wal-fetch", Self.name(2), fx.dir + "/swapped", "--prefetch", "0"])
        XCTAssertEqual(swapped.status, 126, "a failure other than 'not archived' stops recovery: \(swapped.stderr)")
        XCTAssertTrue(swapped.stderr.contains("authentication failed"), swapped.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fx.dir + "/swapped"))
    }

    /// `check` counts the archive; `--read-data` authenticates every WAL object and finds one
    /// that was damaged or swapped.
    func testCheckReadsTheArchive() throws {
        for n in 1...3 { try fx.ok(["wal-push", walFile(UInt64(n))]) }
        let ok = try fx.ok(["check", "--read-data"])
        XCTAssertTrue(ok.out.contains("3 WAL files") && ok.out.contains("read 0 packs and 3 WAL files"), ok.out)
        let object = fx.repo + "/wal/00000001/" + Self.name(2)
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: object))
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: object))
        XCTAssertEqual(try fx.run(["check"]).status, 0, "structure alone does not read WAL")
        let bad = try fx.run(["check", "--read-data"])
        XCTAssertEqual(bad.status, 13)
        XCTAssertTrue(bad.out.contains(Self.name(2)), bad.out)
    }

    /// `--compression` picks the level of one push (or none); fetch reads any of them.
    func testCompressionOption() throws {
        let raw = walFile(20), fast = walFile(21), normal = walFile(22)
        try fx.ok(["wal-push", raw, "--compression", "none"])
        try fx.ok(["wal-push", fast, "--compression", "zstd:1"])
        try fx.ok(["wal-push", normal])
        func size(_ n: UInt64) throws -> Int {
            try FileManager.default.attributesOfItem(atPath: fx.repo + "/wal/00000001/" + Self.name(n))[.size] as! Int
        }
        XCTAssertGreaterThan(try size(20), Self.segmentSize, "stored raw")
        XCTAssertLessThan(try size(21), Self.segmentSize / 2)
        for n in [UInt64(20), 21, 22] {
            try fx.ok(["wal-fetch", Self.name(n), fx.dir + "/c\(n)", "--prefetch", "0"])
            XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/c\(n)"), Self.segment(n))
        }
        XCTAssertEqual(try fx.run(["wal-push", walFile(23), "--compression", "lz4"]).status, 2)
    }

    func testMissingFileExitsOneQuietly() throws {
        for name in ["00000002.history", Self.name(9)] {
            let r = try fx.run(["wal-fetch", name, fx.dir + "/x", "--prefetch", "0"])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertEqual(r.stderr, "", "PostgreSQL probes for files that do not exist: no noise in its log")
            XCTAssertFalse(FileManager.default.fileExists(atPath: fx.dir + "/x"))
        }
    }

    func testSameNameIsNeverOverwritten() throws {
        let path = walFile(3)
        try fx.ok(["wal-push", path])
        let again = try fx.ok(["wal-push", path])
        XCTAssertTrue(again.stderr.contains("already archived with the same contents"), again.stderr)

        let object = fx.repo + "/wal/00000001/" + Self.name(3)
        let before = FileManager.default.contents(atPath: object)
        FileManager.default.createFile(atPath: path, contents: Self.segment(3, seed: 7))
        let r = try fx.run(["wal-push", path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("different contents") && r.stderr.contains("never overwritten"), r.stderr)
        XCTAssertTrue(r.stderr.contains("promoted standby"), "says why this happens: \(r.stderr)")
        XCTAssertEqual(FileManager.default.contents(atPath: object), before)
    }

    func testSecondClusterIsRefused() throws {
        try fx.ok(["wal-push", walFile(1, system: 111)])
        let other = walFile(2, system: 222)
        let r = try fx.run(["wal-push", other])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("222") && r.stderr.contains("archives the cluster 111"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fx.repo + "/wal/00000001/" + Self.name(2)))
    }

    func testWhatIsNotWALIsRefused() throws {
        let notNamed = fx.file("notes.txt", Data("x".utf8))
        XCTAssertEqual(try fx.run(["wal-push", notNamed]).status, 2)
        // A file with a segment's name whose header does not match it.
        let wrong = fx.dir + "/" + Self.name(5)
        FileManager.default.createFile(atPath: wrong, contents: Self.segment(4))
        let r = try fx.run(["wal-push", wrong])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("not segment " + Self.name(5)), r.stderr)
        let garbage = fx.dir + "/" + Self.name(6)
        FileManager.default.createFile(atPath: garbage, contents: TestData.random(Self.segmentSize))
        XCTAssertEqual(try fx.run(["wal-push", garbage]).status, 2)
        XCTAssertEqual(try fx.run(["wal-push", fx.dir + "/pg_wal/" + Self.name(7)]).status, 1, "a missing file")
    }

    func testHistoryAndBackupFiles() throws {
        let history = fx.file("00000002.history", Data("1\t0/3000198\tno recovery target specified\n".utf8))
        let backup = fx.file(Self.name(3) + ".00000028.backup", Data("START WAL LOCATION: 0/3000028\n".utf8))
        try fx.ok(["wal-push", history])
        try fx.ok(["wal-push", backup])
        try fx.ok(["wal-fetch", "00000002.history", fx.dir + "/h"])
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/h"), FileManager.default.contents(atPath: history))
        try fx.ok(["wal-fetch", Self.name(3) + ".00000028.backup", fx.dir + "/b"])
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/b"), FileManager.default.contents(atPath: backup))
    }

    /// `kill -9` at any moment of a push leaves either nothing or the whole file under the
    /// name, and the retry succeeds.
    func testKillDuringPushNeverLeavesAnIncompleteFile() throws {
        for attempt in 0..<6 {
            let number = UInt64(10 + attempt)
            let path = walFile(number)
            let started = try fx.start(["wal-push", path])
            usleep(UInt32(attempt) * 40_000)
            kill(started.0.processIdentifier, SIGKILL)
            _ = fx.collect(started)
            let dest = fx.dir + "/k\(attempt)"
            let fetched = try fx.run(["wal-fetch", Self.name(number), dest, "--prefetch", "0"])
            if fetched.status == 0 {
                XCTAssertEqual(FileManager.default.contents(atPath: dest), FileManager.default.contents(atPath: path))
            } else {
                XCTAssertEqual(fetched.status, 1, "attempt \(attempt): absent, not damaged: \(fetched.stderr)")
            }
            try fx.ok(["wal-push", path])
            try fx.ok(["wal-fetch", Self.name(number), dest + "-retry", "--prefetch", "0"])
            XCTAssertEqual(FileManager.default.contents(atPath: dest + "-retry"), FileManager.default.contents(atPath: path))
        }
        try fx.ok(["check"])
    }

    /// After one fetch, the following segments wait in the spool: fetching them needs
    /// neither the repository's copy nor a key derivation.
    func testPrefetchSpoolsTheFollowingSegments() throws {
        for n in 1...5 { try fx.ok(["wal-push", walFile(UInt64(n))]) }
        let spool = fx.dir + "/spool"
        try fx.ok(["wal-fetch", Self.name(1), fx.dir + "/1", "--spool", spool, "--prefetch", "3"])
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter({ !$0.hasPrefix(".") }).count < 3 {
            usleep(50_000)
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: spool).filter { !$0.hasPrefix(".") }),
                       Set([2, 3, 4].map { Self.name($0) }))
        let mode = try FileManager.default.attributesOfItem(atPath: spool)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o700, "plain WAL is for its owner only")
        // Served from the spool: the archive's copy and the password are not needed.
        try FileManager.default.removeItem(atPath: fx.repo + "/wal/00000001/" + Self.name(2))
        var env = fx.environment
        env["REPO_PASSWORD"] = "wrong"
        let r = try fx.run(["wal-fetch", Self.name(2), fx.dir + "/2", "--spool", spool, "--prefetch", "0"], env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/2"), Self.segment(2))
        XCTAssertFalse(FileManager.default.fileExists(atPath: spool + "/" + Self.name(2)), "moved, not copied")
    }

    func testWrongPasswordAndMissingRepository() throws {
        let path = walFile(1)
        var env = fx.environment
        env["REPO_PASSWORD"] = "wrong"
        let push = try fx.run(["wal-push", path], env: env)
        XCTAssertEqual(push.status, 12)
        XCTAssertTrue(push.stderr.contains("wrong password"), push.stderr)
        try fx.ok(["wal-push", path])
        let fetch = try fx.run(["wal-fetch", Self.name(1), fx.dir + "/x", "--prefetch", "0"], env: env)
        XCTAssertEqual(fetch.status, 126, "PostgreSQL must stop, not finish recovery early: \(fetch.stderr)")
        env = fx.environment
        env["REPO_REPOSITORY"] = fx.dir + "/nowhere"
        XCTAssertEqual(try fx.run(["wal-push", path], env: env).status, 10)
        XCTAssertEqual(try fx.run(["wal-fetch", Self.name(1), fx.dir + "/x"], env: env).status, 126)
    }
}
