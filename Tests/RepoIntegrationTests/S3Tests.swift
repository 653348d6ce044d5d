import XCTest
import Foundation
import RepoTestSupport

/// `repo` on a real S3 server (radosgw on loopback), run as a user runs it: the same commands,
/// `--repo s3:http://…/BUCKET/PREFIX` and AWS_* credentials in the environment.
final class S3Tests: XCTestCase {
    nonisolated(unsafe) static var server: S3TestServer?
    nonisolated(unsafe) static var startError: Error?

    override class func setUp() {
        super.setUp()
        do { server = try S3TestServer() } catch { startError = error }
    }

    override class func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    /// A fixture whose repository is a fresh bucket on the server.
    func s3Fixture(prefix: String = "repo") throws -> Fixture {
        if let e = Self.startError { throw e }
        let server = try XCTUnwrap(Self.server)
        let fx = Fixture()
        fx.location = server.location(bucket: S3TestServer.uniqueBucket(), prefix: prefix)
        fx.extraEnvironment = server.environment
        return fx
    }

    func testEveryCommandWorksOnS3() throws {
        let fx = try s3Fixture()
        try fx.initRepo()
        let data = TestData.random(6 << 20) + Data(String(repeating: "COPY (id, name) FROM stdin;\n", count: 100_000).utf8)
        let input = fx.file("dump.sql", data)
        let first = try fx.store("db.sql", from: input)
        let again = try fx.store("db.sql", from: input)
        XCTAssertEqual(again["new_chunks"] as? Int, 0, "\(again)")
        XCTAssertNotNil(first["id"])
        XCTAssertEqual(try fx.ok(["dump", "latest"]).stdout, data)

        // A tree: backup, ls, restore.
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src + "/sub", withIntermediateDirectories: true)
        for i in 0..<20 { _ = fx.file("src/sub/f\(i)", TestData.random(1000 * i)) }
        try fx.ok(["backup", src])
        XCTAssertTrue(try fx.ok(["ls", "latest"]).out.contains("f19"))
        try fx.ok(["restore", "latest", "--target", fx.dir + "/out"])
        XCTAssertEqual(try fx.fileHashes(fx.dir + "/out" + src), try fx.fileHashes(src))

        XCTAssertEqual(try fx.snapshots().count, 3)
        try fx.ok(["check", "--read-data"])
        try fx.ok(["forget", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0", "--keep-last", "1", "--prune", "--safety-margin", "0"])
        XCTAssertEqual(try fx.snapshots().count, 2)
        try fx.ok(["check", "--read-data"])
        XCTAssertEqual(try fx.ok(["dump", try XCTUnwrap(again["id"] as? String)]).stdout, data)
        try fx.ok(["stats"])

        // -v counts the requests a command made.
        let verbose = try fx.run(["snapshots", "-v"])
        XCTAssertEqual(verbose.status, 0, verbose.stderr)
        XCTAssertTrue(verbose.stderr.contains("S3: ") && verbose.stderr.contains("s3:GetObject"), verbose.stderr)
    }

    func testWALArchiveOnS3() throws {
        let fx = try s3Fixture(prefix: "")
        try fx.initRepo()
        let name = WALArchiveTests.name(5)
        let segment = fx.file(name, WALArchiveTests.segment(5))
        try fx.ok(["wal-push", segment])
        try fx.ok(["wal-push", segment])   // a retry of the same bytes succeeds
        let other = fx.file("other/" + name, WALArchiveTests.segment(5, seed: 9))
        let clash = try fx.run(["wal-push", other])
        XCTAssertEqual(clash.status, 1, clash.stderr)
        try fx.ok(["wal-fetch", name, fx.dir + "/fetched"])
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/fetched"), WALArchiveTests.segment(5))
        XCTAssertEqual(try fx.run(["wal-fetch", WALArchiveTests.name(6), fx.dir + "/none"]).status, 1)
        try fx.ok(["check"])
    }

    /// Three hosts store into one bucket while a fourth runs `forget --prune`, twice; then every
    /// kept snapshot dumps byte for byte and `check --read-data` is clean.
    func testConcurrentWritersAndPrune() throws {
        let fx = try s3Fixture()
        try fx.initRepo()
        var inputs: [String: Data] = [:]
        for round in 0..<2 {
            var started: [(Process, String, String)] = []
            for host in ["db1", "db2", "db3"] {
                let data = TestData.random(3 << 20) + Data("\(host) round \(round)".utf8)
                let path = fx.file("\(host)-\(round)", data)
                inputs["\(host)-\(round)"] = data
                started.append(try fx.start(["store", "--name", "dump.sql", "--host", host, "--tag", "r\(round)"], stdinPath: path))
            }
            started.append(try fx.start(["forget", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0", "--keep-last", "1", "--prune", "--safety-margin", "0"]))
            for (i, s) in started.enumerated() {
                let r = fx.collect(s)
                // A store may lose the race for the lock against prune's exclusive lock (exit 11);
                // it must then have written no snapshot. Anything else must succeed.
                if i < 3 && r.status == 11 { inputs.removeValue(forKey: "db\(i + 1)-\(round)"); continue }
                XCTAssertTrue(r.status == 0 || (i == 3 && r.status == 11), "process \(i): exit \(r.status): \(r.stderr)")
            }
        }
        try fx.ok(["check", "--read-data"])
        for snap in try fx.snapshots() {
            guard let id = snap["id"] as? String, let host = snap["host"] as? String, let tags = snap["tags"] as? [String],
                  let round = tags.first?.dropFirst() else { continue }
            XCTAssertEqual(try fx.ok(["dump", id]).stdout, inputs["\(host)-\(round)"], "snapshot \(id) of \(host) round \(round)")
        }
    }

    func testWrongSecretFailsWithAClearMessage() throws {
        let fx = try s3Fixture()
        try fx.initRepo()
        fx.extraEnvironment["AWS_SECRET_ACCESS_KEY"] = "wrong"
        let r = try fx.run(["snapshots"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("AWS_SECRET_ACCESS_KEY"), r.stderr)
        fx.extraEnvironment.removeValue(forKey: "AWS_ACCESS_KEY_ID")
        let none = try fx.run(["snapshots"])
        XCTAssertEqual(none.status, 2, none.stderr)
        XCTAssertTrue(none.stderr.contains("AWS_ACCESS_KEY_ID"), none.stderr)
    }
}
