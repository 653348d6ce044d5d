import XCTest
import Foundation
import RepoPrimitives
import RepoRepository
import RepoSnapshot
@testable import RepoMount

/// The LRU's bound and recency order.
final class LRUCacheTests: XCTestCase {
    func testEvictsLeastRecentlyUsedWithinBound() {
        var c = LRUCache<Int, String>(capacity: 10)
        c.insert("a", for: 1, cost: 4)
        c.insert("b", for: 2, cost: 4)
        XCTAssertEqual(c.value(for: 1), "a")          // 1 is now most recent
        let evicted = c.insert("c", for: 3, cost: 4)  // 12 > 10: evict 2
        XCTAssertEqual(evicted, [2])
        XCTAssertEqual(c.totalCost, 8)
        XCTAssertNil(c.value(for: 2))
        XCTAssertEqual(c.keysByRecency, [3, 1])
        XCTAssertEqual(c.insert("d", for: 4, cost: 10), [1, 3])   // least recent first
        XCTAssertEqual(c.count, 1)
        XCTAssertEqual(c.totalCost, 10)
    }

    func testOversizedValueIsNotStoredAndReplacementUpdatesCost() {
        var c = LRUCache<Int, Int>(capacity: 5)
        c.insert(1, for: 1, cost: 6)
        XCTAssertEqual(c.count, 0)
        XCTAssertEqual(c.totalCost, 0)
        c.insert(1, for: 1, cost: 3)
        c.insert(2, for: 1, cost: 2)
        XCTAssertEqual(c.totalCost, 2)
        XCTAssertEqual(c.value(for: 1), 2)
        c.remove(1)
        XCTAssertEqual(c.totalCost, 0)
        XCTAssertTrue(c.keysByRecency.isEmpty)
    }

    func testRandomOperationsKeepTheBound() {
        var c = LRUCache<Int, Int>(capacity: 1000)
        var g = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let k = Int.random(in: 0..<200, using: &g)
            if Bool.random(using: &g) { c.insert(k, for: k, cost: Int.random(in: 1...120, using: &g)) } else { _ = c.value(for: k) }
            XCTAssertLessThanOrEqual(c.totalCost, 1000)
        }
        XCTAssertEqual(Set(c.keysByRecency).count, c.count)
    }
}

/// Offset → chunk lookup over inline content and content lists, at every boundary.
final class ContentMapTests: XCTestCase {
    /// Checks every chunk's first and last byte and a walk with `next` against the sizes.
    private func check(_ map: ContentMap, sizes: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        var start = 0
        var walked: ContentMap.Located?
        for (i, n) in sizes.enumerated() where n > 0 {
            for o in [start, start + n / 2, start + n - 1] {
                let l = try XCTUnwrap(try map.locate(o), file: file, line: line)
                XCTAssertEqual(l.start, start, "offset \(o) (chunk \(i))", file: file, line: line)
                XCTAssertEqual(l.chunk.size, n, file: file, line: line)
            }
            walked = walked == nil ? try map.locate(0) : try map.next(after: walked!)
            XCTAssertEqual(walked?.start, start, "walk at chunk \(i)", file: file, line: line)
            start += n
        }
        XCTAssertEqual(map.size, start, file: file, line: line)
        XCTAssertNil(try map.locate(start), file: file, line: line)
        XCTAssertNil(try map.locate(-1), file: file, line: line)
        if let w = walked { XCTAssertNil(try map.next(after: w), file: file, line: line) }
    }

    func testInlineBoundaries() throws {
        let src = MemorySource()
        let sizes = [1, 7, 4096, 3, 100_000, 2]
        let data = pseudoRandom(sizes.reduce(0, +), seed: 1)
        let content = src.content(data, sizes: sizes)
        guard case .chunks = content else { return XCTFail("expected inline content") }
        try check(ContentMap(content: content, loadList: src.contentList), sizes: sizes)
        XCTAssertEqual(src.listLoads, 0)
    }

    func testListBoundariesAndLazyLoading() throws {
        let src = MemorySource()
        let sizes = [5, 11, 3, 17, 2, 1000, 8]   // cycled
        let count = 10 * 7 + 3                   // 73 chunks in lists of 10 → 8 lists, last has 3
        var all: [Int] = []
        for k in 0..<count { all.append(sizes[k % sizes.count]) }
        let data = pseudoRandom(all.reduce(0, +), seed: 2)
        let content = src.content(data, sizes: sizes, inlineLimit: 4, listCapacity: 10)
        guard case .lists(let lists) = content else { return XCTFail("expected lists") }
        XCTAssertEqual(lists.count, 8)
        let map = ContentMap(content: content, loadList: src.contentList)
        XCTAssertEqual(map.size, data.count)
        // One lookup in the middle loads exactly one list.
        let mid = try XCTUnwrap(try map.locate(data.count / 2))
        XCTAssertEqual(src.listLoads, 1)
        XCTAssertEqual(Array(data[mid.start..<mid.end]), try src.chunk(mid.chunk))
        // First and last byte of every list.
        var start = 0
        for l in lists {
            XCTAssertEqual(try map.locate(start)?.start, start)
            XCTAssertEqual(try map.locate(start + l.size - 1)?.end, start + l.size)
            start += l.size
        }
        try check(map, sizes: all)
    }

    func testEmptyContentAndZeroSizedEntries() throws {
        let src = MemorySource()
        let empty = ContentMap(content: .chunks([]), loadList: src.contentList)
        XCTAssertEqual(empty.size, 0)
        XCTAssertNil(try empty.locate(0))
        let a = ChunkRef(id: src.put([1, 2, 3]), size: 3), z = ChunkRef(id: src.put([]), size: 0), b = ChunkRef(id: src.put([4]), size: 1)
        let map = ContentMap(content: .chunks([a, z, b]), loadList: src.contentList)
        XCTAssertEqual(try map.locate(3)?.chunk, b)
        XCTAssertEqual(try map.next(after: try XCTUnwrap(try map.locate(0)))?.chunk, b)
    }

    func testMismatchedListIsAnIntegrityError() throws {
        let src = MemorySource()
        let refs = [ChunkRef(id: src.put([1]), size: 1), ChunkRef(id: src.put([2, 2]), size: 2)]
        let id = src.put(ContentList.encode(refs))
        for bad in [ListRef(id: id, size: 3, count: 3), ListRef(id: id, size: 4, count: 2)] {
            let map = ContentMap(content: .lists([bad]), loadList: src.contentList)
            XCTAssertThrowsError(try map.locate(0)) { e in
                XCTAssertEqual((e as? RepoError)?.kind, .integrity, "\(e)")
            }
        }
    }
}

/// The decoded-chunk cache: memory bound, one decode per chunk, read-ahead.
final class ChunkCacheTests: XCTestCase {
    func testMemoryBoundAndHits() throws {
        let src = MemorySource()
        let refs = (0..<20).map { i in ChunkRef(id: src.put(pseudoRandom(1000, seed: UInt64(i + 1))), size: 1000) }
        let cache = ChunkCache(capacity: 5000, threads: 0, load: src.chunk)
        defer { cache.close() }
        for r in refs { _ = try cache.get(r) }
        XCTAssertLessThanOrEqual(cache.cachedBytes, 5000)
        XCTAssertEqual(cache.cachedBytes, 5000)
        _ = try cache.get(refs[19])
        XCTAssertEqual(cache.hits, 1)
        XCTAssertEqual(src.chunkLoads, 20)
        _ = try cache.get(refs[0])    // evicted long ago
        XCTAssertEqual(src.chunkLoads, 21)
    }

    func testConcurrentReadersDecodeOnceAndReadAheadFills() throws {
        let src = MemorySource()
        let refs = (0..<64).map { i in ChunkRef(id: src.put(pseudoRandom(4096, seed: UInt64(i + 7))), size: 4096) }
        let cache = ChunkCache(capacity: 1 << 20, threads: 3, load: src.chunk)
        defer { cache.close() }
        cache.prefetch(Array(refs[32...]))
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for r in refs { XCTAssertEqual(try? cache.get(r), try? src.chunk(r)) }
        }
        // 8 threads × 64 chunks, but each chunk decoded once (plus the comparisons' own loads).
        XCTAssertEqual(src.chunkLoads, 64 + 8 * 64)
        XCTAssertGreaterThan(cache.hits, 0)
    }

    func testFailuresAreNotCached() throws {
        let src = MemorySource()
        let r = ChunkRef(id: src.put([9, 9]), size: 2)
        src.damaged = [r.id]
        let cache = ChunkCache(capacity: 1 << 20, threads: 1, load: src.chunk)
        defer { cache.close() }
        XCTAssertThrowsError(try cache.get(r))
        src.damaged = []
        XCTAssertEqual(try cache.get(r), [9, 9])
    }
}

final class FileTimeTests: XCTestCase {
    func testParsesRFC3339() {
        XCTAssertEqual(FileTime.parse("1970-01-01T00:00:00Z"), FileTime(seconds: 0))
        XCTAssertEqual(FileTime.parse("2024-05-01T12:00:00Z"), FileTime(seconds: 1_714_564_800))
        XCTAssertEqual(FileTime.parse("2024-05-01T14:00:00.5+02:00"), FileTime(seconds: 1_714_564_800, nanoseconds: 500_000_000))
        XCTAssertEqual(FileTime.parse("2000-02-29T23:59:59.123456789Z"), FileTime(seconds: 951_868_799, nanoseconds: 123_456_789))
        XCTAssertNil(FileTime.parse("2024-05-01"))
        XCTAssertNil(FileTime.parse("2024-13-01T00:00:00Z"))
        XCTAssertNil(FileTime.parse("2024-05-01T00:00:00Zjunk"))
        XCTAssertEqual(FileTime(seconds: 1_714_564_800).directoryName, "2024-05-01T12:00:00Z")
    }

    func testEscapesNamesThatAreNotPathComponents() {
        XCTAssertEqual(PathName.escape("db/main.sql"), "db%2Fmain.sql")
        XCTAssertEqual(PathName.escape("100%"), "100%25")
        XCTAssertEqual(PathName.escape(".."), "%2E%2E")
        XCTAssertEqual(PathName.escape(""), "%")
        XCTAssertEqual(PathName.escape("plain.dump"), "plain.dump")
    }
}

/// Names longer than a directory entry allows are shortened, so one over-long stream name no
/// longer fails the whole `by-name/` listing.
final class LongNameTests: XCTestCase {
    func testOverlongNamesAreShortenedUniquelyAndStayListable() throws {
        let src = MemorySource()
        let tree = try src.tree([])
        let long = String(repeating: "n", count: 5000)
        let longer = long + "2"
        let accented = String(repeating: "é", count: 200)   // 400 bytes: cut on a character boundary
        for (i, name) in [long, longer, accented, "short.sql"].enumerated() {
            _ = src.addSnapshot(name: name, time: "2024-05-0\(i + 1)T00:00:00Z", tree: tree)
        }
        let fs = MountFilesystem(source: src) { _ in }
        let names = try fs.list("/by-name").map(\.0)
        XCTAssertEqual(names.count, 4)
        XCTAssertTrue(names.contains("short.sql"))
        for n in names {
            XCTAssertLessThanOrEqual(n.utf8.count, 255, n)
            XCTAssertNotNil(String(validating: Array(n.utf8), as: UTF8.self))
        }
        XCTAssertEqual(Set(names).count, 4, "shortened names stay distinct")
        let short = PathName.escape(long)
        XCTAssertTrue(short.hasPrefix(String(repeating: "n", count: 200)))
        XCTAssertTrue(short.contains("…~"))
        XCTAssertNotEqual(short, PathName.escape(longer))
        // Every shortened name resolves to its snapshot.
        for n in names {
            XCTAssertEqual(try fs.list("/by-name/\(n)").count, 2, n)   // its time and `latest`
        }
        // A stream of that name (as an older version stored it) is listed and read under the
        // shortened name inside its snapshot too.
        let data = pseudoRandom(3000, seed: 7)
        let streamTree = try src.tree([Node(name: long, type: .file, size: data.count, content: src.content(data, sizes: [1000, 2000]))])
        _ = src.addSnapshot(name: long, time: "2024-06-01T00:00:00Z", tree: streamTree)
        try fs.refresh()
        let inside = try fs.list("/by-name/\(short)/2024-06-01T00:00:00Z").map(\.0)
        XCTAssertEqual(inside, [short])
        XCTAssertEqual(try fs.readAll("/by-name/\(short)/2024-06-01T00:00:00Z/\(short)"), data)
        XCTAssertEqual(PathName.escape(String(repeating: "x", count: 255)), String(repeating: "x", count: 255))
        XCTAssertEqual(PathName.escape(String(repeating: "x", count: 256)).utf8.count, 255)
    }
}
