import XCTest
import Foundation

/// The progress line: shown on a terminal, silent in pipes unless -v.
final class ProgressTests: XCTestCase {
    /// Runs a shell command line under `script`, which gives it a pseudo-terminal.
    func onTerminal(_ fx: Fixture, _ commandLine: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        p.arguments = ["-qfec", commandLine, "/dev/null"]
        p.environment = fx.environment
        let out = Pipe()
        p.standardOutput = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, String(decoding: data, as: UTF8.self))
        return String(decoding: data, as: UTF8.self)
    }

    func testProgressOnTerminalOnly() throws {
        let fx = Fixture()
        try fx.initRepo()
        let path = fx.file("big", TestData.random(150_000_000))
        let shown = try onTerminal(fx, "'\(Fixture.binary)' store --name big < '\(path)' > /dev/null")
        XCTAssertTrue(shown.contains("stored "), shown)
        XCTAssertTrue(shown.contains("MB/s"), shown)
        XCTAssertTrue(shown.contains("\u{1B}[K"), "the line is redrawn in place")
        // A dump of 150 MB can end inside the first 0.2 s interval on a fast machine (0.37 s
        // here in debug), so the dump draws with the test seam's 1 ms interval.
        let dumped = try onTerminal(fx, "REPO_TEST_PROGRESS_INTERVAL_MS=1 '\(Fixture.binary)' dump latest > /dev/null")
        XCTAssertTrue(dumped.contains("ETA"), dumped)
        // Not a terminal: nothing on stderr but the snapshot id on stdout.
        let piped = try fx.run(["store", "--name", "big"], stdinPath: path)
        XCTAssertEqual(piped.stderr, "")
        XCTAssertEqual(piped.out.trimmingCharacters(in: .whitespacesAndNewlines).count, 64)
    }

    /// Every long command draws its line on a terminal: backup, restore, check --read-data,
    /// copy, drill and forget --prune. (The first line is drawn after 1 ms here, not 0.2 s, so
    /// that these short runs draw one at all: REPO_TEST_PROGRESS_INTERVAL_MS.)
    func testEveryLongCommandShowsProgressOnATerminal() throws {
        let fx = Fixture()
        try fx.initRepo()
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        for i in 0..<3 { _ = fx.file("src/f\(i)", TestData.random(10_000_000)) }
        let bin = "REPO_TEST_PROGRESS_INTERVAL_MS=1 '\(Fixture.binary)'"
        let other = Fixture()
        try other.initRepo()
        var commands: [(String, String)] = [
            ("backup", "\(bin) backup '\(src)' > /dev/null"),
            ("restore", "\(bin) restore latest --target '\(fx.dir)/restored' > /dev/null"),
            ("check --read-data", "\(bin) check --read-data > /dev/null"),
            ("copy", "REPO_FROM_PASSWORD='\(fx.password)' \(bin) copy --from-repo '\(fx.repo)' --repo '\(other.repo)' > /dev/null"),
            ("drill", "\(bin) drill latest > /dev/null"),
        ]
        for (name, line) in commands {
            let shown = try onTerminal(fx, line)
            XCTAssertTrue(shown.contains("\u{1B}[K"), "\(name): no progress line was drawn: \(shown.prefix(300))")
            XCTAssertTrue(shown.contains("/s"), "\(name): the line shows a rate: \(shown.prefix(300))")
        }
        // A second backup of new data, so forget --prune has packs to delete.
        for i in 0..<3 { _ = fx.file("src/f\(i)", TestData.random(10_000_000)) }
        try fx.ok(["backup", src])
        commands = [("forget --prune", "\(bin) forget --keep-last 1 --keep-hot 0 --keep-warm 0 --keep-cold 0 --prune --safety-margin 0 > /dev/null")]
        for (name, line) in commands {
            let shown = try onTerminal(fx, line)
            XCTAssertTrue(shown.contains("\u{1B}[K"), "\(name): no progress line was drawn: \(shown.prefix(300))")
        }
        // Without a terminal, none of them draws anything.
        let piped = try fx.run(["check", "--read-data"], env: ["REPO_TEST_PROGRESS_INTERVAL_MS": "1"])
        XCTAssertFalse(piped.stderr.contains("\u{1B}[K"), piped.stderr)
    }

    func testStoreRefusesATerminalAsInput() throws {
        let fx = Fixture()
        try fx.initRepo()
        let out = try onTerminal(fx, "'\(Fixture.binary)' store --name x; echo \"rc=$?\"")
        XCTAssertTrue(out.contains("rc=2"), out)
        XCTAssertTrue(out.contains("standard input is a terminal"), out)
        XCTAssertEqual(try fx.snapshots().count, 0)
    }
}
