public import RepoPrimitives
public import Foundation

/// One snapshot: when, where, what was stored, and the root tree (FORMAT.md §Snapshots).
/// Serialized as JSON with sorted keys and sealed as kind `snapshot`.
public struct Snapshot: Codable, Sendable, Equatable {
    public var version: Int = 1
    /// RFC 3339 time the snapshot is filed under (`--time`, default now).
    public var time: String
    public var host: String
    public var username: String
    /// Stream name for `repo store`.
    public var name: String?
    /// Source paths for `repo backup`.
    public var paths: [String]?
    public var tags: [String]
    /// Root tree blob.
    public var tree: BlobID
    /// True if some input could not be read.
    public var partial: Bool?
    public var stats: Stats
    /// Program that wrote it, e.g. `repo 0.1.0`.
    public var program: String
    /// Base backups of a PostgreSQL cluster (`repo pg-backup`) only: where the copy starts and
    /// stops in the WAL (FORMAT.md §28).
    public var postgres: PostgresBackup?
    /// Snapshots made by `repo copy` only: the hex id of the snapshot this one copies, in the
    /// repository where it was first made (a copy of a copy names the first), so a copy is
    /// recognised and not made twice (FORMAT.md §13).
    public var original: String?

    public struct Stats: Codable, Sendable, Equatable {
        /// Bytes of stored content (all streams/files).
        public var totalBytes: Int
        public var chunks: Int
        /// Blobs (data and tree) this snapshot added to the repository, and their stored size.
        public var newBlobs: Int
        public var newBytes: Int
        /// Wall time of the operation in seconds.
        public var seconds: Double
        /// Tree backups only: files and directories in the snapshot, files reused unread from
        /// the parent snapshot, and entries that could not be read (and were left out).
        public var files: Int?
        public var dirs: Int?
        public var unchangedFiles: Int?
        public var unreadable: Int?

        public init(totalBytes: Int, chunks: Int, newBlobs: Int, newBytes: Int, seconds: Double) {
            self.totalBytes = totalBytes; self.chunks = chunks; self.newBlobs = newBlobs
            self.newBytes = newBytes; self.seconds = seconds
        }
    }

    public init(time: String, host: String, username: String, name: String?, paths: [String]?, tags: [String],
                tree: BlobID, partial: Bool? = nil, stats: Stats, program: String, postgres: PostgresBackup? = nil) {
        self.time = time; self.host = host; self.username = username; self.name = name; self.paths = paths
        self.tags = tags; self.tree = tree; self.partial = partial; self.stats = stats; self.program = program
        self.postgres = postgres
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return Array(try enc.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> Snapshot {
        try JSONDecoder().decode(Snapshot.self, from: Data(bytes))
    }
}

/// A snapshot together with its id.
public struct SnapshotEntry: Sendable {
    public var id: Hash256
    public var snapshot: Snapshot
    public var date: Date

    public init(id: Hash256, snapshot: Snapshot, date: Date) {
        self.id = id; self.snapshot = snapshot; self.date = date
    }
}
