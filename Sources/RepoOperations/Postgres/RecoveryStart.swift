import RepoRepository
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `pg-restore --start`: starts the restored cluster with `pg_ctl -D DIR -w start` (as the data
/// directory's owner when run as root, through `runuser`) and waits until recovery has reached
/// its target and the server accepts connections (PostgreSQL documentation, "pg_ctl",
/// "Recovery Control Functions").
///
/// Done means: promoted (`pg_is_in_recovery()` false: `promote`, or the end of the archive for
/// `latest`), paused at the target (`pg_get_wal_replay_pause_state()` = `paused`), or shut down
/// at the target (`shutdown`: the server logs "shutdown at recovery target" and exits). The
/// server is reached on the socket directory and port it writes into `postmaster.pid`
/// ("Database File Layout").
public struct RecoveryStart {
    public var dataDirectory: String
    /// `pg_ctl` to run.
    public var pgCtl: String
    /// As root: the user to run the server as (the data directory's owner).
    public var runAs: String?
    /// Extra server options (`pg_ctl -o`), e.g. `-p 5433`.
    public var serverOptions: String?
    /// The server's log (`pg_ctl -l`).
    public var logFile: String
    /// Give up after this many seconds (the server keeps running).
    public var timeout: Int = 3600
    public var cancellation: Cancellation?

    public init(dataDirectory: String, pgCtl: String, logFile: String) {
        self.dataDirectory = dataDirectory; self.pgCtl = pgCtl; self.logFile = logFile
    }

    public enum Outcome: String, Sendable {
        case promoted, paused, shutdown
    }

    public struct Result: Sendable {
        public var outcome: Outcome
        /// From `pg_ctl start` until recovery was done and the server answered (or stopped).
        public var seconds: Double
        /// The server's WAL position at the end (replayed, or current once promoted).
        public var lsn: String?
    }

    /// `pg_ctl` for the PostgreSQL major version in `DIR/PG_VERSION`: Debian's
    /// `/usr/lib/postgresql/<major>/bin/pg_ctl` when present, else `pg_ctl` from `PATH`.
    public static func defaultPgCtl(dataDirectory: String) -> String {
        let major = ((try? String(contentsOfFile: dataDirectory + "/PG_VERSION", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let debian = "/usr/lib/postgresql/\(major)/bin/pg_ctl"
        if !major.isEmpty && FileManager.default.isExecutableFile(atPath: debian) { return debian }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = String(dir) + "/pg_ctl"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return "pg_ctl"
    }

    /// - Throws: `RepoError(.failure)` when pg_ctl fails, the server stops before reaching the
    ///   target (the log's last lines are in the message), or `timeout` passes.
    public func run() throws -> Result {
        let started = Date()
        var args = [pgCtl, "-D", dataDirectory, "-l", logFile, "-w", "-t", String(timeout)]
        if let serverOptions { args += ["-o", serverOptions] }
        args.append("start")
        if let runAs { args = ["runuser", "-u", runAs, "--"] + args }
        let status = try Self.execute(args)
        if status != 0 {
            if logContains("shutdown at recovery target") {
                return Result(outcome: .shutdown, seconds: Date().timeIntervalSince(started), lsn: nil)
            }
            throw RepoError(.failure, "pg_ctl start failed with status \(status); the server log \(logFile) ends:\n\(logTail())",
                            hint: "fix what the log says, then start it with `pg_ctl -D \(dataDirectory) start`")
        }
        var connection: PostgresConnection?
        while true {
            if let sig = cancellation?.requestedBy {
                throw RepoError(.interrupted(signal: sig), "interrupted while waiting for recovery; the server keeps running")
            }
            if Date().timeIntervalSince(started) > Double(timeout) {
                throw RepoError(.failure, "recovery did not reach its target within \(timeout) s; the server keeps running",
                                hint: "follow it in \(logFile); raise --timeout")
            }
            guard serverIsRunning() else {
                if logContains("shutdown at recovery target") {
                    return Result(outcome: .shutdown, seconds: Date().timeIntervalSince(started), lsn: nil)
                }
                throw RepoError(.failure, "the server stopped during recovery; its log \(logFile) ends:\n\(logTail())",
                                hint: "the log says why (a missing WAL file, a target before the backup's end, …); restore again into an empty directory once fixed")
            }
            if connection == nil || connection?.isOpen == false { connection = try? connect() }
            if let c = connection, let row = try? c.row("""
                SELECT pg_is_in_recovery()::text,
                       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END,
                       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END
                """, purpose: "polling recovery") {
                if row[0] == "false" {
                    return Result(outcome: .promoted, seconds: Date().timeIntervalSince(started), lsn: row[2])
                }
                if row[1] == "paused" {
                    return Result(outcome: .paused, seconds: Date().timeIntervalSince(started), lsn: row[2])
                }
            }
            usleep(200_000)
        }
    }

    /// `postmaster.pid` lines 1, 4 and 5: the server's pid, port and socket directory.
    private func pidFile() -> (pid: pid_t, port: String, socket: String)? {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 5, let pid = pid_t(lines[0].trimmingCharacters(in: .whitespaces)) else { return nil }
        return (pid, lines[3].trimmingCharacters(in: .whitespaces), lines[4].trimmingCharacters(in: .whitespaces))
    }

    private func serverIsRunning() -> Bool {
        guard let pid = pidFile()?.pid else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// A session with the restored server: its own socket and port; user and database from
    /// `PGUSER`/`PGDATABASE` when set, else the server's OS user and `postgres`.
    private func connect() throws -> PostgresConnection? {
        guard let pid = pidFile(), !pid.port.isEmpty else { return nil }
        let env = ProcessInfo.processInfo.environment
        let host = pid.socket.isEmpty ? "localhost" : pid.socket.split(separator: ",").first.map(String.init)!
        var overrides = [("host", host), ("port", pid.port)]
        if env["PGUSER"] == nil, let user = runAs ?? Self.ownerName(of: dataDirectory) { overrides.append(("user", user)) }
        if env["PGDATABASE"] == nil { overrides.append(("dbname", "postgres")) }
        return try PostgresConnection(conninfo: nil, applicationName: "repo pg-restore", overrides: overrides)
    }

    /// The login name of the directory's owner.
    static func ownerName(of path: String) -> String? {
        guard let st = try? FileSystem.statFollowingLinks(Array(path.utf8)), let pw = getpwuid(st.uid) else { return nil }
        return String(cString: pw.pointee.pw_name)
    }

    private func logContains(_ text: String) -> Bool {
        ((try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "").contains(text)
    }

    private func logTail() -> String {
        let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "(no log)"
        return text.split(separator: "\n").suffix(8).joined(separator: "\n")
    }

    /// Runs `args` (through `env -C /`: the server's user may not enter our working directory)
    /// with this process's environment, so the server inherits `REPO_PASSWORD` and friends for
    /// its restore_command; standard input and output are /dev/null, descriptors above 2 are
    /// closed. Returns the exit status.
    private static func execute(_ args: [String]) throws -> Int32 {
        let argv = ["/usr/bin/env", "-C", "/"] + args
        var pointers: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // Nothing else of ours reaches the server, which outlives this process: a pipe our
        // parent waits on must not stay open in it.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(name), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &pointers, environ)
        guard rc == 0 else {
            throw RepoError(.failure, "cannot run \(args.joined(separator: " ")): \(String(cString: strerror(rc)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw RepoError(.failure, "waiting for \(args[0]): \(String(cString: strerror(errno)))") }
        }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }
}
