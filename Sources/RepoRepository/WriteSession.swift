public import RepoPrimitives
public import RepoIndex
import Synchronization

/// Saves blobs of one write session (one `store`): dedup against the index and the session's
/// own blobs, compress, encrypt into packs, upload full packs, and at the end write one index
/// segment listing every pack the session produced (FORMAT.md §Write ordering).
///
/// `save` may be called from many threads at once, each with its own `Context`.
public final class WriteSession: Sendable {
    public let repository: Repository
    private let filter: MembershipFilter
    private let state = Mutex<State>(State())

    struct State {
        var pending = Set<PendingKey>()
        var idle: [BlobType: [PackWriter]] = [:]
        var written: [PackDescriptor] = []
        var stats = SessionStats()
        var finished = false
    }

    struct PendingKey: Hashable { var id: BlobID; var type: BlobType }

    /// What a session added.
    public struct SessionStats: Sendable, Equatable {
        /// Blobs saved by `save` calls, new or not.
        public var blobs = 0
        /// Blobs that were new to the repository, and their plaintext and stored bytes.
        public var newBlobs = 0
        public var newRawBytes = 0
        public var newStoredBytes = 0
        /// Packs uploaded and their total size.
        public var packs = 0
        public var packBytes = 0
    }

    /// Per-thread state for `save`: HMAC (single and batched) and zstd contexts.
    public final class Context {
        let hmac: HMACSHA256
        let batch: HMACBatch
        let compressor: ZstdCompressor?
        init(idKey: [UInt8], level: Int32?) {
            hmac = HMACSHA256(key: idKey)
            batch = HMACBatch(key: idKey)
            compressor = level.map { ZstdCompressor(level: $0) }
        }
    }

    /// The outcome of one `save`.
    public struct Saved: Sendable {
        public var id: BlobID
        /// True if this call stored the blob; false if it was already in the repository or session.
        public var isNew: Bool
    }

    /// Compares `data/` with the catalog first (`Repository.reconcilePacks`), so the session
    /// never deduplicates against a pack that is gone and reuses what an interrupted writer left.
    public init(repository: Repository) throws {
        self.repository = repository
        try repository.reconcilePacks()
        filter = try repository.membershipFilter()
    }

    public func makeContext() -> Context {
        Context(idKey: repository.key.blobID, level: repository.config.zstdLevel)
    }

    public var stats: SessionStats { state.withLock { $0.stats } }

    /// False only if the repository certainly has no blob `id` (as of the session's start);
    /// used to trust a parent snapshot's content without a catalog query per chunk.
    public func mayContain(_ id: BlobID) -> Bool { filter.mayContain(id) }

    /// Stores `data` as a blob of `type` unless a blob with the same id exists.
    public func save(_ data: UnsafeRawBufferPointer, type: BlobType, context: Context) throws -> Saved {
        try save(data, id: context.hmac.mac(data), type: type, context: context)
    }

    /// Stores `data` whose blob id the caller computed (with `blobIDs(of:context:)`).
    public func save(_ data: UnsafeRawBufferPointer, id: BlobID, type: BlobType, context: Context) throws -> Saved {
        if filter.mayContain(id), try repository.catalog.contains(id, type: type) {
            state.withLock { $0.stats.blobs += 1 }
            return Saved(id: id, isNew: false)
        }
        let inserted = state.withLock { s -> Bool in
            s.stats.blobs += 1
            return s.pending.insert(PendingKey(id: id, type: type)).inserted
        }
        guard inserted else { return Saved(id: id, isNew: false) }

        let compressed = context.compressor?.compressIfSmaller(data)
        let writer = try state.withLock { s in s.idle[type]?.popLast() } ?? PackWriter(kind: type, master: repository.key, output: try repository.backend.stage())
        let before = writer.size
        if let compressed {
            try compressed.withUnsafeBytes {
                try writer.append(id: id, type: type, flags: PackBlobEntry.flagCompressed, rawLength: data.count, stored: $0)
            }
        } else {
            try writer.append(id: id, type: type, flags: 0, rawLength: data.count, stored: data)
        }
        let storedBytes = writer.size - before
        let full = writer.size >= repository.config.packSize
        if full { try upload(writer) }
        state.withLock { s in
            s.stats.newBlobs += 1
            s.stats.newRawBytes += data.count
            s.stats.newStoredBytes += storedBytes
            if !full { s.idle[type, default: []].append(writer) }
        }
        return Saved(id: id, isNew: true)
    }

    public func save(_ data: [UInt8], type: BlobType, context: Context) throws -> Saved {
        try data.withUnsafeBytes { try save($0, type: type, context: context) }
    }

    public func save(_ data: [UInt8], id: BlobID, type: BlobType, context: Context) throws -> Saved {
        try data.withUnsafeBytes { try save($0, id: id, type: type, context: context) }
    }

    /// Blob ids of many chunks at once (sixteen side by side where the CPU allows; see
    /// `HMACBatch`), for `save(_:id:type:context:)`.
    public func blobIDs(of chunks: [[UInt8]], context: Context) -> [BlobID] {
        context.batch.macs(chunks)
    }

    /// Finishes a pack and stores it (the pack is durable when this returns).
    private func upload(_ writer: PackWriter) throws {
        let descriptor = try writer.finish()
        try writer.output.commit(as: descriptor.objectName)
        state.withLock { s in
            s.written.append(descriptor)
            s.stats.packs += 1
            s.stats.packBytes += descriptor.size
        }
    }

    /// Uploads partly filled packs, then writes the session's index segment (also listing any
    /// packs an interrupted writer left unindexed) and records it in the catalog. Call once,
    /// after every `save` has returned, whether or not a snapshot will follow: on failure this
    /// makes what was uploaded reusable.
    ///
    /// - Returns: the segment's id, or nil if there was nothing to index.
    @discardableResult
    public func finish() throws -> Hash256? {
        let writers = state.withLock { s -> [PackWriter] in
            precondition(!s.finished, "WriteSession.finish called twice")
            s.finished = true
            defer { s.idle = [:] }
            return s.idle.values.flatMap { $0 }
        }
        for w in writers where !w.isEmpty { try upload(w) }
        var packs = state.withLock { $0.written }
        let known = Set(packs.map(\.name))
        packs += try repository.catalog.unindexedPacks().filter { !known.contains($0.name) }
        if (try? repository.verifyLock()) == nil {
            // The lock vanished while the session ran, so a prune may have deleted some of
            // these packs: a segment must never list a missing pack (the snapshot will not be
            // written either; `Repository.saveObject` refuses it).
            packs = packs.filter { (try? repository.backend.exists($0.objectName)) == true }
        }
        guard !packs.isEmpty else { return nil }
        let id = try repository.saveObject(IndexSegment(packs: packs).encoded(), kind: .index)
        // The segment is durable: a cache that cannot record it only loads it on the next open.
        do { try repository.catalog.addSegment(id.hex, packs: packs) } catch {
            repository.warn("the local cache could not record index segment \(id.shortHex): \(error); it is read again next time")
        }
        return id
    }
}
