import XCTest
import Foundation

/// The local cache never changes an answer: a cache that cannot be written is replaced by a
/// temporary one, and a damaged one is rebuilt, never reported as a damaged repository.
final class CacheFaultTests: XCTestCase {
    var fx: Fixture!
    var a = Data(), b = Data()

    override func setUpWithError() throws {
        fx = Fixture()
        try fx.initRepo(["--chunk-avg", "64KiB"])
        a = TestData.random(1_500_000)
        b = TestData.random(1_000_000)
        _ = try fx.store("a", from: fx.file("a.bin", a))
        _ = try fx.store("b", from: fx.file("b.bin", b))
    }

    func testReadOnlyCacheStillAnswersWithTheNewestSnapshot() throws {
        // The cache knows the first snapshots; then it becomes read-only, and another host
        // (another cache) stores a newer one.
        XCTAssertEqual(try fx.shell("mount --bind '\(fx.cache)' '\(fx.cache)' && mount -o remount,bind,ro '\(fx.cache)'").status, 0,
                       "this test needs root to make a read-only bind mount")
        defer { _ = try? fx.shell("umount '\(fx.cache)'") }
        let newer = TestData.random(300_000)
        let other = try fx.run(["store", "--name", "a", "--cache-dir", fx.dir + "/other-cache"], stdinPath: fx.file("new.bin", newer))
        XCTAssertEqual(other.status, 0, other.stderr)

        let dump = try fx.run(["dump", "latest", "--name", "a"])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertEqual(dump.stdout, newer, "dump latest must return the newest snapshot")
        XCTAssertTrue(dump.stderr.contains("temporary cache"), dump.stderr)
        XCTAssertEqual(try fx.snapshots().count, 3)
        // Writing through a read-only cache works too.
        let again = try fx.run(["store", "--name", "c"], stdinPath: fx.file("c.bin", TestData.random(10_000)))
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try fx.snapshots().count, 4)
    }

    /// The catalog file damaged in many ways (bit flips, truncation, wrong rows): every dump
    /// returns the right bytes with exit 0, and check stays clean.
    func testDamagedCatalogIsRebuiltNeverBlamedOnTheRepository() throws {
        let catalogs = try FileManager.default.contentsOfDirectory(atPath: fx.cache)
        XCTAssertEqual(catalogs.count, 1)
        let db = fx.cache + "/" + catalogs[0] + "/catalog.sqlite"
        // Fold the write-ahead log into the file, so the damage hits the catalog's contents.
        XCTAssertEqual(try fx.shell("python3 -c \"import sqlite3; sqlite3.connect('\(db)').execute('PRAGMA wal_checkpoint(TRUNCATE)')\"").status, 0)
        let good = fx.dir + "/catalog.good"
        try FileManager.default.copyItem(atPath: db, toPath: good)
        let damage = [
            "import sys; p=sys.argv[1]; d=open(p,'rb').read(); open(p,'wb').write(d[:-1])",
            "import sys; p=sys.argv[1]; d=open(p,'rb').read(); open(p,'wb').write(d[:len(d)//2])",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE blobs SET length = length - 1'); c.commit()",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE blobs SET offset = offset + 16'); c.commit()",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM blobs WHERE type = 0'); c.commit()",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE packs SET name = randomblob(32)'); c.commit()",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE snapshots SET body = replace(body, '\\\"a\\\"', '\\\"b\\\"')\"); c.commit()",
        ] + (0..<12).map { seed in
            "import sys,random; p=sys.argv[1]; r=random.Random(\(seed)); d=bytearray(open(p,'rb').read()); k=r.randrange(len(d)); d[k]^=1<<r.randrange(8); open(p,'wb').write(bytes(d))"
        }
        for (i, script) in damage.enumerated() {
            for suffix in ["-wal", "-shm", "-filter"] { try? FileManager.default.removeItem(atPath: db + suffix) }
            try? FileManager.default.removeItem(atPath: db)
            try FileManager.default.copyItem(atPath: good, toPath: db)
            try script.write(toFile: fx.dir + "/damage.py", atomically: true, encoding: .utf8)
            XCTAssertEqual(try fx.shell("python3 '\(fx.dir)/damage.py' '\(db)'").status, 0, "damage \(i)")
            for (name, want) in [("a", a), ("b", b)] {
                let r = try fx.run(["dump", "latest", "--name", name])
                XCTAssertEqual(r.status, 0, "damage \(i), dump \(name): \(r.stderr)")
                XCTAssertEqual(r.stdout, want, "damage \(i), dump \(name): wrong bytes")
            }
        }
        let check = try fx.run(["check"])
        XCTAssertEqual(check.status, 0, check.stderr)
    }
}

/// `latest` is never answered with an older snapshot because the newest cannot be read.
final class DamagedSnapshotTests: XCTestCase {
    func testLatestRefusesWhenASnapshotIsDamaged() throws {
        let fx = Fixture()
        try fx.initRepo()
        _ = try fx.store("db.sql", from: fx.file("day1", Data("day1\n".utf8)), extra: ["--time", "2026-11-01T00:00:00Z"])
        let newest = try fx.store("db.sql", from: fx.file("day2", Data("day2\n".utf8)))["id"] as! String
        let object = fx.repo + "/snapshots/" + newest
        var bytes = FileManager.default.contents(atPath: object)!
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: object))
        try FileManager.default.removeItem(atPath: fx.cache)
        let latest = try fx.run(["dump", "latest", "--name", "db.sql"])
        XCTAssertEqual(latest.status, 13, latest.stderr)
        XCTAssertEqual(latest.stdout, Data(), "dump latest must not write the older snapshot")
        let byID = try fx.run(["dump", newest])
        XCTAssertEqual(byID.status, 13, byID.stderr)
        XCTAssertTrue(byID.stderr.contains("damaged"), byID.stderr)
    }
}

/// A damaged config of our repository is damage (13), not "another tool's repository" (10).
final class DamagedConfigTests: XCTestCase {
    func testFlippedConfigByteIsDamageNotAnotherTool() throws {
        let fx = Fixture()
        try fx.initRepo()
        var config = FileManager.default.contents(atPath: fx.repo + "/config")!
        config[0] ^= 0x40
        try config.write(to: URL(fileURLWithPath: fx.repo + "/config"))
        let r = try fx.run(["snapshots"])
        XCTAssertEqual(r.status, 13, r.stderr)
        XCTAssertTrue(r.stderr.contains("damaged"), r.stderr)
    }
}

/// A pack that vanished from the repository is not deduplicated against: the next store of
/// the same data stores it again, so the new snapshot restores.
final class MissingPackTests: XCTestCase {
    func testStoreAfterAPackVanishedIsRestorable() throws {
        let fx = Fixture()
        try fx.initRepo(["--chunk-avg", "64KiB"])
        let data = TestData.random(2_000_000)
        let input = fx.file("data.bin", data)
        _ = try fx.store("db.bin", from: input)
        for pack in fx.packFiles() where ((try? FileManager.default.attributesOfItem(atPath: pack)[.size] as? Int) ?? 0) > 500_000 {
            try FileManager.default.removeItem(atPath: pack)
        }
        let again = try fx.run(["store", "--name", "db.bin", "--json"], stdinPath: input)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("missing"), again.stderr)
        let id = (try JSONSerialization.jsonObject(with: again.stdout) as? [String: Any])?["id"] as? String ?? ""
        let dump = try fx.run(["dump", id])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertTrue(dump.stdout == data, "the new snapshot does not restore")
    }
}
