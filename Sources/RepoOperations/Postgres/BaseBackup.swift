public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `repo pg-backup`: an online base backup of a running PostgreSQL cluster, stored as a tree
/// snapshot of its data directory with a `postgres` record (FORMAT.md §28).
///
/// One libpq session runs the non-exclusive low-level API (PostgreSQL documentation, "Making a
/// Base Backup Using the Low Level API"): `pg_backup_start(label, fast)`, then the data
/// directory is copied by `Backup` (unchanged files of the previous base backup of the same
/// data directory are reused unread, other files are chunked and deduplicated; what
/// `DataDirectoryExclusions` lists is left out), then `pg_backup_stop(wait_for_archive =>
/// true)`, whose `backup_label` (and `tablespace_map`, when not empty) are stored as files at
/// the data directory's root. Only then are the root tree and the snapshot written.
///
/// Files that changed or vanished during the copy are expected: WAL replay from the backup's
/// start to its stop position repairs them ("the backup is not consistent until replay reaches
/// the stop point"). A file is reused from the parent only when its status equals the parent's
/// and its mtime and ctime lie more than `trustMargin` before the parent's start: a write in
/// the clock tick of the parent's read would change neither time (FORMAT.md §28.3).
///
/// Failures (connection lost, unreadable file, interrupt) commit no snapshot; blobs already
/// saved are indexed for the next run (FORMAT.md §19), and `pg_backup_stop` is still called
/// when the session is open, so the server leaves backup mode.
public struct BaseBackup {
    public var repository: Repository
    /// The data directory as given (`--pgdata`); resolved to its real path.
    public var dataDirectory: String
    /// libpq connection string (`--dsn`); nil uses libpq's environment.
    public var conninfo: String?
    public var tags: [String]
    public var host: String
    /// `pg_backup_start`'s `fast`: an immediate checkpoint instead of a spread one.
    public var fastCheckpoint = false
    /// Label passed to `pg_backup_start` (default: `repo pg-backup` and the start time).
    public var label: String?
    public var workers: Int = defaultWorkerCount
    public var progress: ProgressHandler?
    public var cancellation: Cancellation?
    public var warn: @Sendable (String) -> Void = { _ in }

    /// The tag every base backup snapshot carries, besides `tags`.
    public static let tag = "pg-backup"
    /// How long before the parent backup's start a file's mtime and ctime must lie for its
    /// status to be trusted (seconds).
    public static let trustMargin: TimeInterval = 2

    public init(repository: Repository, dataDirectory: String, tags: [String], host: String) {
        self.repository = repository; self.dataDirectory = dataDirectory; self.tags = tags; self.host = host
    }

    public struct Result: Sendable {
        public var snapshotID: Hash256
        public var snapshot: Snapshot
        public var postgres: PostgresBackup
        /// The earlier base backup whose unchanged files were reused.
        public var parent: Hash256?
        public var backup: Backup.Result
    }

    /// The server facts read before the backup starts.
    struct Server {
        var version: Int
        var systemIdentifier: String
        var walSegmentSize: Int
        var dataDirectory: String?
    }

    /// - Throws: `RepoError(.usage)` when `dataDirectory` is not a data directory;
    ///   `.failure` when the server cannot be reached, is not the cluster in `dataDirectory`,
    ///   is older than 15, is a standby, does not archive WAL, has tablespaces, or when anything
    ///   fails during the copy (no snapshot is written then); `.interrupted` on a signal.
    public func run() throws -> Result {
        let started = Date()
        let pgdata = try Self.resolve(dataDirectory)
        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "repo pg-backup")
        let server = try Self.inspect(connection, pgdata: pgdata)
        let owner = try FileSystem.lstat(Array(pgdata.utf8))
        // The repository's WAL archive belongs to one cluster (FORMAT.md §27): record this one
        // at the first base backup, or refuse a base backup of another.
        try WALArchive(backend: repository.backend, config: repository.config, key: repository.key)
            .claim(systemIdentifier: UInt64(server.systemIdentifier) ?? 0, segmentSize: server.walSegmentSize)

        // Session settings: the copy may take hours; nothing on the server may end this session.
        try connection.query("SET statement_timeout = 0", purpose: "setting statement_timeout")
        try connection.query("SET idle_session_timeout = 0", purpose: "setting idle_session_timeout")
        try connection.query("SET idle_in_transaction_session_timeout = 0", purpose: "setting idle_in_transaction_session_timeout")

        let label = self.label ?? "repo pg-backup \(Timestamp.format(started))"
        let start = try connection.row("""
            SELECT lsn::text, pg_walfile_name(lsn),
                   to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM pg_backup_start($1, $2) AS lsn
            """, [label, fastCheckpoint ? "true" : "false"], purpose: "pg_backup_start")
        guard let startLSN = start[0].flatMap({ LSN($0) }), let startWAL = start[1], let startTime = start[2] else {
            throw RepoError(.failure, "PostgreSQL: pg_backup_start returned an unexpected row: \(start)")
        }

        var stopped = false
        var op = Backup(repository: repository, paths: [pgdata], tags: [Self.tag] + tags.filter { $0 != Self.tag },
                        host: host, time: started)
        op.workers = workers
        op.progress = progress
        op.cancellation = cancellation
        op.warn = warn
        op.entryRules = DataDirectoryExclusions.rules(dataDirectory: pgdata)
        op.vanishedIsExpected = true
        op.warnChangedWhileRead = false
        op.parentFilter = { entry in
            guard let pg = entry.snapshot.postgres else { return false }
            return pg.dataDirectory == pgdata && pg.systemIdentifier == server.systemIdentifier && entry.snapshot.partial != true
        }
        op.trustStatusBefore = { entry in Self.trustedBefore(entry) }
        op.completion = { walked in
            if walked.unreadable > 0 {
                throw RepoError(.failure, "\(walked.unreadable) entr\(walked.unreadable == 1 ? "y" : "ies") of \(pgdata) could not be read (named above); no snapshot was saved",
                                hint: "run pg-backup as the data directory's owner (or root), or fix the permissions")
            }
            stopped = true
            let stop = try connection.row("""
                SELECT s.lsn::text, s.labelfile, s.spcmapfile, pg_walfile_name(s.lsn),
                       to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                FROM pg_backup_stop(wait_for_archive => true) AS s
                """, purpose: "pg_backup_stop")
            guard let stopLSN = stop[0].flatMap({ LSN($0) }), let labelFile = stop[1], let stopWAL = stop[3],
                  let stopTime = stop[4] else {
                throw RepoError(.failure, "PostgreSQL: pg_backup_stop returned an unexpected row")
            }
            guard let timeline = Self.startTimeline(labelFile) else {
                throw RepoError(.failure, "PostgreSQL: the backup_label returned by pg_backup_stop has no START TIMELINE line")
            }
            let now = FileTime(seconds: Int64(Date().timeIntervalSince1970), nanoseconds: 0)
            var files = [Backup.AddedFile(directory: pgdata, name: "backup_label", bytes: Array(labelFile.utf8), mode: 0o600,
                                          uid: owner.uid, gid: owner.gid, mtime: now)]
            if let map = stop[2], !map.isEmpty {
                files.append(Backup.AddedFile(directory: pgdata, name: "tablespace_map", bytes: Array(map.utf8), mode: 0o600,
                                              uid: owner.uid, gid: owner.gid, mtime: now))
            }
            let record = PostgresBackup(systemIdentifier: server.systemIdentifier, serverVersion: server.version,
                                        walSegmentSize: server.walSegmentSize, timeline: timeline,
                                        startLSN: startLSN, stopLSN: stopLSN, startWAL: startWAL, stopWAL: stopWAL,
                                        startTime: startTime, stopTime: stopTime, label: label, dataDirectory: pgdata)
            return Backup.Completion(files: files, postgres: record)
        }
        do {
            let result = try op.run()
            return Result(snapshotID: result.snapshotID, snapshot: result.snapshot, postgres: result.snapshot.postgres!,
                          parent: result.parent, backup: result)
        } catch {
            // Leave backup mode; the session ending would too, but say it plainly to the server.
            if !stopped && connection.isOpen {
                _ = try? connection.query("SELECT pg_backup_stop(wait_for_archive => false)", purpose: "pg_backup_stop")
            }
            throw error
        }
    }

    /// The instant before which the parent's file status is trusted: its start, by the
    /// earlier of repo's clock and the server's, less `trustMargin`.
    static func trustedBefore(_ entry: SnapshotEntry) -> FileTime? {
        var start = entry.date
        if let server = entry.snapshot.postgres.flatMap({ Timestamp.parse($0.startTime) }), server < start { start = server }
        let t = start.timeIntervalSince1970 - trustMargin
        return FileTime(seconds: Int64(t.rounded(.down)), nanoseconds: 0)
    }

    /// `START TIMELINE: n` of a backup label.
    static func startTimeline(_ label: String) -> UInt32? {
        for line in label.split(separator: "\n") where line.hasPrefix("START TIMELINE:") {
            return UInt32(line.dropFirst("START TIMELINE:".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// The real path of a data directory (symlinks resolved), checked to hold `PG_VERSION` and
    /// `global/pg_control`.
    static func resolve(_ path: String) throws -> String {
        guard let real = realpath(path, nil) else {
            throw RepoError(.usage, "--pgdata \(path): \(String(cString: strerror(errno)))", hint: "name the cluster's data directory (SHOW data_directory)")
        }
        defer { free(real) }
        let resolved = String(cString: real)
        for required in ["PG_VERSION", "global/pg_control"] where !FileManager.default.fileExists(atPath: resolved + "/" + required) {
            throw RepoError(.usage, "--pgdata \(path) is not a PostgreSQL data directory: it has no \(required)",
                            hint: "name the cluster's data directory (SHOW data_directory)")
        }
        return resolved
    }

    /// Reads the server's facts and checks that the backup can be made from it.
    static func inspect(_ connection: PostgresConnection, pgdata: String) throws -> Server {
        let row = try connection.row("""
            SELECT current_setting('server_version_num'), pg_is_in_recovery()::text, current_setting('archive_mode'),
                   (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'),
                   (SELECT system_identifier::text FROM pg_control_system()),
                   (SELECT setting FROM pg_settings WHERE name = 'data_directory')
            """, purpose: "reading the server's settings")
        guard let version = row[0].flatMap({ Int($0) }), let segment = row[3].flatMap({ Int($0) }), let system = row[4] else {
            throw RepoError(.failure, "PostgreSQL: unexpected answer reading the server's settings: \(row)")
        }
        guard version >= 150000 else {
            throw RepoError(.failure, "the server runs PostgreSQL \(version / 10000); pg-backup needs 15 or newer (pg_backup_start)")
        }
        if row[1] == "true" {
            throw RepoError(.failure, "the server is a standby (in recovery); pg-backup backs up a primary",
                            hint: "connect to the primary (PGHOST/PGPORT or --dsn)")
        }
        if row[2] == "off" {
            throw RepoError(.failure, "the server does not archive WAL (archive_mode = off): a base backup cannot be restored without the WAL written during it",
                            hint: "set archive_mode = on and archive_command = 'repo wal-push %p' (README, \"PostgreSQL point-in-time recovery\") and restart the server")
        }
        if let onDisk = try? controlFileSystemIdentifier(pgdata), onDisk != system {
            throw RepoError(.failure, "--pgdata \(pgdata) belongs to the cluster with system identifier \(onDisk), but the server connected to is \(system)",
                            hint: "connect to the server of that data directory (PGHOST/PGPORT or --dsn), or name its data directory")
        }
        if let dir = row[5], let real = realpath(dir, nil) {
            defer { free(real) }
            let serverDir = String(cString: real)
            if serverDir != pgdata {
                throw RepoError(.failure, "--pgdata \(pgdata) is not the server's data directory \(serverDir)",
                                hint: "pass --pgdata \(serverDir)")
            }
        }
        let spaces = try connection.query("""
            SELECT spcname, pg_tablespace_location(oid) FROM pg_tablespace
            WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY spcname
            """, purpose: "listing tablespaces")
        let onDisk = ((try? FileSystem.list(Array((pgdata + "/pg_tblspc").utf8))) ?? []).count
        if !spaces.isEmpty || onDisk > 0 {
            let names = spaces.map { "\($0[0] ?? "?") at \($0[1] ?? "?")" }.joined(separator: ", ")
            throw RepoError(.failure, "the cluster has tablespaces outside its data directory (\(names.isEmpty ? "pg_tblspc is not empty" : names)); pg-backup does not back them up yet",
                            hint: "move their objects to pg_default (ALTER TABLE … SET TABLESPACE pg_default) and drop the tablespaces, or use pg_basebackup for this cluster")
        }
        return Server(version: version, systemIdentifier: system, walSegmentSize: segment, dataDirectory: row[5])
    }

    /// The database system identifier in `global/pg_control`: its first 8 bytes, in the
    /// machine's byte order (`ControlFileData.system_identifier`).
    static func controlFileSystemIdentifier(_ pgdata: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: pgdata + "/global/pg_control") else {
            throw RepoError(.failure, "cannot read \(pgdata)/global/pg_control")
        }
        defer { try? handle.close() }
        let bytes = [UInt8](handle.readData(ofLength: 8))
        guard bytes.count == 8 else { throw RepoError(.failure, "\(pgdata)/global/pg_control is too short") }
        return String(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    }
}
