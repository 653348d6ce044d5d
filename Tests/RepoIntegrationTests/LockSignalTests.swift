import XCTest
import Foundation

/// Locks and signals, against the built binary: no way of ending a command (SIGINT, SIGTERM,
/// SIGHUP, a reader closing the pipe) leaves its lock behind; Ctrl-C stops a store's whole
/// producer process group at once; stale locks of dead processes are cleaned up; a store whose
/// lock vanished does not commit; `unlock --remove-all` keeps live local locks.
final class LockSignalTests: XCTestCase {
    private func lockObjects(_ fx: Fixture) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: fx.repo + "/locks")) ?? []).filter { !$0.hasPrefix(".tmp") }
    }

    private func waitForLock(_ fx: Fixture, count: Int = 1, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date().addingTimeInterval(30)
        while lockObjects(fx).count < count && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertGreaterThanOrEqual(lockObjects(fx).count, count, "the command never took its lock", file: file, line: line)
    }

    /// Starts `repo args…` with standard output on a pipe nobody reads: once the pipe is full the
    /// command blocks in `write`, holding its lock, until a signal arrives.
    private func startBlocked(_ fx: Fixture, _ args: [String]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Fixture.binary)
        p.arguments = args
        p.environment = fx.environment
        let out = Pipe(), err = Pipe()
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err)
    }

    /// A tree snapshot whose listing is far larger than a pipe buffer, and a second one that
    /// differs in every file (so `diff` prints as much).
    private func treeRepository() throws -> Fixture {
        let fx = Fixture()
        try fx.initRepo()
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        for i in 0..<1500 { FileManager.default.createFile(atPath: src + "/a-file-with-a-rather-long-name-\(i).txt", contents: Data("\(i)\n".utf8)) }
        try fx.ok(["backup", src])
        for i in 0..<1500 { FileManager.default.createFile(atPath: src + "/a-file-with-a-rather-long-name-\(i).txt", contents: Data("\(i) changed\n".utf8)) }
        try fx.ok(["backup", src])
        return fx
    }

    /// #9: `ls`, `diff` and `check` ended by SIGINT, SIGTERM or SIGHUP release their lock and
    /// exit 128 + signal; an exclusive `prune` then runs at once.
    func testSignalsReleaseTheLockOfReadingCommands() throws {
        let fx = try treeRepository()
        let snaps = try fx.snapshots()
        let first = snaps[0]["id"] as! String
        let cases: [([String], Int32)] = [
            (["ls", "latest"], SIGTERM), (["ls", "latest"], SIGINT), (["ls", "latest"], SIGHUP),
            (["diff", first, "latest"], SIGTERM), (["diff", first, "latest"], SIGINT),
        ]
        for (args, sig) in cases {
            let (p, _, err) = try startBlocked(fx, args)
            waitForLock(fx)
            Thread.sleep(forTimeInterval: 0.3)   // let it fill the pipe and block in write
            kill(p.processIdentifier, sig)
            p.waitUntilExit()
            let label = "\(args.joined(separator: " ")) / signal \(sig)"
            XCTAssertEqual(p.terminationReason, .exit, label)
            XCTAssertEqual(p.terminationStatus, 128 + sig, "\(label): \(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
            XCTAssertEqual(lockObjects(fx), [], "\(label) left its lock behind")
        }
        // check: signalled as soon as it holds its lock.
        let (p, _, _) = try startBlocked(fx, ["check", "--read-data"])
        waitForLock(fx)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertEqual(lockObjects(fx), [], "check left its lock behind")
        let prune = try fx.run(["prune"])
        XCTAssertEqual(prune.status, 0, prune.stderr)
        XCTAssertFalse(prune.stderr.contains("stale"), prune.stderr)
    }

    /// #9: a reader that closes the pipe (`| head`) ends the command quietly: exit 0, nothing on
    /// stderr, no lock left.
    func testClosedPipeEndsQuietly() throws {
        let fx = try treeRepository()
        let big = fx.file("big", TestData.random(8 << 20))
        try fx.ok(["store", "--name", "big.bin"], stdinPath: big)
        let snaps = try fx.snapshots()
        let (a, b) = (snaps[0]["id"] as! String, snaps[1]["id"] as! String)
        let bin = "'\(Fixture.binary)'"
        let commands = [
            "\(bin) ls \(b) | head -n 1",
            "\(bin) diff \(a) \(b) | head -n 1",
            "\(bin) dump latest --name big.bin | head -c 100",
        ]
        for c in commands {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["-c", "set -o pipefail; " + c]
            p.environment = fx.environment
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "\(c): \(stderr)")
            XCTAssertEqual(stderr, "", c)
            XCTAssertFalse(stdout.isEmpty, c)
            XCTAssertEqual(lockObjects(fx), [], "\(c) left its lock behind")
        }
    }

    /// #10: Ctrl-C during `store -- CMD` (and `--stream`) whose grandchild holds the pipe open
    /// stops within a second or two: exit 130, no snapshot, no lock, no producer left running.
    func testInterruptStopsTheProducerProcessGroup() throws {
        let fx = Fixture()
        try fx.initRepo()
        let marker = "repo-lock-test-\(UUID().uuidString.prefix(8))"
        let variants: [[String]] = [
            ["store", "--name", "x", "--", "sh", "-c", "sleep 100 & sleep 100 # \(marker)"],
            ["store", "--stream", "a=sleep 100 & sleep 100 # \(marker)", "--stream", "b=sleep 100 # \(marker)"],
        ]
        for args in variants {
            let started = try fx.start(args)
            waitForLock(fx)
            Thread.sleep(forTimeInterval: 0.5)
            let t0 = Date()
            kill(started.0.processIdentifier, SIGINT)
            let r = fx.collect(started)
            let elapsed = Date().timeIntervalSince(t0)
            XCTAssertEqual(r.status, 130, r.stderr)
            XCTAssertLessThan(elapsed, 5, "store took \(elapsed) s to stop")
            XCTAssertEqual(lockObjects(fx), [])
            XCTAssertEqual(try fx.snapshots().count, 0)
            Thread.sleep(forTimeInterval: 1.5)   // the SIGKILL follow-up
            let ps = Process()
            ps.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
            ps.arguments = ["-f", marker]
            ps.standardOutput = FileHandle.nullDevice
            try ps.run()
            ps.waitUntilExit()
            XCTAssertEqual(ps.terminationStatus, 1, "producer processes are still running")
        }
    }

    /// #11: locks of dead processes on this host are removed by the next command that locks,
    /// which says so in one line; the command after that says nothing.
    func testStaleLocksOfDeadProcessesAreCleanedUpOnce() throws {
        let fx = try treeRepository()
        // Five at once (each would clean up the previous one's lock were they sequential).
        let running = try (0..<5).map { _ in try startBlocked(fx, ["ls", "latest"]) }
        waitForLock(fx, count: 5)
        for (p, _, _) in running { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        XCTAssertEqual(lockObjects(fx).count, 5)
        let first = try fx.run(["check"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let warnings = first.stderr.split(separator: "\n").filter { $0.contains("stale") }
        XCTAssertEqual(warnings.count, 1, first.stderr)
        XCTAssertTrue(first.stderr.contains("removed 5 stale locks"), first.stderr)
        XCTAssertEqual(lockObjects(fx), [])
        let second = try fx.run(["check"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertFalse(second.stderr.contains("stale"), second.stderr)
    }

    /// #8: `unlock --remove-all` keeps the lock of a process still running on this host (exit
    /// 11, naming it) unless `--force`.
    func testUnlockRemoveAllKeepsLiveLocalLocks() throws {
        let fx = try treeRepository()
        let (p, _, _) = try startBlocked(fx, ["ls", "latest"])
        defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        waitForLock(fx)
        let refused = try fx.run(["unlock", "--remove-all"])
        XCTAssertEqual(refused.status, 11, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("ls latest"), refused.stderr)
        XCTAssertEqual(lockObjects(fx).count, 1)
        let forced = try fx.run(["unlock", "--remove-all", "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(lockObjects(fx), [])
    }

    /// #8: a store whose lock disappears (removed with `unlock --remove-all --force`, or
    /// corrupted) while a prune deletes the packs it wrote must not commit a snapshot: it fails
    /// with a clear error, and the repository stays consistent. With the default safety margin
    /// prune does not even delete the young packs.
    func testStoreWhoseLockVanishedDoesNotCommit() throws {
        for (damage, margin) in [("remove", "0"), ("corrupt", "0"), ("remove", nil)] as [(String, String?)] {
            let fx = Fixture()
            try fx.initRepo()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Fixture.binary)
            p.arguments = ["store", "--name", "db.sql"]
            p.environment = fx.environment
            let input = Pipe(), err = Pipe()
            p.standardInput = input
            p.standardOutput = FileHandle.nullDevice
            p.standardError = err
            try p.run()
            // Full packs (16 MiB each) are uploaded while the input is still open.
            input.fileHandleForWriting.write(TestData.random(52 << 20))
            waitForLock(fx)
            let deadline = Date().addingTimeInterval(60)
            while fx.packFiles().count < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            XCTAssertGreaterThanOrEqual(fx.packFiles().count, 2)
            if damage == "remove" {
                XCTAssertEqual(try fx.run(["unlock", "--remove-all", "--force"]).status, 0)
            } else {
                for l in lockObjects(fx) { FileManager.default.createFile(atPath: fx.repo + "/locks/" + l, contents: Data("garbage".utf8)) }
            }
            let prune = try fx.run(["prune", "--json"] + (margin.map { ["--safety-margin", $0] } ?? []))
            XCTAssertEqual(prune.status, 0, prune.stderr)
            let report = try JSONSerialization.jsonObject(with: prune.stdout) as! [String: Any]
            if margin == nil {
                XCTAssertEqual(report["packs_deleted"] as? Int, 0, "young packs must survive: \(report)")
                XCTAssertGreaterThanOrEqual(report["recent_packs_kept"] as? Int ?? 0, 2, "\(report)")
            } else {
                XCTAssertGreaterThanOrEqual(report["packs_deleted"] as? Int ?? 0, 1, "\(report)")
            }
            try input.fileHandleForWriting.close()
            p.waitUntilExit()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let label = "\(damage), margin \(margin ?? "default")"
            XCTAssertEqual(p.terminationStatus, 1, "\(label): \(stderr)")
            XCTAssertTrue(stderr.contains("lock was"), "\(label): \(stderr)")
            XCTAssertEqual(try fx.snapshots().count, 0, label)
            let check = try fx.run(["check", "--read-data"])
            XCTAssertEqual(check.status, 0, "\(label): \(check.out) \(check.stderr)")
            // A retry works (and reuses what survived).
            let again = try fx.run(["store", "--name", "db.sql"], stdinPath: fx.file("small", TestData.random(100_000)))
            XCTAssertEqual(again.status, 0, "\(label): \(again.stderr)")
        }
    }
}
