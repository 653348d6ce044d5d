import XCTest
import Foundation

/// `repo init/store/dump/snapshots` round trips through the real binary.
final class StoreDumpTests: XCTestCase {
    func roundTrip(_ fx: Fixture, _ data: Data, name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = fx.file(name, data)
        let stored = try fx.store(name, from: path, file: file, line: line)
        let id = try XCTUnwrap(stored["id"] as? String)
        XCTAssertEqual(stored["bytes"] as? Int, data.count, file: file, line: line)
        let dumped = try fx.ok(["dump", id], file: file, line: line)
        XCTAssertEqual(dumped.stdout.count, data.count, "size of \(name)", file: file, line: line)
        XCTAssertTrue(dumped.stdout == data, "content of \(name) differs after dump", file: file, line: line)
    }

    func testRoundTripEdgeSizes() throws {
        let fx = Fixture()
        try fx.initRepo()
        // Default chunker: min 256 KiB, avg 1 MiB, max 4 MiB.
        for size in [0, 1, 256 << 10, (256 << 10) + 1, 1 << 20, 4 << 20, (4 << 20) + 1, (8 << 20) + 3] {
            try roundTrip(fx, TestData.random(size), name: "s\(size)")
        }
        let check = try fx.run(["check", "--read-data"])
        XCTAssertEqual(check.status, 0, check.stderr + check.out)
    }

    func testRoundTrip100MBRandomAndSQLDump() throws {
        let fx = Fixture()
        try fx.initRepo()
        try roundTrip(fx, TestData.random(100_000_000), name: "random.bin")
        let sql = TestData.sqlDump(bytes: 30_000_000)
        try roundTrip(fx, sql, name: "db.sql")
        // SQL text compresses: the repository is much smaller than the input for that part.
        let snaps = try fx.snapshots(["--name", "db.sql"])
        XCTAssertEqual(snaps.count, 1)
        XCTAssertLessThan(snaps[0]["new_bytes"] as! Int, sql.count / 2)
    }

    func testSnapshotRecordsStreamSHA256AndJSONFields() throws {
        let fx = Fixture()
        try fx.initRepo()
        let data = TestData.sqlDump(bytes: 200_000)
        let stored = try fx.store("db.sql", from: fx.file("in", data), extra: ["--tag", "nightly", "--tag", "prod", "--host", "db1",
                                                                               "--time", "2025-03-04T05:06:07Z"])
        let sha = Process.sha256(data)
        XCTAssertEqual(stored["sha256"] as? String, sha)
        let snaps = try fx.snapshots()
        XCTAssertEqual(snaps.count, 1)
        let s = snaps[0]
        XCTAssertEqual(s["id"] as? String, stored["id"] as? String)
        XCTAssertEqual(s["host"] as? String, "db1")
        XCTAssertEqual(s["name"] as? String, "db.sql")
        XCTAssertEqual(s["tags"] as? [String], ["nightly", "prod"])
        XCTAssertTrue((s["time"] as? String ?? "").hasPrefix("2025-03-04T05:06:07"))
    }

    func testLatestWithFiltersAndPrefixes() throws {
        let fx = Fixture()
        try fx.initRepo()
        let a = try fx.store("a.sql", from: fx.file("a", Data("first a\n".utf8)), extra: ["--time", "2025-01-01T00:00:00Z"])
        _ = try fx.store("b.sql", from: fx.file("b", Data("only b\n".utf8)), extra: ["--time", "2025-01-02T00:00:00Z", "--tag", "x"])
        _ = try fx.store("a.sql", from: fx.file("a2", Data("second a\n".utf8)), extra: ["--time", "2025-01-03T00:00:00Z"])
        XCTAssertEqual(try fx.ok(["dump", "latest"]).out, "second a\n")
        XCTAssertEqual(try fx.ok(["dump", "latest", "--name", "b.sql"]).out, "only b\n")
        XCTAssertEqual(try fx.ok(["dump", "latest", "--tag", "x"]).out, "only b\n")
        let prefix = String((a["id"] as! String).prefix(10))
        XCTAssertEqual(try fx.ok(["dump", prefix]).out, "first a\n")
        XCTAssertEqual(try fx.ok(["dump", "latest", "a.sql", "--name", "a.sql"]).out, "second a\n")
        let none = try fx.run(["dump", "latest", "--name", "nope"])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("no snapshot matches"), none.stderr)
        XCTAssertEqual(try fx.run(["dump", "zz-not-hex"]).status, 2)
        XCTAssertEqual(try fx.snapshots(["--name", "a.sql"]).count, 2)
    }

    func testStoreFromCommand() throws {
        let fx = Fixture()
        try fx.initRepo()
        let r = try fx.ok(["store", "--name", "gen.sql", "--", "sh", "-c", "for i in $(seq 1 20000); do echo \"row $i\"; done"])
        let id = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(id.count, 64)
        let expected = (1...20000).map { "row \($0)\n" }.joined()
        XCTAssertEqual(try fx.ok(["dump", id]).out, expected)
    }

    func testPasswordFileAndCommand() throws {
        let fx = Fixture()
        try fx.initRepo()
        let pwFile = fx.file("pw", Data((fx.password + "\n").utf8))
        let viaFile = try fx.run(["snapshots", "--password-file", pwFile])
        XCTAssertEqual(viaFile.status, 0, viaFile.stderr)
        let viaCommand = try fx.run(["snapshots", "--password-command", "cat \(pwFile)"])
        XCTAssertEqual(viaCommand.status, 0, viaCommand.stderr)
        let wrongFile = fx.file("bad", Data("nope\n".utf8))
        XCTAssertEqual(try fx.run(["snapshots", "--password-file", wrongFile]).status, 12)
    }

    func testInitRefusesExistingRepositoryAndValidatesOptions() throws {
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "512K", "--compression", "zstd:5"])
        let again = try fx.run(["init"])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
        let fx2 = Fixture()
        XCTAssertEqual(try fx2.run(["init", "--chunk-avg", "1000K"]).status, 2)
        XCTAssertEqual(try fx2.run(["init", "--compression", "lz4"]).status, 2)
        try roundTrip(fx, TestData.random(3 << 20), name: "small-chunks")
    }
}

extension Process {
    /// SHA-256 hex of `data`, computed by coreutils' sha256sum (independent of the code under test).
    static func sha256(_ data: Data) -> String {
        let path = NSTemporaryDirectory() + UUID().uuidString
        FileManager.default.createFile(atPath: path, contents: data)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try! p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(String(decoding: out, as: UTF8.self).prefix(64))
    }
}
