/// What a base backup snapshot records about the cluster it copied (the snapshot's `postgres`
/// field, FORMAT.md §28): enough to choose it for a recovery target and to know which WAL it
/// needs to be consistent.
public struct PostgresBackup: Codable, Sendable, Equatable {
    /// `pg_control`'s database system identifier, as a decimal string (it needs 64 bits).
    public var systemIdentifier: String
    /// `server_version_num`, e.g. 150018.
    public var serverVersion: Int
    /// WAL segment size in bytes (`wal_segment_size`).
    public var walSegmentSize: Int
    /// Timeline the backup started on.
    public var timeline: UInt32
    /// `pg_backup_start` and `pg_backup_stop` positions: replay must reach `stopLSN` before
    /// the copy is consistent.
    public var startLSN: LSN
    public var stopLSN: LSN
    /// WAL files holding `startLSN` and `stopLSN`: the range the backup needs (inclusive).
    public var startWAL: String
    public var stopWAL: String
    /// Server times (RFC 3339) at `pg_backup_start` and `pg_backup_stop`; a recovery target
    /// time must not lie before `stopTime`.
    public var startTime: String
    public var stopTime: String
    /// The label given to `pg_backup_start`.
    public var label: String
    /// The data directory that was copied.
    public var dataDirectory: String
    /// Tablespaces outside the data directory: OID → location at backup time.
    public var tablespaces: [String: String]?

    public init(systemIdentifier: String, serverVersion: Int, walSegmentSize: Int, timeline: UInt32,
                startLSN: LSN, stopLSN: LSN, startWAL: String, stopWAL: String, startTime: String, stopTime: String,
                label: String, dataDirectory: String, tablespaces: [String: String]? = nil) {
        self.systemIdentifier = systemIdentifier; self.serverVersion = serverVersion; self.walSegmentSize = walSegmentSize
        self.timeline = timeline; self.startLSN = startLSN; self.stopLSN = stopLSN; self.startWAL = startWAL
        self.stopWAL = stopWAL; self.startTime = startTime; self.stopTime = stopTime; self.label = label
        self.dataDirectory = dataDirectory; self.tablespaces = tablespaces
    }
}
