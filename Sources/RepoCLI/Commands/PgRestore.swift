import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoSnapshot
import Foundation
import RepoLaunch
#if canImport(Glibc)
import Glibc
#endif

extension RepoCommand {
    struct PgRestore: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pg-restore",
            abstract: "Restore a PostgreSQL base backup and set it up to recover to a point in time.",
            discussion: """
                Chooses the newest base backup (`repo pg-backup`) that can reach the target \
                (one that ended before --target-time or --target-lsn; the newest for \
                --target-name and --target latest), or SNAPSHOT, restores it into DIR (which \
                must be empty or missing; created with mode 0700), recreates pg_wal and the other \
                directories the backup left empty, and writes recovery.signal and, appended to \
                postgresql.auto.conf, restore_command ('repo wal-fetch' on this repository) and \
                the recovery_target_* settings. As root, the files are given to --owner, else to \
                the owner of DIR or of its parent (unless root), else to the owner recorded in \
                the backup. --start then runs `pg_ctl -D DIR -w start` (as that owner) and waits \
                until recovery reached the target. Recovery follows the newest timeline \
                (PostgreSQL's 'latest') unless --target-timeline names one; where two histories \
                diverge after the base backup (a promoted copy beside a server that kept \
                archiving) and the target may lie past the branch, --target-timeline is required.
                Examples:
                  repo pg-restore --pgdata /srv/pg-restored --target-time 2026-11-30T10:29:59Z --start
                  repo pg-restore --pgdata /srv/pg-restored --target latest
                  repo pg-restore --pgdata /tmp/pg-test --target-time 2026-11-30T10:29:59Z --target-timeline 1 --archive-mode off --start
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("Base backup to restore (id, prefix, or latest); default: chosen from the target.", valueName: "SNAPSHOT"))
        var snapshot: String?

        @Option(help: ArgumentHelp("Data directory to restore into: missing or empty.", valueName: "DIR"))
        var pgdata: String

        @Option(help: ArgumentHelp("Recover up to this time: RFC 3339 (2026-11-30T10:29:59.123Z, …+02:00), or YYYY-MM-DD HH:MM[:SS] in --tz.", valueName: "TIME"))
        var targetTime: String?

        @Option(help: ArgumentHelp("Recover up to this WAL position (X/Y).", valueName: "LSN"))
        var targetLsn: String?

        @Option(help: ArgumentHelp("Recover up to this restore point (pg_create_restore_point).", valueName: "NAME"))
        var targetName: String?

        @Option(help: ArgumentHelp("`latest`: recover everything archived, then promote.", valueName: "latest"))
        var target: String?

        @Option(help: ArgumentHelp("At the target: pause (PostgreSQL's default), promote or shutdown.", valueName: "ACTION"))
        var targetAction: String?

        @Option(help: ArgumentHelp("Timeline to recover along: latest (the newest, PostgreSQL's default) or an ID. Required where two histories diverge after the base backup and the target may lie past the branch (a promoted restore beside a server that kept running).", valueName: "TLI"))
        var targetTimeline: String?

        @Option(help: ArgumentHelp("off: the restored server archives no WAL (for a test restore beside a running production server, which must not gain the copy's timeline); preserve (default): as the restored postgresql.conf says.", valueName: "MODE"))
        var archiveMode: String?

        @Option(help: ArgumentHelp("Zone for --target-time values without an offset (IANA name; default: local).", valueName: "TZ"))
        var tz: String?

        @Option(help: ArgumentHelp("As root: the owner of the restored files (default: see above).", valueName: "USER[:GROUP]"))
        var owner: String?

        @Flag(help: "Start the server (pg_ctl -w start) and wait until recovery reached the target.")
        var start = false

        @Option(parsing: .unconditional, help: ArgumentHelp("With --start: options for the server (pg_ctl -o), e.g. \"-p 5433\".", valueName: "OPTIONS"))
        var serverOptions: String?

        @Option(help: ArgumentHelp("With --start: pg_ctl to run (default: the one of DIR's PostgreSQL version).", valueName: "PATH"))
        var pgCtl: String?

        @Option(help: ArgumentHelp("With --start: the server log (default: DIR/pg-restore-start.log).", valueName: "FILE"))
        var log: String?

        @Option(help: "With --start: seconds to wait for recovery.")
        var timeout = 3600

        func validate() throws {
            let given = [targetTime, targetLsn, targetName, target].compactMap { $0 }
            guard given.count == 1 else {
                throw ValidationError("give exactly one of --target-time, --target-lsn, --target-name and --target latest")
            }
            if let target, target != "latest" { throw ValidationError("--target takes only `latest`") }
            if let targetAction {
                guard RecoveryTarget.Action(rawValue: targetAction) != nil else {
                    throw ValidationError("--target-action must be pause, promote or shutdown")
                }
                if target != nil { throw ValidationError("--target-action applies to --target-time, --target-lsn and --target-name; --target latest always promotes") }
            }
            if let targetLsn, LSN(targetLsn) == nil { throw ValidationError("--target-lsn: \"\(targetLsn)\" is not an LSN (X/Y in hex, e.g. 0/3000060)") }
            if let targetName, targetName.isEmpty || targetName.utf8.count > 63 {
                throw ValidationError("--target-name must be 1 to 63 bytes (a restore point name)")
            }
            _ = try recoveryTarget()
            if !start && (serverOptions != nil || pgCtl != nil || log != nil) {
                throw ValidationError("--server-options, --pg-ctl and --log apply only with --start")
            }
            if timeout < 1 { throw ValidationError("--timeout must be at least 1") }
            _ = try timelineID()
            if let archiveMode, archiveMode != "off" && archiveMode != "preserve" {
                throw ValidationError("--archive-mode must be off or preserve")
            }
        }

        /// `--target-timeline`: nil for none given; .some(nil) for `latest`.
        func timelineID() throws -> UInt32?? {
            guard let targetTimeline else { return nil }
            if targetTimeline == "latest" { return .some(nil) }
            guard let id = UInt32(targetTimeline), id >= 1 else {
                throw ValidationError("--target-timeline must be latest or a timeline ID (1, 2, …), as `repo pg-status` lists them")
            }
            return .some(id)
        }

        func recoveryTarget() throws -> RecoveryTarget {
            if let targetTime {
                if let t = RecoveryTarget.time(rfc3339: targetTime) { return t }
                let date: Date
                do { date = try TimeArgument.parse(targetTime, zone: try TimeInput.zone(tz)) } catch {
                    throw ValidationError("--target-time: \(error)")
                }
                let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
                return .time(seconds: Int64((micros / 1_000_000).rounded(.down)),
                             nanoseconds: Int32(micros.truncatingRemainder(dividingBy: 1_000_000)) * 1000)
            }
            if let targetLsn, let lsn = LSN(targetLsn) { return .lsn(lsn) }
            if let targetName { return .name(targetName) }
            return .latest
        }

        func run() throws {
            let target = try recoveryTarget()
            let owner = try self.owner.map(Self.parseOwner)
            let repo = try global.open()
            let lock = try global.lock(repo, command: "pg-restore \(pgdata)", readOnly: true)
            defer { lock?.release() }
            SignalTrap.stopCooperatively()
            var op = PointInTimeRestore(repository: repo, dataDirectory: pgdata, target: target,
                                        restoreCommand: try restoreCommand(location: repo.backend.location))
            op.snapshot = try snapshot.map { try repo.findSnapshot($0, filter: SnapshotFilter()) }
            op.action = targetAction.flatMap(RecoveryTarget.Action.init(rawValue:))
            op.archiveOff = archiveMode == "off"
            if let chosen = try timelineID() {
                op.timeline = chosen
                op.checkDivergence = false
            }
            op.owner = owner
            op.cancellation = SignalTrap.cancellation
            op.warn = global.warningPrinter
            let line = global.progressLine("restored")
            if let line { op.progress = { line.update($0) } }
            let result: PointInTimeRestore.Result
            do { result = try op.run() } catch {
                line?.finish()
                throw error
            }
            line?.finish()
            lock?.release()
            let pg = result.postgres
            if !global.quiet && !global.json {
                print("restored base backup \(result.snapshotID.shortHex) (\(pg.label); WAL \(pg.startLSN)–\(pg.stopLSN), ended \(pg.stopTime)) into \(result.dataDirectory): \(result.restore.files) files, \(Format.bytes(result.restore.bytes)) in \(String(format: "%.1f", result.seconds)) s")
                let along = result.path.branches.isEmpty ? "on timeline \(result.path.target)"
                    : "along timelines " + (result.path.branches.map { String($0.parent) } + [String(result.path.target)]).joined(separator: " → ")
                print("recovery to \(target.summary) \(along): recovery.signal and postgresql.auto.conf written")
            }
            var started: RecoveryStart.Result?
            if start {
                var starter = RecoveryStart(dataDirectory: result.dataDirectory,
                                            pgCtl: pgCtl ?? RecoveryStart.defaultPgCtl(dataDirectory: result.dataDirectory),
                                            logFile: log ?? result.dataDirectory + "/pg-restore-start.log")
                starter.serverOptions = serverOptions
                starter.timeout = timeout
                starter.cancellation = SignalTrap.cancellation
                if geteuid() == 0, let uid = result.owner?.uid ?? (try? FileSystem.lstat(Array(result.dataDirectory.utf8)))?.uid, uid != 0 {
                    guard let pw = getpwuid(uid) else {
                        throw RepoError(.failure, "uid \(uid), the owner of \(result.dataDirectory), has no user name to run the server as",
                                        hint: "pass --owner USER")
                    }
                    starter.runAs = String(cString: pw.pointee.pw_name)
                }
                started = try starter.run()
                if !global.quiet && !global.json, let s = started {
                    let what = switch s.outcome {
                    case .promoted: "recovery finished and the server was promoted"
                    case .paused: "recovery paused at the target; the server accepts read-only connections (SELECT pg_wal_replay_resume() or pg_promote() to go on)"
                    case .shutdown: "recovery reached the target and the server shut down"
                    }
                    print("\(what) in \(String(format: "%.1f", s.seconds)) s" + (s.lsn.map { " (at \($0))" } ?? ""))
                }
            }
            if global.json {
                try Console.printJSON(PgRestoreOutput(result, target: target, started: started))
            }
        }

        /// `restore_command` for the restored server: this binary's `wal-fetch` on this
        /// repository, opened the way this command was (`GlobalOptions.credential`'s order),
        /// with files as absolute paths: the server cannot prompt, and its environment is not ours.
        func restoreCommand(location: String) throws -> String {
            let env = ProcessInfo.processInfo.environment
            // The launcher beside this program: it serves spooled segments without loading
            // repo-core (RepoLaunch).
            let exe = Launcher.launcher(besideCore: Launcher.executablePath() ?? CommandLine.arguments[0])
            func set(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
            var extra: [String] = []
            if let file = global.keyFile {
                extra = ["--key-file", FileSystem.normalize(file)]
            } else if let cmd = global.passwordCommand {
                extra = ["--password-command", cmd]
            } else if let file = global.passwordFile {
                extra = ["--password-file", FileSystem.normalize(file)]
            } else if let file = set("REPO_KEY_FILE") {
                extra = ["--key-file", FileSystem.normalize(file)]
            } else if env["REPO_PASSWORD"] != nil {
                if !global.quiet {
                    Console.line("repo: warning: the password came from REPO_PASSWORD: the server's restore_command needs it in the server's environment (or use --key-file or --password-file, which are written into restore_command)")
                }
            } else if let file = set("REPO_PASSWORD_FILE") {
                extra = ["--password-file", FileSystem.normalize(file)]
            } else if let cmd = set("REPO_PASSWORD_COMMAND") {
                extra = ["--password-command", cmd]
            } else if !global.quiet {
                Console.line("repo: warning: the password was typed in: the server's restore_command cannot ask for it; give the server REPO_KEY_FILE or REPO_PASSWORD_FILE in its environment, or restore again with --key-file or --password-file")
            }
            return RecoverySettings.walFetchCommand(binary: exe, repository: FileSystem.normalize(location), extraArguments: extra)
        }

        /// `USER[:GROUP]`, names or numbers; the group defaults to the user's primary group.
        static func parseOwner(_ text: String) throws -> (uid: UInt32, gid: UInt32) {
            let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
            guard let userPart = parts.first else { throw RepoError(.usage, "--owner: empty") }
            let pw = UInt32(userPart).flatMap { getpwuid($0) } ?? getpwnam(userPart)
            guard let uid = pw.map({ $0.pointee.pw_uid }) ?? UInt32(userPart) else {
                throw RepoError(.usage, "--owner: no user \(userPart)")
            }
            var gid = pw?.pointee.pw_gid
            if parts.count == 2 {
                guard let g = UInt32(parts[1]) ?? getgrnam(parts[1]).map({ $0.pointee.gr_gid }) else {
                    throw RepoError(.usage, "--owner: no group \(parts[1])")
                }
                gid = g
            }
            guard let gid else { throw RepoError(.usage, "--owner: give the group of uid \(uid) (USER:GROUP)") }
            return (uid, gid)
        }
    }
}

/// `repo pg-restore --json` output (documented in the README).
struct PgRestoreOutput: Encodable {
    var snapshot: String
    var short_id: String
    var data_directory: String
    var backup_stop_time: String
    var backup_stop_lsn: String
    var target: String
    var settings: [String: String]
    var owner_uid: UInt32?
    var files: Int
    var bytes: Int
    var seconds: Double
    var outcome: String?
    var recovery_seconds: Double?

    init(_ r: PointInTimeRestore.Result, target: RecoveryTarget, started: RecoveryStart.Result?) {
        snapshot = r.snapshotID.hex; short_id = r.snapshotID.shortHex; data_directory = r.dataDirectory
        backup_stop_time = r.postgres.stopTime; backup_stop_lsn = r.postgres.stopLSN.description
        self.target = target.summary
        settings = Dictionary(r.settings.settings.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        owner_uid = r.owner?.uid; files = r.restore.files; bytes = r.restore.bytes; seconds = r.seconds
        outcome = started?.outcome.rawValue; recovery_seconds = started?.seconds
    }

    enum CodingKeys: String, CodingKey {
        case snapshot, short_id, data_directory, backup_stop_time, backup_stop_lsn, target, settings, owner_uid, files, bytes
        case seconds, outcome, recovery_seconds
    }

    /// Every key; `owner_uid`, `outcome` and `recovery_seconds` are `null` when they do not apply.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(snapshot, forKey: .snapshot); try c.encode(short_id, forKey: .short_id)
        try c.encode(data_directory, forKey: .data_directory); try c.encode(backup_stop_time, forKey: .backup_stop_time)
        try c.encode(backup_stop_lsn, forKey: .backup_stop_lsn); try c.encode(target, forKey: .target)
        try c.encode(settings, forKey: .settings); try c.encode(owner_uid, forKey: .owner_uid)
        try c.encode(files, forKey: .files); try c.encode(bytes, forKey: .bytes); try c.encode(seconds, forKey: .seconds)
        try c.encode(outcome, forKey: .outcome); try c.encode(recovery_seconds, forKey: .recovery_seconds)
    }
}
