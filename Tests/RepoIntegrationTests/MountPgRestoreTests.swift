import XCTest
import Foundation

/// A real reader that seeks: pg_restore on a custom-format (`pg_dump -Fc`) dump stored with
/// `repo store` and read straight from the mount. The test starts its own PostgreSQL server
/// (initdb + pg_ctl, as the `postgres` user when run as root) on a Unix socket in a temp dir.
final class MountPgRestoreTests: XCTestCase {
    /// A throwaway PostgreSQL cluster.
    final class Server {
        let bin: String
        let dir: String
        let port = String(Int.random(in: 20_000...60_000))
        private let asUser: String?

        init(bin: String) throws {
            self.bin = bin
            dir = "/tmp/repo-pg-" + UUID().uuidString.prefix(8)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            asUser = getuid() == 0 ? "postgres" : nil
            if asUser != nil { _ = MountTests.sh("chown", "postgres:", dir) }
            let initdb = run(bin + "/initdb", "-D", dir + "/data", "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8", "--locale=C")
            guard initdb.0 == 0 else { throw failure("initdb", initdb) }
            let start = run(bin + "/pg_ctl", "-D", dir + "/data", "-l", dir + "/log", "-w", "-t", "60",
                            "-o", "-k \(dir) -p \(port) -c listen_addresses= -F", "start", stdout: dir + "/pg_ctl.out")
            guard start.0 == 0 else { throw failure("pg_ctl start", start) }
        }

        func stop() {
            _ = run(bin + "/pg_ctl", "-D", dir + "/data", "-m", "immediate", "-w", "stop")
            try? FileManager.default.removeItem(atPath: dir)
        }

        /// Runs a server program, as `postgres` when we are root (the server refuses root).
        func run(_ args: String..., stdout: String? = nil) -> (Int32, Data, String) {
            let argv = asUser.map { ["runuser", "-u", $0, "--"] + args } ?? args
            return MountTests.sh(argv, stdout: stdout)
        }

        /// Runs a client program against this server.
        func client(_ args: [String], stdout: String? = nil) -> (Int32, Data, String) {
            MountTests.sh([args[0], "-h", dir, "-p", port, "-U", "postgres"] + args.dropFirst(), stdout: stdout)
        }

        private func failure(_ what: String, _ r: (Int32, Data, String)) -> Error {
            let log = (try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? ""
            return NSError(domain: "postgres", code: Int(r.0), userInfo: [NSLocalizedDescriptionKey: "\(what) failed (\(r.0)): \(r.2) \(log)"])
        }
    }

    static func postgresBin() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        return versions.map { root + "/" + $0 + "/bin" }.first {
            FileManager.default.isExecutableFile(atPath: $0 + "/initdb") && FileManager.default.isExecutableFile(atPath: $0 + "/pg_ctl")
        }
    }

    func testPgRestoreListAndTableFromTheMount() throws {
        try MountTests.requireFuse()
        guard let bin = Self.postgresBin(), FileManager.default.isExecutableFile(atPath: bin + "/pg_dump") else {
            throw MountTests.MissingRequirement(description: "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the Debian package postgresql (scripts/install-deps.sh does)")
        }
        let server = try Server(bin: bin)
        defer { server.stop() }
        let sql = """
            CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance numeric(12,2));
            INSERT INTO accounts SELECT g, md5(g::text) || md5((g * 7)::text), (g % 100000) / 100.0 FROM generate_series(1, 60000) g;
            CREATE TABLE events (id bigint, account bigint, payload text);
            INSERT INTO events SELECT g, g % 60000, repeat(md5(g::text), 4) FROM generate_series(1, 40000) g;
            CREATE TABLE tiny (k text PRIMARY KEY, v int);
            INSERT INTO tiny VALUES ('a', 1), ('b', 2), ('c', 3);
            """
        let created = server.client(["\(bin)/psql", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        XCTAssertEqual(created.0, 0, created.2)

        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "64K"])
        // Uncompressed custom format: a dump of several MB, so pg_restore seeks across many chunks.
        let dumpPath = fx.dir + "/db.dump"
        let dumped = server.client(["\(bin)/pg_dump", "-Fc", "-Z0", "-d", "postgres", "-f", dumpPath])
        XCTAssertEqual(dumped.0, 0, dumped.2)
        XCTAssertGreaterThan(MountTests.size(dumpPath), 4_000_000)
        try fx.store("db.dump", from: dumpPath)

        let m = try MountTests.Mounted(fx, test: self)
        let mounted = m.latest("db.dump") + "/db.dump"
        let listOriginal = MountTests.sh(bin + "/pg_restore", "-l", dumpPath)
        let listMounted = MountTests.sh(bin + "/pg_restore", "-l", mounted)
        XCTAssertEqual(listMounted.0, 0, listMounted.2)
        XCTAssertEqual(listMounted.1, listOriginal.1)
        XCTAssertTrue(String(decoding: listMounted.1, as: UTF8.self).contains("TABLE DATA public events"))
        // One table's data: pg_restore seeks to it through the TOC offsets.
        for table in ["tiny", "events", "accounts"] {
            let a = MountTests.sh(bin + "/pg_restore", "-t", table, "-f", "-", dumpPath)
            let b = MountTests.sh(bin + "/pg_restore", "-t", table, "-f", "-", mounted)
            XCTAssertEqual(b.0, 0, b.2)
            // pg_restore (15.14+) writes `\\restrict KEY` / `\\unrestrict KEY` with a random key per run.
            func stable(_ d: Data) -> [Substring] {
                String(decoding: d, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            }
            XCTAssertTrue(stable(a.1) == stable(b.1), "table \(table)")
            XCTAssertTrue(String(decoding: b.1, as: UTF8.self).contains("COPY public.\(table)"))
        }
        // And restore one table into a new database from the mount.
        XCTAssertEqual(server.client(["\(bin)/createdb", "restored"]).0, 0)
        let restored = server.client(["\(bin)/pg_restore", "-d", "restored", "-t", "tiny", mounted])
        XCTAssertEqual(restored.0, 0, restored.2)
        let rows = server.client(["\(bin)/psql", "-d", "restored", "-At", "-c", "SELECT string_agg(k || v, ',' ORDER BY k) FROM tiny"])
        XCTAssertEqual(String(decoding: rows.1, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), "a1,b2,c3")
        XCTAssertEqual(m.stop().status, 0)
    }
}
