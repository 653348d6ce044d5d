import XCTest
import Foundation
import RepoTestSupport

/// `--s3-storage-class` against moto's S3 server, which records and lists each object's storage
/// class: packs go to the class asked for, everything else stays STANDARD, and the data reads
/// back from it.
final class S3StorageClassTests: XCTestCase {
    static let moto = SharedS3Server(.moto)
    override class func setUp() { super.setUp(); moto.start() }
    override class func tearDown() { moto.stop(); super.tearDown() }

    func testPacksGoToTheStorageClassAskedForTheRestStaysStandard() throws {
        let server = try Self.moto.get()
        let bucket = S3TestServer.uniqueBucket("class")
        let fx = Fixture()
        fx.location = server.location(bucket: bucket)
        fx.extraEnvironment = server.environment
        try fx.initRepo()
        let data = TestData.random(2_000_000)
        let stored = try fx.run(["store", "--name", "db", "--s3-storage-class", "STANDARD_IA", "--json"], stdinPath: fx.file("a", data))
        XCTAssertEqual(stored.status, 0, stored.stderr)
        // The same from the environment, for a second snapshot.
        let again = try fx.run(["store", "--name", "db2"], stdinPath: fx.file("b", TestData.random(300_000)),
                               env: ["REPO_S3_STORAGE_CLASS": "ONEZONE_IA"])
        XCTAssertEqual(again.status, 0, again.stderr)

        let script = """
        import boto3
        s3 = boto3.client("s3", endpoint_url="\(server.endpoint)", region_name="\(server.region)",
                          aws_access_key_id="\(server.accessKeyID)", aws_secret_access_key="\(server.secretAccessKey)")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="\(bucket)"):
            for o in page.get("Contents", []):
                print(o["Key"].split("/")[0], o.get("StorageClass", "STANDARD"))
        """
        let listed = try fx.shell("python3 -c \"$SNIPPET\" 2>&1", env: ["SNIPPET": script])
        XCTAssertEqual(listed.status, 0, listed.out)
        let lines = Set(listed.out.split(separator: "\n").map(String.init))
        XCTAssertTrue(lines.contains("data STANDARD_IA") && lines.contains("data ONEZONE_IA"), listed.out)
        XCTAssertEqual(lines.filter { !$0.hasPrefix("data ") }, lines.filter { $0.hasSuffix(" STANDARD") && !$0.hasPrefix("data ") }, listed.out)
        XCTAssertTrue(lines.contains("index STANDARD") && lines.contains("snapshots STANDARD") && lines.contains("keys STANDARD"), listed.out)

        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: stored.stdout) as? [String: Any])?["id"] as? String)
        XCTAssertTrue(try fx.run(["dump", id]).stdout == data)
        try fx.ok(["check", "--read-data"])

        // Archive classes cannot be read directly: refused before anything is written.
        for bad in ["GLACIER", "DEEP_ARCHIVE", "standard_ia", "NO SUCH"] {
            let r = try fx.run(["store", "--name", "x", "--s3-storage-class", bad], stdinPath: fx.file("c", Data("x".utf8)))
            XCTAssertEqual(r.status, 2, "\(bad): " + r.stderr)
        }
        XCTAssertEqual(try fx.snapshots().count, 2)
    }
}
