import XCTest
import Foundation
@testable import RepoPrimitives
@testable import RepoStorage
@testable import RepoIndex
@testable import RepoRepository
@testable import RepoSnapshot
@testable import RepoOperations

/// The repository and operations layers in-process, on an in-memory backend.
final class RepositoryTests: XCTestCase {
    var cache: String!

    override func setUp() { cache = NSTemporaryDirectory() + "repo-cache-" + UUID().uuidString }
    override func tearDown() { try? FileManager.default.removeItem(atPath: cache) }

    func makeRepo(_ backend: StorageBackend = MemoryBackend(), avg: Int = 64 * 1024) throws -> Repository {
        _ = try Repository.create(backend: backend, password: Array("pw".utf8), chunker: ChunkerParameters(average: avg),
                                  compression: "zstd:3", kdfN: 1024)
        return try Repository.open(backend: backend, password: Array("pw".utf8), cacheDirectory: cache)
    }

    func testWrongPasswordAndMissingRepository() throws {
        let backend = MemoryBackend()
        _ = try makeRepo(backend)
        XCTAssertThrowsError(try Repository.open(backend: backend, password: Array("nope".utf8), cacheDirectory: cache)) {
            XCTAssertEqual(($0 as? RepoError)?.kind, .wrongPassword)
        }
        XCTAssertThrowsError(try Repository.open(backend: MemoryBackend(), password: [], cacheDirectory: cache)) {
            XCTAssertEqual(($0 as? RepoError)?.kind, .noRepository)
        }
    }

    func testPackRoundTripAndTamperDetection() throws {
        let repo = try makeRepo()
        let output = BufferedStagedObject(backend: nil)
        let writer = PackWriter(kind: .data, master: repo.key, output: output)
        let blobs = (0..<5).map { i in (0..<(1000 * (i + 1))).map { UInt8(truncatingIfNeeded: $0 * (i + 3)) } }
        let mac = HMACSHA256(key: repo.key.blobID)
        for b in blobs { try b.withUnsafeBytes { try writer.append(id: mac.mac(b), type: .data, flags: 0, rawLength: b.count, stored: $0) } }
        let desc = try writer.finish()
        let bytes = output.bytes
        XCTAssertEqual(desc.size, bytes.count)
        XCTAssertEqual(desc.name, SHA256Hasher.hash(bytes))
        let reader = PackReader(master: repo.key)
        let header = try reader.header(name: desc.name, tail: bytes, packSize: bytes.count)
        XCTAssertEqual(header, desc)
        for (i, e) in header.blobs.enumerated() {
            let plain = try bytes.withUnsafeBytes {
                try reader.open(UnsafeRawBufferPointer(rebasing: $0[e.offset..<(e.offset + e.length)]), entry: e, packSalt: header.salt, pack: desc.name)
            }
            XCTAssertEqual(plain, blobs[i])
        }
        // A flipped bit in a blob fails that blob; in the header fails the header.
        var bad = bytes
        bad[header.blobs[2].offset + 10] ^= 0x20
        XCTAssertThrowsError(try bad.withUnsafeBytes { b in
            let e = header.blobs[2]
            return try reader.open(UnsafeRawBufferPointer(rebasing: b[e.offset..<(e.offset + e.length)]), entry: e, packSalt: header.salt, pack: desc.name)
        }) { XCTAssertEqual(($0 as? RepoError)?.kind, .integrity) }
        var badHeader = bytes
        badHeader[bytes.count - 50] ^= 1
        XCTAssertThrowsError(try reader.header(name: desc.name, tail: badHeader, packSize: bytes.count))
    }

    func testIndexSegmentRoundTrip() throws {
        let entry = PackBlobEntry(id: SecureRandom.hash(), type: .tree, flags: 1, offset: 77, length: 1234, rawLength: 5678)
        let seg = IndexSegment(packs: [PackDescriptor(name: SecureRandom.hash(), salt: SecureRandom.bytes(32), kind: .tree,
                                                      location: 0, size: 9999, blobs: [entry, entry])],
                               superseded: [SecureRandom.hash()])
        XCTAssertEqual(try IndexSegment.decode(seg.encoded()), seg)
        XCTAssertThrowsError(try IndexSegment.decode(Array(seg.encoded().dropLast())))
    }

    func store(_ repo: Repository, _ data: [UInt8], name: String = "s") throws -> StreamStore.Result {
        let path = NSTemporaryDirectory() + UUID().uuidString
        FileManager.default.createFile(atPath: path, contents: Data(data))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        return try StreamStore(repository: repo, name: name, tags: [], host: "h", time: Date()).run(input: fd)
    }

    func dump(_ repo: Repository, _ id: Hash256) throws -> [UInt8] {
        let entry = try repo.findSnapshot(id.hex, filter: SnapshotFilter())
        let node = try repo.fileNode(in: entry, path: nil)
        let path = NSTemporaryDirectory() + UUID().uuidString
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Dump(repository: repo).run(node: node, output: fd)
        close(fd)
        return [UInt8](FileManager.default.contents(atPath: path)!)
    }

    func testStoreDumpTwoLevelContentList() throws {
        let repo = try makeRepo(avg: 4096)
        // Pseudo-random bytes (a periodic pattern cut unpredictably under a random chunker key):
        // ~5000-6000 chunks at a 4 KiB average, so more than one content list.
        var x: UInt64 = 0x9E3779B97F4A7C15
        let data = (0..<(24 << 20)).map { _ -> UInt8 in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
        let r = try store(repo, data)
        let chunks = r.snapshot.stats.chunks
        XCTAssertGreaterThan(chunks, ContentList.capacity)
        let node = try repo.fileNode(in: repo.findSnapshot("latest", filter: SnapshotFilter()), path: nil)
        guard case .lists(let lists) = node.content else { return XCTFail("expected a two-level content list") }
        XCTAssertEqual(lists.count, (chunks + ContentList.capacity - 1) / ContentList.capacity)
        XCTAssertEqual(lists.reduce(0) { $0 + $1.count }, chunks)
        XCTAssertEqual(lists.reduce(0) { $0 + $1.size }, data.count)
        XCTAssertEqual(try dump(repo, r.snapshotID), data)
        XCTAssertEqual(r.sha256, SHA256Hasher.hash(data))
    }

    func testDedupWithinAndAcrossSessions() throws {
        let repo = try makeRepo()
        let block = (0..<(300 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 5) }
        let first = try store(repo, block + block + block)
        let again = try store(repo, block + block + block)
        XCTAssertEqual(again.newChunks, 0)
        XCTAssertLessThan(first.session.newRawBytes, block.count * 2)
        XCTAssertEqual(try dump(repo, again.snapshotID), block + block + block)
    }

    func testCatalogRebuildAndUnindexedPackAdoption() throws {
        let backend = MemoryBackend()
        let repo = try makeRepo(backend)
        let data = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 * 13) }
        let r = try store(repo, data)
        // Deleting the cache loses nothing.
        try FileManager.default.removeItem(atPath: cache)
        let reopened = try Repository.open(backend: backend, password: Array("pw".utf8), cacheDirectory: cache)
        XCTAssertEqual(try dump(reopened, r.snapshotID), data)

        // A pack written without an index segment (a crash before the segment) is found from its
        // header when the next write session starts (readers do not list data/, FORMAT.md §20
        // step 4), reused by that session, and indexed by its segment.
        let writer = PackWriter(kind: .data, master: reopened.key, output: try backend.stage())
        let orphan = Array("orphaned chunk".utf8)
        let id = reopened.blobID(of: orphan)
        try orphan.withUnsafeBytes { try writer.append(id: id, type: .data, flags: 0, rawLength: orphan.count, stored: $0) }
        let desc = try writer.finish()
        try writer.output.commit(as: desc.objectName)
        let third = try Repository.open(backend: backend, password: Array("pw".utf8), cacheDirectory: cache)
        XCTAssertNil(try third.locate(id), "opening reads the index only")
        let session = try WriteSession(repository: third)
        XCTAssertNotNil(try third.locate(id), "a write session adopts unindexed packs before it deduplicates")
        XCTAssertFalse(try session.save(orphan, type: .data, context: session.makeContext()).isNew)
        let segment = try XCTUnwrap(try session.finish())
        let seg = try IndexSegment.decode(try third.loadObject("index/" + segment.hex, kind: .index))
        XCTAssertTrue(seg.packs.contains { $0.name == desc.name })
    }

    func testLocks() throws {
        let repo = try makeRepo()
        let shared1 = try repo.lock(exclusive: false, command: "a")
        let shared2 = try repo.lock(exclusive: false, command: "b")
        XCTAssertThrowsError(try repo.lock(exclusive: true, command: "c")) { XCTAssertEqual(($0 as? RepoError)?.kind, .locked) }
        shared1.release(); shared2.release()
        let excl = try repo.lock(exclusive: true, command: "d")
        XCTAssertThrowsError(try repo.lock(exclusive: false, command: "e")) { XCTAssertEqual(($0 as? RepoError)?.kind, .locked) }
        excl.release()
        XCTAssertEqual(try repo.listLocks().count, 0)
        // A lock of a dead process on this host is stale, and removed by the next locker (its
        // holder can never release it).
        let dead = LockInfo(host: HostInfo.hostname, pid: 999_999, username: "u", time: Timestamp.format(Date()), exclusive: true, command: "x")
        try repo.saveObject(Array(try JSONEncoder().encode(dead)), kind: .lock)
        XCTAssertNotNil(dead.staleReason())
        let l = try repo.lock(exclusive: true, command: "f")
        l.release()
        XCTAssertEqual(try repo.listLocks().count, 0)
        // A lock of another host not refreshed for 30 minutes is stale, ignored, and removable.
        let old = LockInfo(host: "elsewhere", pid: 1, username: "u", time: Timestamp.format(Date().addingTimeInterval(-3600)), exclusive: true, command: "y")
        try repo.saveObject(Array(try JSONEncoder().encode(old)), kind: .lock)
        let l2 = try repo.lock(exclusive: true, command: "g")
        l2.release()
        XCTAssertEqual(try repo.removeLocks(all: false).removed.count, 1)
    }

    func testSealedObjectsRejectOtherKindsAndKeys() throws {
        let repo = try makeRepo()
        let sealed = try SealedObject.seal(Array("body".utf8), kind: .snapshot, key: repo.key)
        XCTAssertEqual(try SealedObject.open(sealed, kind: .snapshot, key: repo.key, name: "x"), Array("body".utf8))
        XCTAssertThrowsError(try SealedObject.open(sealed, kind: .index, key: repo.key, name: "x"))
        XCTAssertThrowsError(try SealedObject.open(sealed, kind: .snapshot, key: MasterKey.generate(), name: "x"))
    }
}
