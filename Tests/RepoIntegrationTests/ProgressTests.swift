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
        let dumped = try onTerminal(fx, "'\(Fixture.binary)' dump latest > /dev/null")
        XCTAssertTrue(dumped.contains("ETA"), dumped)
        // Not a terminal: nothing on stderr but the snapshot id on stdout.
        let piped = try fx.run(["store", "--name", "big"], stdinPath: path)
        XCTAssertEqual(piped.stderr, "")
        XCTAssertEqual(piped.out.trimmingCharacters(in: .whitespacesAndNewlines).count, 64)
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
