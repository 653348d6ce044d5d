import XCTest
import Foundation
import RepoPrimitives
import RepoIndex

/// The catalog's persisted membership filter: created on first use, extended by merge when
/// packs are added, rebuilt when damaged or after a clear, and always exact for "new".
final class MembershipFilterFileTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "filter-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func pack(blobs: Int) -> PackDescriptor { TestPacks.random(blobs: blobs) }

    private var filterPath: String { dir + "/catalog.sqlite-filter" }

    func testFilterIsPersistedExtendedAndRebuilt() throws {
        let catalog = try Catalog(path: dir + "/catalog.sqlite")
        let first = (0..<5).map { _ in pack(blobs: 200) }
        try catalog.addSegment("s1", packs: first)
        let f1 = try catalog.membershipFilter()
        XCTAssertEqual(f1.count, 1000)
        for p in first { for b in p.blobs { XCTAssertTrue(f1.mayContain(b.id)) } }
        let size1 = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: filterPath)[.size] as? Int)
        XCTAssertEqual(size1, 36 + 1000 * 8 + 8)

        // Another segment: the filter grows by a merge and the file follows.
        let second = (0..<3).map { _ in pack(blobs: 50) }
        try catalog.addSegment("s2", packs: second)
        let f2 = try Catalog(path: dir + "/catalog.sqlite").membershipFilter()
        XCTAssertEqual(f2.count, 1150)
        for p in first + second { for b in p.blobs { XCTAssertTrue(f2.mayContain(b.id)) } }
        let size2 = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: filterPath)[.size] as? Int)
        XCTAssertEqual(size2, 36 + 1150 * 8 + 8)
        // A pack holding copies of known blobs (as prune's repacking writes) adds no prefixes.
        var copy = pack(blobs: 0)
        copy.blobs = Array(first[0].blobs.prefix(30)) + Array(second[0].blobs.prefix(20))
        try catalog.addSegment("s3", packs: [copy])
        XCTAssertEqual(try catalog.membershipFilter().count, 1150)
        XCTAssertEqual(try XCTUnwrap(FileManager.default.attributesOfItem(atPath: filterPath)[.size] as? Int), 36 + 1150 * 8 + 8)
        // Unknown ids are (almost surely) reported new.
        XCTAssertEqual((0..<1000).filter { _ in f2.mayContain(SecureRandom.hash()) }.count, 0)

        // A damaged file is ignored and rebuilt.
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: filterPath))
        bytes[100] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: filterPath))
        let f3 = try catalog.membershipFilter()
        XCTAssertEqual(f3.count, 1150)
        for p in first + second { for b in p.blobs { XCTAssertTrue(f3.mayContain(b.id)) } }
        XCTAssertNotEqual(try XCTUnwrap(FileManager.default.contents(atPath: filterPath)), bytes)

        // A truncated file too.
        let full = try XCTUnwrap(FileManager.default.contents(atPath: filterPath))
        try full.prefix(full.count - 13).write(to: URL(fileURLWithPath: filterPath))
        XCTAssertEqual(try catalog.membershipFilter().count, 1150)

        // clear() drops the file; the rebuilt filter holds only what is re-added.
        try catalog.clear()
        XCTAssertFalse(FileManager.default.fileExists(atPath: filterPath))
        try catalog.addSegment("s2", packs: second)
        let f4 = try catalog.membershipFilter()
        XCTAssertEqual(f4.count, 150)
        for b in first[0].blobs.prefix(50) { XCTAssertFalse(f4.mayContain(b.id)) }
    }

    func testStaleFileFromBeforeAClearIsNotUsed() throws {
        let catalog = try Catalog(path: dir + "/catalog.sqlite")
        let old = pack(blobs: 100)
        try catalog.addSegment("s1", packs: [old])
        _ = try catalog.membershipFilter()
        let stale = try XCTUnwrap(FileManager.default.contents(atPath: filterPath))
        try catalog.clear()
        let fresh = (0..<2).map { _ in pack(blobs: 10) }
        try catalog.addSegment("s2", packs: fresh)
        // Another process writes its out-of-date file back after the clear.
        try stale.write(to: URL(fileURLWithPath: filterPath))
        let f = try catalog.membershipFilter()
        XCTAssertEqual(f.count, 20)
        for p in fresh { for b in p.blobs { XCTAssertTrue(f.mayContain(b.id)) } }
    }
}
