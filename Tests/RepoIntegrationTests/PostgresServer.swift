import XCTest
import Foundation

/// A throwaway PostgreSQL cluster for tests: `initdb` and `pg_ctl` (as the `postgres` user when
/// the tests run as root, since the server refuses root) in a temp directory, listening only
/// on a Unix socket in that directory, on a random port. Removed by `stop()`.
final class PostgresServer {
    let bin: String
    let dir: String
    let port = String(Int.random(in: 20_000...60_000))
    /// The user that runs the server and its archive_command (nil: the test's own user).
    let asUser: String?
    var data: String { dir + "/data" }

    /// The newest PostgreSQL server binaries under /usr/lib/postgresql (Debian's layout).
    static func binaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        return versions.map { root + "/" + $0 + "/bin" }.first {
            FileManager.default.isExecutableFile(atPath: $0 + "/initdb") && FileManager.default.isExecutableFile(atPath: $0 + "/pg_ctl")
        }
    }

    /// `binaries()`, or an error saying what to install.
    static func requireBinaries() throws -> String {
        guard let bin = binaries(), FileManager.default.isExecutableFile(atPath: bin + "/pg_dump") else {
            throw MountTests.MissingRequirement(description: "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the Debian package postgresql (scripts/install-deps.sh does)")
        }
        return bin
    }

    /// Creates and starts a cluster.
    /// - Parameters:
    ///   - settings: lines appended to `postgresql.conf` before the start (`archive_mode = on`, …).
    ///   - environment: variables the server (and so its archive_command) gets.
    init(bin: String, settings: [String] = [], environment: [String: String] = [:]) throws {
        self.bin = bin
        dir = "/tmp/repo-pg-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        asUser = getuid() == 0 ? "postgres" : nil
        if asUser != nil {
            _ = MountTests.sh("chown", "postgres:", dir)
            Self.letOthersReach(Fixture.binary)
        }
        let initdb = run(bin + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8", "--locale=C")
        guard initdb.0 == 0 else { throw failure("initdb", initdb) }
        if !settings.isEmpty {
            let conf = try FileHandle(forWritingTo: URL(fileURLWithPath: data + "/postgresql.conf"))
            try conf.seekToEnd()
            try conf.write(contentsOf: Data(("\n" + settings.joined(separator: "\n") + "\n").utf8))
            try conf.close()
        }
        let env = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let start = run(["env"] + env + [bin + "/pg_ctl", "-D", data, "-l", dir + "/log", "-w", "-t", "60",
                                           "-o", options(port: port), "start"], stdout: dir + "/pg_ctl.out")
        guard start.0 == 0 else { throw failure("pg_ctl start", start) }
    }

    /// The server's user runs the binary under test (archive_command, restore_command): give
    /// every directory above it the search bit for others, which a checkout in a private
    /// directory (a CI workspace) may lack. Only as root, and only that bit.
    static func letOthersReach(_ path: String) {
        var dir = URL(fileURLWithPath: path).resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" {
            var st = stat()
            if stat(dir.path, &st) == 0, st.st_mode & S_IXOTH == 0 { chmod(dir.path, st.st_mode & 0o7777 | S_IXOTH) }
            dir = dir.deletingLastPathComponent()
        }
    }

    /// Server options for a cluster of this fixture on `port`: its socket in `dir`, no TCP.
    func options(port: String) -> String { "-k \(dir) -p \(port) -c listen_addresses= -F" }

    /// Stops every cluster under `dir` that runs and removes `dir`.
    func stop() {
        for sub in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            for candidate in [dir + "/" + sub] + ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/" + sub)) ?? []).map({ dir + "/" + sub + "/" + $0 })
            where FileManager.default.fileExists(atPath: candidate + "/postmaster.pid") {
                _ = run(bin + "/pg_ctl", "-D", candidate, "-m", "immediate", "-w", "stop")
            }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Runs a program as the server's user.
    func run(_ args: String..., stdout: String? = nil) -> (Int32, Data, String) { run(args, stdout: stdout) }

    func run(_ args: [String], stdout: String? = nil) -> (Int32, Data, String) {
        let argv = asUser.map { ["runuser", "-u", $0, "--"] + args } ?? args
        return MountTests.sh(argv, stdout: stdout)
    }

    /// Runs a client program against this server (or the cluster of this fixture on `port`).
    func client(_ args: [String], port: String? = nil, stdout: String? = nil) -> (Int32, Data, String) {
        MountTests.sh([args[0], "-h", dir, "-p", port ?? self.port, "-U", "postgres"] + args.dropFirst(), stdout: stdout)
    }

    /// The trimmed output of one SQL command (psql -At, stopping on the first error).
    func sql(_ command: String, port: String? = nil, database: String = "postgres", file: StaticString = #filePath, line: UInt = #line) -> String {
        let r = client(["\(bin)/psql", "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", command], port: port)
        XCTAssertEqual(r.0, 0, "psql -c \(command): \(r.2)", file: file, line: line)
        return String(decoding: r.1, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func failure(_ what: String, _ r: (Int32, Data, String)) -> Error {
        let log = (try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? ""
        return NSError(domain: "postgres", code: Int(r.0), userInfo: [NSLocalizedDescriptionKey: "\(what) failed (\(r.0)): \(r.2) \(log)"])
    }
}
