import XCTest
import Foundation

/// Bad input, crashes and interrupts: clear errors, the right exit codes, nothing lost.
final class FailureTests: XCTestCase {
    func testFailingCommandCommitsNoSnapshot() throws {
        let fx = Fixture()
        try fx.initRepo()
        let r = try fx.run(["store", "--name", "x", "--", "sh", "-c", "echo partial; exit 3"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("exited with status 3"), r.stderr)
        XCTAssertTrue(r.stderr.contains("no snapshot"), r.stderr)
        XCTAssertEqual(try fx.snapshots().count, 0)
        let killed = try fx.run(["store", "--name", "x", "--", "sh", "-c", "echo partial; kill -9 $$"])
        XCTAssertNotEqual(killed.status, 0)
        XCTAssertTrue(killed.stderr.contains("signal 9"), killed.stderr)
        XCTAssertEqual(try fx.snapshots().count, 0)
        XCTAssertEqual(try fx.run(["check"]).status, 0)
    }

    func testMissingCommandFails() throws {
        let fx = Fixture()
        try fx.initRepo()
        let r = try fx.run(["store", "--name", "x", "--", "no-such-command-xyz"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(try fx.snapshots().count, 0)
    }

    /// SIGINT and SIGTERM while data is still arriving: no snapshot, exit 128 + signal.
    func testInterruptLeavesNoSnapshot() throws {
        for (sig, code) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let fx = Fixture()
            try fx.initRepo()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Fixture.binary)
            p.arguments = ["store", "--name", "slow.sql"]
            p.environment = fx.environment
            let input = Pipe()
            p.standardInput = input
            p.standardOutput = FileHandle.nullDevice
            let err = Pipe()
            p.standardError = err
            try p.run()
            input.fileHandleForWriting.write(TestData.random(6 << 20))
            Thread.sleep(forTimeInterval: 0.5)
            kill(p.processIdentifier, sig)
            let deadline = Date().addingTimeInterval(20)
            while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            try? input.fileHandleForWriting.close()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, code, "signal \(sig)")
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertTrue(message.contains("interrupted"), message)
            XCTAssertEqual(try fx.snapshots().count, 0)
            XCTAssertEqual(try fx.run(["check"]).status, 0)
            // The lock was released: no lock objects remain.
            XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: fx.repo + "/locks"))?.count ?? 0, 0)
        }
    }

    /// kill -9 at random moments during large stores; afterwards check passes, earlier
    /// snapshots dump byte-identical, and a retried store reuses the packs already written.
    func testKill9DuringStores() throws {
        let fx = Fixture()
        try fx.initRepo()
        let baseline = TestData.sqlDump(bytes: 3_000_000, seed: 11)
        let baseID = try fx.store("base.sql", from: fx.file("base", baseline))["id"] as! String
        let big = fx.file("big", TestData.random(120_000_000))
        let basePacks = fx.packFiles().count
        var packsBeforeRetry = 0
        var completed = 0
        for round in 0..<4 {
            let before = fx.packFiles().count
            let started = try fx.start(["store", "--name", "big.bin"], stdinPath: big)
            // Wait until this store has uploaded a pack (on a loaded machine key derivation and
            // the first 16 MiB can take seconds), then kill at a random moment after that.
            let deadline = Date().addingTimeInterval(60)
            while fx.packFiles().count == before && started.0.isRunning && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.02)
            }
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.3))
            kill(started.0.processIdentifier, SIGKILL)
            let r = fx.collect(started)
            let check = try fx.run(["check"])
            XCTAssertEqual(check.status, 0, "round \(round): \(check.out) \(check.stderr)")
            XCTAssertTrue(try fx.ok(["dump", baseID]).stdout == baseline, "round \(round)")
            if r.status == 0 { completed += 1 }
            XCTAssertEqual(try fx.snapshots(["--name", "big.bin"]).count, completed, "only finished stores leave snapshots")
            packsBeforeRetry = fx.packFiles().count
        }
        XCTAssertGreaterThan(packsBeforeRetry, basePacks, "the kills should have left packs behind")
        let retry = try fx.store("big.bin", from: big)
        XCTAssertLessThan(retry["new_chunks"] as! Int, retry["chunks"] as! Int, "retried store must reuse uploaded packs")
        let dumped = try fx.ok(["dump", retry["id"] as! String])
        XCTAssertTrue(dumped.stdout == FileManager.default.contents(atPath: big)!)
        let full = try fx.run(["check", "--read-data"])
        XCTAssertEqual(full.status, 0, full.out + full.stderr)
        // Locks left by the killed processes are stale and removable.
        let unlock = try fx.ok(["unlock"])
        XCTAssertTrue(unlock.out.contains("lock(s) removed"))
    }

    func testWrongPasswordAndMissingRepository() throws {
        let fx = Fixture()
        try fx.initRepo()
        let wrong = try fx.run(["snapshots"], env: ["REPO_PASSWORD": "wrong"])
        XCTAssertEqual(wrong.status, 12)
        let lines = wrong.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("wrong password"), wrong.stderr)
        let missing = try fx.run(["snapshots"], env: ["REPO_REPOSITORY": fx.dir + "/nothing-here"])
        XCTAssertEqual(missing.status, 10)
        XCTAssertTrue(missing.stderr.contains("no repository at"), missing.stderr)
        XCTAssertEqual(try fx.run(["dump", "latest"], env: ["REPO_REPOSITORY": fx.dir + "/nothing-here"]).status, 10)
        XCTAssertEqual(try fx.run(["store", "--bogus"]).status, 2)
    }

    /// One flipped bit in a pack: `check --read-data` exits 13 naming the pack; `dump` fails
    /// loudly and never writes wrong bytes.
    func testBitFlipInPack() throws {
        for location in ["blob", "header", "trailer"] {
            let fx = Fixture()
            try fx.initRepo()
            let data = TestData.random(10 << 20)
            let id = try fx.store("d.bin", from: fx.file("d", data))["id"] as! String
            XCTAssertEqual(try fx.run(["check", "--read-data"]).status, 0)
            let packs = fx.packFiles()
            // The data pack is the large one.
            let pack = try XCTUnwrap(packs.max { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int ?? 0) ?? 0 < (try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int ?? 0) ?? 0 })
            var bytes = try Data(contentsOf: URL(fileURLWithPath: pack))
            let offset = location == "blob" ? bytes.count / 3 : location == "header" ? bytes.count - 60 : bytes.count - 2
            bytes[offset] ^= 0x04
            try bytes.write(to: URL(fileURLWithPath: pack))
            let packName = URL(fileURLWithPath: pack).lastPathComponent
            let check = try fx.run(["check", "--read-data"])
            XCTAssertEqual(check.status, 13, location)
            XCTAssertTrue((check.out + check.stderr).contains(packName), "\(location): check must name the pack: \(check.out)")
            let dump = try fx.run(["dump", id])
            if location == "blob" {
                XCTAssertEqual(dump.status, 13, dump.stderr)
                XCTAssertTrue(dump.stderr.contains(packName), dump.stderr)
                XCTAssertLessThan(dump.stdout.count, data.count)
                XCTAssertTrue(data.starts(with: dump.stdout), "dump wrote bytes that differ from the original")
            } else {
                // Header damage does not touch blob bytes: dump either fails or writes the exact original.
                if dump.status == 0 { XCTAssertTrue(dump.stdout == data) } else { XCTAssertTrue(data.starts(with: dump.stdout)) }
            }
        }
    }

    func testDeletedCacheIsRebuiltTransparently() throws {
        let fx = Fixture()
        try fx.initRepo()
        let data = TestData.sqlDump(bytes: 5_000_000)
        let path = fx.file("db", data)
        let id = try fx.store("db.sql", from: path)["id"] as! String
        try FileManager.default.removeItem(atPath: fx.cache)
        XCTAssertEqual(try fx.snapshots().count, 1)
        try FileManager.default.removeItem(atPath: fx.cache)
        XCTAssertTrue(try fx.ok(["dump", id]).stdout == data)
        try FileManager.default.removeItem(atPath: fx.cache)
        let again = try fx.store("db.sql", from: path)
        XCTAssertEqual(again["new_chunks"] as? Int, 0, "a rebuilt catalog must still dedup")
        // A corrupted catalog file is replaced too.
        let catalogDir = try FileManager.default.contentsOfDirectory(atPath: fx.cache)[0]
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: fx.cache + "/" + catalogDir + "/catalog.sqlite"))
        XCTAssertEqual(try fx.snapshots().count, 2)
    }

    func testConcurrentStores() throws {
        let fx = Fixture()
        try fx.initRepo()
        let a = TestData.random(40 << 20), b = TestData.sqlDump(bytes: 40 << 20, seed: 3)
        let pa = fx.file("a", a), pb = fx.file("b", b)
        let sa = try fx.start(["store", "--name", "a", "--json"], stdinPath: pa)
        let sb = try fx.start(["store", "--name", "b", "--json"], stdinPath: pb)
        let ra = fx.collect(sa), rb = fx.collect(sb)
        XCTAssertEqual(ra.status, 0, ra.stderr)
        XCTAssertEqual(rb.status, 0, rb.stderr)
        XCTAssertTrue(try fx.ok(["dump", "latest", "--name", "a"]).stdout == a)
        XCTAssertTrue(try fx.ok(["dump", "latest", "--name", "b"]).stdout == b)
        let check = try fx.run(["check", "--read-data"])
        XCTAssertEqual(check.status, 0, check.out)
    }

    /// The repository's disk fills up during a store: a clear error, no snapshot, and the
    /// earlier snapshot is intact.
    func testDiskFull() throws {
        let fx = Fixture()
        let mountPoint = fx.dir + "/tmpfs-mount"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=24m", "tmpfs", mountPoint]
        try mount.run()
        mount.waitUntilExit()
        XCTAssertEqual(mount.terminationStatus, 0, "this test needs root to mount a small tmpfs")
        guard mount.terminationStatus == 0 else { return }
        addTeardownBlock {
            let u = Process()
            u.executableURL = URL(fileURLWithPath: "/bin/umount")
            u.arguments = [mountPoint]
            try? u.run()
            u.waitUntilExit()
        }
        let env = ["REPO_REPOSITORY": mountPoint + "/repo"]
        XCTAssertEqual(try fx.run(["init"], env: env).status, 0)
        let small = TestData.random(5 << 20)
        let first = try fx.run(["store", "--name", "small", "--json"], stdinPath: fx.file("small", small), env: env)
        XCTAssertEqual(first.status, 0, first.stderr)
        let full = try fx.run(["store", "--name", "big"], stdinPath: fx.file("big", TestData.random(60 << 20)), env: env)
        XCTAssertEqual(full.status, 1, full.stderr)
        XCTAssertTrue(full.stderr.contains("no space left"), full.stderr)
        let snaps = try fx.run(["snapshots", "--json"], env: env)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: snaps.stdout) as? [Any])?.count, 1)
        XCTAssertTrue(try fx.run(["dump", "latest"], env: env).stdout == small)
        let check = try fx.run(["check"], env: env)
        XCTAssertEqual(check.status, 0, check.out + check.stderr)
    }
}
