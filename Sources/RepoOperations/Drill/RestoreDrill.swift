public import Foundation
public import RepoRepository
public import RepoSnapshot
import RepoPrimitives
#if canImport(Glibc)
import Glibc
#endif

/// A restore drill (README, "Restore drills"): restores one snapshot somewhere scratch, checks
/// what came back, measures how long the restore took, and returns the outcome as a
/// `DrillRecord` (FORMAT.md §30) for the caller to store.
///
/// - `postgres`: a stored `pg_dump` (plain SQL, or custom format: detected by its `PGDMP`
///   signature) is restored into a scratch cluster (`ScratchPostgres`) or into the database of
///   `dsn`; checks: every table's `count(*)`, then each `--sql` file, whose last output line
///   must be `t` (true).
/// - `tree`: a backed-up tree is restored into a scratch directory and every file read back
///   and compared with its SHA-256 from the snapshot (`restore --verify`).
/// - a stream without `postgres`: it is read back whole and checked against the SHA-256 recorded
///   when it was stored (`dump`).
public struct RestoreDrill {
    public var repository: Repository
    /// Restore into PostgreSQL (the stream is a pg_dump).
    public var postgres = false
    /// A libpq connection string of an existing, empty database to restore into instead of a
    /// scratch cluster.
    public var dsn: String?
    /// SQL files whose last output line must be `t`.
    public var sqlFiles: [String] = []
    /// PostgreSQL's program directory (default: `ScratchPostgres.findBinaries()`).
    public var pgBin: String?
    /// The stream to drill in a snapshot of several (`repo store --stream …`); nil: its only one.
    public var path: [UInt8]?
    /// Where scratch directories go (default: the temporary directory).
    public var scratchParent: String = NSTemporaryDirectory()
    public var cancellation: Cancellation?
    public var progress: ProgressHandler?
    /// One line per step, for `-v` and the report.
    public var log: (String) -> Void = { _ in }

    public init(repository: Repository) { self.repository = repository }

    /// One check and its result.
    public struct Check: Sendable, Codable {
        public var name: String
        public var ok: Bool
        /// The value found (a row count, a query's last line, a file count).
        public var detail: String
        /// True when it failed because stored data is damaged (exit 13, as for `dump`).
        public var damage = false

        init(name: String, ok: Bool, detail: String, error: Error? = nil) {
            self.name = name; self.ok = ok; self.detail = detail
            damage = (error as? RepoError)?.kind == .integrity
        }
    }

    /// What the drill did.
    public struct Outcome: Sendable {
        public var record: DrillRecord
        public var checks: [Check]
        /// Seconds spent preparing (initdb and server start), not part of the restore time.
        public var setupSeconds: Double
        /// True when a check failed because stored data is damaged.
        public var damaged: Bool { checks.contains { $0.damage } }
    }

    /// Checks that `entry` can be drilled as asked, before anything runs or is recorded.
    ///
    /// - Throws: `RepoError` `.usage` for a tree drilled with `postgres` or a path, a snapshot
    ///   of several streams without a path (the hint names the command to run), a path that
    ///   is not one of its streams.
    public func validate(entry: SnapshotEntry) throws {
        if entry.snapshot.paths != nil {
            if postgres { throw RepoError(.usage, "snapshot \(entry.id.shortHex) is a backed-up tree, not a pg_dump: drill it without --postgres") }
            if path != nil { throw RepoError(.usage, "a tree is drilled whole: drop the path") }
            return
        }
        do {
            _ = try repository.fileNode(in: entry, pathBytes: path)
        } catch let error as RepoError where error.kind == .usage || error.kind == .failure {
            let names = ((try? repository.loadTree(entry.snapshot.tree))?.nodes ?? []).map { PathText.display($0.nameBytes) }
            throw RepoError(.usage, error.message,
                            hint: names.isEmpty ? error.hint : "drill one stream: " + names.prefix(5).map { "`repo drill \(entry.id.shortHex) \($0)`" }.joined(separator: ", "))
        }
    }

    /// Runs the drill on `entry` (`program` names this program in the record; `time` gives the
    /// end time on the storage's clock). Failures of the restore or of a check end up in the outcome
    /// (`record.ok == false`), not as a thrown error, so that they can be recorded.
    ///
    /// - Throws: only what makes the drill itself impossible: what `validate` throws, no
    ///   PostgreSQL programs, a scratch cluster that does not start, a `dsn` database that is
    ///   not empty, an interruption.
    public func run(entry: SnapshotEntry, program: String, time: () -> String) throws -> Outcome {
        try validate(entry: entry)
        for path in ScratchPostgres.sweep(parent: scratchParent, bin: pgBin) {
            log("stopped and removed \(path), left by a drill that was killed")
        }
        let s = entry.snapshot
        let kind: String
        var checks: [Check] = []
        var message: String?
        var setup = 0.0
        let started: Date
        if postgres {
            kind = "postgres"
            (checks, message, setup, started) = try drillPostgres(entry)
        } else if s.paths != nil {
            kind = "tree"
            started = Date()
            (checks, message) = drillTree(entry)
        } else {
            kind = "stream"
            started = Date()
            (checks, message) = drillStream(entry)
        }
        let seconds = Date().timeIntervalSince(started)
        let failed = checks.filter { !$0.ok }.count
        let ok = message == nil && failed == 0
        if message == nil && failed > 0 {
            message = "\(failed) of \(checks.count) checks failed: " + checks.filter { !$0.ok }.prefix(3).map { "\($0.name) (\($0.detail))" }.joined(separator: "; ")
        }
        let record = DrillRecord(time: time(), host: HostInfo.hostname, username: HostInfo.username,
                                 program: program, snapshot: entry.id.hex, snapshotTime: s.time,
                                 snapshotHost: s.host, snapshotName: s.name, snapshotPaths: s.paths, kind: kind, ok: ok,
                                 restoreSeconds: (seconds * 1000).rounded() / 1000, checks: checks.count, failedChecks: failed,
                                 message: message.map { String($0.prefix(500)) })
        return Outcome(record: record, checks: checks, setupSeconds: (setup * 1000).rounded() / 1000)
    }

    // MARK: stream and tree

    private func drillStream(_ entry: SnapshotEntry) -> ([Check], String?) {
        do {
            let node = try repository.fileNode(in: entry, pathBytes: path)
            let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
            defer { close(devNull) }
            var op = Dump(repository: repository)
            op.cancellation = cancellation
            op.progress = progress
            let bytes = try op.run(node: node, output: devNull)
            return ([Check(name: "stream SHA-256", ok: true, detail: "\(bytes) bytes")], nil)
        } catch {
            return ([Check(name: "stream SHA-256", ok: false, detail: Self.reason(error), error: error)], Self.reason(error))
        }
    }

    private func drillTree(_ entry: SnapshotEntry) -> ([Check], String?) {
        let target = scratchParent + "/" + ScratchPostgres.scratchName("tree")
        defer { try? FileManager.default.removeItem(atPath: target) }
        do {
            var op = Restore(repository: repository)
            op.verify = true
            op.cancellation = cancellation
            op.progress = progress
            let tree = try repository.loadTree(entry.snapshot.tree)
            let result = try op.run(tree: tree, snapshotPath: [UInt8(ascii: "/")], target: target)
            var checks = [Check(name: "files verified against their SHA-256", ok: result.verifiedFiles == result.files,
                                detail: "\(result.verifiedFiles) of \(result.files)")]
            if !result.damagedFiles.isEmpty {
                checks.append(Check(name: "damaged files", ok: false, detail: result.damagedFiles.prefix(3).joined(separator: ", ")))
            }
            return (checks, nil)
        } catch {
            return ([Check(name: "restore", ok: false, detail: Self.reason(error), error: error)], Self.reason(error))
        }
    }

    // MARK: PostgreSQL

    private func drillPostgres(_ entry: SnapshotEntry) throws -> ([Check], String?, Double, Date) {
        let node: Node
        do { node = try repository.fileNode(in: entry, pathBytes: path) } catch {
            return ([Check(name: "find the dump", ok: false, detail: Self.reason(error), error: error)], Self.reason(error), 0, Date())
        }
        let setupStart = Date()
        var server: ScratchPostgres?
        let bin: String
        if dsn == nil {
            log("starting a scratch PostgreSQL")
            let s = try ScratchPostgres(bin: pgBin, parent: scratchParent)
            server = s
            bin = s.bin
        } else {
            guard let b = pgBin ?? ScratchPostgres.findBinaries() ?? Self.onPath("psql") else {
                throw RepoError(.failure, "psql and pg_restore were not found", hint: "install PostgreSQL's client programs or give --pg-bin DIR")
            }
            bin = b
        }
        defer { server?.stop() }
        let setup = Date().timeIntervalSince(setupStart)
        let connect: [String]
        if let server {
            connect = server.connectionArguments + ["-d", "drill"]
            let created = try DrillProcess.run([bin + "/createdb"] + server.connectionArguments + ["drill"])
            guard created.status == 0 else {
                throw RepoError(.failure, "createdb in the scratch cluster failed: \(created.output.suffix(400))")
            }
        } else {
            connect = ["-d", dsn!]
            // Restoring over an earlier drill's tables fails half-way: refuse up front.
            let existing = try DrillProcess.run([bin + "/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1"] + connect + ["-c", Self.userRelationCount])
            guard existing.status == 0 else {
                throw RepoError(.failure, "cannot connect to the --dsn database: " + Self.errorLines(existing.output))
            }
            if let n = Int(existing.output.trimmingCharacters(in: .whitespacesAndNewlines)), n > 0 {
                throw RepoError(.usage, "the --dsn database is not empty (\(n) tables, views or sequences outside the system schemas)",
                                hint: "a drill restores into an empty database: drop and create it again before each drill (`dropdb`, `createdb`), or drill into a scratch cluster without --dsn")
            }
        }

        let started = Date()
        let dumpFile = scratchParent + "/" + ScratchPostgres.scratchName("dump")
        defer { unlink(dumpFile) }
        log("reading the dump from the repository")
        do {
            let fd = open(dumpFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw RepoError(.failure, "cannot create \(dumpFile): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            var op = Dump(repository: repository)
            op.cancellation = cancellation
            op.progress = progress
            _ = try op.run(node: node, output: fd)
        } catch {
            if case .interrupted = (error as? RepoError)?.kind { throw error }
            return ([Check(name: "read the dump", ok: false, detail: Self.reason(error), error: error)], Self.reason(error), setup, started)
        }
        let custom = Self.isCustomFormat(dumpFile)
        log("restoring a \(custom ? "custom-format" : "plain SQL") dump")
        let restore = custom
            ? try DrillProcess.run([bin + "/pg_restore", "--exit-on-error", "--no-owner"] + connect + [dumpFile])
            : try DrillProcess.run([bin + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"] + connect + ["-f", dumpFile])
        if let sig = cancellation?.requestedBy { throw RepoError(.interrupted(signal: sig), "interrupted during the drill's restore") }
        guard restore.status == 0 else {
            let why = "\(custom ? "pg_restore" : "psql") failed (exit \(restore.status)): " + Self.errorLines(restore.output)
            return ([Check(name: "restore", ok: false, detail: why)], why, setup, started)
        }
        var checks = [Check(name: "restore (\(custom ? "pg_restore" : "psql"))", ok: true, detail: "exit 0")]

        // Every table's row count: proves each one can be read end to end.
        let tables = try DrillProcess.run([bin + "/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1"] + connect + ["-c", """
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1
            """])
        if tables.status != 0 {
            checks.append(Check(name: "list tables", ok: false, detail: Self.errorLines(tables.output)))
        } else {
            for table in tables.output.split(separator: "\n").map(String.init) where !table.isEmpty {
                let count = try DrillProcess.run([bin + "/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1"] + connect + ["-c", "SELECT count(*) FROM \(table)"])
                let value = count.output.trimmingCharacters(in: .whitespacesAndNewlines)
                checks.append(Check(name: "rows in \(table)", ok: count.status == 0 && Int(value) != nil,
                                    detail: count.status == 0 ? value : Self.errorLines(count.output)))
            }
        }
        for file in sqlFiles {
            let r = try DrillProcess.run([bin + "/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1"] + connect + ["-f", file])
            let last = r.output.split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            checks.append(Check(name: "query \(file)", ok: r.status == 0 && last == "t",
                                detail: r.status == 0 ? "returned \(last.isEmpty ? "nothing" : last)" : Self.errorLines(r.output)))
        }
        return (checks, nil, setup, started)
    }

    /// True for a pg_dump custom-format archive (it starts with `PGDMP`).
    static func isCustomFormat(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        return (try? h.read(upToCount: 5)) == Data("PGDMP".utf8)
    }

    static func onPath(_ program: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: dir + "/" + program) {
            return String(dir)
        }
        return nil
    }

    /// The lines of a client's output that say what went wrong: PostgreSQL's `ERROR:`/`FATAL:`
    /// lines (with what follows on the same message) when there are any, else the last two.
    static func errorLines(_ text: String) -> String {
        let lines = text.split(separator: "\n").map(String.init)
        let errors = lines.filter { $0.contains("ERROR:") || $0.contains("FATAL:") || $0.contains("error:") }
        return (errors.isEmpty ? Array(lines.suffix(2)) : Array(errors.prefix(3))).joined(separator: " / ")
    }

    /// Counts the tables, views, materialized views and sequences outside the system schemas.
    static let userRelationCount = """
        SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
        """

    static func reason(_ error: Error) -> String {
        (error as? RepoError)?.message ?? "\(error)"
    }
}
