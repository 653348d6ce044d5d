public import Foundation
import RepoRepository
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for a restore drill (README, "Restore drills"): `initdb` in a
/// new directory, a server on a Unix socket only (no TCP port is opened, so it never collides
/// with a running server), stopped with `pg_ctl stop -m immediate` and removed afterwards.
/// As root, the server runs as the `postgres` user (`runuser`), as PostgreSQL requires.
///
/// The directory holds `drill.pid`, the process id of the drill that made it. A drill that was
/// killed outright (`kill -9`) cannot stop its server; the next drill with the same scratch
/// parent does (`sweep`): every `repo-drill-*` cluster whose drill no longer runs is stopped and
/// removed.
public final class ScratchPostgres {
    /// The directory of PostgreSQL's programs (`initdb`, `pg_ctl`, `psql`, `pg_restore`).
    public let bin: String
    /// Holds the data directory, the socket and the server log.
    public let directory: String
    /// The socket's port number (it names the socket file `.s.PGSQL.<port>`).
    public let port: Int
    let runAs: String?
    private var started = false

    /// The newest PostgreSQL under `/usr/lib/postgresql/<major>/bin` (Debian's layout), else the
    /// directory of `initdb` on `PATH`; nil when neither exists.
    public static func findBinaries() -> String? {
        let root = "/usr/lib/postgresql"
        let majors = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        for major in majors.reversed() where FileManager.default.isExecutableFile(atPath: "\(root)/\(major)/bin/initdb") {
            return "\(root)/\(major)/bin"
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: dir + "/initdb") {
            return String(dir)
        }
        return nil
    }

    /// Creates and starts the cluster under a new directory in `parent`.
    ///
    /// - Throws: `RepoError` `.failure` when the programs are missing, or `initdb` or
    ///   `pg_ctl start` fail (with their output).
    public init(bin: String?, parent: String) throws {
        guard let bin = bin ?? Self.findBinaries() else {
            throw RepoError(.failure, "no PostgreSQL server programs found (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH",
                            hint: "install PostgreSQL's server package (Debian: postgresql), give --pg-bin DIR, or drill into an existing database with --dsn")
        }
        self.bin = bin
        directory = parent + "/" + Self.scratchName("cluster")
        port = Int.random(in: 20000...60000)
        runAs = getuid() == 0 ? "postgres" : nil
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try Data("\(getpid())\n".utf8).write(to: URL(fileURLWithPath: directory + "/" + Self.ownerFile))
        if let runAs {
            guard let pw = getpwnam(runAs) else {
                try? FileManager.default.removeItem(atPath: directory)
                throw RepoError(.failure, "running as root, and there is no `postgres` user to run the scratch server as",
                                hint: "create one (the Debian postgresql package does), run as another user, or use --dsn")
            }
            chown(directory, pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
        let initdb = try run([bin + "/initdb", "-D", dataDirectory, "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8", "--locale=C"], asServer: true)
        guard initdb.status == 0 else {
            try? FileManager.default.removeItem(atPath: directory)
            throw RepoError(.failure, "initdb of the scratch cluster failed (\(initdb.status)): \(initdb.output.suffix(600))")
        }
        let options = "-k \(directory) -p \(port) -c listen_addresses= -F -c full_page_writes=off -c max_wal_size=4GB"
        let start = try run([bin + "/pg_ctl", "-D", dataDirectory, "-l", logFile, "-w", "-t", "120", "-o", options, "start"], asServer: true)
        guard start.status == 0 else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: directory)
            throw RepoError(.failure, "the scratch PostgreSQL did not start (\(start.status)): \(start.output.suffix(300)) \(log.suffix(600))")
        }
        started = true
    }

    deinit { stop() }

    /// Names the drill process that owns a scratch cluster directory.
    static let ownerFile = "drill.pid"

    /// The name of a drill's scratch file or directory under its scratch parent:
    /// `repo-drill-<kind>-<pid>-<random>`, so `sweep` can tell whose it is.
    public static func scratchName(_ kind: String) -> String {
        "repo-drill-\(kind)-\(getpid())-" + UUID().uuidString.prefix(8).lowercased()
    }

    /// Stops and removes what drills that no longer run (killed with SIGKILL, or on a machine
    /// that lost power) left under `parent`: scratch clusters (their server stopped first),
    /// dump files and restore directories; returns their paths. What belongs to drills still
    /// running is left alone.
    @discardableResult
    public static func sweep(parent: String, bin: String?) -> [String] {
        var removed: [String] = []
        func ownerIsGone(_ owner: pid_t) -> Bool { kill(owner, 0) != 0 && errno == ESRCH }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix("repo-drill-") {
            let path = parent + "/" + name
            // Dump files and restore directories: the pid is in the name.
            let parts = name.split(separator: "-")
            if parts.count == 5, ["dump", "tree"].contains(parts[2]), let owner = pid_t(parts[3]) {
                if ownerIsGone(owner), (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
                continue
            }
            let dir = path
            guard let text = try? String(contentsOfFile: dir + "/" + ownerFile, encoding: .utf8),
                  let owner = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
            guard ownerIsGone(owner) else { continue }   // its drill still runs
            let data = dir + "/data"
            if FileManager.default.fileExists(atPath: data + "/postmaster.pid"), let bin = bin ?? findBinaries() {
                let stop = [bin + "/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]
                _ = try? DrillProcess.run(getuid() == 0 ? ["runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", "/"] + stop : stop)
            }
            if (try? FileManager.default.removeItem(atPath: dir)) != nil { removed.append(dir) }
        }
        return removed
    }

    public var dataDirectory: String { directory + "/data" }
    public var logFile: String { directory + "/server.log" }

    /// Connection arguments for the client programs: the socket directory, port and superuser.
    public var connectionArguments: [String] { ["-h", directory, "-p", String(port), "-U", "postgres"] }

    /// Stops the server at once and removes the directory; safe to call twice.
    public func stop(keep: Bool = false) {
        if started {
            started = false
            _ = try? run([bin + "/pg_ctl", "-D", dataDirectory, "-m", "immediate", "-w", "stop"], asServer: true)
        }
        if !keep { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Runs a program (as the server's user when `asServer` and running as root) with its
    /// output captured; returns the exit status and stdout followed by stderr.
    func run(_ args: [String], asServer: Bool) throws -> (status: Int32, output: String) {
        let argv = asServer && runAs != nil ? ["runuser", "-u", runAs!, "--", "/usr/bin/env", "-C", "/"] + args : args
        return try DrillProcess.run(argv)
    }
}

/// Runs child programs for drills: output to a temporary file (never a pipe that a server it
/// starts could keep open), status and output back.
enum DrillProcess {
    /// Runs `argv` (argv[0] searched on PATH) with stdin from `stdin` (or /dev/null) and stdout
    /// and stderr to one temporary file; returns the status (128 + signal when killed) and
    /// what it printed.
    static func run(_ argv: [String], stdin: String = "/dev/null", environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let out = NSTemporaryDirectory() + "repo-drill-out-" + UUID().uuidString
        defer { unlink(out) }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let args: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) }; args.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(name), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, nil, args, envp)
        guard rc == 0 else {
            throw RepoError(.failure, "cannot run \(argv[0]): \(String(cString: strerror(rc)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw RepoError(.failure, "waiting for \(argv[0]): \(String(cString: strerror(errno)))") }
        }
        let signal = status & 0x7F
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return (signal == 0 ? (status >> 8) & 0xFF : 128 + signal, text)
    }
}
