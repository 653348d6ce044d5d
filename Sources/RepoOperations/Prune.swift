public import RepoPrimitives
public import RepoRepository
public import RepoIndex
public import RepoSnapshot
public import RepoStorage
public import Foundation

/// `repo prune`: garbage-collects blobs no snapshot references (FORMAT.md §Prune).
///
/// 1. Reads the index from the backend (not the catalog) and walks every snapshot with
///    `ReferenceWalker`; any unreadable snapshot, segment or missing blob aborts before a byte
///    is deleted.
/// 2. Gives every live blob one owning pack (copies in other packs are unused). A pack with no
///    live blob is deleted; a pack whose unused share exceeds `maxUnused` is repacked (its live
///    blobs are copied into new packs without recompression); other packs stay.
/// 3. Crash-safe order: new packs durable → new index segments durable (the last one
///    supersedes every old segment) → old segments deleted → packs deleted → stale temporary
///    files removed. Killed at any point, the repository stays complete and a re-run finishes.
///
/// Safety margin: packs and active index segments younger than `safetyMargin` (by the
/// backend's modification time) are never deleted or repacked, nor are the packs such a segment
/// lists. They may belong to a writer whose lock vanished (removed by hand, or taken for stale
/// by another host); that writer notices before it commits, and its packs survive for a retry.
///
/// Object Lock (FORMAT.md §31): on a repository whose `config` has `objectLock` and whose
/// backend applies it, an object is *retained* until its modification time plus the period
/// (plus `ObjectLock.slack`) on the storage's clock. Retained packs and index segments are
/// handled like young ones: kept whole, indexed, never repacked; a retained segment (active or
/// superseded) keeps every pack it lists, so no segment that cannot be deleted ever names a
/// deleted pack. A delete the server still refuses (`StorageError.retained`) is counted and
/// skipped, never a failure half-way; the packs of a segment whose delete was refused are not
/// deleted either.
///
/// The caller holds the exclusive lock; prune checks it is still intact before it rewrites the
/// index and before it deletes packs (`Repository.verifyLock`).
public struct Prune {
    public var repository: Repository
    /// Repack a pack when more than this fraction of its blob bytes is unused.
    public var maxUnused = 0.05
    public var dryRun = false
    public var progress: ProgressHandler?
    /// Called after every durable step (object written or deleted) with a label; tests use it
    /// to kill the process at chosen points.
    public var afterStep: ((String) -> Void)?
    /// Temporary files older than this are removed.
    public var temporaryFileAge: TimeInterval = 10 * 60
    /// Packs and index segments younger than this are never deleted (FORMAT.md §25).
    public var safetyMargin: TimeInterval = Prune.defaultSafetyMargin
    public static let defaultSafetyMargin: TimeInterval = 60 * 60
    /// Only delete (no repacking, which writes new packs): for a disk that is full.
    public var deleteOnly = false
    /// Packs per index segment written by prune (8192; the tests may lower it with
    /// REPO_TEST_PACKS_PER_SEGMENT to stage large segments with few packs).
    public static let packsPerSegment: Int = {
        if let v = ProcessInfo.processInfo.environment["REPO_TEST_PACKS_PER_SEGMENT"].flatMap(Int.init), v >= 1 { return v }
        return 8192
    }()

    public init(repository: Repository) { self.repository = repository }

    public struct Report: Sendable, Encodable {
        public var dryRun = false
        public var snapshots = 0
        public var packs = 0
        public var packBytes = 0
        public var blobs = 0
        public var liveBlobs = 0
        /// Packs with no live blob, deleted, and their bytes.
        public var packsDeleted = 0
        public var bytesDeleted = 0
        /// Packs repacked (their live blobs copied, then deleted), their bytes, the live bytes
        /// copied and the new packs written.
        public var packsRepacked = 0
        public var bytesRepackedFrom = 0
        public var bytesCopied = 0
        public var packsWritten = 0
        public var bytesWritten = 0
        /// Unused bytes left in place (packs under the repack threshold).
        public var unusedBytesKept = 0
        /// Packs left alone because they (or the segment listing them) are younger than the
        /// safety margin, though nothing references them yet.
        public var recentPacksKept = 0
        /// Object Lock (FORMAT.md §31): packs nothing references, or that would have been
        /// repacked, kept because they or a segment listing them are retained; index segments
        /// kept for their retention; deletes the storage refused as retained; and the earliest
        /// time a retained object that prune wanted gone becomes free (nil: none).
        public var retainedPacksKept = 0
        public var retainedSegmentsKept = 0
        public var retainedDeletesRefused = 0
        public var nextRetentionExpiry: Date?
        /// Objects (`config`, key slots) whose retention was renewed to now + the period.
        public var retentionsExtended = 0
        public var segmentsWritten = 0
        public var segmentsDeleted = 0
        /// Active index segments left as they were (young, retained, or listing only packs
        /// that stay): other hosts need not read them again.
        public var segmentsUnchanged = 0
        public var temporaryFilesRemoved = 0
        /// Net bytes freed: deleted and repacked packs minus new packs.
        public var bytesFreed: Int { bytesDeleted + bytesRepackedFrom - bytesWritten }
        public var packBytesAfter: Int { packBytes - bytesFreed }
        public var seconds = 0.0

        enum CodingKeys: String, CodingKey {
            case dryRun = "dry_run", snapshots, packs, packBytes = "pack_bytes", blobs, liveBlobs = "live_blobs"
            case packsDeleted = "packs_deleted", bytesDeleted = "bytes_deleted", packsRepacked = "packs_repacked"
            case bytesRepackedFrom = "bytes_repacked_from", bytesCopied = "bytes_copied", packsWritten = "packs_written"
            case bytesWritten = "bytes_written", unusedBytesKept = "unused_bytes_kept",  segmentsWritten = "segments_written"
            case segmentsDeleted = "segments_deleted", segmentsUnchanged = "segments_unchanged", temporaryFilesRemoved = "temporary_files_removed"
            case recentPacksKept = "recent_packs_kept"
            case retainedPacksKept = "retained_packs_kept", retainedSegmentsKept = "retained_segments_kept"
            case retainedDeletesRefused = "retained_deletes_refused", nextRetentionExpiry = "next_retention_expiry"
            case retentionsExtended = "retentions_extended"
            case bytesFreed = "bytes_freed", packBytesAfter = "pack_bytes_after", seconds
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(dryRun, forKey: .dryRun); try c.encode(snapshots, forKey: .snapshots)
            try c.encode(packs, forKey: .packs); try c.encode(packBytes, forKey: .packBytes)
            try c.encode(blobs, forKey: .blobs); try c.encode(liveBlobs, forKey: .liveBlobs)
            try c.encode(packsDeleted, forKey: .packsDeleted); try c.encode(bytesDeleted, forKey: .bytesDeleted)
            try c.encode(packsRepacked, forKey: .packsRepacked); try c.encode(bytesRepackedFrom, forKey: .bytesRepackedFrom)
            try c.encode(bytesCopied, forKey: .bytesCopied); try c.encode(packsWritten, forKey: .packsWritten)
            try c.encode(bytesWritten, forKey: .bytesWritten); try c.encode(unusedBytesKept, forKey: .unusedBytesKept)
            try c.encode(recentPacksKept, forKey: .recentPacksKept)
            try c.encode(retainedPacksKept, forKey: .retainedPacksKept)
            try c.encode(retainedSegmentsKept, forKey: .retainedSegmentsKept)
            try c.encode(retainedDeletesRefused, forKey: .retainedDeletesRefused)
            try c.encode(nextRetentionExpiry.map(Timestamp.format), forKey: .nextRetentionExpiry)
            try c.encode(retentionsExtended, forKey: .retentionsExtended)
            try c.encode(segmentsWritten, forKey: .segmentsWritten); try c.encode(segmentsDeleted, forKey: .segmentsDeleted)
            try c.encode(segmentsUnchanged, forKey: .segmentsUnchanged)
            try c.encode(temporaryFilesRemoved, forKey: .temporaryFilesRemoved)
            try c.encode(bytesFreed, forKey: .bytesFreed); try c.encode(packBytesAfter, forKey: .packBytesAfter)
            try c.encode(seconds, forKey: .seconds)
        }
    }

    private struct BlobKey: Hashable { var id: BlobID; var type: BlobType }

    public func run() throws -> Report {
        let started = Date()
        var report = Report()
        report.dryRun = dryRun
        let backend = repository.backend

        // 1. The index as the backend has it.
        var segmentObjects: [String] = []
        var superseded = Set<String>()
        var segments: [(String, IndexSegment)] = []
        // Unknown age counts as young: never delete what might belong to a running writer.
        // The storage's clock, which wrote the objects' times (FORMAT.md §14).
        let now = try backend.now()
        let cutoff = now.addingTimeInterval(-safetyMargin)
        func isRecent(_ obj: ObjectInfo) -> Bool { safetyMargin > 0 && (obj.modified ?? .distantFuture) > cutoff }
        // Object Lock: only where the backend applies it (a local copy of such a repository
        // locks nothing).
        let objectLock = (backend as? RetainingBackend)?.retention == nil ? nil : repository.config.objectLock
        func retainedUntil(_ obj: ObjectInfo) -> Date? {
            guard let objectLock else { return nil }
            let until = objectLock.expiry(ofObjectModified: obj.modified)
            return until > now ? until : nil
        }
        var recentSegments = Set<String>()
        var segmentModified: [String: Date] = [:]
        var retainedSegments: [String: Date] = [:]
        var youngSegments = Set<String>()
        for obj in try backend.list(prefix: "index/") {
            let name = String(obj.name.dropFirst("index/".count))
            if isRecent(obj) { recentSegments.insert(name); youngSegments.insert(name) }
            if let until = retainedUntil(obj) { retainedSegments[name] = until; recentSegments.insert(name) }
            segmentObjects.append(name)
            segmentModified[name] = obj.modified
            let body = try repository.loadObject(obj.name, kind: .index)
            let seg: IndexSegment
            do { seg = try IndexSegment.decode(body) } catch {
                throw RepoError(.integrity, "\(obj.name): malformed index segment: \(error); prune deletes nothing",
                                hint: "run `repo check` for the full picture")
            }
            segments.append((name, seg))
            for s in seg.superseded { superseded.insert(s.hex) }
        }
        let activeSegments = segments.filter { !superseded.contains($0.0) }
        var packs: [Hash256: PackDescriptor] = [:]
        for (_, seg) in activeSegments { for p in seg.packs { packs[p.name] = p } }
        // Young active segments stay (a concurrent writer's); so does every pack they list.
        let keptSegments = Set(activeSegments.map(\.0)).intersection(recentSegments)
        var recentPacks = Set<Hash256>()
        for (name, seg) in activeSegments where keptSegments.contains(name) { for p in seg.packs { recentPacks.insert(p.name) } }
        // Every pack a retained segment lists stays, superseded segment or not: the segment
        // cannot be deleted, so it must never name a pack that is gone.
        var retainedPacks: [Hash256: Date] = [:]
        for (name, seg) in segments {
            guard let until = retainedSegments[name] else { continue }
            for p in seg.packs { recentPacks.insert(p.name); retainedPacks[p.name] = max(retainedPacks[p.name] ?? until, until) }
        }

        // Kept for the safety margin alone (reported as recent, not as retained).
        var youngPacks = Set<Hash256>()
        for (name, seg) in activeSegments where keptSegments.contains(name) && youngSegments.contains(name) {
            for p in seg.packs { youngPacks.insert(p.name) }
        }
        var present: [Hash256: Int] = [:]
        var packModified: [Hash256: Date] = [:]
        for obj in try backend.list(prefix: "data/") {
            guard let name = Hash256(hex: String(obj.name.split(separator: "/").last ?? "")),
                  obj.name == PackDescriptor.objectName(name) else { continue }
            present[name] = obj.size
            packModified[name] = obj.modified
            if isRecent(obj) { recentPacks.insert(name); youngPacks.insert(name) }
            if let until = retainedUntil(obj) { recentPacks.insert(name); retainedPacks[name] = max(retainedPacks[name] ?? until, until) }
        }
        for name in packs.keys.sorted() where present[name] == nil {
            throw RepoError(.integrity, "pack \(name.hex) is indexed but missing; prune deletes nothing",
                            hint: "run `repo check` to see which snapshots are affected")
        }
        func isRecentPack(_ name: Hash256) -> Bool { youngPacks.contains(name) }
        var unindexed = Set<Hash256>()
        let reader = PackReader(master: repository.key)
        for name in present.keys.sorted() where packs[name] == nil {
            // Left by an interrupted store or prune: adopt it (its blobs may be the live copy).
            do {
                packs[name] = try reader.readHeader(name: name, backend: backend)
                unindexed.insert(name)
            } catch {
                repository.warn("pack \(name.hex) is not indexed and its header is unreadable (\(error)); prune leaves it alone")
            }
        }
        var locations: [BlobID: BlobLocation] = [:]
        for p in packs.values {
            for b in p.blobs where locations[b.id] == nil {
                locations[b.id] = BlobLocation(pack: p.name, packSalt: p.salt, entry: b)
            }
        }
        report.packs = packs.count
        report.packBytes = packs.values.reduce(0) { $0 + $1.size }
        report.blobs = packs.values.reduce(0) { $0 + $1.blobs.count }

        // 2. Everything every snapshot references. Any gap aborts: deleting on an incomplete
        //    walk could lose a kept byte.
        let cached = try repository.catalog.cachedSnapshots()
        let finalLocations = locations
        var walker = ReferenceWalker(repository: repository) { finalLocations[$0] }
        var problems: [String] = []
        for obj in try backend.list(prefix: "snapshots/") {
            let hex = String(obj.name.dropFirst("snapshots/".count))
            let body = try cached[hex] ?? repository.loadObject(obj.name, kind: .snapshot)
            let snap: Snapshot
            do { snap = try Snapshot.decode(body) } catch {
                throw RepoError(.integrity, "\(obj.name): malformed snapshot: \(error); prune deletes nothing")
            }
            report.snapshots += 1
            walker.walk(root: snap.tree, context: obj.name) { problems.append($0) }
        }
        if !problems.isEmpty {
            throw RepoError(.integrity, "prune deletes nothing: \(problems.count) snapshot reference(s) cannot be resolved: "
                            + problems.prefix(5).joined(separator: "; "),
                            hint: "run `repo check` for the full list")
        }
        var live = Set<BlobKey>()
        for id in walker.treeBlobs { live.insert(BlobKey(id: id, type: .tree)) }
        for id in walker.dataBlobs { live.insert(BlobKey(id: id, type: .data)) }
        report.liveBlobs = live.count

        // 3. Plan: each live blob is owned by one pack, preferring the packs that are most live.
        func liveShare(_ p: PackDescriptor) -> Double {
            let total = p.blobs.reduce(0) { $0 + $1.length }
            let used = p.blobs.reduce(0) { $0 + (live.contains(BlobKey(id: $1.id, type: $1.type)) ? $1.length : 0) }
            return total == 0 ? 0 : Double(used) / Double(total)
        }
        let ordered = packs.values.map { ($0, liveShare($0)) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0.name < $1.0.name }
        var owned = Set<BlobKey>()
        var livePacks = Set<Hash256>()
        var keep: [PackDescriptor] = [], delete: [PackDescriptor] = [], repack: [(PackDescriptor, [PackBlobEntry])] = []
        for (p, _) in ordered {
            var mine: [PackBlobEntry] = []
            var used = 0, total = 0
            for b in p.blobs {
                total += b.length
                let k = BlobKey(id: b.id, type: b.type)
                if live.contains(k), owned.insert(k).inserted { mine.append(b); used += b.length }
            }
            if !mine.isEmpty { livePacks.insert(p.name) }
            if recentPacks.contains(p.name) {
                keep.append(p)
                let wanted = mine.isEmpty || (!deleteOnly && total > 0 && Double(total - used) / Double(total) > maxUnused)
                if let until = retainedPacks[p.name], wanted, !(isRecentPack(p.name)) {
                    report.retainedPacksKept += 1
                    report.nextRetentionExpiry = min(report.nextRetentionExpiry ?? until, until)
                } else if mine.isEmpty {
                    report.recentPacksKept += 1
                }
            } else if mine.isEmpty {
                delete.append(p)
            } else if !deleteOnly && total > 0 && Double(total - used) / Double(total) > maxUnused {
                repack.append((p, mine))
            } else {
                keep.append(p)
                report.unusedBytesKept += total - used
            }
        }
        // Object Lock: a pack's retention may reach past its upload plus the period (every prune
        // extends the live packs'), so the storage is asked before one is deleted or repacked.
        if objectLock != nil, let retaining = backend as? RetainingBackend, !(delete.isEmpty && repack.isEmpty) {
            let names = delete.map(\.objectName) + repack.map(\.0.objectName)
            var held: [String: Date] = [:]
            for (name, result) in zip(names, Repository.concurrentMap(names) { try retaining.retainedUntil($0) }) {
                if let until = try result.get() { held[name] = until }
            }
            func hold(_ p: PackDescriptor) -> Bool {
                guard let until = held[p.objectName] else { return false }
                keep.append(p)
                report.retainedPacksKept += 1
                report.nextRetentionExpiry = min(report.nextRetentionExpiry ?? until, until)
                return true
            }
            delete.removeAll(where: hold)
            repack.removeAll { hold($0.0) }
        }
        // Segments kept only for their retention (not young by the safety margin).
        for (name, until) in retainedSegments where !youngSegments.contains(name) {
            report.retainedSegmentsKept += 1
            report.nextRetentionExpiry = min(report.nextRetentionExpiry ?? until, until)
        }
        report.packsDeleted = delete.count
        report.bytesDeleted = delete.reduce(0) { $0 + $1.size }
        report.packsRepacked = repack.count
        report.bytesRepackedFrom = repack.reduce(0) { $0 + $1.0.size }
        report.bytesCopied = repack.reduce(0) { $0 + $1.1.reduce(0) { $0 + $1.length } }
        let rewrite = Self.indexRewrite(segments: segments, active: activeSegments, kept: keptSegments,
                                        modified: segmentModified, keep: keep, unindexed: unindexed)
        let rewriteIndex = rewrite.isNeeded || !repack.isEmpty
        report.segmentsUnchanged = activeSegments.count - rewrite.replaced.count
        if dryRun {
            report.bytesWritten = report.bytesCopied   // an estimate: new packs hold the copied blobs
            report.seconds = Date().timeIntervalSince(started)
            return report
        }

        // 4. Repack: new packs durable before anything is deleted.
        var written: [PackDescriptor] = []
        if !repack.isEmpty {
            let copier = BlobCopier(master: repository.key)
            var writers: [BlobType: PackWriter] = [:]
            func flush(_ kind: BlobType) throws {
                guard let w = writers[kind], !w.isEmpty else { return }
                let descriptor = try w.finish()
                try w.output.commit(as: descriptor.objectName)
                written.append(descriptor)
                report.packsWritten += 1
                report.bytesWritten += descriptor.size
                writers[kind] = nil
                afterStep?("pack written")
            }
            var copied = 0
            for (p, entries) in repack.sorted(by: { $0.0.name < $1.0.name }) {
                let bytes = try backend.get(p.objectName)
                guard SHA256Hasher.hash(bytes) == p.name else {
                    throw RepoError(.integrity, "pack \(p.name.hex) does not match its name (corrupted); prune stopped before deleting anything",
                                    hint: "run `repo check --read-data`")
                }
                for e in entries {
                    let w = try writers[p.kind] ?? PackWriter(kind: p.kind, master: repository.key, output: try backend.stage())
                    writers[p.kind] = w
                    try bytes.withUnsafeBytes {
                        try copier.copy(UnsafeRawBufferPointer(rebasing: $0[e.offset..<(e.offset + e.length)]),
                                        entry: e, packSalt: p.salt, pack: p.name, into: w)
                    }
                    copied += e.length
                    if w.size >= repository.config.packSize { try flush(p.kind) }
                }
                progress?(ProgressReport(bytes: copied, totalBytes: report.bytesCopied, items: "repacking"))
            }
            for kind in [BlobType.data, .tree] { try flush(kind) }
        }

        // 5. The new index: the kept packs of the segments replaced, and the new packs. The last
        //    segment supersedes the replaced ones, so until it exists the old index stays
        //    authoritative. Nothing is superseded or deleted unless this process still holds its lock.
        try repository.verifyLock()
        let replacedSegments = rewriteIndex ? rewrite.replaced + rewrite.leftovers : rewrite.leftovers
        var spared = Set<Hash256>()
        if rewriteIndex {
            _ = try repository.writeIndex(of: rewrite.relisted + written, superseding: replacedSegments.compactMap { Hash256(hex: $0) }) {
                report.segmentsWritten += 1
                afterStep?("index segment written")
            }
        }
        // 6. Old segments, then unused and repacked packs. A retained superseded segment
        //    stays (superseded again by the new last segment) and so do its packs.
        for name in replacedSegments.sorted() {
            if retainedSegments[name] != nil { continue }
            do {
                try backend.delete("index/" + name)
            } catch StorageError.retained(_, let until) {
                report.retainedDeletesRefused += 1
                if let until { report.nextRetentionExpiry = min(report.nextRetentionExpiry ?? until, until) }
                for (n, seg) in segments where n == name { for p in seg.packs { spared.insert(p.name) } }
                repository.warn("index segment \(name) is still retained by S3 Object Lock; it stays (superseded), and so do the packs it lists")
                continue
            }
            report.segmentsDeleted += 1
            afterStep?("index segment deleted")
        }
        try repository.verifyLock()
        let deleting = Set(delete.map(\.name))
        // A pack that stays after all is not counted as freed.
        func stays(_ p: PackDescriptor) {
            if deleting.contains(p.name) { report.packsDeleted -= 1; report.bytesDeleted -= p.size }
            else { report.packsRepacked -= 1; report.bytesRepackedFrom -= p.size }
        }
        for p in delete + repack.map(\.0) where spared.contains(p.name) { stays(p) }
        let doomed = (delete + repack.map(\.0)).filter { !spared.contains($0.name) }.sorted(by: { $0.name < $1.name })
        let doomedBytes = doomed.reduce(0) { $0 + $1.size }
        var freed = 0
        for (i, p) in doomed.enumerated() {
            do {
                try backend.delete(p.objectName)
            } catch StorageError.retained(_, let until) {
                // Left unindexed; readers adopt it from its header and the next prune deletes it.
                report.retainedDeletesRefused += 1
                if let until { report.nextRetentionExpiry = min(report.nextRetentionExpiry ?? until, until) }
                repository.warn("pack \(p.name.hex) is still retained by S3 Object Lock; the next prune after its retention deletes it")
                stays(p)
                continue
            }
            freed += p.size
            progress?(ProgressReport(bytes: freed, totalBytes: doomedBytes, items: "deleted \(i + 1)/\(doomed.count) packs"))
            afterStep?("pack deleted")
        }

        // Object Lock: `config` and the key slots are written once but every backup needs
        // them, so each prune renews their retention (FORMAT.md §31). So it does for every
        // live pack whose retention could end within half a period: newer snapshots reuse old
        // packs through deduplication, and those must stay locked as long as a snapshot needs
        // them (`forget` renews the snapshots its policy keeps). A failure only warns.
        if let objectLock, let retaining = backend as? RetainingBackend {
            do {
                let soon = now.addingTimeInterval(TimeInterval(objectLock.period) / 2)
                func due(_ modified: Date?) -> Bool { objectLock.expiry(ofObjectModified: modified) < soon || modified == nil }
                var names = [RepositoryConfig.objectName] + (try backend.listNames(prefix: "keys/"))
                names += keep.filter { livePacks.contains($0.name) && due(packModified[$0.name]) }.map(\.objectName)
                for result in Repository.concurrentMap(names, { try retaining.extendRetention($0) }) {
                    try result.get()
                    report.retentionsExtended += 1
                }
            } catch {
                repository.warn("could not renew the Object Lock retention of every object a backup needs: \(error); run prune again before half the lock period has passed")
            }
        }

        // 7. Temporary files of writers killed mid-write.
        if let sweeper = backend as? TemporaryFileSweeping {
            report.temporaryFilesRemoved = try sweeper.removeTemporaryFiles(modifiedBefore: Date().addingTimeInterval(-temporaryFileAge)).count
        }
        try repository.synchronizeCatalog()
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}
