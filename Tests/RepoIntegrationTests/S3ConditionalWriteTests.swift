import XCTest
import Foundation
import RepoTestSupport

/// A server that accepts `If-None-Match: *` and ignores it: moto behind our fault proxy, which
/// strips the header. `repo init` warns; `wal-push` finds out once (and remembers it per host),
/// then looks each name up before writing, so a different file under an archived name is still
/// refused instead of replacing it. Against the plain server nothing of this happens.
final class S3ConditionalWriteTests: XCTestCase {
    static let moto = SharedS3Server(.moto)
    override class func setUp() { super.setUp(); moto.start() }
    override class func tearDown() { moto.stop(); super.tearDown() }

    func testWALPushNeverReplacesAnArchivedFileOnAServerThatIgnoresIfNoneMatch() throws {
        let server = try Self.moto.get()
        let proxy = try S3FaultProxy(upstream: server.endpoint)
        defer { proxy.stop() }
        try proxy.setFaults(["strip_headers": ["If-None-Match"]])
        let fx = Fixture()
        fx.location = "s3:\(proxy.endpoint)/\(S3TestServer.uniqueBucket("cond"))/db"
        fx.extraEnvironment = server.environment
        let created = try fx.run(["init"])
        XCTAssertEqual(created.status, 0, created.stderr)
        XCTAssertTrue(created.stderr.contains("ignores conditional writes"), created.stderr)

        let name = WALArchiveTests.name(3)
        let original = WALArchiveTests.segment(3)
        let pushed = try fx.run(["wal-push", fx.file(name, original)])
        XCTAssertEqual(pushed.status, 0, pushed.stderr)
        XCTAssertTrue(pushed.stderr.contains("ignores conditional writes"), pushed.stderr)
        let remembered = try fx.shell("cat \(fx.cache)/*/s3-conditional-writes")
        XCTAssertEqual(remembered.out.trimmingCharacters(in: .whitespacesAndNewlines), "ignored", remembered.out)

        // Another file under the same name: refused, and the archived one is untouched.
        try FileManager.default.createDirectory(atPath: fx.dir + "/other", withIntermediateDirectories: true)
        let other = try fx.run(["wal-push", fx.file("other/" + name, WALArchiveTests.segment(3, seed: 7))])
        XCTAssertEqual(other.status, 1, other.stderr)
        XCTAssertTrue(other.stderr.contains("already archived") && other.stderr.contains("different contents"), other.stderr)
        // The same bytes again: a retry, exit 0.
        XCTAssertEqual(try fx.run(["wal-push", fx.dir + "/" + name]).status, 0)
        try fx.ok(["wal-fetch", name, fx.dir + "/fetched"])
        XCTAssertEqual(FileManager.default.contents(atPath: fx.dir + "/fetched"), original)
        try fx.ok(["check"])

        // The same repository straight at the server, which honours the header: no warning, and
        // the host's answer says so once it is asked again (a fresh cache).
        let direct = Fixture()
        direct.location = fx.location!.replacingOccurrences(of: proxy.endpoint, with: server.endpoint)
        direct.extraEnvironment = server.environment
        let next = WALArchiveTests.name(4)
        try FileManager.default.createDirectory(atPath: direct.dir + "/other", withIntermediateDirectories: true)
        let plain = try direct.run(["wal-push", direct.file(next, WALArchiveTests.segment(4))])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertFalse(plain.stderr.contains("conditional"), plain.stderr)
        let honoured = try direct.shell("cat \(direct.cache)/*/s3-conditional-writes")
        XCTAssertEqual(honoured.out.trimmingCharacters(in: .whitespacesAndNewlines), "honoured", honoured.out)
        let clash = try direct.run(["wal-push", direct.file("other/" + next, WALArchiveTests.segment(4, seed: 7))])
        XCTAssertEqual(clash.status, 1, clash.stderr)

        // A probe the storage refuses (403 on writing `config`) must not fail the push: the
        // host looks names up first instead, and answers nothing into its cache.
        try proxy.setFaults(["fail_every": 1, "status": 403, "code": "AccessDenied", "methods": ["PUT"], "path_contains": "/db/config"])
        let refused = Fixture()
        refused.location = fx.location
        refused.extraEnvironment = server.environment
        let third = WALArchiveTests.name(5)
        try FileManager.default.createDirectory(atPath: refused.dir + "/other", withIntermediateDirectories: true)
        let pushedAnyway = try refused.run(["wal-push", refused.file(third, WALArchiveTests.segment(5))])
        XCTAssertEqual(pushedAnyway.status, 0, pushedAnyway.stderr)
        XCTAssertTrue(pushedAnyway.stderr.contains("could not find out whether"), pushedAnyway.stderr)
        XCTAssertNotEqual(try refused.shell("cat \(refused.cache)/*/s3-conditional-writes").status, 0)
        let clash3 = try refused.run(["wal-push", refused.file("other/" + third, WALArchiveTests.segment(5, seed: 7))])
        XCTAssertEqual(clash3.status, 1, clash3.stderr)
    }
}
