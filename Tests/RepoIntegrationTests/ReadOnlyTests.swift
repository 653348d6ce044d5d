import XCTest
import Foundation

/// Reading needs no write access (a read-only bind mount; `--no-lock`), and a completely full
/// disk does not stop `forget --prune` from freeing space. Both mount file systems, so they
/// need root; every mount is undone in a teardown block, even when the test fails.
final class ReadOnlyTests: XCTestCase {
    /// #12: on a read-only bind mount of the repository, every reading command (snapshots,
    /// stats, ls, diff, check, restore, dump, mount, unlock) works without a lock and writers
    /// fail with a clear message.
    func testReadOnlyRepository() throws {
        let fx = Fixture()
        try fx.initRepo()
        let data = TestData.random(3 << 20)
        let streamID = try fx.store("db.sql", from: fx.file("in", data))["id"] as! String
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src + "/sub", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: src + "/sub/a.txt", contents: Data("hello\n".utf8))
        try fx.ok(["backup", src])
        FileManager.default.createFile(atPath: src + "/sub/b.txt", contents: Data("more\n".utf8))
        try fx.ok(["backup", src])
        let trees = try fx.snapshots().filter { $0["paths"] is [String] }.map { $0["id"] as! String }

        let ro = fx.dir + "/ro"
        try mountReadOnly(fx.repo, at: ro)

        let env = ["REPO_REPOSITORY": ro]
        let reads: [[String]] = [["snapshots"], ["stats"], ["ls", trees[1]], ["diff", trees[0], trees[1]],
                                 ["check", "--read-data"], ["restore", trees[1], "--target", fx.dir + "/restored"],
                                 ["unlock"], ["forget", "--dry-run", "--keep-last", "1"], ["prune", "--dry-run"]]
        for args in reads {
            let r = try fx.run(args, env: env)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr, "", "\(args) must say nothing without -v")
        }
        let dump = try fx.run(["dump", streamID], env: env)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertTrue(dump.stdout == data)
        let verbose = try fx.run(["ls", trees[0], "-v"], env: env)
        XCTAssertEqual(verbose.status, 0, verbose.stderr)
        XCTAssertEqual(verbose.stderr.split(separator: "\n").filter { $0.contains("without a lock") }.count, 1, verbose.stderr)
        XCTAssertEqual(try String(contentsOfFile: fx.dir + "/restored" + src + "/sub/b.txt", encoding: .utf8), "more\n")

        // mount too (its FUSE teardown runs before the bind mount's: blocks run last-in first-out).
        let mounted = try MountTests.Mounted(fx, ["--repo", ro], test: self)
        XCTAssertTrue(try Data(contentsOf: URL(fileURLWithPath: mounted.latest("db.sql") + "/db.sql")) == data)
        let mountResult = mounted.stop()
        XCTAssertEqual(mountResult.status, 0, mountResult.stderr)

        let store = try fx.run(["store", "--name", "x"], stdinPath: fx.file("x", Data("x".utf8)), env: env)
        XCTAssertEqual(store.status, 1, store.stderr)
        XCTAssertTrue(store.stderr.contains("cannot be written"), store.stderr)
        XCTAssertEqual(try fx.run(["prune"], env: env).status, 1)
    }

    /// `--no-lock` reads without writing a lock; writers refuse it.
    func testNoLockFlag() throws {
        let fx = Fixture()
        try fx.initRepo()
        let data = TestData.random(1 << 20)
        try fx.store("db.sql", from: fx.file("in", data))
        // A running store holds the only lock; the reader must not add one.
        let other = try fx.start(["store", "--name", "slow"], stdinPath: "/dev/zero")
        defer { kill(other.0.processIdentifier, SIGKILL); _ = fx.collect(other) }
        // Wait for its lock itself: a `.tmp-` file there is a lock still being written (the
        // count below leaves those out, so the wait must too).
        func locks() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: fx.repo + "/locks")) ?? []).filter { !$0.hasPrefix(".tmp") }
        }
        let deadline = Date().addingTimeInterval(30)
        while locks().isEmpty && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let dump = try fx.run(["dump", "latest", "--name", "db.sql", "--no-lock"])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertTrue(dump.stdout == data)
        XCTAssertEqual(locks().count, 1, "only the running store's lock")
        let refused = try fx.run(["prune", "--no-lock"])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--no-lock"), refused.stderr)
    }

    /// #12: the repository filled its disk completely (a store failed for lack of space, and
    /// the rest is taken too): `forget --prune` still runs, frees space, and leaves a
    /// repository that checks and restores; the space reserve is back afterwards.
    func testForgetPruneOnAFullDisk() throws {
        let fx = Fixture()
        let mnt = fx.dir + "/tmpfs"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        XCTAssertEqual(quietShell("mount -t tmpfs -o size=24m tmpfs '\(mnt)'"), 0, "this test needs root to mount a small tmpfs")
        addTeardownBlock { quietShell("umount '\(mnt)'") }
        let env = ["REPO_REPOSITORY": mnt + "/repo"]
        XCTAssertEqual(try fx.run(["init"], env: env).status, 0)
        var last = Data()
        for day in 1...3 {
            last = TestData.random(5 << 20)
            let r = try fx.run(["store", "--name", "db", "--time", "2024-01-0\(day)T00:00:00Z"], stdinPath: fx.file("d\(day)", last), env: env)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let full = try fx.run(["store", "--name", "other"], stdinPath: fx.file("big", TestData.random(30 << 20)), env: env)
        XCTAssertEqual(full.status, 1, full.stderr)
        // Whatever room is left goes too.
        quietShell("cat /dev/zero > '\(mnt)/filler'")
        XCTAssertNotEqual(quietShell("echo x > '\(mnt)/probe'"), 0, "the disk should be full")

        let r = try fx.run(["forget", "--keep-last", "1", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0",
                            "--prune", "--safety-margin", "0", "--json"], env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try JSONSerialization.jsonObject(with: r.stdout) as! [String: Any]
        XCTAssertEqual(out["forgotten"] as? Int, 2)
        let prune = out["prune"] as! [String: Any]
        XCTAssertGreaterThan(prune["bytes_freed"] as! Int, 8 << 20, "\(prune)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: mnt + "/repo/reserve"), "the space reserve must be restored")
        let check = try fx.run(["check", "--read-data"], env: env)
        XCTAssertEqual(check.status, 0, check.out + check.stderr)
        XCTAssertTrue(try fx.run(["dump", "latest", "--name", "db"], env: env).stdout == last)
    }
}
