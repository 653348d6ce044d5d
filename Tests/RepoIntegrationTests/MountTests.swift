import XCTest
import Foundation

/// `repo mount` for real: fuse3 through /dev/fuse, read with cmp, sha256sum, seeks and
/// pg_restore, stopped with signals. Every test unmounts in its teardown, even on failure.
final class MountTests: XCTestCase {
    /// A running `repo mount` on a directory of the fixture.
    final class Mounted {
        let fx: Fixture
        let point: String
        let process: (Process, String, String)
        private(set) var stopped = false

        init(_ fx: Fixture, _ extra: [String] = [], test: XCTestCase) throws {
            self.fx = fx
            point = fx.dir + "/mnt"
            try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
            process = try fx.start(["mount", point] + extra)
            let point = self.point, proc = process.0
            // Unmount even if the test fails or throws.
            test.addTeardownBlock {
                if MountTests.isMounted(point) { MountTests.sh("fusermount3", "-u", "-z", point) }
                if proc.isRunning { kill(proc.processIdentifier, SIGKILL); proc.waitUntilExit() }
            }
            let deadline = Date().addingTimeInterval(30)
            while !MountTests.isMounted(point) {
                guard proc.isRunning, Date() < deadline else {
                    let r = fx.collect(process)
                    throw NSError(domain: "mount", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "repo mount did not mount (status \(r.status)): \(r.stderr)"])
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }

        /// Stops with `signal` (or fusermount3 -u when nil) and returns the process's result.
        func stop(signal: Int32? = SIGINT) -> CLIResult {
            if let signal { kill(process.0.processIdentifier, signal) } else { MountTests.sh("fusermount3", "-u", point) }
            let deadline = Date().addingTimeInterval(20)
            while process.0.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            stopped = true
            return fx.collect(process)
        }

        /// The directory of the newest snapshot of stream `name`.
        func latest(_ name: String) -> String { point + "/by-name/" + name + "/latest" }
    }

    static func isMounted(_ point: String) -> Bool {
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first.map(String.init) == point }
    }

    /// Runs a program; returns its status and stdout (stderr goes to `err`).
    @discardableResult
    static func sh(_ args: String..., stdout: String? = nil) -> (Int32, Data, String) { sh(args, stdout: stdout) }

    /// Runs a program; returns its status, stdout and stderr. Output goes through files, not
    /// pipes, so a daemon that inherits them (pg_ctl's server) cannot block the reader.
    @discardableResult
    static func sh(_ args: [String], stdout: String? = nil) -> (Int32, Data, String) {
        // posix_spawn + waitpid rather than Foundation's Process, which waits for a descriptor
        // that a daemon started by the child (pg_ctl's server) inherits and keeps open.
        let tmp = NSTemporaryDirectory() + "repo-sh-" + UUID().uuidString
        let outPath = stdout ?? tmp + ".out", errPath = tmp + ".err"
        defer {
            if stdout == nil { try? FileManager.default.removeItem(atPath: outPath) }
            try? FileManager.default.removeItem(atPath: errPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, args[0], &actions, nil, argv, environ)
        guard rc == 0 else { return (127, Data(), "cannot run \(args[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let data = stdout == nil ? (FileManager.default.contents(atPath: outPath) ?? Data()) : Data()
        let e = String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
        return (code, data, e)
    }

    /// The mount tests need a real FUSE device; its absence is a failure, not a skip, so a
    /// machine missing fuse3 cannot pass them unnoticed.
    private func fuseAvailable() throws { try Self.requireFuse() }

    struct MissingRequirement: Error, CustomStringConvertible { var description: String }

    static func requireFuse() throws {
        guard FileManager.default.fileExists(atPath: "/dev/fuse"), FileManager.default.isExecutableFile(atPath: "/usr/bin/fusermount3") else {
            throw MissingRequirement(description: "/dev/fuse or fusermount3 is missing: install fuse3 (scripts/install-deps.sh does)")
        }
    }

    // MARK: bytes

    func testStreamsReadBackExactlyWithCmpAndSha256() throws {
        try fuseAvailable()
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "16K"])
        let big = TestData.random(3_000_000)              // ~180 chunks: content lists
        let sql = TestData.sqlDump(bytes: 600_000, seed: 5) // inline chunks
        let bigPath = fx.file("big.bin", big), sqlPath = fx.file("db.sql", sql)
        try fx.store("big.bin", from: bigPath)
        // `/` is no longer a legal stream name; `%` still needs escaping in the mount.
        try fx.store("main%.sql", from: sqlPath, extra: ["--tag", "nightly", "--host", "pg1"])
        try fx.store("empty", from: fx.file("empty", Data()))
        let m = try Mounted(fx, test: self)
        let mountedBig = m.latest("big.bin") + "/big.bin"
        XCTAssertEqual(MountTests.sh("cmp", bigPath, mountedBig).0, 0)
        let sqlInMount = m.point + "/by-tag/nightly/latest/main%25.sql"
        XCTAssertEqual(MountTests.sh("cmp", sqlPath, sqlInMount).0, 0)
        XCTAssertEqual(MountTests.sh("cmp", sqlPath, m.point + "/by-host/pg1/latest/main%25.sql").0, 0)
        let sums = MountTests.sh("sha256sum", bigPath, mountedBig, sqlPath, sqlInMount).1
        let hashes = String(decoding: sums, as: UTF8.self).split(separator: "\n").map { $0.prefix(64) }
        XCTAssertEqual(hashes.count, 4)
        XCTAssertEqual(hashes[0], hashes[1])
        XCTAssertEqual(hashes[2], hashes[3])
        // Real sizes, read-only modes, and the stored mtime.
        let attrs = try FileManager.default.attributesOfItem(atPath: mountedBig)
        XCTAssertEqual(attrs[.size] as? Int, big.count)
        XCTAssertEqual((attrs[.posixPermissions] as? Int).map { $0 & 0o777 }, 0o644)
        let snap = try fx.snapshots(["--name", "big.bin"])[0]
        let mtime = try XCTUnwrap(attrs[.modificationDate] as? Date)
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        XCTAssertEqual(mtime.timeIntervalSince1970, iso.date(from: snap["time"] as! String)!.timeIntervalSince1970, accuracy: 0.01)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: m.latest("empty")), ["empty"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: m.latest("empty") + "/empty")), Data())
        // Writing is refused.
        XCTAssertFalse(FileManager.default.createFile(atPath: m.latest("big.bin") + "/new", contents: Data([1])))
        XCTAssertNil(FileHandle(forWritingAtPath: mountedBig))
        let r = m.stop()
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// A tree made by `repo backup` reads back through the mount: contents, symlinks, empty dirs.
    func testBackedUpTreeReadsBackExactly() throws {
        try fuseAvailable()
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "64K"])
        let src = fx.dir + "/src"
        let script = """
            set -e; mkdir -p '\(src)/part-1' '\(src)/part-2/deep' '\(src)/empty'
            head -c 2000000 /dev/urandom > '\(src)/part-1/col.bin'; seq 1 100000 > '\(src)/part-2/export.csv'
            echo leaf > '\(src)/part-2/deep/leaf'; ln -s part-1/col.bin '\(src)/link'; chmod 640 '\(src)/part-1/col.bin'
            """
        XCTAssertEqual(MountTests.sh("/bin/sh", "-c", script).0, 0)
        try fx.ok(["backup", src])
        let m = try Mounted(fx, test: self)
        let snaps = try FileManager.default.contentsOfDirectory(atPath: m.point + "/snapshots").filter { $0 != "latest" }
        XCTAssertEqual(snaps.count, 1)
        let mounted = m.point + "/snapshots/" + snaps[0] + src
        let d = MountTests.sh("diff", "-r", "--no-dereference", src, mounted)
        XCTAssertEqual(d.0, 0, String(decoding: d.1, as: UTF8.self) + d.2)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: mounted + "/link"), "part-1/col.bin")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mounted + "/empty"), [])
        let attrs = try FileManager.default.attributesOfItem(atPath: mounted + "/part-1/col.bin")
        XCTAssertEqual((attrs[.posixPermissions] as? Int).map { $0 & 0o777 }, 0o640)
        XCTAssertEqual(m.stop().status, 0)
    }

    func testRandomOffsetReadsMatchTheOriginal() throws {
        try fuseAvailable()
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "16K"])
        let data = TestData.random(2_500_000)
        try fx.store("r.bin", from: fx.file("r.bin", data))
        let m = try Mounted(fx, ["--read-ahead", "256K", "--cache-size", "1M"], test: self)  // small cache: evictions too
        let h = try XCTUnwrap(FileHandle(forReadingAtPath: m.latest("r.bin") + "/r.bin"))
        defer { try? h.close() }
        var g = SystemRandomNumberGenerator()
        for i in 0..<600 {
            let off = i < 4 ? [0, data.count - 1, data.count, data.count / 2][i] : Int.random(in: 0..<data.count, using: &g)
            let len = Int.random(in: 1...200_000, using: &g)
            try h.seek(toOffset: UInt64(off))
            let got = try h.read(upToCount: len) ?? Data()
            XCTAssertEqual(got, data[off..<min(data.count, off + len)], "offset \(off) length \(len)")
        }
        // And the whole file, sequentially, twice (the second from the kernel's cache).
        for _ in 0..<2 {
            try h.seek(toOffset: 0)
            XCTAssertEqual(try h.readToEnd(), data)
        }
        XCTAssertEqual(m.stop(signal: SIGTERM).status, 0)
    }

    // MARK: corruption and errors

    func testDamagedChunkGivesEIOAndALogLineNeverWrongBytes() throws {
        try fuseAvailable()
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "16K"])
        let data = TestData.random(1_000_000)
        try fx.store("d.bin", from: fx.file("d.bin", data))
        let pack = try XCTUnwrap(fx.packFiles().max { Self.size($0) < Self.size($1) })
        var bytes = try Data(contentsOf: URL(fileURLWithPath: pack))
        bytes[bytes.count / 2] ^= 0x10   // inside some chunk, far from the header
        try bytes.write(to: URL(fileURLWithPath: pack))
        let m = try Mounted(fx, test: self)
        let path = m.latest("d.bin") + "/d.bin"
        // cat fails with EIO ...
        let cat = MountTests.sh("cat", path, stdout: fx.dir + "/cat.out")
        XCTAssertNotEqual(cat.0, 0)
        XCTAssertTrue(cat.2.contains("Input/output error"), cat.2)
        // ... and whatever it got before the error is a prefix of the original.
        let got = try Data(contentsOf: URL(fileURLWithPath: fx.dir + "/cat.out"))
        XCTAssertLessThan(got.count, data.count)
        XCTAssertEqual(got, data.prefix(got.count))
        // Reads elsewhere still work: read every 64 KiB block; each either fails or is right.
        let h = try XCTUnwrap(FileHandle(forReadingAtPath: path))
        var failed = 0, good = 0
        for off in stride(from: 0, to: data.count, by: 65_536) {
            try h.seek(toOffset: UInt64(off))
            do {
                let block = try h.read(upToCount: 65_536) ?? Data()
                XCTAssertEqual(block, data[off..<min(data.count, off + 65_536)], "offset \(off)")
                good += 1
            } catch { failed += 1 }
        }
        try h.close()
        XCTAssertGreaterThan(failed, 0)
        XCTAssertGreaterThan(good, failed)
        let r = m.stop()
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("d.bin: chunk ") && r.stderr.contains("authentication failed") && r.stderr.contains("EIO"), r.stderr)
    }

    static func size(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0 }

    func testMissingRepositoryAndWrongPasswordFailLikeOtherCommands() throws {
        try fuseAvailable()
        let fx = Fixture()
        let point = fx.dir + "/mnt"
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        let missing = try fx.run(["mount", point])
        XCTAssertEqual(missing.status, 10, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("no repository at"), missing.stderr)
        try fx.initRepo()
        let wrong = try fx.run(["mount", point], env: ["REPO_PASSWORD": "nope"])
        XCTAssertEqual(wrong.status, 12, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("wrong password"), wrong.stderr)
        let noDir = try fx.run(["mount", fx.dir + "/no-such-dir"])
        XCTAssertEqual(noDir.status, 2, noDir.stderr)
        XCTAssertTrue(noDir.stderr.contains("mkdir -p"), noDir.stderr)
        XCTAssertFalse(MountTests.isMounted(point))
    }

    // MARK: lifecycle

    func testSignalsUnmountCleanlyAndNewSnapshotsAppear() throws {
        try fuseAvailable()
        let fx = Fixture()
        try fx.initRepo()
        try fx.store("a.sql", from: fx.file("a", TestData.sqlDump(bytes: 10_000)))
        for sig in [SIGINT, SIGTERM] {
            let m = try Mounted(fx, test: self)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: m.point).sorted(), ["by-host", "by-name", "by-tag", "snapshots"])
            // A snapshot stored while mounted shows up without remounting.
            let second = TestData.sqlDump(bytes: 20_000, seed: UInt64(sig))
            let id = try fx.store("b.sql", from: fx.file("b\(sig)", second))["short_id"] as! String
            var found = false
            let deadline = Date().addingTimeInterval(5)
            while !found && Date() < deadline {
                found = (try? FileManager.default.contentsOfDirectory(atPath: m.point + "/snapshots"))?.contains { $0.hasSuffix("_" + id) } ?? false
                if !found { Thread.sleep(forTimeInterval: 0.2) }
            }
            XCTAssertTrue(found, "snapshot \(id) did not appear")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: m.latest("b.sql") + "/b.sql")), second)
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: m.point + "/snapshots/latest").hasSuffix("_" + id), true)
            // Keep a file open while the signal arrives: the mount must still go away.
            let h = FileHandle(forReadingAtPath: m.latest("a.sql") + "/a.sql")
            let r = m.stop(signal: sig)
            try? h?.close()
            XCTAssertEqual(r.status, 0, "signal \(sig): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("unmounted"), r.stderr)
            XCTAssertFalse(MountTests.isMounted(m.point), "still mounted after signal \(sig)")
        }
        // Unmounting from outside ends the process too.
        let m = try Mounted(fx, test: self)
        let r = m.stop(signal: nil)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(MountTests.isMounted(m.point))
        // No lock is left behind.
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: fx.repo + "/locks"))?.count ?? 0, 0)
    }
}
