public import RepoRepository

/// `repo stats`: what the repository holds and how well it dedups.
public struct RepositoryStats: Codable, Sendable {
    public var snapshots: Int
    /// Sum of the content sizes of all snapshots (what restoring everything would produce).
    public var logicalBytes: Int
    /// Bytes of all packs (what the repository occupies for data).
    public var packBytes: Int
    public var packs: Int
    public var blobs: Int
    public var dataBlobs: Int
    public var treeBlobs: Int
    /// Plaintext bytes of all distinct blobs.
    public var uniqueBytes: Int
    /// logicalBytes / packBytes.
    public var dedupRatio: Double
    /// uniqueBytes / stored blob bytes.
    public var compressionRatio: Double
    /// The WAL archive (FORMAT.md §27): files and the bytes their objects occupy.
    public var walFiles: Int
    public var walBytes: Int

    public static func compute(_ repo: Repository) throws -> RepositoryStats {
        let t = try repo.catalog.totals()
        let snaps = try repo.snapshots()
        let logical = snaps.reduce(0) { $0 + $1.snapshot.stats.totalBytes }
        let wal = try WALArchive(backend: repo.backend, config: repo.config, key: repo.key).list()
        return RepositoryStats(snapshots: snaps.count, logicalBytes: logical, packBytes: t.packBytes, packs: t.packs,
                               blobs: t.blobs, dataBlobs: t.dataBlobs, treeBlobs: t.treeBlobs, uniqueBytes: t.rawBytes,
                               dedupRatio: t.packBytes > 0 ? Double(logical) / Double(t.packBytes) : 0,
                               compressionRatio: t.storedBytes > 0 ? Double(t.rawBytes) / Double(t.storedBytes) : 0,
                               walFiles: wal.count, walBytes: wal.reduce(0) { $0 + $1.storedSize })
    }
}
