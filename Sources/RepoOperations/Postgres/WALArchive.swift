public import RepoRepository
public import RepoStorage
public import RepoSnapshot
public import RepoPrimitives
public import Foundation

/// The WAL archive of one PostgreSQL cluster inside a repository (FORMAT.md §27): each file
/// PostgreSQL archives is one sealed object `wal/<timeline>/<file name>`, bound to its name,
/// written once and never replaced by different bytes; `wal/cluster` records the cluster's
/// system identifier so that no other cluster's WAL can be mixed in.
///
/// The archive touches neither packs nor the index, so it needs no catalog and no lock: a
/// push is one object written with `StorageBackend.create`, which prune never races with
/// (FORMAT.md §27.3).
public struct WALArchive: Sendable {
    public let backend: StorageBackend
    public let config: RepositoryConfig
    public let key: MasterKey

    /// zstd level for pushed files (nil: store them raw). `segmentLevel` by default, nil when
    /// the repository stores blobs uncompressed (`config.compression` none).
    public var compressionLevel: Int32?

    /// The level WAL is compressed at unless `wal-push --compression` says otherwise: 1, not
    /// the repository's 3, because a push's CPU is almost all compression and PostgreSQL's
    /// archiver waits for it. Level 1 costs 30% less CPU; what it costs in size depends on the
    /// WAL: nothing on segments full of varied page images (25 pgbench segments compressing
    /// 3.9:1: 4.29 MB against 4.27 MB), 11% on very repetitive ones (12.7:1 at level 3, 11.3:1
    /// at level 1). README, "Speed against pgBackRest".
    public static let segmentLevel: Int32 = 1
    /// Look a name up before writing it: for storage that ignores conditional writes
    /// (`S3Backend.conditionalWritesHonoured`), where `create` would replace an archived file.
    public var checkBeforeWriting = false

    public init(backend: StorageBackend, config: RepositoryConfig, key: MasterKey) {
        self.backend = backend; self.config = config; self.key = key
        compressionLevel = config.zstdLevel == nil ? nil : Self.segmentLevel
    }

    /// The cluster whose WAL the repository archives (`wal/cluster`, sealed JSON).
    public struct Cluster: Codable, Sendable, Equatable {
        /// Database system identifier, decimal (64 bits do not fit a JSON number exactly).
        public var systemIdentifier: String
        /// WAL segment size in bytes.
        public var walSegmentSize: Int
        /// When and where the first push or base backup recorded it.
        public var created: String
        public var host: String
    }

    /// What `push` did.
    public enum PushOutcome: Sendable, Equatable {
        /// The file is now archived.
        case stored
        /// An identical copy was already archived (a retry after a crash or a timeout).
        case alreadyStored
        /// The archived copy failed authentication (damaged) and was replaced by this one.
        case replacedDamaged
    }

    /// An archived file, as listed.
    public struct Entry: Sendable, Equatable {
        public var name: WALFileName
        /// Size of the sealed object in bytes.
        public var storedSize: Int
        /// When it was archived, where the backend knows it.
        public var archived: Date?
    }

    public static let clusterObjectName = "wal/cluster"

    // MARK: cluster identity

    /// The recorded cluster, nil if nothing was archived yet.
    public func cluster() throws -> Cluster? {
        let bytes: [UInt8]
        do { bytes = try backend.get(Self.clusterObjectName) } catch StorageError.notFound { return nil }
        let body = try SealedObject.open(bytes, kind: .walCluster, key: key, name: Self.clusterObjectName)
        do { return try JSONDecoder().decode(Cluster.self, from: Data(body)) } catch {
            throw RepoError(.integrity, "\(Self.clusterObjectName) is malformed: \(error)")
        }
    }

    /// Records the cluster at the first push or base backup, or checks that it is the one
    /// recorded. Two first pushes racing: `create` lets one win, the other checks against it.
    ///
    /// - Throws: `RepoError(.failure)` naming both identifiers when another cluster owns the archive.
    @discardableResult
    public func claim(systemIdentifier: UInt64, segmentSize: Int) throws -> Cluster {
        if let existing = try cluster() {
            try Self.check(existing, systemIdentifier: systemIdentifier, segmentSize: segmentSize, location: backend.location)
            return existing
        }
        let mine = Cluster(systemIdentifier: String(systemIdentifier), walSegmentSize: segmentSize,
                           created: Timestamp.format(Date()), host: HostInfo.hostname)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let sealed = try SealedObject.seal(Array(try enc.encode(mine)), kind: .walCluster, key: key)
        if try backend.create(Self.clusterObjectName, data: sealed) { return mine }
        guard let winner = try cluster() else {
            throw RepoError(.failure, "\(Self.clusterObjectName) could not be written and is not there either")
        }
        try Self.check(winner, systemIdentifier: systemIdentifier, segmentSize: segmentSize, location: backend.location)
        return winner
    }

    static func check(_ cluster: Cluster, systemIdentifier: UInt64, segmentSize: Int, location: String) throws {
        guard cluster.systemIdentifier == String(systemIdentifier) else {
            throw RepoError(.failure, "this WAL comes from the cluster with system identifier \(systemIdentifier), but \(location) archives the cluster \(cluster.systemIdentifier) (recorded \(cluster.created) on \(cluster.host)); a second cluster's WAL is never mixed in",
                            hint: "give each cluster its own repository (or its own --repo path); a restored cluster keeps its identifier, a new initdb does not")
        }
        guard cluster.walSegmentSize == segmentSize else {
            throw RepoError(.failure, "this WAL has \(segmentSize)-byte segments, but \(location) archives \(cluster.walSegmentSize)-byte segments of the same cluster")
        }
    }

    // MARK: push and fetch

    /// Archives one file under its name. Segments (and `.partial` segments) are checked first:
    /// a WAL page header whose position matches the name, a size of one segment, and the
    /// cluster's system identifier; timeline history files must parse
    /// (`TimelineHistory.strict`). Durable when this returns.
    ///
    /// - Throws: `RepoError(.usage)` for a file that is not WAL, `.failure` when the name is
    ///   archived with different bytes or belongs to another cluster, storage errors as they come.
    public func push(name: WALFileName, bytes: UnsafeRawBufferPointer) throws -> PushOutcome {
        if name.kind == .segment || name.kind == .partial {
            let header: WALSegmentHeader
            do {
                header = try WALSegmentHeader(Array(bytes.prefix(64)))
                try header.check(against: name, fileSize: bytes.count)
            } catch let error as WALSegmentHeader.Malformed {
                throw RepoError(.usage, "\(name) is not a WAL segment of this name: \(error)",
                                hint: "archive_command must pass %p, the path of the file PostgreSQL names in %f")
            }
            try claim(systemIdentifier: header.systemIdentifier, segmentSize: header.segmentSize)
        } else if name.kind == .history {
            // Archived for good and read by every recovery, pg-status and status: one that
            // does not parse must not get in (PostgreSQL would stop recovery on it too).
            do { _ = try TimelineHistory.strict(timeline: name.timeline, bytes: Array(bytes)) } catch {
                throw RepoError(.usage, "\(name) is not a timeline history file: \(error)",
                                hint: "archive_command must pass %p, the path of the file PostgreSQL names in %f")
            }
        }
        let level = compressionLevel ?? 0
        let object = try SealedObject.seal(bytes, kind: .wal, key: key, context: Array(name.text.utf8), level: level,
                                           workers: Self.compressionWorkers(bytes.count))
        // A server that ignores If-None-Match would let `create` replace an archived file, so
        // then the name is looked up first (a write racing this one can still slip between).
        if checkBeforeWriting, try backend.exists(name.objectName) {
            return try alreadyArchived(name, object: object, bytes: bytes)
        }
        if try backend.create(name.objectName, data: object) { return .stored }
        return try alreadyArchived(name, object: object, bytes: bytes)
    }

    /// `name` is archived already: identical bytes are a retry; anything else must never be
    /// replaced, except an object that is not a valid one of this name (damaged storage).
    private func alreadyArchived(_ name: WALFileName, object: [UInt8], bytes: UnsafeRawBufferPointer) throws -> PushOutcome {
        let existing: [UInt8]
        do {
            existing = try open(name, object: try backend.get(name.objectName))
        } catch let error as RepoError where error.kind == .integrity {
            // Not a valid object of this name at all (damaged storage): replacing it loses nothing.
            try backend.put(name.objectName, data: object)
            return .replacedDamaged
        }
        let same = existing.count == bytes.count
            && (bytes.isEmpty || existing.withUnsafeBytes { memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 })
        guard same else {
            throw RepoError(.failure, "\(name) is already archived in \(backend.location) with different contents (\(existing.count) bytes stored, \(bytes.count) offered); it is never overwritten",
                            hint: "two servers archive into one place: a promoted standby or a restored copy still running on the old timeline, or a second cluster; stop the one that should not archive here, or point it at another repository")
        }
        return .alreadyStored
    }

    /// `push` of bytes in an array.
    public func push(name: WALFileName, bytes: [UInt8]) throws -> PushOutcome {
        try bytes.withUnsafeBytes { try push(name: name, bytes: $0) }
    }

    /// The archived bytes of `name`, verified (authenticated under this repository's key and
    /// bound to this name); nil when it is not archived.
    public func fetch(_ name: WALFileName) throws -> [UInt8]? {
        let object: [UInt8]
        do { object = try backend.get(name.objectName) } catch StorageError.notFound { return nil }
        return try open(name, object: object)
    }

    /// `fetch` into `buffer`, its storage reused (the prefetcher's, one per worker: FORMAT.md
    /// §27.6); false when `name` is not archived.
    public func fetch(_ name: WALFileName, into buffer: inout [UInt8], decompressor: ZstdDecompressor) throws -> Bool {
        let object: [UInt8]
        do { object = try backend.get(name.objectName) } catch StorageError.notFound { return false }
        try SealedObject.open(object, kind: .wal, key: key, name: name.objectName, context: Array(name.text.utf8),
                              into: &buffer, decompressor: decompressor)
        return true
    }

    private func open(_ name: WALFileName, object: [UInt8]) throws -> [UInt8] {
        try SealedObject.open(object, kind: .wal, key: key, name: name.objectName, context: Array(name.text.utf8))
    }

    /// Archived files of one timeline, or of all; in PostgreSQL's order.
    public func list(timeline: UInt32? = nil) throws -> [Entry] {
        let prefix = timeline.map { "wal/" + WALFileName.hex8($0) + "/" } ?? "wal/"
        return try backend.list(prefix: prefix).compactMap { info -> Entry? in
            let parts = info.name.split(separator: "/")
            guard parts.count == 3, let name = WALFileName(String(parts[2])), name.objectName == info.name else { return nil }
            return Entry(name: name, storedSize: info.size, archived: info.modified)
        }.sorted { $0.name < $1.name }
    }

    /// The timeline history files of the archive, parsed; an unreadable one is an error.
    public func histories(in entries: [Entry]) throws -> [UInt32: TimelineHistory] {
        var out: [UInt32: TimelineHistory] = [:]
        for e in entries where e.name.kind == .history {
            guard let bytes = try fetch(e.name) else { continue }
            do { out[e.name.timeline] = try TimelineHistory(timeline: e.name.timeline, text: String(decoding: bytes, as: UTF8.self)) } catch {
                throw RepoError(.integrity, "\(e.name): \(error)")
            }
        }
        return out
    }

    /// Timelines, gaps, base backups' WAL and recoverable windows (`repo pg-status`).
    public func status(backups: [WALRetention.Backup]) throws -> WALStatus {
        let entries = try list()
        return WALStatus(files: entries.map { ($0.name, $0.archived) }, histories: try histories(in: entries),
                         backups: backups, segmentSize: try cluster()?.walSegmentSize)
    }

    /// Removes archived files (retention, FORMAT.md §27.5). Absent names are fine.
    public func delete(_ names: [WALFileName]) throws {
        for name in names { try backend.delete(name.objectName) }
    }

    /// A whole segment is compressed as one part per core (up to 4), in parallel: zstd is
    /// the one step of a push that costs, and 8 MiB parts lose almost nothing in ratio.
    static func compressionWorkers(_ size: Int) -> Int32 {
        size >= 4 << 20 ? Int32(min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4)) : 1
    }
}
