import XCTest
import Foundation
import RepoTestSupport

/// `repo copy` as a user runs it: between local repositories, with and without shared chunker
/// parameters, again (nothing copied), after new snapshots (only new data), and to and from S3.
final class CopyTests: XCTestCase {
    var fx: Fixture!
    override func setUpWithError() throws { fx = Fixture() }
    override func tearDown() { fx = nil }

    var source: String { fx.dir + "/source" }

    func run(_ args: [String], env: [String: String] = [:]) throws -> CLIResult {
        try fx.run(args, env: ["REPO_FROM_PASSWORD": fx.password].merging(env) { $1 })
    }

    func ok(_ args: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> CLIResult {
        let r = try run(args, env: env)
        XCTAssertEqual(r.status, 0, "repo \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return r
    }

    func json(_ r: CLIResult) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], r.out)
    }

    /// A source with a stream (tagged, pinned) and a tree.
    func makeSource() throws -> (stream: Data, tree: String) {
        try ok(["init", "--repo", source])
        let stream = TestData.random(3 << 20) + Data(String(repeating: "INSERT INTO t VALUES (1);\n", count: 50_000).utf8)
        let path = fx.file("db.sql", stream)
        try fx.ok(["store", "--repo", source, "--name", "db.sql", "--tag", "nightly"], stdinPath: path)
        try ok(["pin", "--repo", source, "latest", "--reason", "audit"])
        let tree = fx.dir + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/d", withIntermediateDirectories: true)
        for i in 0..<12 { _ = fx.file("tree/d/f\(i)", TestData.random(40_000 * i + 1)) }
        _ = fx.file("tree/same", stream)
        try ok(["backup", "--repo", source, tree])
        return (stream, tree)
    }

    func testCopyIsCompleteIncrementalAndIdempotent() throws {
        let (stream, tree) = try makeSource()
        try fx.initRepo()
        let first = try json(try ok(["copy", "--from-repo", source, "--json"]))
        XCTAssertEqual((first["copied"] as? [Any])?.count, 2)
        XCTAssertEqual(first["pins"] as? Int, 1)
        let snaps = try fx.snapshots()
        XCTAssertEqual(snaps.count, 2)
        let db = try XCTUnwrap(snaps.first { $0["name"] as? String == "db.sql" })
        XCTAssertEqual(db["tags"] as? [String], ["nightly"])
        XCTAssertEqual(try fx.ok(["dump", try XCTUnwrap(db["id"] as? String)]).stdout, stream)
        try fx.ok(["restore", "latest", "--target", fx.dir + "/out"])
        XCTAssertEqual(try fx.fileHashes(fx.dir + "/out" + tree), try fx.fileHashes(tree))
        XCTAssertTrue(try fx.ok(["pin"]).out.contains(String((db["id"] as! String).prefix(8))))
        try fx.ok(["check", "--read-data"])

        // Again: nothing to do.
        let again = try json(try ok(["copy", "--from-repo", source, "--json"]))
        XCTAssertEqual((again["copied"] as? [Any])?.count, 0)
        XCTAssertEqual((again["skipped"] as? [Any])?.count, 2)
        XCTAssertEqual(again["new_blobs"] as? Int, 0)

        // A new source snapshot sharing most data: only what is new is stored.
        let grown = stream + TestData.random(200_000)
        try fx.ok(["store", "--repo", source, "--name", "db.sql"], stdinPath: fx.file("db2.sql", grown))
        let third = try json(try ok(["copy", "--from-repo", source, "--json"]))
        XCTAssertEqual((third["copied"] as? [Any])?.count, 1)
        XCTAssertLessThan(third["new_stored_bytes"] as? Int ?? .max, 1 << 20, "\(third)")
        XCTAssertEqual(try fx.snapshots().count, 3)

        // A copy of the copy is recognised as the same snapshots.
        let third2 = fx.dir + "/third"
        try ok(["init", "--repo", third2], env: [:])
        try ok(["copy", "--repo", third2, "--from-repo", fx.repo, "latest"])
        let back = try json(try ok(["copy", "--repo", third2, "--from-repo", source, "--json"]))
        XCTAssertEqual((back["skipped"] as? [Any])?.count, 1, "\(back)")
        XCTAssertEqual((back["copied"] as? [Any])?.count, 2, "\(back)")
    }

    func testSharedChunkerParametersReadOnlyWhatIsMissing() throws {
        let (stream, _) = try makeSource()
        try ok(["init", "--copy-chunker-params-from", source])
        let first = try json(try ok(["copy", "--from-repo", source, "--json"]))
        XCTAssertEqual((first["copied"] as? [Any])?.count, 2)
        // New data stored directly into the destination deduplicates against the copies.
        let direct = try fx.store("db.sql", from: fx.file("again.sql", stream))
        XCTAssertEqual(direct["new_chunks"] as? Int, 0, "\(direct)")
        // The source gets a snapshot the destination already holds the data of: nothing is read.
        try fx.ok(["store", "--repo", source, "--name", "copy.sql"], stdinPath: fx.file("again2.sql", stream))
        let second = try json(try ok(["copy", "--from-repo", source, "--json"]))
        XCTAssertEqual((second["copied"] as? [Any])?.count, 1)
        // Only the snapshot's root tree (it names "copy.sql") is new; no chunk is read.
        XCTAssertEqual(second["new_blobs"] as? Int, 1, "\(second)")
        XCTAssertEqual(second["blobs_read"] as? Int, 1, "\(second)")
        try fx.ok(["check", "--read-data"])
    }

    /// Ctrl-C stops a copy between blobs: exit 130, the snapshots copied so far stay complete,
    /// the one in progress is not written, the destination checks clean, and the same command
    /// again copies the rest.
    func testInterruptedCopyKeepsWhatItCopiedAndResumes() throws {
        try ok(["init", "--repo", source])
        var streams: [String: Data] = [:]
        for i in 0..<3 {
            let data = TestData.random(48 << 20) + Data("stream \(i)".utf8)
            try fx.ok(["store", "--repo", source, "--name", "db\(i).sql"], stdinPath: fx.file("db\(i).sql", data))
            streams["db\(i).sql"] = data
        }
        try fx.initRepo()
        let started = try fx.start(["copy", "-v", "--from-repo", source], env: ["REPO_FROM_PASSWORD": fx.password])
        // Interrupt once the second snapshot is under way.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, started.0.isRunning {
            let err = String(decoding: FileManager.default.contents(atPath: started.2) ?? Data(), as: UTF8.self)
            if err.components(separatedBy: "copying snapshot").count > 2 { break }
            Thread.sleep(forTimeInterval: 0.005)
        }
        XCTAssertTrue(started.0.isRunning, "the copy finished before it could be interrupted")
        kill(started.0.processIdentifier, SIGINT)
        let r = fx.collect(started)
        XCTAssertEqual(r.status, 130, r.stderr)
        XCTAssertTrue(r.stderr.contains("interrupted: 1 snapshot copied"), r.stderr)
        XCTAssertTrue(r.stderr.contains("run the same `repo copy` again"), r.stderr)
        XCTAssertEqual(try fx.snapshots().count, 1)
        try fx.ok(["check", "--read-data"])

        let again = try json(try ok(["copy", "--json", "--from-repo", source]))
        XCTAssertEqual((again["copied"] as? [Any])?.count, 2, "\(again)")
        XCTAssertEqual((again["skipped"] as? [Any])?.count, 1, "\(again)")
        for snap in try fx.snapshots() {
            let name = try XCTUnwrap(snap["name"] as? String)
            XCTAssertEqual(try fx.ok(["dump", try XCTUnwrap(snap["id"] as? String)]).stdout, streams[name], name)
        }
        try fx.ok(["check", "--read-data"])
        // What the interrupted run uploaded was indexed and reused by the second run: prune
        // finds less than one snapshot's worth of unused data.
        let dry = try json(try fx.ok(["prune", "--dry-run", "--json", "--safety-margin", "0"]))
        XCTAssertLessThan(dry["bytes_freed"] as? Int ?? .max, 48 << 20, "\(dry)")
    }

    func testWrongSourcePasswordAndSameRepositoryAreRefused() throws {
        _ = try makeSource()
        try fx.initRepo()
        let wrong = try run(["copy", "--from-repo", source], env: ["REPO_FROM_PASSWORD": "nope"])
        XCTAssertEqual(wrong.status, 12, wrong.stderr)
        XCTAssertEqual(try fx.snapshots().count, 0)
        let same = try run(["copy", "--from-repo", fx.repo], env: ["REPO_FROM_PASSWORD": fx.password])
        XCTAssertEqual(same.status, 2, same.stderr)
        let none = try run(["copy"])
        XCTAssertEqual(none.status, 2, none.stderr)
        XCTAssertTrue(none.stderr.contains("--from-repo"), none.stderr)
    }

    func testCopyToAndFromS3() throws {
        let server = try S3TestServer()
        defer { server.stop() }
        let (stream, _) = try makeSource()
        fx.extraEnvironment = server.environment
        let bucket = server.location(bucket: S3TestServer.uniqueBucket(), prefix: "offsite")
        try ok(["init", "--repo", bucket])
        XCTAssertEqual((try json(try ok(["copy", "--repo", bucket, "--from-repo", source, "--json"]))["copied"] as? [Any])?.count, 2)
        XCTAssertEqual((try json(try ok(["copy", "--repo", bucket, "--from-repo", source, "--json"]))["copied"] as? [Any])?.count, 0)
        try ok(["check", "--repo", bucket, "--read-data"])
        // And back from S3 into a new local repository (S3 -> local).
        let back = fx.dir + "/back"
        try ok(["init", "--repo", back])
        try ok(["copy", "--repo", back, "--from-repo", bucket])
        let db = try XCTUnwrap(try fx.snapshots(["--repo", back]).first { $0["name"] as? String == "db.sql" })
        XCTAssertEqual(try fx.ok(["dump", "--repo", back, try XCTUnwrap(db["id"] as? String)]).stdout, stream)
    }
}
