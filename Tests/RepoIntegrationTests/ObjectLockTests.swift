import XCTest
import Foundation
import RepoTestSupport

/// S3 Object Lock (README, "Object Lock"; FORMAT.md §31) against moto's server, which enforces
/// retention on version deletes (a DeleteObject with `versionId` of a retained version answers
/// 403) and answers HeadObject with the version's mode and retain-until date. The retention
/// period is 20 seconds so that a test can wait for it to end.
final class ObjectLockTests: XCTestCase {
    static let moto = SharedS3Server(.moto)
    override class func setUp() { super.setUp(); moto.start() }
    override class func tearDown() { moto.stop(); super.tearDown() }

    static let period: TimeInterval = 20

    func s3Fixture(bucket: String = S3TestServer.uniqueBucket("lock")) throws -> (Fixture, String) {
        let server = try Self.moto.get()
        let fx = Fixture()
        fx.location = server.location(bucket: bucket)
        fx.extraEnvironment = server.environment
        return (fx, bucket)
    }

    /// Runs a boto3 snippet with an S3 client `s3` and the bucket name `bucket` (Python,
    /// independent of the code under test); returns what it prints.
    func admin(_ fx: Fixture, _ bucket: String, _ snippet: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let server = try Self.moto.get()
        let script = """
        import boto3, datetime
        from botocore.exceptions import ClientError
        s3 = boto3.client("s3", endpoint_url="\(server.endpoint)", region_name="\(server.region)",
                          aws_access_key_id="\(server.accessKeyID)", aws_secret_access_key="\(server.secretAccessKey)")
        bucket = "\(bucket)"
        def versions(prefix=""):
            out = []
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
                out += [("version", v["Key"], v["VersionId"], v["LastModified"]) for v in page.get("Versions", [])]
                out += [("marker", v["Key"], v["VersionId"], v["LastModified"]) for v in page.get("DeleteMarkers", [])]
            return out
        \(snippet)
        """
        let r = try fx.shell("python3 -c \"$SNIPPET\" 2>&1", env: ["SNIPPET": script])
        XCTAssertEqual(r.status, 0, r.out, file: file, line: line)
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func json(_ r: CLIResult) throws -> [String: Any] { try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]) }

    /// The requirement's test: objects under retention survive a forget and a prune that wanted
    /// them gone (kept whole, indexed, reported), nobody can delete their versions early, and
    /// the forget and prune after the retention ended delete them for good (no version left).
    func testRetainedObjectsSurvivePruneUntilTheirRetentionEnds() throws {
        let (fx, bucket) = try s3Fixture()
        let created = try fx.ok(["init", "--object-lock", "governance:20s"])
        XCTAssertTrue(created.out.contains("S3 Object Lock: governance mode"), created.out)

        // A store whose producer fails uploads a pack and an index segment but no snapshot:
        // a pack nothing references from the start, which prune wants gone.
        let orphan = try fx.run(["store", "--name", "orphan", "--", "sh", "-c", "head -c 1500000 /dev/urandom; exit 1"])
        XCTAssertEqual(orphan.status, 1, orphan.stderr)
        let src = fx.dir + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        let first = TestData.random(1_200_000), second = TestData.random(900_000)
        _ = fx.file("src/a.bin", first)
        try fx.ok(["backup", src])
        try FileManager.default.removeItem(atPath: src + "/a.bin")
        _ = fx.file("src/b.bin", second)
        try fx.ok(["backup", src])
        let written = Date()

        // Every backup object carries governance retention of the period; locks are gone
        // (deleted outright, no delete marker) and the reserve is not retained.
        let heads = try admin(fx, bucket, """
        for kind, key, vid, modified in versions():
            h = s3.head_object(Bucket=bucket, Key=key, VersionId=vid)
            until = h.get("ObjectLockRetainUntilDate")
            span = (until - modified).total_seconds() if until else -1
            print(kind, key.split("/")[0], h.get("ObjectLockMode"), 19 <= span <= 24)
        """)
        let lines = heads.split(separator: "\n").map(String.init)
        for folder in ["config", "keys", "data", "index", "snapshots"] {
            let mine = lines.filter { $0.split(separator: " ")[1] == folder }
            XCTAssertFalse(mine.isEmpty, "no \(folder) object: \(heads)")
            XCTAssertTrue(mine.allSatisfy { $0 == "version \(folder) GOVERNANCE True" }, heads)
        }
        XCTAssertTrue(lines.contains("version reserve None False"), heads)
        XCTAssertFalse(heads.contains("locks") || heads.contains("marker"), heads)

        // Nobody deletes a retained version early, not even the bucket's owner.
        let refused = try admin(fx, bucket, """
        key, vid = [(k, v) for kind, k, v, m in versions("data/")][0]
        try:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=vid)
            print("deleted")
        except ClientError as e:
            print("refused", e.response["Error"]["Code"])
        """)
        XCTAssertEqual(refused, "refused AccessDenied")

        // forget keeps the snapshot the policy drops, saying until when; prune keeps the
        // orphan pack whole and indexed, and the segments; both exit 0, check stays clean.
        let policy = ["--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0", "--keep-last", "1"]
        let forget = try fx.ok(["forget"] + policy)
        XCTAssertTrue(forget.out.contains("retained by S3 Object Lock until"), forget.out)
        XCTAssertTrue(forget.out.contains("2 kept, 0 forgotten"), forget.out)
        XCTAssertEqual(try fx.snapshots().count, 2)
        // --json names the retention's end on the snapshot it kept, and only there.
        let decisions = try XCTUnwrap(json(try fx.ok(["forget", "--dry-run", "--json"] + policy))["snapshots"] as? [[String: Any]])
        let retained = decisions.filter { $0["retained_until"] != nil }
        XCTAssertEqual(retained.count, 1, "\(decisions)")
        let until = retained.first?["retained_until"] as? String ?? ""
        XCTAssertNotNil(ISO8601DateFormatter().date(from: until) ?? { let f = ISO8601DateFormatter(); f.formatOptions.insert(.withFractionalSeconds); return f.date(from: until) }(), "\(decisions)")
        let packsBefore = try admin(fx, bucket, "print(len([k for kind, k, v, m in versions('data/') if kind == 'version']))")
        let prune = try json(try fx.ok(["prune", "--safety-margin", "0", "--json"]))
        XCTAssertEqual(prune["packs_deleted"] as? Int, 0, "\(prune)")
        XCTAssertGreaterThanOrEqual(prune["retained_packs_kept"] as? Int ?? 0, 1, "\(prune)")
        XCTAssertGreaterThanOrEqual(prune["retained_segments_kept"] as? Int ?? 0, 1, "\(prune)")
        XCTAssertEqual(prune["retained_deletes_refused"] as? Int, 0, "\(prune)")
        XCTAssertNotNil(prune["next_retention_expiry"] as? String, "\(prune)")
        let text = try fx.ok(["prune", "--safety-margin", "0"])
        XCTAssertTrue(text.out.contains("S3 Object Lock:") && text.out.contains("under retention"), text.out)
        XCTAssertEqual(try admin(fx, bucket, "print(len([k for kind, k, v, m in versions('data/') if kind == 'version']))"), packsBefore)
        let check = try fx.run(["check"])
        XCTAssertEqual(check.status, 0, check.out + check.stderr)
        XCTAssertFalse(check.out.contains("not indexed"), check.out)
        let status = try fx.ok(["status"])
        XCTAssertTrue(status.out.contains("object lock  governance mode, 20s"), status.out)
        let statusJSON = try json(try fx.ok(["status", "--json"]))
        XCTAssertEqual((statusJSON["object_lock"] as? [String: Any])?["period_seconds"] as? Int, 20, "\(statusJSON)")

        // After the retention: forget forgets, prune deletes the orphan and the forgotten
        // snapshot's data, every version of them (no delete marker hides anything), and the
        // kept snapshot restores.
        let wait = written.addingTimeInterval(Self.period + 7).timeIntervalSinceNow
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
        let later = try fx.ok(["forget"] + policy)
        XCTAssertTrue(later.out.contains("1 kept, 1 forgotten"), later.out)
        let pruned = try json(try fx.ok(["prune", "--safety-margin", "0", "--json"]))
        XCTAssertGreaterThanOrEqual(pruned["packs_deleted"] as? Int ?? 0, 2, "\(pruned)")
        XCTAssertEqual(pruned["retained_packs_kept"] as? Int, 0, "\(pruned)")
        XCTAssertEqual(pruned["retained_deletes_refused"] as? Int, 0, "\(pruned)")
        let left = try admin(fx, bucket, """
        v = versions()
        print(len([1 for kind, k, vid, m in v if k.startswith("data/")]), len([1 for kind, k, vid, m in v if k.startswith("snapshots/")]),
              len([1 for kind, k, vid, m in v if kind == "marker"]))
        """)
        let counts = left.split(separator: " ").compactMap { Int($0) }
        XCTAssertEqual(counts.count, 3, left)
        XCTAssertEqual(counts[1], 1, "one snapshot object version left: \(left)")
        XCTAssertEqual(counts[2], 0, "no delete markers: \(left)")
        XCTAssertEqual(counts[0] + (pruned["packs_deleted"] as? Int ?? 0), Int(packsBefore) ?? -1, left)
        // config and the key slots, written at init, outlive the period: each prune renewed
        // their retention, so they are still locked now.
        XCTAssertGreaterThanOrEqual(pruned["retentions_extended"] as? Int ?? 0, 2, "\(pruned)")
        let renewed = try admin(fx, bucket, """
        now = datetime.datetime.now(datetime.timezone.utc)
        for kind, key, vid, modified in versions():
            if key == "config" or key.startswith("keys/"):
                h = s3.head_object(Bucket=bucket, Key=key, VersionId=vid)
                print(key.split("/")[0], h["ObjectLockRetainUntilDate"] > now + datetime.timedelta(seconds=10))
        """)
        XCTAssertEqual(renewed.split(separator: "\n").sorted(), ["config True", "keys True"], renewed)
        let after = try fx.run(["check", "--read-data"])
        XCTAssertEqual(after.status, 0, after.out + after.stderr)
        try fx.ok(["restore", "latest", "--target", fx.dir + "/out"])
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/out" + src + "/b.bin"), second)
    }

    /// Deduplication makes a new snapshot reuse old packs: their lock must outlast their own
    /// period while the snapshot needs them. prune renews the live packs and forget the snapshots
    /// its policy keeps, once half a period has passed, so nobody can delete them early.
    func testLiveDataStaysLockedWhileNewerSnapshotsNeedIt() throws {
        let (fx, bucket) = try s3Fixture()
        try fx.ok(["init", "--object-lock", "governance:20s"])
        let data = TestData.random(1_500_000)
        let first = try XCTUnwrap(try fx.store("db", from: fx.file("a", data))["id"] as? String)
        let written = Date()
        // Past half the period, a second snapshot reuses the first one's pack.
        Thread.sleep(forTimeInterval: max(0, written.addingTimeInterval(16).timeIntervalSinceNow))
        let again = try fx.store("db", from: fx.file("b", data + TestData.random(10_000)))
        XCTAssertLessThan(again["new_chunks"] as? Int ?? .max, again["chunks"] as? Int ?? 0, "deduplicated: \(again)")
        let forget = try fx.ok(["forget", "--keep-last", "5"])
        XCTAssertTrue(forget.out.contains("2 kept"), forget.out)
        let pruned = try json(try fx.ok(["prune", "--safety-margin", "0", "--json"]))
        // config, the key slot and at least the first snapshot's pack.
        XCTAssertGreaterThanOrEqual(pruned["retentions_extended"] as? Int ?? 0, 3, "\(pruned)")

        // After the first objects' own period: still locked, their versions undeletable.
        Thread.sleep(forTimeInterval: max(0, written.addingTimeInterval(Self.period + 6).timeIntervalSinceNow))
        let probe = try admin(fx, bucket, """
        now = datetime.datetime.now(datetime.timezone.utc)
        first = "snapshots/\(first)"
        oldest = min(m for kind, k, v, m in versions("data/"))
        for kind, key, vid, modified in versions():
            if not (key == first or (key.startswith("data/") and modified == oldest)):
                continue
            until = s3.head_object(Bucket=bucket, Key=key, VersionId=vid)["ObjectLockRetainUntilDate"]
            try:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=vid)
                print(key.split("/")[0], "deleted", until > now)
            except ClientError as e:
                print(key.split("/")[0], "refused", until > now)
        """)
        // The first store's packs (data and tree) and its snapshot.
        XCTAssertEqual(Set(probe.split(separator: "\n").map(String.init)), ["data refused True", "snapshots refused True"], probe)
        let check = try fx.run(["check", "--read-data"])
        XCTAssertEqual(check.status, 0, check.out + check.stderr)
        XCTAssertTrue(try fx.run(["dump", first]).stdout == data)

        // A master-key rotation could never delete the old slots and objects: refused at once.
        let slots = try admin(fx, bucket, "print(sorted(k for kind, k, v, m in versions('keys/')))")
        let rotate = try fx.run(["key", "rotate", "--settle-time", "0"])
        XCTAssertEqual(rotate.status, 1, rotate.stderr)
        XCTAssertTrue(rotate.stderr.contains("S3 Object Lock") && rotate.stderr.contains("repo copy"), rotate.stderr)
        XCTAssertEqual(try admin(fx, bucket, "print(sorted(k for kind, k, v, m in versions('keys/')))"), slots, "nothing changed")
    }

    /// Object Lock is asked for at init only on S3, in a valid form, and on a bucket that can
    /// lock; mistakes are usage errors (exit 2) or a clear refusal that writes nothing.
    func testInitRefusesWhatCannotLock() throws {
        let local = Fixture()
        let r = try local.run(["init", "--object-lock", "governance:30d"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("needs an S3 repository"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: local.repo + "/config"))

        let (fx, bucket) = try s3Fixture()
        for bad in ["30d", "legal:30d", "governance:30", "governance:0d", "compliance:101y", "governance:30m"] {
            let b = try fx.run(["init", "--object-lock", bad])
            XCTAssertEqual(b.status, 2, "\(bad): \(b.stderr)")
            XCTAssertTrue(b.stderr.contains("--object-lock"), b.stderr)
        }
        // A bucket that exists without Object Lock cannot get it from repo.
        _ = try admin(fx, bucket, "s3.create_bucket(Bucket=bucket)")
        let plain = try fx.run(["init", "--object-lock", "compliance:1d"])
        XCTAssertEqual(plain.status, 1, plain.stderr)
        XCTAssertTrue(plain.stderr.contains("without Object Lock"), plain.stderr)
        XCTAssertEqual(try admin(fx, bucket, "print(len(versions()))"), "0", "nothing written")

        // A new bucket: created with Object Lock; config records the setting.
        let (fresh, freshBucket) = try s3Fixture()
        let made = try json(try fresh.ok(["init", "--object-lock", "compliance:2h", "--json"]))
        XCTAssertEqual(made["object_lock_mode"] as? String, "compliance")
        XCTAssertEqual(made["object_lock_period"] as? String, "2h")
        let config = try admin(fresh, freshBucket, """
        import json
        print(s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["ObjectLockEnabled"])
        print(json.dumps(json.loads(s3.get_object(Bucket=bucket, Key="config")["Body"].read())["objectLock"], sort_keys=True))
        """)
        XCTAssertEqual(config, "Enabled\n{\"mode\": \"compliance\", \"period\": 7200}")
    }
}
