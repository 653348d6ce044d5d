import XCTest
import Foundation
import RepoTestSupport

/// Append-only hosts (README, "Append-only hosts"; FORMAT.md §18, release markers): a host whose
/// S3 credentials lack s3:DeleteObject stores, reads and releases its locks without a delete,
/// and its forget/prune is refused by the server before anything changes. Runs against a real
/// radosgw whose bucket policy denies the host's user every delete: the server enforces it,
/// not `repo`. (moto's server enforces IAM too, but its signature check rebuilds the query
/// string without encoding it and so rejects correctly signed requests with `prefix=a/b`.)
final class AppendOnlyTests: XCTestCase {
    static let s3 = SharedS3Server()
    override class func setUp() { super.setUp(); s3.start() }
    override class func tearDown() { s3.stop(); super.tearDown() }

    /// The administrator's environment (the bucket's owner) and the append-only host's.
    struct Users { var admin: [String: String]; var host: [String: String]; var bucket: String }

    /// A repository in a new bucket, made by the administrator, with a bucket policy that lets
    /// the second user do everything but delete.
    func makeRepository(_ fx: Fixture) throws -> Users {
        let server = try Self.s3.get()
        let second = try XCTUnwrap(server.secondUser, "scripts/s3-server.sh makes a second user")
        let bucket = S3TestServer.uniqueBucket("ao")
        fx.location = server.location(bucket: bucket, prefix: "repo")
        fx.extraEnvironment = server.environment
        try fx.initRepo()
        let policy = """
            {"Version": "2012-10-17", "Statement": [
              {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/\(second.name)", "arn:aws:iam:::user/repo-test"]},
               "Action": ["s3:*"], "Resource": ["arn:aws:s3:::\(bucket)", "arn:aws:s3:::\(bucket)/*"]},
              {"Effect": "Deny", "Principal": {"AWS": ["arn:aws:iam:::user/\(second.name)"]},
               "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"], "Resource": ["arn:aws:s3:::\(bucket)/*"]}]}
            """
        _ = try admin(fx, "s3.put_bucket_policy(Bucket='\(bucket)', Policy='''\(policy)''')")
        var host = server.environment
        host["AWS_ACCESS_KEY_ID"] = second.accessKeyID
        host["AWS_SECRET_ACCESS_KEY"] = second.secretAccessKey
        return Users(admin: server.environment, host: host, bucket: bucket)
    }

    /// Runs a boto3 snippet with the administrator's S3 client `s3` (Python, independent of the
    /// code under test); returns what it prints.
    func admin(_ fx: Fixture, _ snippet: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let server = try Self.s3.get()
        let script = """
        import boto3
        from botocore.config import Config
        s3 = boto3.client("s3", endpoint_url="\(server.endpoint)", region_name="\(server.region)",
                          aws_access_key_id="\(server.accessKeyID)", aws_secret_access_key="\(server.secretAccessKey)",
                          config=Config(s3={"addressing_style": "path"}))
        \(snippet)
        """
        let r = try fx.shell("python3 -c \"$SNIPPET\" 2>&1", env: ["SNIPPET": script])
        XCTAssertEqual(r.status, 0, r.out, file: file, line: line)
        return r.out
    }

    /// Object names under `prefix` of the bucket, listed by the administrator.
    func list(_ fx: Fixture, _ users: Users, prefix: String) throws -> [String] {
        try admin(fx, "for o in s3.list_objects_v2(Bucket='\(users.bucket)', Prefix='\(prefix)').get('Contents', []): print(o['Key'])")
            .split(separator: "\n").map(String.init)
    }

    /// Runs `repo ARGS` as another host, `db1` (its own UTS namespace), with `env`; returns the
    /// exit status, stdout and stderr.
    func runAsOtherHost(_ fx: Fixture, _ args: [String], env: [String: String], stdin: String = "/dev/null") throws -> (status: Int32, out: String, err: String) {
        let quoted = args.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let errFile = fx.dir + "/err-" + UUID().uuidString
        let r = try fx.shell("unshare -u sh -c 'hostname db1 && exec \"$0\" \"$@\"' \"$REPO_BIN_UNDER_TEST\" \(quoted) <\(stdin) 2>\(errFile)",
                             env: env.merging(["REPO_BIN_UNDER_TEST": Fixture.binary]) { $1 })
        return (r.status, r.out, (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "")
    }

    func testAppendOnlyHostStoresWithoutDeletingAndItsPruneIsRefused() throws {
        let fx = Fixture()
        let users = try makeRepository(fx)

        // The host stores twice and reads back, with credentials that cannot delete.
        let first = TestData.sqlDump(bytes: 300_000), second = TestData.random(200_000)
        var ids: [String] = []
        for (i, data) in [first, second].enumerated() {
            let input = fx.file("in\(i)", data)
            let r = try runAsOtherHost(fx, ["store", "--name", "db.sql", "-q"], env: users.host, stdin: input)
            XCTAssertEqual(r.status, 0, r.err)
            ids.append(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let dumped = try runAsOtherHost(fx, ["dump", ids[0]], env: users.host)
        XCTAssertEqual(dumped.status, 0, dumped.err)
        XCTAssertEqual(Data(dumped.out.utf8), first)

        // Its locks could not be deleted: each was released by a marker instead (3 commands,
        // 3 locks, 3 markers), and the host printed nothing about it.
        XCTAssertEqual(try list(fx, users, prefix: "repo/locks/").count, 6)
        XCTAssertFalse(dumped.err.contains("lock"), dumped.err)

        // Its forget --prune is refused by the server, before anything is written or deleted.
        let snapshotsBefore = try list(fx, users, prefix: "repo/snapshots/")
        XCTAssertEqual(snapshotsBefore.count, 2)
        let forget = try runAsOtherHost(fx, ["forget", "--keep-last", "1", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0", "--prune"],
                                        env: users.host)
        XCTAssertEqual(forget.status, 1, forget.err)
        XCTAssertTrue(forget.err.contains("may not delete"), forget.err)
        XCTAssertTrue(forget.err.contains("AccessDenied"), forget.err)
        XCTAssertEqual(try list(fx, users, prefix: "repo/snapshots/"), snapshotsBefore)
        XCTAssertEqual(try list(fx, users, prefix: "repo/locks/").count, 6, "the refused forget wrote no lock")
        XCTAssertEqual(try runAsOtherHost(fx, ["prune"], env: users.host).status, 1)

        // The admin's prune is not held up by the host's released locks (they are not stale,
        // and belong to another host), and clears them and their markers away.
        try fx.ok(["forget", "--keep-last", "1", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0", "--prune", "--safety-margin", "0"])
        XCTAssertEqual(try list(fx, users, prefix: "repo/locks/"), [])
        XCTAssertEqual(try fx.snapshots().count, 1)
        try fx.ok(["check", "--read-data"])
        let kept = try fx.run(["dump", ids[1]])
        XCTAssertEqual(kept.status, 0, kept.stderr)
        XCTAssertTrue(kept.stdout == second)
    }

    func testLiveLockOfAnAppendOnlyHostStillBlocksPrune() throws {
        // A marker releases only the lock it names: a lock an append-only host still holds
        // keeps prune away as any lock does.
        let fx = Fixture()
        let users = try makeRepository(fx)
        // A store of db1 that holds its (shared) lock while its producer runs.
        let slow = fx.file("slow.sh", Data("#!/bin/sh\nsleep 30\n".utf8))
        chmod(slow, 0o755)
        let store = Process()
        store.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        store.arguments = ["-u", "sh", "-c", "hostname db1 && exec \"$0\" \"$@\"", Fixture.binary, "store", "--name", "slow", "-q", "--", slow]
        store.environment = fx.environment.merging(users.host) { $1 }
        store.standardOutput = FileHandle.nullDevice
        store.standardError = FileHandle.nullDevice
        try store.run()
        defer { kill(store.processIdentifier, SIGKILL); store.waitUntilExit() }
        var locks: [String] = []
        for _ in 0..<100 where locks.isEmpty {
            usleep(100_000)
            locks = try list(fx, users, prefix: "repo/locks/")
        }
        XCTAssertEqual(locks.count, 1, "\(locks)")
        let prune = try fx.run(["prune"])
        XCTAssertEqual(prune.status, 11, prune.stderr)
        XCTAssertTrue(prune.stderr.contains("db1"), prune.stderr)
    }
}
