import XCTest
import Foundation
import RepoStorage
@testable import RepoS3
import RepoTestSupport

/// The backend contract against a real S3 server (radosgw on loopback, `S3TestServer`), one
/// bucket per test; plus what only S3 has: prefixes, multipart uploads, listing pages, and the
/// errors a user must be able to act on.
final class S3BackendTests: StorageBackendConformance {
    static let s3 = SharedS3Server()
    override class func setUp() { super.setUp(); s3.start() }
    override class func tearDown() { s3.stop(); super.tearDown() }

    func running() throws -> S3TestServer {
        try Self.s3.get()
    }

    func backend(bucket: String = S3TestServer.uniqueBucket(), prefix: String = "repo", secret: String? = nil,
                 region: String? = nil, policy: S3Client.RetryPolicy = .init()) throws -> S3Backend {
        let server = try running()
        let location = try XCTUnwrap(try S3Location.parse(server.location(bucket: bucket, prefix: prefix)))
        let client = S3Client(location: location,
                              credentials: S3Credentials(accessKeyID: server.accessKeyID, secretAccessKey: secret ?? server.secretAccessKey),
                              region: region ?? server.region, policy: policy)
        return S3Backend(client: client)
    }

    override func makeBackend() throws -> StorageBackend? {
        let b = try backend()
        try b.prepare()
        return b
    }

    func testPrepareCreatesTheBucketAndRefusesANonEmptyPrefix() throws {
        let bucket = S3TestServer.uniqueBucket()
        let a = try backend(bucket: bucket, prefix: "one")
        try a.prepare()
        XCTAssertEqual(a.conditionalWrites, true, "radosgw refuses If-None-Match: * over an existing key")
        XCTAssertEqual(try a.list(prefix: "").count, 0, "the probe object is gone")
        try a.put("config", data: [1])
        XCTAssertThrowsError(try a.prepare())
        // Another prefix of the same bucket is another repository.
        let b = try backend(bucket: bucket, prefix: "two")
        try b.prepare()
        XCTAssertEqual(try b.list(prefix: "").count, 0)
        XCTAssertEqual(try a.list(prefix: "").map(\.name), ["config"])
    }

    func testListingPagesThroughMoreThanAThousandKeys() throws {
        let b = try XCTUnwrap(try makeBackend())
        let names = (0..<1205).map { String(format: "index/%04d", $0) }
        DispatchQueue.concurrentPerform(iterations: 16) { w in
            for i in stride(from: w, to: names.count, by: 16) { try! b.put(names[i], data: [UInt8(i & 255)]) }
        }
        let listed = try b.list(prefix: "index/")
        XCTAssertEqual(listed.map(\.name).sorted(), names)
        XCTAssertTrue(listed.allSatisfy { $0.size == 1 && $0.modified != nil })
        XCTAssertLessThan(abs(listed[0].modified!.timeIntervalSinceNow), 600)
    }

    func testMultipartUploadOfAStagedObject() throws {
        let b = try backend()
        try b.prepare()
        b.multipartThreshold = 6 << 20
        b.partSize = 5 << 20
        let data = (0..<(13 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let staged = try b.stage()
        for i in stride(from: 0, to: data.count, by: 1 << 20) { try data[i..<min(data.count, i + (1 << 20))].withUnsafeBytes { try staged.append($0) } }
        XCTAssertFalse(try b.exists("data/big"))
        try staged.commit(as: "data/big")
        XCTAssertEqual(try b.stat("data/big").size, data.count)
        XCTAssertEqual(try b.get("data/big"), data)
        XCTAssertEqual(try b.get("data/big", range: (5 << 20) - 3..<(5 << 20) + 3), Array(data[((5 << 20) - 3)..<((5 << 20) + 3)]))
        XCTAssertGreaterThanOrEqual(b.client.counters.snapshot["s3:PutObject"] ?? 0, 5)   // create, 3 parts, complete
    }

    func testWrongSecretIsNamed() throws {
        let good = try backend()
        try good.prepare()
        let bad = try backend(bucket: good.client.location.bucket, secret: "not-the-secret")
        XCTAssertThrowsError(try bad.get("config")) { error in
            XCTAssertTrue("\(error)".contains("SignatureDoesNotMatch") && "\(error)".contains("AWS_SECRET_ACCESS_KEY"), "\(error)")
        }
    }

    func testMissingBucketIsNamed() throws {
        let b = try backend()
        XCTAssertThrowsError(try b.list(prefix: "")) { error in
            XCTAssertTrue("\(error)".contains("does not exist") && "\(error)".contains("repo init"), "\(error)")
        }
    }

    func testUnreachableServerFailsAfterRetriesWithinTheTimeout() throws {
        var policy = S3Client.RetryPolicy()
        policy.attempts = 3; policy.baseDelay = 0.01; policy.connectTimeout = 1
        let location = try XCTUnwrap(try S3Location.parse("s3:http://127.0.0.1:9/bucket"))
        let b = S3Backend(client: S3Client(location: location, credentials: S3Credentials(accessKeyID: "a", secretAccessKey: "b"),
                                           region: "us-east-1", policy: policy))
        let start = Date()
        XCTAssertThrowsError(try b.get("config")) { error in
            XCTAssertTrue("\(error)".contains("refused") && "\(error)".contains("3 attempts"), "\(error)")
        }
        XCTAssertEqual(b.client.counters.total, 3)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }
}
