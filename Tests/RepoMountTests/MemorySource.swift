import Foundation
import Synchronization
import RepoPrimitives
import RepoRepository
import RepoSnapshot
@testable import RepoMount

/// An in-memory `MountSource`: blobs by id, a snapshot list, damaged chunks, and load counters.
final class MemorySource: MountSource, @unchecked Sendable {
    private let lock = NSLock()
    private var blobs: [BlobID: [UInt8]] = [:]
    private var entries: [SnapshotEntry] = []
    var damaged = Set<BlobID>()
    private(set) var chunkLoads = 0
    private(set) var listLoads = 0
    private(set) var snapshotLoads = 0

    func put(_ bytes: [UInt8]) -> BlobID {
        let id = SHA256Hasher.hash(bytes)
        lock.withLock { blobs[id] = bytes }
        return id
    }

    /// Stores `data` cut into pieces of `sizes` (cycled) and returns its content, inline when
    /// it has at most `inlineLimit` chunks, else in lists of `listCapacity` chunks.
    func content(_ data: [UInt8], sizes: [Int], inlineLimit: Int = 64, listCapacity: Int = 4096) -> Content {
        var refs: [ChunkRef] = []
        var at = 0, k = 0
        while at < data.count {
            let n = min(sizes[k % sizes.count], data.count - at)
            k += 1
            let piece = Array(data[at..<(at + n)])
            // Ids must be unique per position here so that loads can be counted per chunk.
            var tagged = piece
            tagged.append(contentsOf: withUnsafeBytes(of: at) { Array($0) })
            let id = SHA256Hasher.hash(tagged)
            lock.withLock { blobs[id] = piece }
            refs.append(ChunkRef(id: id, size: n))
            at += n
        }
        if refs.count <= inlineLimit { return .chunks(refs) }
        var lists: [ListRef] = []
        var i = 0
        while i < refs.count {
            let part = Array(refs[i..<min(i + listCapacity, refs.count)])
            lists.append(ListRef(id: put(ContentList.encode(part)), size: part.reduce(0) { $0 + $1.size }, count: part.count))
            i += listCapacity
        }
        return .lists(lists)
    }

    func tree(_ nodes: [Node]) throws -> BlobID { put(try Tree(nodes: nodes).encoded()) }

    @discardableResult
    func addSnapshot(name: String?, time: String, host: String = "h1", tags: [String] = [], tree: BlobID,
                     paths: [String]? = nil) -> SnapshotEntry {
        let s = Snapshot(time: time, host: host, username: "u", name: name, paths: paths, tags: tags, tree: tree,
                         stats: .init(totalBytes: 0, chunks: 0, newBlobs: 0, newBytes: 0, seconds: 0), program: "test")
        let e = SnapshotEntry(id: SHA256Hasher.hash(try! s.encoded()), snapshot: s, date: Timestamp.parse(time)!)
        lock.withLock { entries.append(e) }
        return e
    }

    func snapshotGeneration() throws -> String { lock.withLock { entries.map(\.id.hex).joined(separator: ",") } }

    func snapshots() throws -> [SnapshotEntry] { lock.withLock { snapshotLoads += 1; return entries } }

    func treeBytes(_ id: BlobID) throws -> [UInt8] {
        guard let b = lock.withLock({ blobs[id] }) else { throw RepoError(.integrity, "no blob \(id.hex)") }
        return b
    }

    func contentList(_ ref: ListRef) throws -> [ChunkRef] {
        lock.withLock { listLoads += 1 }
        return try ContentList.decode(try treeBytes(ref.id))
    }

    func chunk(_ ref: ChunkRef) throws -> [UInt8] {
        let (b, bad) = lock.withLock { chunkLoads += 1; return (blobs[ref.id], damaged.contains(ref.id)) }
        if bad { throw RepoError(.integrity, "blob \(ref.id.shortHex) in pack 00: authentication failed (data corrupted)") }
        guard let b else { throw RepoError(.integrity, "no blob \(ref.id.hex)") }
        return b
    }
}

func pseudoRandom(_ count: Int, seed: UInt64) -> [UInt8] {
    var s = seed &* 2 &+ 1
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        out[i] = UInt8(truncatingIfNeeded: s)
    }
    return out
}
