import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoSnapshot
import Foundation

extension RepoCommand {
    struct PgBackup: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pg-backup",
            abstract: "Online base backup of a running PostgreSQL cluster (15 or newer).",
            discussion: """
                Connects with libpq (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD or ~/.pgpass; \
                or --dsn), runs pg_backup_start, stores the data directory as a deduplicated tree \
                (files unchanged since the previous base backup of the same directory are not read \
                again), runs pg_backup_stop (waiting until the WAL it needs is archived) and stores \
                the backup_label it returns at the data directory's root. The contents of pg_wal, \
                pg_replslot, pg_dynshmem, pg_notify, pg_serial, pg_snapshots, pg_stat_tmp and \
                pg_subtrans, temporary files and unlogged relations' data are left out. The \
                snapshot is tagged pg-backup; prints its id. If anything fails, no snapshot is \
                saved and the exit code is 1. Clusters with tablespaces are refused.
                Examples:
                  repo pg-backup --pgdata /var/lib/postgresql/15/main
                  PGHOST=/var/run/postgresql repo pg-backup --pgdata /srv/pg --fast --tag nightly
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("The cluster's data directory (SHOW data_directory).", valueName: "DIR"))
        var pgdata: String

        @Option(help: ArgumentHelp("libpq connection string (`host=… port=… user=…` or postgresql://…); default: libpq's environment.", valueName: "DSN"))
        var dsn: String?

        @Flag(help: "Ask for an immediate checkpoint (pg_backup_start's fast) instead of a spread one.")
        var fast = false

        @Option(help: "Label for pg_backup_start (default: `repo pg-backup` and the time).")
        var label: String?

        @Option(name: .customLong("tag"), help: "Extra tag for the snapshot (repeatable; every base backup is tagged pg-backup).")
        var tags: [String] = []

        @Option(help: "Host to record (default: this machine's hostname).")
        var host: String?

        func validate() throws {
            try LabelInput.check(tags, kind: .tag, flag: "--tag")
            try LabelInput.check(host, kind: .host, flag: "--host")
            if let label, label.utf8.count > 1000 || label.contains("\n") {
                throw ValidationError("--label must be one line of at most 1000 bytes")
            }
        }

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, command: "pg-backup \(pgdata)")
            defer { lock?.release() }
            SignalTrap.stopCooperatively()
            var op = BaseBackup(repository: repo, dataDirectory: pgdata, tags: tags, host: host ?? HostInfo.hostname)
            op.conninfo = dsn
            op.fastCheckpoint = fast
            op.label = label
            op.cancellation = SignalTrap.cancellation
            op.warn = global.warningPrinter
            let result = try global.withProgress("read") { progress in
                op.progress = progress
                return try op.run()
            }
            let s = result.snapshot.stats
            CommandMetrics.shared.snapshotWritten(result.snapshot, date: Timestamp.parse(result.snapshot.time) ?? Date())
            if global.json {
                try Console.printJSON(PgBackupOutput(result))
            } else {
                print(result.snapshotID.hex)
                if global.verbose || (Console.stderrIsTerminal && !global.quiet) {
                    let pg = result.postgres
                    Console.line("base backup of \(pg.dataDirectory): WAL \(pg.startLSN)–\(pg.stopLSN) (\(pg.startWAL)…\(pg.stopWAL), timeline \(pg.timeline)); \(s.files ?? 0) files, \(Format.bytes(s.totalBytes)) in \(String(format: "%.1f", s.seconds)) s: \(s.unchangedFiles ?? 0) files unchanged, \(Format.bytes(s.newBytes)) added" + (result.parent.map { " (parent \($0.shortHex))" } ?? ""))
                }
            }
        }
    }
}

/// `repo pg-backup --json` output (documented in the README).
struct PgBackupOutput: Encodable {
    var id: String
    var short_id: String
    var parent: String?
    var data_directory: String
    var system_identifier: String
    var timeline: UInt32
    var start_lsn: String
    var stop_lsn: String
    var start_wal: String
    var stop_wal: String
    var start_time: String
    var stop_time: String
    var files: Int
    var unchanged_files: Int
    var vanished: Int
    var changed_while_read: Int
    var bytes: Int
    var new_blobs: Int
    var new_bytes: Int
    var seconds: Double

    init(_ r: BaseBackup.Result) {
        let s = r.snapshot.stats, pg = r.postgres
        id = r.snapshotID.hex; short_id = r.snapshotID.shortHex; parent = r.parent?.hex
        data_directory = pg.dataDirectory; system_identifier = pg.systemIdentifier; timeline = pg.timeline
        start_lsn = pg.startLSN.description; stop_lsn = pg.stopLSN.description; start_wal = pg.startWAL; stop_wal = pg.stopWAL
        start_time = pg.startTime; stop_time = pg.stopTime
        files = s.files ?? 0; unchanged_files = s.unchangedFiles ?? 0; vanished = r.backup.vanished
        changed_while_read = r.backup.changedWhileRead; bytes = s.totalBytes; new_blobs = s.newBlobs; new_bytes = s.newBytes
        seconds = s.seconds
    }

    enum CodingKeys: String, CodingKey {
        case id, short_id, parent, data_directory, system_identifier, timeline, start_lsn, stop_lsn, start_wal, stop_wal
        case start_time, stop_time, files, unchanged_files, vanished, changed_while_read, bytes, new_blobs, new_bytes, seconds
    }

    /// Every key, `parent` as `null` when no earlier base backup was reused.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(short_id, forKey: .short_id); try c.encode(parent, forKey: .parent)
        try c.encode(data_directory, forKey: .data_directory); try c.encode(system_identifier, forKey: .system_identifier)
        try c.encode(timeline, forKey: .timeline); try c.encode(start_lsn, forKey: .start_lsn); try c.encode(stop_lsn, forKey: .stop_lsn)
        try c.encode(start_wal, forKey: .start_wal); try c.encode(stop_wal, forKey: .stop_wal)
        try c.encode(start_time, forKey: .start_time); try c.encode(stop_time, forKey: .stop_time)
        try c.encode(files, forKey: .files); try c.encode(unchanged_files, forKey: .unchanged_files)
        try c.encode(vanished, forKey: .vanished); try c.encode(changed_while_read, forKey: .changed_while_read)
        try c.encode(bytes, forKey: .bytes); try c.encode(new_blobs, forKey: .new_blobs); try c.encode(new_bytes, forKey: .new_bytes)
        try c.encode(seconds, forKey: .seconds)
    }
}
