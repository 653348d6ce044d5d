import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoSnapshot
import RepoStorage
import RepoOperations
import Foundation

extension RepoCommand {
    /// `repo drill` (README, "Restore drills"): proves that a snapshot restores, measures how
    /// long it takes, and records the outcome in the repository for `repo status`.
    struct Drill: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore a snapshot somewhere scratch, check it, time it, and record the result.",
            discussion: """
                With --postgres the snapshot's stream is a pg_dump (plain SQL or custom format, \
                detected): it is restored into a scratch PostgreSQL that repo starts (initdb in a \
                temporary directory, a Unix socket only, removed afterwards) or into the empty \
                database of --dsn, then every table's rows are counted and each --sql FILE must \
                print `t` last. A backed-up tree is restored into a scratch directory and every \
                file compared with its SHA-256; another stream is read back and checked against \
                its SHA-256. The outcome is recorded in the repository (FORMAT.md §30), so \
                `repo status` shows the last drill. Exit 0 only when the restore and every check \
                passed; 13 when stored data is damaged; 1 for any other failed check.
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: SnapshotFilterOptions

        @Argument(help: "Snapshot id (or unique prefix), or `latest`.")
        var snapshot: String

        @Argument(help: "The stream to drill in a snapshot of several (`repo store --stream …`).")
        var path: String?

        @Flag(help: "The snapshot is a pg_dump: restore it into PostgreSQL and check it there.")
        var postgres = false

        @Option(help: ArgumentHelp("Restore into this existing, empty database (a libpq connection string) instead of a scratch cluster.", valueName: "DSN"))
        var dsn: String?

        @Option(name: .customLong("sql"), help: ArgumentHelp("A check: SQL whose last output line must be `t` (repeatable).", valueName: "FILE"))
        var sqlFiles: [String] = []

        @Option(help: ArgumentHelp("Directory of PostgreSQL's programs (default: the newest /usr/lib/postgresql/*/bin).", valueName: "DIR"))
        var pgBin: String?

        @Option(help: ArgumentHelp("Where the scratch cluster or directory goes (default: $TMPDIR).", valueName: "DIR"))
        var scratchDir: String?

        func validate() throws {
            if (dsn != nil || !sqlFiles.isEmpty) && !postgres {
                throw ValidationError("--dsn and --sql are for PostgreSQL drills: add --postgres")
            }
            for f in sqlFiles where !FileManager.default.isReadableFile(atPath: f) {
                throw ValidationError("cannot read the --sql file \(f)")
            }
        }

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, command: "drill \(snapshot)", readOnly: true)
            defer { lock?.release() }
            SignalTrap.stopCooperatively()
            let entry = try repo.findSnapshot(snapshot, filter: filter.snapshotFilter)
            var op = RestoreDrill(repository: repo)
            op.postgres = postgres
            op.dsn = dsn
            op.sqlFiles = sqlFiles.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            op.pgBin = pgBin
            op.path = path.map(RawArguments.bytes(of:))
            if let scratchDir { op.scratchParent = scratchDir }
            op.cancellation = SignalTrap.cancellation
            let verbose = global.verbose && !global.quiet
            op.log = { if verbose { Console.line("repo: drill: \($0)") } }
            let line = global.progressLine("restored")
            if let line { op.progress = { line.update($0) } }
            let outcome: RestoreDrill.Outcome
            do {
                outcome = try op.run(entry: entry, program: "repo \(RepoOperationsVersion.string)") {
                    Timestamp.format((try? repo.backend.now()) ?? Date())
                }
            } catch {
                line?.finish()
                throw error
            }
            line?.finish()
            let recorded = global.saveRunRecord("drill", locked: lock != nil) { try repo.saveDrillRecord(outcome.record) }
            let r = outcome.record
            CommandMetrics.shared.drillFinished(r)
            if global.json {
                try Console.printJSON(DrillJSON(snapshot: r.snapshot, kind: r.kind, ok: r.ok, restore_seconds: r.restoreSeconds,
                                                setup_seconds: outcome.setupSeconds,
                                                checks: outcome.checks.map { .init(name: $0.name, ok: $0.ok, detail: $0.detail) },
                                                failed_checks: r.failedChecks, message: r.message, recorded: recorded))
            } else if !global.quiet || !r.ok {
                let what = r.snapshotName ?? r.snapshotPaths?.joined(separator: " ") ?? ""
                print("drill of snapshot \(r.snapshot.prefix(8)) (\(r.kind), \(SnapshotLabel.escapedForTable(what)), host \(SnapshotLabel.escapedForTable(r.snapshotHost))): "
                      + "\(r.ok ? "PASSED" : "FAILED"); restore took \(String(format: "%.1f", r.restoreSeconds)) s"
                      + (outcome.setupSeconds > 0 ? " (scratch cluster set up in \(String(format: "%.1f", outcome.setupSeconds)) s before)" : ""))
                for c in outcome.checks {
                    print("  \(c.ok ? "ok  " : "FAIL")  \(c.name): \(c.detail)")
                }
                if let recorded, !global.quiet { print("recorded as \(recorded)") }
            }
            if !r.ok {
                throw RepoError(outcome.damaged ? .integrity : .failure, "the drill failed: \(r.message ?? "a check failed")",
                                hint: outcome.damaged ? "stored data is damaged: run `repo check --read-data`" : "the checks above say what; the outcome is recorded for `repo status`")
            }
        }
    }
}

/// `repo drill --json` (README, "JSON output").
struct DrillJSON: Encodable {
    struct Check: Encodable { var name: String; var ok: Bool; var detail: String }
    var snapshot: String
    var kind: String
    var ok: Bool
    var restore_seconds: Double
    var setup_seconds: Double
    var checks: [Check]
    var failed_checks: Int
    var message: String?
    /// The drill record's object name; null when it could not be written.
    var recorded: String?

    enum CodingKeys: String, CodingKey {
        case snapshot, kind, ok, restore_seconds, setup_seconds, checks, failed_checks, message, recorded
    }

    /// Every key, `null` where there is no value (README, "JSON output").
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(snapshot, forKey: .snapshot); try c.encode(kind, forKey: .kind); try c.encode(ok, forKey: .ok)
        try c.encode(restore_seconds, forKey: .restore_seconds); try c.encode(setup_seconds, forKey: .setup_seconds)
        try c.encode(checks, forKey: .checks); try c.encode(failed_checks, forKey: .failed_checks)
        try c.encode(message, forKey: .message); try c.encode(recorded, forKey: .recorded)
    }
}
