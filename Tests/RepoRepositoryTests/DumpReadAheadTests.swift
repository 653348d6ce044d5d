import XCTest
import Foundation
import Synchronization
@testable import RepoPrimitives
@testable import RepoStorage
@testable import RepoIndex
@testable import RepoRepository
@testable import RepoSnapshot
@testable import RepoOperations

/// `dump` reads ahead pack by pack (`PackRegionPlan`, `Repository.loadBlobs(inOnePack:)`): a
/// stream whose chunks alternate between packs costs a request per pack and window, not one per
/// chunk, with the same bytes and the same verification.
final class DumpReadAheadTests: XCTestCase {
    var cache: String!

    override func setUp() { cache = NSTemporaryDirectory() + "repo-cache-" + UUID().uuidString }
    override func tearDown() { try? FileManager.default.removeItem(atPath: cache) }

    /// A `MemoryBackend` that records the ranged reads of pack objects.
    final class CountingBackend: StorageBackend {
        let inner = MemoryBackend()
        let packReads = Mutex<[(name: String, range: Range<Int>?)]>([])
        var location: String { inner.location }
        func prepare() throws { try inner.prepare() }
        func put(_ name: String, data: [UInt8]) throws { try inner.put(name, data: data) }
        func create(_ name: String, data: [UInt8]) throws -> Bool { try inner.create(name, data: data) }
        func get(_ name: String, range: Range<Int>?) throws -> [UInt8] {
            if name.hasPrefix("data/") { packReads.withLock { $0.append((name, range)) } }
            return try inner.get(name, range: range)
        }
        func stat(_ name: String) throws -> ObjectInfo { try inner.stat(name) }
        func list(prefix: String) throws -> [ObjectInfo] { try inner.list(prefix: prefix) }
        func delete(_ name: String) throws { try inner.delete(name) }
        func resetCount() { packReads.withLock { $0 = [] } }
        var readCount: Int { packReads.withLock { $0.count } }
    }

    func random(_ n: Int, seed: UInt64) -> [UInt8] {
        var x = seed | 1
        return (0..<n).map { _ -> UInt8 in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }

    /// Stores `data` in a session of its own with one worker (so in one pack of its own, under
    /// 16 MiB) and returns its chunks.
    func storeChunks(_ repo: Repository, _ data: [UInt8], name: String) throws -> [ChunkRef] {
        let path = NSTemporaryDirectory() + UUID().uuidString
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(data)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var store = StreamStore(repository: repo, name: name, tags: [], host: "h", time: Date())
        store.workers = 1   // one pack writer: the stream lies in one pack, in stream order
        let r = try store.run(input: fd)
        var it = ContentIterator(content: r.streams[0].content, repository: repo)
        var chunks: [ChunkRef] = []
        while let c = try it.next() { chunks.append(c) }
        return chunks
    }

    /// Dumps a node made of `chunks` (whose bytes are `expected`) into a file; returns what the
    /// file holds and what `Dump` threw, if anything.
    func dump(_ repo: Repository, _ chunks: [ChunkRef], expected: [UInt8]) -> (bytes: [UInt8], error: Error?) {
        let node = Node(name: "n", type: .file, size: expected.count, sha256: SHA256Hasher.hash(expected), content: .chunks(chunks))
        let path = NSTemporaryDirectory() + UUID().uuidString
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var failure: Error?
        do { try Dump(repository: repo).run(node: node, output: fd) } catch { failure = error }
        close(fd)
        return ([UInt8](FileManager.default.contents(atPath: path)!), failure)
    }

    /// Two streams in two packs, dumped as one stream that alternates between them chunk by
    /// chunk (as a stream stored by two workers does): one read per pack, where reading runs of
    /// adjacent chunks needed one per chunk.
    func testInterleavedPacksCostOneReadPerPack() throws {
        let backend = CountingBackend()
        let repo = try makeRepo(backend)
        let x = random(3 << 20, seed: 1), y = random(3 << 20, seed: 2)
        let xs = try storeChunks(repo, x, name: "x"), ys = try storeChunks(repo, y, name: "y")
        XCTAssertGreaterThan(min(xs.count, ys.count), 20)
        let packs = Set(try (xs + ys).map { try XCTUnwrap(try repo.locate($0.id)).pack })
        XCTAssertEqual(packs.count, 2, "each stream in a pack of its own")
        var chunks: [ChunkRef] = [], expected: [UInt8] = []
        var xo = 0, yo = 0
        for i in 0..<max(xs.count, ys.count) {
            if i < xs.count { chunks.append(xs[i]); expected += x[xo..<(xo + xs[i].size)]; xo += xs[i].size }
            if i < ys.count { chunks.append(ys[i]); expected += y[yo..<(yo + ys[i].size)]; yo += ys[i].size }
        }
        // Repeated chunks are read once and written each time.
        chunks += xs[0..<3]
        expected += x[0..<(xs[0].size + xs[1].size + xs[2].size)]
        backend.resetCount()
        let (bytes, error) = dump(repo, chunks, expected: expected)
        XCTAssertNil(error)
        XCTAssertEqual(bytes.count, expected.count)
        XCTAssertTrue(bytes == expected, "dumped bytes differ")
        XCTAssertEqual(backend.readCount, 2, "one ranged read per pack: \(backend.packReads.withLock { $0 })")
    }

    /// A damaged chunk inside a region: the chunks before it in the stream are written, then
    /// the dump fails with the integrity error naming the pack, as when it was read alone.
    func testDamagedBlobInARegionFailsAtThatChunk() throws {
        let backend = CountingBackend()
        let repo = try makeRepo(backend)
        let x = random(3 << 20, seed: 3), y = random(3 << 20, seed: 4)
        let xs = try storeChunks(repo, x, name: "x"), ys = try storeChunks(repo, y, name: "y")
        var chunks: [ChunkRef] = [], expected: [UInt8] = [], before = 0
        var xo = 0, yo = 0
        let damaged = xs.count / 2
        for i in 0..<min(xs.count, ys.count) {
            if i == damaged { before = expected.count }
            chunks.append(xs[i]); expected += x[xo..<(xo + xs[i].size)]; xo += xs[i].size
            chunks.append(ys[i]); expected += y[yo..<(yo + ys[i].size)]; yo += ys[i].size
        }
        let loc = try XCTUnwrap(try repo.locate(xs[damaged].id))
        backend.inner.corrupt(PackDescriptor.objectName(loc.pack)) { d in
            var d = d
            d[loc.entry.offset + loc.entry.length / 2] ^= 0x10
            return d
        }
        let (bytes, error) = dump(repo, chunks, expected: expected)
        let repoError = try XCTUnwrap(error as? RepoError, "\(String(describing: error))")
        XCTAssertEqual(repoError.kind, .integrity)
        XCTAssertTrue(repoError.message.contains(loc.pack.hex), repoError.message)
        XCTAssertTrue(repoError.message.contains("authentication failed"), repoError.message)
        XCTAssertEqual(bytes.count, before, "every chunk before the damaged one is written, nothing after it")
        XCTAssertTrue(bytes == Array(expected[0..<before]))
    }

    /// A catalog that cannot place the chunks (emptied here) costs a rebuild, not a failed dump.
    func testStaleCatalogIsRebuiltAndTheDumpSucceeds() throws {
        let backend = CountingBackend()
        let repo = try makeRepo(backend)
        let x = random(2 << 20, seed: 5)
        let xs = try storeChunks(repo, x, name: "x")
        try repo.catalog.clear()
        XCTAssertNil(try repo.locate(xs[0].id))
        let (bytes, error) = dump(repo, xs, expected: x)
        XCTAssertNil(error)
        XCTAssertTrue(bytes == x)
        XCTAssertNotNil(try repo.locate(xs[0].id), "the catalog was rebuilt")
    }

    func makeRepo(_ backend: StorageBackend, avg: Int = 64 * 1024) throws -> Repository {
        _ = try Repository.create(backend: backend, password: Array("pw".utf8), chunker: ChunkerParameters(average: avg),
                                  compression: "zstd:3", kdfN: 1024)
        return try Repository.open(backend: backend, password: Array("pw".utf8), cacheDirectory: cache)
    }

    // MARK: the plan

    func location(_ pack: UInt8, _ offset: Int, _ length: Int, id: UInt8? = nil) -> BlobLocation {
        var packBytes = [UInt8](repeating: 0, count: 32); packBytes[0] = pack
        var idBytes = [UInt8](repeating: 0, count: 32); idBytes[0] = pack; idBytes[1] = id ?? UInt8(truncatingIfNeeded: offset >> 10)
        idBytes[2] = UInt8(truncatingIfNeeded: offset >> 18)
        return BlobLocation(pack: Hash256(bytes: packBytes), packSalt: [],
                            entry: PackBlobEntry(id: Hash256(bytes: idBytes), type: .data, flags: 0, offset: offset, length: length, rawLength: length))
    }

    func testPlanGroupsPerPackAndSplitsSparseRuns() {
        let k = 1 << 10
        // Two packs, alternating in stream order, each side by side within its pack: one region each.
        var alternating: [BlobLocation] = []
        for i in 0..<10 { alternating += [location(1, i * 100 * k, 100 * k), location(2, i * 200 * k, 200 * k)] }
        let plan = PackRegionPlan(alternating)
        XCTAssertEqual(plan.regions.count, 2)
        XCTAssertEqual(plan.regions.map(\.range), [0..<(1000 * k), 0..<(2000 * k)])
        XCTAssertEqual(plan.regions.map(\.blobs.count), [10, 10])

        // Stream order differs from pack order; a repeated blob is read once.
        let shuffled = [location(1, 300 * k, 100 * k), location(1, 0, 100 * k), location(1, 300 * k, 100 * k), location(1, 100 * k, 200 * k)]
        XCTAssertEqual(PackRegionPlan(shuffled).regions.map(\.range), [0..<(400 * k)])
        XCTAssertEqual(PackRegionPlan(shuffled).regions[0].blobs.map(\.entry.offset), [0, 100 * k, 300 * k])

        // Two of every three blobs: two thirds of the span is needed, one region.
        let twoOfThree = (0..<12).filter { $0 % 3 != 2 }.map { location(1, $0 * 100 * k, 100 * k) }
        XCTAssertEqual(PackRegionPlan(twoOfThree).regions.count, 1)

        // One of every four: a quarter is needed, each blob is read alone.
        let oneOfFour = (0..<12).filter { $0 % 4 == 0 }.map { location(1, $0 * 100 * k, 100 * k) }
        XCTAssertEqual(PackRegionPlan(oneOfFour).regions.count, 3)

        // A gap over 1 MiB splits even when most of the span would be needed.
        let farApart = [location(1, 0, 4 << 20), location(1, (4 << 20) + (1 << 20) + 1, 4 << 20)]
        XCTAssertEqual(PackRegionPlan(farApart).regions.count, 2)
        let justNear = [location(1, 0, 4 << 20), location(1, (4 << 20) + (1 << 20), 4 << 20)]
        XCTAssertEqual(PackRegionPlan(justNear).regions.count, 1)

        // Overlapping entries (a damaged catalog) are never merged into one read.
        let overlapping = [location(1, 0, 100 * k), location(1, 50 * k, 100 * k, id: 9)]
        XCTAssertEqual(PackRegionPlan(overlapping).regions.count, 2)
    }
}
