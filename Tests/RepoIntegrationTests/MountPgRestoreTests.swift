import XCTest
import Foundation

/// A real reader that seeks: pg_restore on a custom-format (`pg_dump -Fc`) dump stored with
/// `repo store` and read straight from the mount, against a throwaway server (`PostgresServer`).
final class MountPgRestoreTests: XCTestCase {
    func testPgRestoreListAndTableFromTheMount() throws {
        try MountTests.requireFuse()
        let bin = try PostgresServer.requireBinaries()
        let server = try PostgresServer(bin: bin)
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
