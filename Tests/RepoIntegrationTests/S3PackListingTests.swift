import XCTest
import Foundation
import RepoTestSupport

/// A writer compares `data/` with the index once per session; past 1,000 objects the S3
/// backend lists the 16 hex shards side by side (`S3Backend.listPackNames`). Every object must
/// still be seen: 1,100 foreign objects under `data/` (not packs of this repository) are each
/// found and reported as unreadable, once.
final class S3PackListingTests: XCTestCase {
    static let moto = SharedS3Server(.moto)
    override class func setUp() { super.setUp(); moto.start() }
    override class func tearDown() { moto.stop(); super.tearDown() }

    func testShardedListingSeesEveryObjectUnderData() throws {
        let server = try Self.moto.get()
        let bucket = S3TestServer.uniqueBucket("shards")
        let fx = Fixture()
        fx.location = server.location(bucket: bucket, prefix: "db")
        fx.extraEnvironment = server.environment
        try fx.initRepo()
        let script = """
        import boto3, os
        s3 = boto3.client("s3", endpoint_url="\(server.endpoint)", region_name="\(server.region)",
                          aws_access_key_id="\(server.accessKeyID)", aws_secret_access_key="\(server.secretAccessKey)")
        for i in range(1100):
            h = os.urandom(32).hex()
            s3.put_object(Bucket="\(bucket)", Key="db/data/%s/%s" % (h[:2], h), Body=b"not a pack")
        s3.put_object(Bucket="\(bucket)", Key="db/data/README", Body=b"not a pack name either")
        print("ok")
        """
        let put = try fx.shell("python3 -c \"$SNIPPET\" 2>&1", env: ["SNIPPET": script])
        XCTAssertEqual(put.status, 0, put.out)

        let stored = try fx.run(["store", "--name", "db.sql", "-v"], stdinPath: fx.file("in", TestData.random(200_000)))
        XCTAssertEqual(stored.status, 0, stored.stderr)
        let unreadable = stored.stderr.components(separatedBy: "\n").filter { $0.contains("is not indexed and its header is unreadable") }
        XCTAssertEqual(unreadable.count, 1100, String(stored.stderr.suffix(2000)))
        XCTAssertFalse(stored.stderr.contains("README"), String(stored.stderr.suffix(2000)))
        try fx.ok(["dump", "latest"])
    }
}
