import XCTest
import Foundation
import RepoPrimitives
import RepoIndex

/// The catalog follows `index/` segment by segment: a segment that supersedes others drops
/// exactly their listings, a pack another segment still lists survives, a segment no longer
/// stored goes, and a superseded segment read late adds nothing (FORMAT.md §12, §20).
final class CatalogSegmentTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "catalog-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func pack(blobs: Int = 3) -> PackDescriptor { TestPacks.random(blobs: blobs) }

    func testSupersedingSegmentsReplaceOnlyWhatTheyName() throws {
        let catalog = try Catalog(path: dir + "/catalog.sqlite")
        let (p1, p2, p3, p4, p5) = (pack(), pack(), pack(), pack(), pack())
        try catalog.addSegment("s1", packs: [p1, p2])
        try catalog.addSegment("s2", packs: [p3])
        try catalog.addUnindexedPack(p5)
        XCTAssertEqual(try catalog.packCount(), 4)

        // A prune's segment: keeps p1, drops p2, adds p4 (a repacked pack), supersedes s1 only.
        var change = try catalog.applySegments([.init(name: "s3", packs: [p1, p4], superseded: ["s1"])], gone: [])
        XCTAssertEqual(change, Catalog.SegmentChange(segmentsDropped: 1, packsRemoved: 1))
        XCTAssertEqual(try catalog.packNames(), Set([p1, p3, p4, p5].map(\.name)))
        XCTAssertNil(try catalog.lookup(p2.blobs[0].id))
        XCTAssertEqual(try catalog.lookup(p1.blobs[1].id)?.pack, p1.name)
        XCTAssertFalse(try catalog.contains(p2.blobs[2].id, type: .data))
        // The superseded segment is still known while it is stored, so it is not read again.
        XCTAssertEqual(try catalog.segmentNames(), ["s1", "s2", "s3"])

        // Once deleted, it goes; nothing else changes.
        change = try catalog.applySegments([], gone: ["s1"])
        XCTAssertEqual(change, Catalog.SegmentChange(segmentsDropped: 1, packsRemoved: 0))
        XCTAssertEqual(try catalog.segmentNames(), ["s2", "s3"])
        XCTAssertEqual(try catalog.packNames(), Set([p1, p3, p4, p5].map(\.name)))

        // A superseded segment that shows up again (a lagging listing) adds nothing.
        _ = try catalog.applySegments([.init(name: "s1", packs: [p1, p2])], gone: [])
        XCTAssertNil(try catalog.lookup(p2.blobs[0].id))

        // A pack two segments list survives the drop of one of them.
        try catalog.addSegment("s4", packs: [p3])
        change = try catalog.applySegments([.init(name: "s5", packs: [], superseded: ["s2"])], gone: [])
        XCTAssertEqual(change.packsRemoved, 0)
        XCTAssertEqual(try catalog.lookup(p3.blobs[0].id)?.pack, p3.name)

        // An empty segment superseding everything leaves only the unindexed pack.
        change = try catalog.applySegments([.init(name: "s6", packs: [], superseded: ["s3", "s4", "s5"])], gone: ["s2"])
        XCTAssertEqual(try catalog.packNames(), [p5.name])
        XCTAssertEqual(try catalog.unindexedPacks().map(\.name), [p5.name])
        // Every removed blob left the filter's epoch behind: the filter holds only p5's.
        XCTAssertEqual(try catalog.membershipFilter().count, 3)
    }

    func testSegmentsReadTogetherSupersedeEachOtherInOneStep() throws {
        let catalog = try Catalog(path: dir + "/catalog.sqlite")
        let (p1, p2) = (pack(), pack())
        // A host that never read s1 meets s1 and the segment superseding it in one listing.
        _ = try catalog.applySegments([.init(name: "s1", packs: [p1, p2]),
                                       .init(name: "s2", packs: [p2], superseded: ["s1"])], gone: [])
        XCTAssertEqual(try catalog.packNames(), [p2.name])
        XCTAssertNil(try catalog.lookup(p1.blobs[0].id))
    }
}
