public import RepoPrimitives
public import RepoSnapshot
public import RepoRepository
import RepoOperations
import Foundation

/// What the mount needs from a repository: the snapshot list, trees, content lists and chunks.
/// A narrow interface so the filesystem model is tested with an in-memory source.
///
/// Every method may be called from many threads at once.
public protocol MountSource: Sendable {
    /// A cheap token that changes whenever the set of snapshots changes (e.g. the sorted list
    /// of snapshot object names). The mount compares it to decide whether to reload.
    func snapshotGeneration() throws -> String
    /// All readable snapshots. Called after the generation changed; may bring indexes up to date.
    func snapshots() throws -> [SnapshotEntry]
    /// The raw bytes of a tree blob (decoded by the mount, which also reads optional fields).
    func treeBytes(_ id: BlobID) throws -> [UInt8]
    /// The chunk references of a content-list blob, checked against `ref.count`.
    func contentList(_ ref: ListRef) throws -> [ChunkRef]
    /// The plaintext of one data chunk, authenticated (a damaged chunk throws, never returns
    /// wrong bytes) and checked against `ref.size`.
    func chunk(_ ref: ChunkRef) throws -> [UInt8]
}

/// A `MountSource` over an open `Repository`: one `PackReader` per concurrent caller, taken
/// from a pool.
public final class RepositoryMountSource: MountSource, @unchecked Sendable {
    public let repository: Repository
    private let lock = NSLock()
    private var readers: [PackReader] = []   // idle ones, under `lock`

    public init(repository: Repository) { self.repository = repository }

    private func withReader<T>(_ body: (PackReader) throws -> T) rethrows -> T {
        let reader = lock.withLock { readers.popLast() } ?? PackReader(master: repository.key)
        defer { lock.withLock { readers.append(reader) } }
        return try body(reader)
    }

    public func snapshotGeneration() throws -> String {
        try repository.backend.list(prefix: "snapshots/").map(\.name).sorted().joined(separator: "\n")
    }

    public func snapshots() throws -> [SnapshotEntry] {
        // New snapshots were written with new index segments: bring the catalog up to date first.
        try repository.synchronizeCatalog()
        return try repository.snapshots()
    }

    public func treeBytes(_ id: BlobID) throws -> [UInt8] {
        try withReader { try repository.loadBlob(id, reader: $0) }
    }

    public func contentList(_ ref: ListRef) throws -> [ChunkRef] {
        let bytes = try withReader { try repository.loadBlob(ref.id, reader: $0) }
        let chunks: [ChunkRef]
        do { chunks = try ContentList.decode(bytes) } catch {
            throw RepoError(.integrity, "content list \(ref.id.hex) is malformed")
        }
        guard chunks.count == ref.count else {
            throw RepoError(.integrity, "content list \(ref.id.hex) has \(chunks.count) chunks, expected \(ref.count)")
        }
        return chunks
    }

    public func chunk(_ ref: ChunkRef) throws -> [UInt8] {
        let bytes = try withReader { try repository.loadBlob(ref.id, reader: $0) }
        guard bytes.count == ref.size else {
            throw RepoError(.integrity, "chunk \(ref.id.hex) has \(bytes.count) bytes, the content list says \(ref.size)")
        }
        return bytes
    }
}
