import XCTest
import Foundation
import RepoOperations
import RepoRepository
import RepoStorage

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

    /// NAME is always a WAL file's name when PostgreSQL runs restore_command; anything else is
    /// a restore_command written wrong (here %p and %f swapped), and exit 1 would read as the
    /// end of the archive and end recovery early at whatever pg_wal holds. 126 stops it.
    func testNameThatIsNotAWALFileStopsRecovery() throws {
        try fx.ok(["wal-push", walFile(6)])
        for name in ["pg_wal/RECOVERYXLOG", "../../etc/passwd", ""] {
            let r = try fx.run(["wal-fetch", name, Self.name(6), "--prefetch", "0"])
            XCTAssertEqual(r.status, 126, "\(name): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("is not the name of a WAL file") && r.stderr.contains("%f %p"), r.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.name(6)))
    }

    func testMissingFileExitsOneQuietly() throws {
        for name in ["00000002.history", Self.name(9)] {
            let r = try fx.run(["wal-fetch", name, fx.dir + "/x", "--prefetch", "0"])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertEqual(r.stderr, "", "PostgreSQL probes for files that do not exist: no noise in its log")
            XCTAssertFalse(FileManager.default.fileExists(atPath: fx.dir + "/x"))
        }
    }

    /// With standard error closed (`2>&-`) or a reader of it gone, a message costs nothing
    /// but itself: `-v` on a file that is not archived still exits 1 (it used to die of
    /// SIGILL, 132, which PostgreSQL takes as fatal), and a spooled segment is still served.
    func testClosedOrBrokenStandardErrorChangesNoExitCode() throws {
        let bin = Fixture.binary
        let closed = try fx.shell("'\(bin)' wal-fetch -v --prefetch 0 \(Self.name(9)) '\(fx.dir)/x' 2>&-; echo $?")
        XCTAssertEqual(closed.out.trimmingCharacters(in: .whitespacesAndNewlines), "1")
        // The reader (`true`) is gone before the message is written: EPIPE, SIGPIPE being ignored.
        let broken = try fx.shell("{ '\(bin)' wal-fetch -v --prefetch 0 \(Self.name(9)) '\(fx.dir)/x' 2>&1 >/dev/null; echo \"rc=$?\" >'\(fx.dir)/rc'; } | true; cat '\(fx.dir)/rc'")
        XCTAssertEqual(broken.out.trimmingCharacters(in: .whitespacesAndNewlines), "rc=1")
        // Served from the spool with stderr closed: the segment arrives, exit 0.
        try fx.ok(["wal-push", walFile(1)])
        let named = fx.dir + "/spool"
        XCTAssertEqual(try fx.run(["wal-fetch", "--spool", named, "00000002.history", fx.dir + "/h"]).status, 1)
        let spool = WALSpool.directory(under: named, location: fx.repo)
        FileManager.default.createFile(atPath: spool + "/" + Self.name(1), contents: Self.segment(1))
        let served = try fx.shell("'\(bin)' wal-fetch -v --spool '\(named)' --prefetch 0 \(Self.name(1)) '\(fx.dir)/1' 2>&-; echo $?")
        XCTAssertEqual(served.out.trimmingCharacters(in: .whitespacesAndNewlines), "0")
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/1"), Self.segment(1))
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

    /// A history file PostgreSQL could not read is refused before it is archived for good:
    /// once in, it broke `pg-status` and `status` (exit 13) with no way out but deleting it.
    func testMalformedHistoryFileIsRefused() throws {
        let cases: [(String, String)] = [
            ("00000009.history", "hello\n"),
            ("00000003.history", "1\t0/3000198\tx\n1\t0/4000000\ty\n"),   // IDs must increase
            ("00000004.history", "5\t0/3000198\tx\n"),                      // ancestor above 4
        ]
        for (name, text) in cases {
            let path = fx.file(name, Data(text.utf8))
            let r = try fx.run(["wal-push", path])
            XCTAssertEqual(r.status, 2, "\(name): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("is not a timeline history file"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: fx.repo + "/wal/" + name.prefix(8) + "/" + name))
        }
        // Comments and blank lines are PostgreSQL's too.
        let good = fx.file("00000002.history", Data("# made by hand\n\n1\t0/3000198\tno recovery target specified\n".utf8))
        try fx.ok(["wal-push", good])
        // A reason that is not UTF-8 (a restore point named in a LATIN1 server) is PostgreSQL's.
        try fx.ok(["wal-push", fx.file("00000006.history", Data("1\t0/3000198\tat restore point \"caf".utf8) + Data([0xE9, 0x22, 0x0A]))])
        // pg-status reads every history file: it reports (exit 1: no base backup yet), not 13.
        let status = try fx.run(["pg-status"])
        XCTAssertEqual(status.status, 1, status.out + status.stderr)
        XCTAssertFalse(status.stderr.contains("malformed"), status.stderr)
        try fx.ok(["check", "--read-data"])
        // One that got in another way (an older version's push, an object copied by hand),
        // sealed properly under its name: `check --read-data` reports it, exit 13.
        let backend = LocalBackend(path: fx.repo)
        let (_, key) = try Repository.unlock(backend: backend, password: Array(fx.password.utf8))
        let name = "00000005.history"
        try backend.put("wal/00000005/" + name, data: try SealedObject.seal(Array("hello\n".utf8), kind: .wal, key: key, context: Array(name.utf8)))
        let check = try fx.run(["check", "--read-data"])
        XCTAssertEqual(check.status, 13, check.out + check.stderr)
        XCTAssertTrue((check.out + check.stderr).contains(name) && (check.out + check.stderr).contains("malformed timeline history line: hello"), check.out + check.stderr)
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
        let named = fx.dir + "/spool"
        try fx.ok(["wal-fetch", Self.name(1), fx.dir + "/1", "--spool", named, "--prefetch", "3"])
        // The repository's own subdirectory of the named spool (REPO_REPOSITORY is fx.repo).
        let spool = WALSpool.directory(under: named, location: fx.repo)
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
        let r = try fx.run(["wal-fetch", Self.name(2), fx.dir + "/2", "--spool", named, "--prefetch", "0"], env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/2"), Self.segment(2))
        XCTAssertFalse(FileManager.default.fileExists(atPath: spool + "/" + Self.name(2)), "moved, not copied")
    }

    /// A prefetched segment appears in the spool under its name only once its bytes are on
    /// disk: fdatasync of the temporary file, then the rename (FORMAT.md §27.6). A crash never
    /// leaves an empty or torn segment there for a later `wal-fetch` to hand to PostgreSQL, and
    /// PostgreSQL's own fsync of the restored file finds nothing left to write. Seen as the
    /// system calls the prefetcher makes (strace follows it: it is a child, in a session of
    /// its own, and strace returns when it has ended).
    func testSpooledSegmentsAreOnDiskBeforeTheyAppearUnderTheirName() throws {
        for n in 1...4 { try fx.ok(["wal-push", walFile(UInt64(n))]) }
        let named = fx.dir + "/spool", traces = fx.dir + "/strace"
        try FileManager.default.createDirectory(atPath: traces, withIntermediateDirectories: true)
        // One trace file per thread (-ff): with several prefetch threads, one file would split
        // their calls into "unfinished" and "resumed" lines. Each thread writes, syncs and
        // renames its segment in that order.
        let r = try fx.shell("strace -ff -qq -y -e trace=fdatasync,rename -o '\(traces)/t' '\(Fixture.binary)' wal-fetch \(Self.name(1)) '\(fx.dir)/1' --spool '\(named)' --prefetch 3; echo $?")
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "0")
        let spool = WALSpool.directory(under: named, location: fx.repo)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: spool).filter { !$0.hasPrefix(".") }),
                       Set([2, 3, 4].map { Self.name($0) }))
        let threads = try FileManager.default.contentsOfDirectory(atPath: traces).map {
            try String(contentsOfFile: traces + "/" + $0, encoding: .utf8).split(separator: "\n").map(String.init)
        }
        for n: UInt64 in 2...4 {
            let final = spool + "/" + Self.name(n)
            let found = threads.lazy.compactMap { lines in
                lines.firstIndex { $0.contains("rename(\"") && $0.contains(", \"\(final)\")") && $0.hasSuffix("= 0") }.map { (lines, $0) }
            }.first
            let (lines, renamed) = try XCTUnwrap(found, "no rename to \(final) in:\n\(threads.joined().joined(separator: "\n"))")
            let from = try XCTUnwrap(lines[renamed].range(of: "rename(\"").map { start in
                String(lines[renamed][start.upperBound...].prefix { $0 != "\"" })
            })
            XCTAssertTrue(from.hasPrefix(spool + "/.tmp-" + Self.name(n)), from)
            XCTAssertTrue(lines[..<renamed].contains { $0.contains("fdatasync(") && $0.contains("<\(from)>") && $0.hasSuffix("= 0") },
                          "\(final) was renamed into place before its bytes were on disk:\n\(lines.joined(separator: "\n"))")
        }
    }

    /// A spooled segment is handed over without the repository (the spool holds verified
    /// bytes only), and the prefetcher is started only once fewer than half of `--prefetch`
    /// segments are left ahead of the one taken.
    func testSpooledSegmentsAndWhenThePrefetcherStarts() throws {
        let named = fx.dir + "/spool"
        // With no repository at all (nothing at --repo): served by location alone.
        let none = fx.dir + "/no-repository"
        let unreachable = WALSpool.directory(under: named, location: none)
        try FileManager.default.createDirectory(atPath: unreachable, withIntermediateDirectories: true)
        for n in 2...7 { FileManager.default.createFile(atPath: unreachable + "/" + Self.name(UInt64(n)), contents: Data("segment \(n)".utf8)) }
        let r = try fx.run(["wal-fetch", "--repo", none, "--spool", named, "--prefetch", "8", Self.name(2), fx.dir + "/n2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/n2"), Data("segment 2".utf8))
        XCTAssertFalse(FileManager.default.fileExists(atPath: unreachable + "/" + Self.name(2)), "moved, not copied")
        // A segment that is not spooled goes to the repository (which does not exist): 126.
        let missing = try fx.run(["wal-fetch", "--repo", none, "--spool", named, Self.name(11), fx.dir + "/11"])
        XCTAssertEqual(missing.status, 126, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("no repository"), missing.stderr)

        // This repository's spool: the first fetch that opens the repository (PostgreSQL's
        // probe for a history file that is not archived) makes the spool its own.
        let spool = WALSpool.directory(under: named, location: fx.repo)
        XCTAssertEqual(try fx.run(["wal-fetch", "--spool", named, "00000002.history", fx.dir + "/h"]).status, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: spool + "/.repository"))
        // Segment 1 comes before every fetch below: a prefetcher, which removes spooled
        // segments before the one fetched, is the only thing that would remove it.
        for n in 1...10 { FileManager.default.createFile(atPath: spool + "/" + Self.name(UInt64(n)), contents: Data("segment \(n)".utf8)) }
        let first = spool + "/" + Self.name(1)
        // 8 segments (3…10) are left ahead of 2, at least half of 8: no prefetcher.
        for n in 2...6 {
            try fx.ok(["wal-fetch", "--spool=" + named, "--prefetch", "8", "-q", Self.name(UInt64(n)), fx.dir + "/\(n)"])
            XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/\(n)"), Data("segment \(n)".utf8))
        }
        usleep(500_000)
        XCTAssertTrue(FileManager.default.fileExists(atPath: first), "no prefetcher while 4 or more segments wait")
        // After 7, three are left (8, 9, 10): a prefetcher starts, removes segment 1, finds
        // nothing archived beyond them and leaves the rest of the spool as it was.
        try fx.ok(["wal-fetch", Self.name(7), fx.dir + "/7", "--spool", named, "--prefetch", "8"])
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, FileManager.default.fileExists(atPath: first) { usleep(50_000) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: first), "the prefetcher ran")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: spool).filter { !$0.hasPrefix(".") }),
                       Set([8, 9, 10].map { Self.name($0) }))
    }

    /// The `repo` launcher serves a spooled segment itself, without `repo-core` (a copy of
    /// the launcher alone in a directory), from the default spool and from a named one, and
    /// hands everything else to `repo-core` unchanged; without `repo-core` next to it that is
    /// exit 127, which PostgreSQL takes as a reason to stop recovery, not as the end of the
    /// archive. A spool that names another repository is not served.
    func testLauncherServesTheSpoolWithoutRepoCore() throws {
        let alone = fx.dir + "/bin", launcher = alone + "/repo"
        try FileManager.default.createDirectory(atPath: alone, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: URL(fileURLWithPath: Fixture.binary).resolvingSymlinksInPath().path, toPath: launcher)
        func lonely(_ args: [String]) throws -> CLIResult {
            let r = try fx.shell(([launcher] + args).map { "'\($0)'" }.joined(separator: " ") + " 2>'\(fx.dir)/lonely.err'")
            let err = (try? String(contentsOfFile: fx.dir + "/lonely.err", encoding: .utf8)) ?? ""
            return CLIResult(status: r.status, stdout: Data(r.out.utf8), stderr: err)
        }
        // The full command (repo-core) makes the default spool the repository's.
        XCTAssertEqual(try fx.run(["wal-fetch", "00000002.history", fx.dir + "/h"]).status, 1)
        let id = try XCTUnwrap(String(data: try XCTUnwrap(FileManager.default.contents(atPath: fx.repo + "/config")), encoding: .utf8)
            .flatMap { WALSpoolLayoutProbe.id(in: $0) })
        let spool = fx.cache + "/" + id + "/wal-prefetch"
        XCTAssertTrue(FileManager.default.fileExists(atPath: spool + "/.repository"))
        for n in 1...3 { FileManager.default.createFile(atPath: spool + "/" + Self.name(UInt64(n)), contents: Data("segment \(n)".utf8)) }
        let served = try lonely(["wal-fetch", "--prefetch", "0", "-v", Self.name(1), fx.dir + "/1"])
        XCTAssertEqual(served.status, 0, served.stderr)
        XCTAssertTrue(served.stderr.contains("from the prefetch spool"), served.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/1"), Data("segment 1".utf8))
        XCTAssertFalse(FileManager.default.fileExists(atPath: spool + "/" + Self.name(1)), "moved, not copied")
        // The spool runs low: the prefetcher it starts (repo-core) is missing; said with -v,
        // and the segment is still served.
        let low = try lonely(["wal-fetch", "--prefetch", "8", "-v", Self.name(2), fx.dir + "/2"])
        XCTAssertEqual(low.status, 0, low.stderr)
        XCTAssertTrue(low.stderr.contains("cannot start the WAL prefetcher"), low.stderr)
        // Not spooled, or any other command: repo-core's, which is not there.
        for args in [["wal-fetch", Self.name(9), fx.dir + "/9"], ["snapshots"], ["--version"]] {
            let r = try lonely(args)
            XCTAssertEqual(r.status, 127, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("repo-core must be installed in the same directory"), r.stderr)
        }
        // Another repository's spool (a new repository at the same location): not served.
        try Data((String(repeating: "5c", count: 32) + "\n").utf8).write(to: URL(fileURLWithPath: spool + "/.repository"))
        XCTAssertEqual(try lonely(["wal-fetch", "--prefetch", "0", Self.name(3), fx.dir + "/3"]).status, 127)
        XCTAssertTrue(FileManager.default.fileExists(atPath: spool + "/" + Self.name(3)))
        // A named spool, with no repository at all: served by location alone.
        let named = fx.dir + "/spool", none = fx.dir + "/no-repository"
        let unreachable = WALSpool.directory(under: named, location: none)
        try FileManager.default.createDirectory(atPath: unreachable, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: unreachable + "/" + Self.name(4), contents: Data("segment 4".utf8))
        let byLocation = try lonely(["wal-fetch", "--repo", none, "--spool", named, "--prefetch", "0", Self.name(4), fx.dir + "/4"])
        XCTAssertEqual(byLocation.status, 0, byLocation.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/4"), Data("segment 4".utf8))
        // Next to repo-core, the same launcher runs every command: the real one answers.
        XCTAssertEqual(try fx.run(["wal-fetch", Self.name(9), fx.dir + "/9"]).status, 1, "not archived")
    }

    /// A spool on another file system than the destination (a tmpfs spool, a data directory
    /// on its own volume): the segment is copied through a temporary name and the spooled copy
    /// removed, by the launcher alone as by the full command.
    func testSpoolOnAnotherFileSystemIsCopied() throws {
        let named = "/dev/shm/repo-spool-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: named) }
        let spool = WALSpool.directory(under: named, location: fx.repo)
        var shm = stat(), here = stat()
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        XCTAssertEqual(stat(spool, &shm), 0)
        XCTAssertEqual(stat(fx.dir, &here), 0)
        XCTAssertNotEqual(shm.st_dev, here.st_dev, "the spool must be on another file system for this test")
        // The full command makes the spool the repository's (a history file that is not archived).
        XCTAssertEqual(try fx.run(["wal-fetch", "--spool", named, "00000002.history", fx.dir + "/h"]).status, 1)
        let alone = fx.dir + "/bin"
        try FileManager.default.createDirectory(atPath: alone, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: URL(fileURLWithPath: Fixture.binary).resolvingSymlinksInPath().path, toPath: alone + "/repo")
        let dest = fx.dir + "/pg_wal"
        try FileManager.default.createDirectory(atPath: dest, withIntermediateDirectories: true)
        for n in 1...2 { FileManager.default.createFile(atPath: spool + "/" + Self.name(UInt64(n)), contents: Data("segment \(n)".utf8)) }
        for (n, binary) in [(1, alone + "/repo"), (2, Fixture.binary)] {
            let r = try fx.shell("'\(binary)' wal-fetch --spool '\(named)' --prefetch 0 \(Self.name(UInt64(n))) '\(dest)/RECOVERYXLOG'; echo $?")
            XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "0", "\(binary)")
            XCTAssertEqual(FileManager.default.contents(atPath: dest + "/RECOVERYXLOG"), Data("segment \(n)".utf8))
            XCTAssertFalse(FileManager.default.fileExists(atPath: spool + "/" + Self.name(UInt64(n))), "the spooled copy is removed")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dest), ["RECOVERYXLOG"], "no temporary file left")
            try FileManager.default.removeItem(atPath: dest + "/RECOVERYXLOG")
        }
    }

    /// A destination that is not UTF-8 (PostgreSQL's own is pg_wal/RECOVERYXLOG) is refused
    /// with 126, which stops recovery: decoded, it would name another file, where the server
    /// would not find the segment and would take that for the end of the archive.
    func testDestinationThatIsNotUTF8IsRefused() throws {
        let named = fx.dir + "/spool"
        XCTAssertEqual(try fx.run(["wal-fetch", "--spool", named, "00000002.history", fx.dir + "/h"]).status, 1)
        let spool = WALSpool.directory(under: named, location: fx.repo)
        FileManager.default.createFile(atPath: spool + "/" + Self.name(1), contents: Data("segment 1".utf8))
        let r = try fx.shell("'\(Fixture.binary)' wal-fetch --spool '\(named)' --prefetch 0 \(Self.name(1)) \"$(printf '\(fx.dir)/dest-\\376')\" 2>'\(fx.dir)/err'; echo $?")
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "126")
        XCTAssertTrue(((try? String(contentsOfFile: fx.dir + "/err", encoding: .utf8)) ?? "").contains("not UTF-8"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: spool + "/" + Self.name(1)), "the segment stays in the spool")
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: fx.dir).contains { $0.hasPrefix("dest-") }, "nothing written")
    }

    /// Two clusters' repositories archive segments of the same names; recoveries from both
    /// with one REPO_WAL_SPOOL each get their own repository's bytes, from the spool too. A
    /// spool left by an earlier repository at the same location is emptied, not served.
    func testOneSpoolDirectoryForTwoRepositoriesNeverMixesTheirWAL() throws {
        let other = fx.dir + "/other-repo", otherSystem: UInt64 = 7_309_999_999_999_999_999
        try fx.ok(["init", "--repo", other])
        for n in 1...4 {
            try fx.ok(["wal-push", walFile(UInt64(n))])
            try fx.ok(["wal-push", "--repo", other, walFile(UInt64(n), system: otherSystem)])
        }
        let named = fx.dir + "/shared-spool"
        var env = fx.environment
        env["REPO_WAL_SPOOL"] = named
        func spooled(_ location: String) -> Set<String> {
            Set(((try? FileManager.default.contentsOfDirectory(atPath: WALSpool.directory(under: named, location: location))) ?? [])
                .filter { !$0.hasPrefix(".") })
        }
        // Both prefetchers fill their own spools with 2, 3 and 4.
        XCTAssertEqual(try fx.run(["wal-fetch", "--prefetch", "3", Self.name(1), fx.dir + "/a1"], env: env).status, 0)
        XCTAssertEqual(try fx.run(["wal-fetch", "--repo", other, "--prefetch", "3", Self.name(1), fx.dir + "/b1"], env: env).status, 0)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, spooled(fx.repo).count < 3 || spooled(other).count < 3 { usleep(50_000) }
        XCTAssertEqual(spooled(fx.repo), Set((2...4).map { Self.name($0) }))
        XCTAssertEqual(spooled(other), Set((2...4).map { Self.name($0) }))
        for n in 2...4 as ClosedRange<UInt64> {
            let b = try fx.run(["wal-fetch", "--repo", other, "--prefetch", "0", Self.name(n), fx.dir + "/b\(n)"], env: env)
            XCTAssertEqual(b.status, 0, b.stderr)
            XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/b\(n)"), Self.segment(n, system: otherSystem), "segment \(n) of the other cluster")
            let a = try fx.run(["wal-fetch", "--prefetch", "0", Self.name(n), fx.dir + "/a\(n)"], env: env)
            XCTAssertEqual(a.status, 0, a.stderr)
            XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/a\(n)"), Self.segment(n), "segment \(n) of this cluster")
        }
        XCTAssertTrue(spooled(fx.repo).isEmpty && spooled(other).isEmpty, "every segment came from the spools")

        // A spool that names another repository (one that was at this location before): its
        // segment, however plausible, is removed and the repository's own copy served.
        let spool = WALSpool.directory(under: named, location: fx.repo)
        try Data("00112233445566778899aabbccddeeff\n".utf8).write(to: URL(fileURLWithPath: spool + "/.repository"))
        FileManager.default.createFile(atPath: spool + "/" + Self.name(3), contents: Self.segment(3, system: otherSystem))
        let stale = try fx.run(["wal-fetch", "--prefetch", "0", Self.name(3), fx.dir + "/a3-again"], env: env)
        XCTAssertEqual(stale.status, 0, stale.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/a3-again"), Self.segment(3))
        XCTAssertFalse(FileManager.default.fileExists(atPath: spool + "/" + Self.name(3)), "the other repository's segment is gone")
    }

    /// `wal-push` with a key file takes the fast path (no argument parser); every outcome —
    /// stored, retried, refused, failed — exits and reports as through the parser, which the
    /// same command line plus `--no-lock` (outside the fast path's options) goes through.
    func testKeyFilePushesReportAsTheParserDoes() throws {
        let key = fx.dir + "/machine.key"
        try fx.ok(["key", "add", "--new-key-file", key])
        let other = fx.dir + "/other.key"
        try fx.ok(["init", "--repo", fx.dir + "/other-repo"])
        try fx.ok(["key", "add", "--repo", fx.dir + "/other-repo", "--new-key-file", other])
        try FileManager.default.createDirectory(atPath: fx.dir + "/b", withIntermediateDirectories: true)
        let notWAL = fx.dir + "/b/notwal"
        FileManager.default.createFile(atPath: notWAL, contents: Data("x".utf8))
        let clash = fx.dir + "/b/" + Self.name(1)
        FileManager.default.createFile(atPath: clash, contents: Self.segment(1, seed: 9))
        var env = fx.environment
        env.removeValue(forKey: "REPO_PASSWORD")
        let cases: [(args: [String], status: Int32, stderr: String)] = [
            (["wal-push", "--key-file", key, walFile(1)], 0, ""),
            (["wal-push", "--key-file", key, "-v", walFile(2)], 0, "archived " + Self.name(2)),
            (["wal-push", "--key-file", key, walFile(1)], 0, "already archived with the same contents"),
            (["wal-push", "--key-file", key, clash], 1, "different contents"),
            (["wal-push", "--key-file", key, notWAL], 2, "is not the name of a WAL file"),
            (["wal-push", "--key-file", key, fx.dir + "/pg_wal/" + Self.name(9)], 1, "archive_command must pass %p"),
            (["wal-push", "--key-file", other, walFile(3)], 12, ""),
            (["wal-push", "--key-file", fx.dir + "/nokey", walFile(3)], 1, "nokey"),
            (["wal-push", "--key-file", key, "--compression", "lz4", walFile(3)], 2, "--compression lz4"),
            (["wal-push", "--key-file", key, "--repo", fx.dir + "/nowhere", walFile(3)], 10, "no repository"),
        ]
        for c in cases {
            let fast = try fx.run(c.args, env: env)
            if c.status == 0 && c.args.contains("-v") {
                // Pushed once: the parser's run of the same line finds it archived.
                XCTAssertEqual(fast.status, 0, fast.stderr)
                XCTAssertTrue(fast.stderr.contains(c.stderr), "\(c.args): \(fast.stderr)")
                continue
            }
            let parsed = try fx.run(c.args + ["--no-lock"], env: env)
            XCTAssertEqual(fast.status, c.status, "\(c.args): \(fast.stderr)")
            XCTAssertEqual(parsed.status, c.status, "\(c.args) --no-lock: \(parsed.stderr)")
            XCTAssertTrue(c.stderr.isEmpty || fast.stderr.contains(c.stderr), "\(c.args): \(fast.stderr)")
            if c.status != 0 { XCTAssertEqual(fast.stderr, parsed.stderr, "\(c.args)") }
        }
        // The default for WAL is zstd level 1 (WALArchive.segmentLevel), also on this path.
        let fetched = fx.dir + "/fetched"
        try fx.ok(["wal-fetch", Self.name(1), fetched, "--prefetch", "0"])
        XCTAssertEqual(FileManager.default.contents(atPath: fetched), Self.segment(1))
        try fx.ok(["check"])
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

/// The id in a repository's config text, found as a test would by eye (not with the code under
/// test): the value of the `"id"` line.
enum WALSpoolLayoutProbe {
    static func id(in config: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: Any] else { return nil }
        return object["id"] as? String
    }
}
