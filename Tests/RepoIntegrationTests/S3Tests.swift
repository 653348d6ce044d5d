import XCTest
import Foundation
import RepoTestSupport

/// `repo` on a real S3 server (radosgw on loopback), run as a user runs it: the same commands,
/// `--repo s3:http://…/BUCKET/PREFIX` and AWS_* credentials in the environment.
final class S3Tests: XCTestCase {
    static let s3 = SharedS3Server()
    override class func setUp() { super.setUp(); s3.start() }
    override class func tearDown() { s3.stop(); super.tearDown() }

    /// A fixture whose repository is a fresh bucket on the server.
    func s3Fixture(prefix: String = "repo") throws -> Fixture {
        let server = try Self.s3.get()
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

    /// `dump` reads ahead pack by pack: a 40 MiB stream, stored by as many workers as there are
    /// cores (so alternating between packs), comes back byte for byte with a few ranged GETs
    /// per 16 MiB window (15 in all when written), where reading runs of adjacent chunks took
    /// about two per MB on two cores (688 for the 305 MB of Benchmarks/s3_compare.py).
    func testDumpReadsPackRegionsInFewRequests() throws {
        let fx = try s3Fixture()
        try fx.initRepo()
        let data = TestData.random(40 << 20)
        let id = try XCTUnwrap(try fx.store("big.bin", from: fx.file("big.bin", data))["id"] as? String)
        let dump = try fx.run(["dump", id, "-v"])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertTrue(dump.stdout == data, "dumped bytes differ")
        let line = try XCTUnwrap(dump.stderr.split(separator: "\n").first { $0.contains("repo: S3:") }, dump.stderr)
        let gets = try XCTUnwrap(line.firstRange(of: /s3:GetObject (\d+)/).flatMap { Int(line[$0].split(separator: " ")[1]) }, String(line))
        // Config, key slot, index segment, snapshot, tree, content list: 6; the data: 3 windows
        // of at most a few packs each.
        XCTAssertLessThanOrEqual(gets, 25, String(line))
    }

    /// The FUSE mount reads from S3 like from a directory: byte for byte, and unmounts cleanly.
    func testMountOnS3() throws {
        try MountTests.requireFuse()
        let fx = try s3Fixture()
        try fx.initRepo()
        let big = TestData.random(3_000_000)
        let path = fx.file("big.bin", big)
        try fx.store("big.bin", from: path)
        let m = try MountTests.Mounted(fx, test: self)
        XCTAssertEqual(MountTests.sh("cmp", path, m.latest("big.bin") + "/big.bin").0, 0)
        let r = m.stop()
        XCTAssertEqual(r.status, 0, r.stderr)
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

    /// The number of `s3:GetObject` requests in a `-v` summary line.
    static func gets(_ stderr: String) -> Int {
        guard let r = stderr.range(of: #"s3:GetObject (\d+)"#, options: .regularExpression) else { return 0 }
        return Int(stderr[r].split(separator: " ").last ?? "") ?? 0
    }

    /// A prune replaces only the index segments it must, and another host's next open reads
    /// only what the prune wrote, not the whole index again.
    func testAPruneMakesOtherHostsReadOnlyTheSegmentsItWrote() throws {
        let fx = try s3Fixture()
        try fx.initRepo()
        var inputs: [String: Data] = [:]
        var ids: [String] = []
        for i in 0..<6 {
            let data = TestData.random(700_000) + Data("stream \(i)".utf8)
            // Streams 0 and 1 share a name: keeping the newest of each forgets stream 0 only.
            let stored = try fx.store("db\(max(i, 1)).sql", from: fx.file("in\(i)", data))
            let id = try XCTUnwrap(stored["id"] as? String)
            ids.append(id)
            inputs[id] = data
        }
        // Host B has read the whole index (6 segments, one per store).
        let hostB = ["REPO_CACHE_DIR": fx.dir + "/cache-b"]
        XCTAssertEqual(try fx.run(["snapshots"], env: hostB).status, 0)

        // Forget one snapshot; segments of 2+ packs count as full here, so only its segment changes.
        try fx.ok(["forget", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0", "--keep-last", "1"])
        inputs.removeValue(forKey: ids[0])
        let prune = try fx.run(["prune", "--json", "--safety-margin", "0"], env: ["REPO_TEST_PACKS_PER_SEGMENT": "4"])
        XCTAssertEqual(prune.status, 0, prune.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: prune.stdout) as? [String: Any])
        XCTAssertEqual(report["segments_unchanged"] as? Int, 5, "\(report)")
        XCTAssertEqual(report["segments_deleted"] as? Int, 1, "\(report)")
        XCTAssertEqual(report["segments_written"] as? Int, 1, "\(report)")
        XCTAssertGreaterThan(report["packs_deleted"] as? Int ?? 0, 0, "\(report)")

        // Host B reads the one new segment (plus the config and key slot every open reads).
        let open = try fx.run(["snapshots", "-v"], env: hostB)
        XCTAssertEqual(open.status, 0, open.stderr)
        XCTAssertLessThanOrEqual(Self.gets(open.stderr), 3, open.stderr)
        for (id, data) in inputs {
            XCTAssertEqual(try fx.run(["dump", id], env: hostB).stdout, data, "snapshot \(id) on host B")
        }
        // Its catalog still deduplicates: storing a kept stream again adds nothing.
        let again = try fx.run(["store", "--name", "db1.sql", "--json"], stdinPath: fx.dir + "/in1", env: hostB)
        XCTAssertEqual(again.status, 0, again.stderr)
        let againJSON = try XCTUnwrap(JSONSerialization.jsonObject(with: again.stdout) as? [String: Any])
        XCTAssertEqual(againJSON["new_chunks"] as? Int, 0, "\(againJSON)")

        // A second prune with everything in use changes nothing.
        let idle = try fx.run(["prune", "--json", "--safety-margin", "0"], env: ["REPO_TEST_PACKS_PER_SEGMENT": "4"])
        let idleJSON = try XCTUnwrap(JSONSerialization.jsonObject(with: idle.stdout) as? [String: Any])
        XCTAssertEqual(idleJSON["segments_written"] as? Int, 0, "\(idleJSON)")
        try fx.ok(["check", "--read-data"])
    }

    /// A bucket that does not exist is "no repository" (exit 10, `init` creates it); a
    /// repository that is there but cannot be read (a wrong secret) is not (exit 1).
    func testMissingBucketIsNoRepositoryButAWrongSecretIsNot() throws {
        let missing = try s3Fixture()
        let r = try missing.run(["snapshots"])
        XCTAssertEqual(r.status, 10, r.stderr)
        XCTAssertTrue(r.stderr.contains("repo init"), r.stderr)
        let fx = try s3Fixture()
        try fx.initRepo()
        fx.extraEnvironment["AWS_SECRET_ACCESS_KEY"] = "wrong"
        let denied = try fx.run(["snapshots"])
        XCTAssertEqual(denied.status, 1, denied.stderr)
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

/// Faults between `repo` and the server (`S3FaultProxy`): what a network and a busy or dying
/// server do. Nothing may be lost, a failed command leaves no snapshot, and `check` stays clean.
final class S3FaultTests: XCTestCase {
    static let s3 = SharedS3Server()
    override class func setUp() { super.setUp(); s3.start() }
    override class func tearDown() { s3.stop(); super.tearDown() }

    var proxy: S3FaultProxy!
    var fx: Fixture!

    override func setUpWithError() throws {
        let server = try Self.s3.get()
        proxy = try S3FaultProxy(upstream: server.endpoint)
        fx = Fixture()
        fx.location = "s3:\(proxy.endpoint)/\(S3TestServer.uniqueBucket())/repo"
        fx.extraEnvironment = server.environment
        try fx.initRepo()
    }

    override func tearDown() {
        proxy?.stop()
        proxy = nil
        fx = nil
    }

    func testABurstOf503SlowDownIsRetried() throws {
        let data = TestData.random(5 << 20)
        try proxy.setFaults(["fail_next": 6, "status": 503, "code": "SlowDown"])
        let stored = try fx.store("db.sql", from: fx.file("in", data))
        let faults = try proxy.stats()["faults"] as? [String: Any]
        XCTAssertEqual(faults?["fail"] as? Int, 6, proxy.log)
        XCTAssertEqual(try fx.ok(["dump", try XCTUnwrap(stored["id"] as? String)]).stdout, data)
        try fx.ok(["check", "--read-data"])
    }

    func testDroppedConnectionsAreRetried() throws {
        try proxy.setFaults(["drop_next": 3])
        let data = TestData.random(1 << 20)
        try fx.store("a", from: fx.file("in", data))
        XCTAssertEqual(try fx.ok(["dump", "latest"]).stdout, data)
    }

    /// The server dies in the middle of every upload: the store fails, says so, and leaves no
    /// snapshot; once the server is back, `check` is clean and the same store succeeds.
    func testServerDyingMidUploadLeavesNoSnapshot() throws {
        let data = TestData.random(20 << 20)
        let input = fx.file("in", data)
        try proxy.setFaults(["drop_after_bytes": 300_000, "drop_methods": ["PUT"]])
        let r = try fx.run(["store", "--name", "db.sql"], stdinPath: input)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("s3:PutObject"), r.stderr)
        try proxy.setFaults([:])
        XCTAssertEqual(try fx.snapshots().count, 0)
        try fx.ok(["check", "--read-data"])
        let stored = try fx.store("db.sql", from: input)
        XCTAssertEqual(try fx.ok(["dump", try XCTUnwrap(stored["id"] as? String)]).stdout, data)
        try fx.ok(["check", "--read-data"])
    }

    /// Temporary credentials that expired mid-run: not retried, the message says what to
    /// refresh, no snapshot is written and the repository stays clean.
    func testExpiredSessionTokenFailsClearly() throws {
        try proxy.setFaults(["fail_next": 50, "status": 400, "code": "ExpiredToken", "message": "The provided token has expired."])
        let r = try fx.run(["store", "--name", "db.sql"], stdinPath: fx.file("in", TestData.random(300_000)))
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("session token has expired") && r.stderr.contains("AWS_SESSION_TOKEN"), r.stderr)
        let faults = try proxy.stats()["faults"] as? [String: Any]
        XCTAssertLessThanOrEqual(faults?["fail"] as? Int ?? 99, 3, "an expired token is not retried: \(proxy.log)")
        try proxy.setFaults([:])
        XCTAssertEqual(try fx.snapshots().count, 0)
        try fx.ok(["check"])
    }

    func testSlowServer() throws {
        try proxy.setFaults(["delay_seconds": 0.3])
        let data = TestData.random(300_000)
        try fx.store("a", from: fx.file("in", data))
        XCTAssertEqual(try fx.ok(["dump", "latest"]).stdout, data)
    }
}
