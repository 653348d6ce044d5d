public import Foundation
public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
import RepoIndex
import Synchronization
import Dispatch

/// Copies snapshots from one repository into another (`repo copy`, README "Copies"): every
/// blob they reference that the destination lacks is read from the source, decrypted, and
/// stored again under the destination's keys; then each snapshot is written with
/// `original` set (FORMAT.md §13), and the source's pins on it follow.
///
/// When both repositories share the blob-id key (`repo init --copy-chunker-params-from`),
/// blob ids are the same on both sides: trees and content lists are copied as they are, and a
/// blob the destination has is never read from the source. Otherwise ids differ and are
/// translated: every tree and content list is rewritten with the destination's ids, and every
/// chunk of a copied snapshot is read from the source (only those the destination lacks are
/// stored).
///
/// The caller holds a shared lock on both repositories. Not thread-safe.
public final class SnapshotCopy {
    public let source: Repository
    public let destination: Repository
    public var workers = defaultWorkerCount
    /// Content bytes of the snapshots being copied that are done (copied, or found in the
    /// destination), out of their total, and the bytes newly stored; throttled by the handler.
    public var progress: ProgressHandler?
    /// Content bytes done and the total of the snapshots to copy (for `progress`).
    let bytesDone = Mutex(0)
    var bytesTotal = 0
    /// Shared blob-id key: ids need no translation.
    public let sameIDs: Bool
    /// Polled between blobs: once set, the copy stops, indexes what it uploaded (so the next
    /// `repo copy` reuses it) and writes no further snapshot.
    public var cancellation: Cancellation?

    public struct Copied: Encodable, Sendable {
        public var source: String
        public var destination: String
        public var time: String
        public var host: String
        public var name: String?
        public var paths: [String]?
    }

    public struct Report: Encodable, Sendable {
        /// Snapshots written to the destination.
        public var copied: [Copied] = []
        /// Source snapshots the destination already had a copy of.
        public var skipped: [String] = []
        /// Blobs stored in the destination, their plaintext and stored bytes.
        public var newBlobs = 0
        public var newRawBytes = 0
        public var newStoredBytes = 0
        /// Blobs read from the source.
        public var blobsRead = 0
        public var pins = 0
        public var seconds = 0.0

        enum CodingKeys: String, CodingKey {
            case copied, skipped, pins, seconds
            case newBlobs = "new_blobs", newRawBytes = "new_raw_bytes", newStoredBytes = "new_stored_bytes", blobsRead = "blobs_read"
        }
    }

    public init(source: Repository, destination: Repository) {
        self.source = source
        self.destination = destination
        sameIDs = source.key.blobID == destination.key.blobID
    }

    /// Copies `snapshots` (source entries), oldest first, skipping those already copied.
    /// - Throws: what reading the source or writing the destination throws; snapshots copied
    ///   before the failure stay (each is complete), the one in progress is not written.
    ///   `RepoError` `.interrupted` when `cancellation` was set, saying how many were copied.
    public func run(_ snapshots: [SnapshotEntry], progress: ((String) -> Void)? = nil) throws -> Report {
        let started = Date()
        var report = Report()
        var present = Set<String>()
        for entry in try destination.snapshots() {
            present.insert(entry.snapshot.original ?? entry.id.hex)
        }
        let pins = try source.pins().map(\.pin)
        bytesTotal = snapshots.filter { !present.contains($0.snapshot.original ?? $0.id.hex) }.reduce(0) { $0 + $1.snapshot.stats.totalBytes }
        var newStored = 0
        let ordered = snapshots.sorted(by: { $0.date < $1.date })
        for entry in ordered {
            let origin = entry.snapshot.original ?? entry.id.hex
            if present.contains(origin) {
                report.skipped.append(entry.id.hex)
                continue
            }
            if let sig = cancellation?.requestedBy { throw interrupted(sig, report: report, total: ordered.count) }
            progress?("copying snapshot \(entry.id.shortHex) (\(entry.snapshot.name ?? entry.snapshot.paths?.joined(separator: " ") ?? ""))")
            let session = try WriteSession(repository: destination)
            let walk = Walk(copy: self, session: session, storedBefore: newStored)
            let root: BlobID
            do {
                root = try walk.tree(entry.snapshot.tree)
                try walk.drain()
            } catch {
                _ = try? session.finish()
                if let sig = cancellation?.requestedBy { throw interrupted(sig, report: report, total: ordered.count) }
                throw error
            }
            try session.finish()
            var snapshot = entry.snapshot
            snapshot.tree = root
            snapshot.original = origin
            let id = try destination.saveObject(try snapshot.encoded(), kind: .snapshot)
            present.insert(origin)
            let stats = session.stats
            newStored += stats.newStoredBytes
            report.newBlobs += stats.newBlobs
            report.newRawBytes += stats.newRawBytes
            report.newStoredBytes += stats.newStoredBytes
            report.blobsRead += walk.blobsRead
            report.copied.append(Copied(source: entry.id.hex, destination: id.hex, time: snapshot.time, host: snapshot.host,
                                        name: snapshot.name, paths: snapshot.paths))
            for pin in pins where pin.snapshot == entry.id.hex {
                var copy = pin
                copy.snapshot = id.hex
                try destination.setPin(copy)
                report.pins += 1
            }
        }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    private func interrupted(_ signal: Int32, report: Report, total: Int) -> RepoError {
        let n = report.copied.count
        return RepoError(.interrupted(signal: signal),
                         "interrupted: \(n) snapshot\(n == 1 ? "" : "s") copied (each complete), \(total - n - report.skipped.count) not; the data uploaded for the one in progress is indexed and reused",
                         hint: "run the same `repo copy` again to copy the rest")
    }

    /// The error that stops a walk once cancellation was requested (`run` turns it into the
    /// report's message).
    struct Stopped: Error {}

    /// One snapshot's walk: trees and content lists one after another (they are few and
    /// small), data chunks queued and copied by `workers` threads.
    final class Walk {
        let copy: SnapshotCopy
        let session: WriteSession
        let reader: PackReader
        let context: WriteSession.Context
        /// Source id → destination id of trees and lists done in this walk.
        var mapped: [BlobID: BlobID] = [:]
        /// Chunks to copy (shared ids only: their ids are known without reading them).
        var pending: [BlobID] = []
        var queued = Set<BlobID>()
        var chunkIDs: [BlobID: BlobID] = [:]
        /// Plaintext sizes of the queued chunks (for progress).
        var sizes: [BlobID: Int] = [:]
        private(set) var blobsRead = 0
        /// Bytes stored by the snapshots copied before this one (for progress).
        let storedBefore: Int

        init(copy: SnapshotCopy, session: WriteSession, storedBefore: Int) {
            self.copy = copy
            self.session = session
            self.storedBefore = storedBefore
            reader = PackReader(master: copy.source.key)
            context = session.makeContext()
        }

        /// Adds `bytes` of content done and reports progress.
        func advance(_ bytes: Int) {
            let done = copy.bytesDone.withLock { d -> Int in d += bytes; return d }
            copy.progress?(ProgressReport(bytes: done, totalBytes: copy.bytesTotal, newBytes: storedBefore + session.stats.newStoredBytes))
        }

        func load(_ id: BlobID) throws -> [UInt8] {
            blobsRead += 1
            return try copy.source.loadBlob(id, reader: reader)
        }

        /// The destination has blob `id` of `type` already (meaningful with shared ids).
        func destinationHas(_ id: BlobID, _ type: BlobType) throws -> Bool {
            session.mayContain(id) ? try copy.destination.catalog.contains(id, type: type) : false
        }

        func checkCancelled() throws {
            if copy.cancellation?.requestedBy != nil { throw Stopped() }
        }

        /// Copies the tree `id` and everything below it; returns its destination id.
        func tree(_ id: BlobID) throws -> BlobID {
            if let done = mapped[id] { return done }
            try checkCancelled()
            if copy.sameIDs, try destinationHas(id, .tree) {
                // A tree the destination has: so is everything below it (a writer stores a
                // tree only after its contents, FORMAT.md §19).
                mapped[id] = id
                return id
            }
            let plain = try load(id)
            var t = try Tree.decode(plain)
            for i in t.nodes.indices {
                if let sub = t.nodes[i].subtree { t.nodes[i].subtree = try tree(sub) }
                switch t.nodes[i].content {
                case .chunks(let refs)?:
                    t.nodes[i].content = .chunks(try refs.map { ChunkRef(id: try chunk($0.id, size: Int($0.size)), size: $0.size) })
                case .lists(let refs)?:
                    t.nodes[i].content = .lists(try refs.map { ListRef(id: try list($0.id), size: $0.size, count: $0.count) })
                case nil:
                    break
                }
            }
            let saved = copy.sameIDs ? try session.save(plain, id: id, type: .tree, context: context)
                                     : try session.save(try t.encoded(), type: .tree, context: context)
            mapped[id] = saved.id
            return saved.id
        }

        func list(_ id: BlobID) throws -> BlobID {
            if let done = mapped[id] { return done }
            if copy.sameIDs, try destinationHas(id, .tree) { mapped[id] = id; return id }
            let plain = try load(id)
            let refs = try ContentList.decode(plain).map { ChunkRef(id: try chunk($0.id, size: Int($0.size)), size: $0.size) }
            let saved = copy.sameIDs ? try session.save(plain, id: id, type: .tree, context: context)
                                     : try session.save(ContentList.encode(refs), type: .tree, context: context)
            mapped[id] = saved.id
            return saved.id
        }

        /// With shared ids: queues the chunk (copied by `drain`) and returns its id. Otherwise
        /// reads and stores it now, returning the destination's id.
        func chunk(_ id: BlobID, size: Int) throws -> BlobID {
            if copy.sameIDs {
                if queued.insert(id).inserted {
                    pending.append(id)
                    sizes[id] = size
                } else {
                    advance(size)
                }
                if pending.count >= 4096 { try drain() }
                return id
            }
            if let done = chunkIDs[id] { advance(size); return done }
            try checkCancelled()
            let saved = try session.save(try load(id), type: .data, context: context)
            chunkIDs[id] = saved.id
            advance(size)
            return saved.id
        }

        /// Copies the queued chunks the destination lacks, `workers` at a time, in the order
        /// of their source packs (neighbouring reads).
        func drain() throws {
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            var needed: [(BlobID, BlobLocation)] = []
            for id in batch {
                if try destinationHas(id, .data) {
                    advance(sizes.removeValue(forKey: id) ?? 0)
                    continue
                }
                guard let loc = try copy.source.locate(id) else {
                    throw RepoError(.integrity, "chunk \(id.hex) is not in the source repository's index",
                                    hint: "run `repo check` on the source")
                }
                needed.append((id, loc))
            }
            needed.sort { ($0.1.pack, $0.1.entry.offset) < ($1.1.pack, $1.1.entry.offset) }
            let threads = max(1, min(copy.workers, needed.count))
            let failure = Mutex<Error?>(nil)
            let reads = Mutex(0)
            nonisolated(unsafe) let work = needed
            nonisolated(unsafe) let walk = self   // advance() only touches locked state
            let source = copy.source, session = self.session, cancellation = copy.cancellation
            nonisolated(unsafe) let contexts = (0..<threads).map { _ in session.makeContext() }   // one per thread
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let reader = PackReader(master: source.key)
                var i = t
                while i < work.count, failure.withLock({ $0 == nil }) {
                    if cancellation?.requestedBy != nil { failure.withLock { $0 = $0 ?? Stopped() }; break }
                    do {
                        let plain = try source.loadBlob(at: work[i].1, reader: reader)
                        _ = try session.save(plain, id: work[i].0, type: .data, context: contexts[t])
                        reads.withLock { $0 += 1 }
                        walk.advance(plain.count)
                    } catch { failure.withLock { $0 = $0 ?? error } }
                    i += threads
                }
            }
            blobsRead += reads.withLock { $0 }
            if let error = failure.withLock({ $0 }) { throw error }
        }
    }
}
