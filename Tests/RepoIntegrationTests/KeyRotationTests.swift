import XCTest
import Foundation
import RepoTestSupport

/// `repo key rotate` through the real binary (README, "Keys"; FORMAT.md §7.6): slots carried or
/// revoked, every object re-encrypted, kill -9 anywhere and resumed, and the old master key
/// opening nothing afterwards.
final class KeyRotationTests: XCTestCase {
    func json(_ r: CLIResult) throws -> Any { try JSONSerialization.jsonObject(with: r.stdout) }

    func passwordFile(_ fx: Fixture, _ password: String) -> String {
        fx.file("pw-" + UUID().uuidString, Data((password + "\n").utf8))
    }

    /// Every object of the repository except `config`, `reserve` and key slots: name → bytes.
    func objects(_ fx: Fixture) -> [String: Data] {
        var all: [String: Data] = [:]
        let root = URL(fileURLWithPath: fx.repo)
        let walker = FileManager.default.enumerator(atPath: fx.repo)
        while let path = walker?.nextObject() as? String {
            guard !path.hasPrefix("keys"), !path.hasPrefix("locks"), path != "config", path != "reserve",
                  let data = FileManager.default.contents(atPath: root.appendingPathComponent(path).path),
                  !((try? FileManager.default.attributesOfItem(atPath: root.appendingPathComponent(path).path)[.type] as? FileAttributeType) == .typeDirectory)
            else { continue }
            all[path] = data
        }
        return all
    }

    /// A copy of the repository whose `keys/` is `oldKeys` (someone who kept the old slots and
    /// their secrets), for proving what the old master key still opens.
    func repositoryWithOldSlots(_ fx: Fixture, oldKeys: String) throws -> String {
        let copy = fx.dir + "/with-old-slots"
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: fx.repo, toPath: copy)
        try FileManager.default.removeItem(atPath: copy + "/keys")
        try FileManager.default.copyItem(atPath: oldKeys, toPath: copy + "/keys")
        return copy
    }

    func slotList(_ fx: Fixture) throws -> [[String: Any]] {
        let r = try fx.run(["key", "list", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try json(r) as? [[String: Any]] ?? []
    }

    func testRotationCarriesSlotsReencryptsEverythingAndRetiresTheOldKey() throws {
        let fx = Fixture()
        try fx.initRepo()
        // Data of every kind: two streams, a tree, a pin, a policy, a check record, WAL.
        let random = TestData.random(3_000_000), sql = TestData.sqlDump(bytes: 400_000)
        let a = try XCTUnwrap(try fx.store("a", from: fx.file("a.bin", random))["id"] as? String)
        let b = try XCTUnwrap(try fx.store("db.sql", from: fx.file("db.sql", sql))["id"] as? String)
        let tree = fx.dir + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/sub", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: tree + "/sub/f", contents: TestData.random(70_000))
        try fx.ok(["backup", tree])
        try fx.ok(["pin", a, "--reason", "audit"])
        try fx.ok(["policy", "set", "--keep-last", "5"])
        try fx.ok(["check"])
        let walDir = fx.dir + "/pg_wal"
        try FileManager.default.createDirectory(atPath: walDir, withIntermediateDirectories: true)
        let segmentName = "000000010000000000000003"
        let segment = Data(WALArchiveTests.segment(3))
        FileManager.default.createFile(atPath: walDir + "/" + segmentName, contents: segment)
        try fx.ok(["wal-push", walDir + "/" + segmentName])

        // Three more ways in: a second password, a key file, a KMS slot through the example program.
        let second = passwordFile(fx, "second admin")
        try fx.ok(["key", "add", "--new-password-file", second])
        let keyFile = fx.dir + "/host.key"
        try fx.ok(["key", "add", "--new-key-file", keyFile])
        let kmsKeys = fx.dir + "/kms-keys"
        try FileManager.default.createDirectory(atPath: kmsKeys, withIntermediateDirectories: true)
        _ = fx.file("kms-keys/k1.key", Data(TestData.random(32).base64EncodedString().utf8))
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/kms-command-example.sh").path
        let kmsEnv = ["REPO_EXAMPLE_KMS_DIR": kmsKeys, "REPO_KMS_COMMAND": "sh \(script)"]
        let addKMS = try fx.run(["key", "add", "--kms-key-id", "k1"], env: kmsEnv)
        XCTAssertEqual(addKMS.status, 0, addKMS.stderr)

        let before = objects(fx)
        let slotsBefore = try slotList(fx)
        XCTAssertEqual(slotsBefore.count, 4)
        let oldKeys = fx.dir + "/old-keys"
        try FileManager.default.copyItem(atPath: fx.repo + "/keys", toPath: oldKeys)

        let rotate = try fx.run(["key", "rotate", "--settle-time", "0", "--carry-password-file", second, "--carry-key-file", keyFile,
                                 "--carry-kms", "--json"], env: kmsEnv)
        XCTAssertEqual(rotate.status, 0, rotate.stderr)
        let report = try XCTUnwrap(try json(rotate) as? [String: Any])
        XCTAssertEqual((report["carried"] as? [String])?.count, 4, rotate.out)
        XCTAssertEqual((report["revoked"] as? [String])?.count, 0, rotate.out)
        let master = try XCTUnwrap(report["master"] as? String)

        // Four slots, all of the new key, none a transition slot; every credential still opens.
        let slots = try slotList(fx)
        XCTAssertEqual(slots.count, 4)
        XCTAssertEqual(Set(slots.compactMap { $0["master"] as? String }), [master])
        XCTAssertTrue(slots.allSatisfy { $0["transition"] as? Bool == false })
        XCTAssertTrue(Set(slots.compactMap { $0["id"] as? String }).isDisjoint(with: slotsBefore.compactMap { $0["id"] as? String }))
        XCTAssertEqual(try fx.run(["snapshots", "--password-file", second]).status, 0)
        XCTAssertEqual(try fx.run(["snapshots", "--key-file", keyFile]).status, 0)
        let viaKMS = try fx.run(["snapshots", "--kms"], env: kmsEnv, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(viaKMS.status, 0, viaKMS.stderr)

        // Not one object kept its bytes; the data reads back whole.
        let after = objects(fx)
        for (name, data) in after { XCTAssertNotEqual(before.values.contains(data), true, "\(name) was not re-encrypted") }
        let checked = try fx.run(["check", "--read-data"])
        XCTAssertEqual(checked.status, 0, checked.stderr + checked.out)
        let snapshots = try fx.snapshots()
        XCTAssertEqual(snapshots.count, 3)
        let ids = Set(snapshots.compactMap { $0["id"] as? String })
        XCTAssertFalse(ids.contains(a) || ids.contains(b), "snapshot ids change with their bytes")
        let newA = try XCTUnwrap(snapshots.first { ($0["name"] as? String) == "a" }?["id"] as? String)
        let newB = try XCTUnwrap(snapshots.first { ($0["name"] as? String) == "db.sql" }?["id"] as? String)
        XCTAssertTrue(try fx.run(["dump", newA]).stdout == random)
        XCTAssertTrue(try fx.run(["dump", newB]).stdout == sql)
        let pins = try fx.run(["pin"])
        XCTAssertTrue(pins.out.contains(String(newA.prefix(8))) && pins.out.contains("audit"), "the pin follows its snapshot: " + pins.out)
        let fetched = fx.dir + "/fetched"
        try fx.ok(["wal-fetch", segmentName, fetched])
        XCTAssertTrue(FileManager.default.contents(atPath: fetched) == segment)

        // Whoever kept an old slot and its password: that master key opens nothing any more.
        let stale = try repositoryWithOldSlots(fx, oldKeys: oldKeys)
        let env = ["REPO_REPOSITORY": stale, "REPO_CACHE_DIR": fx.dir + "/stale-cache"]
        let listed = try fx.run(["snapshots", "--json"], env: env)
        XCTAssertEqual((try json(listed) as? [Any])?.count, 0, listed.stderr)
        // The copy still has the new slots too: the opener is told its slot is a retired key's.
        let mixed = fx.dir + "/mixed-slots"
        try FileManager.default.copyItem(atPath: fx.repo, toPath: mixed)
        for slot in try FileManager.default.contentsOfDirectory(atPath: oldKeys) {
            try FileManager.default.copyItem(atPath: oldKeys + "/" + slot, toPath: mixed + "/keys/" + slot)
        }
        // Only the old slot of the second password is left for it to open.
        let secondsSlots = try JSONSerialization.jsonObject(with: try fx.ok(["key", "list", "--json", "--password-file", second]).stdout) as? [[String: Any]] ?? []
        let current = try XCTUnwrap(secondsSlots.first { $0["current"] as? Bool == true }?["id"] as? String)
        try FileManager.default.removeItem(atPath: mixed + "/keys/" + current)
        let warned = try fx.run(["snapshots", "--password-file", second],
                                env: ["REPO_REPOSITORY": mixed, "REPO_CACHE_DIR": fx.dir + "/mixed-cache"])
        XCTAssertTrue(warned.stderr.contains("`repo key rotate` retired"), warned.stderr)
        let fine = try fx.run(["snapshots"], env: ["REPO_REPOSITORY": mixed, "REPO_CACHE_DIR": fx.dir + "/mixed-cache-2"])
        XCTAssertEqual(fine.status, 0, fine.stderr)
        XCTAssertTrue(fine.stderr.contains("different master keys"), "a current slot is told too: " + fine.stderr)
        XCTAssertFalse(try fx.run(["snapshots"]).stderr.contains("master keys"), "no notice on the rotated repository itself")
        let staleCheck = try fx.run(["check"], env: env)
        XCTAssertEqual(staleCheck.status, 13, staleCheck.stderr)
        XCTAssertTrue(staleCheck.out.contains("authentication failed"), staleCheck.out)
        XCTAssertNotEqual(try fx.run(["wal-fetch", segmentName, fx.dir + "/stale-wal"], env: env).status, 0)

        // Another rotation starts afresh from the finished one.
        let again = try fx.run(["key", "rotate", "--settle-time", "0", "--revoke-others"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.out.contains("rotation begun"), again.out)
        XCTAssertEqual(try slotList(fx).count, 1)
        XCTAssertEqual(try fx.run(["check", "--read-data"]).status, 0)
    }

    func testOtherSlotsAreRevokedOnlyWhenAsked() throws {
        let fx = Fixture()
        try fx.initRepo()
        let data = TestData.random(200_000)
        _ = try fx.store("x", from: fx.file("x", data))
        let second = passwordFile(fx, "second admin")
        try fx.ok(["key", "add", "--new-password-file", second])
        let keys = try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/keys").sorted()

        let refused = try fx.run(["key", "rotate", "--settle-time", "0"])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("would stop working") && refused.stderr.contains("--revoke-others"), refused.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/keys").sorted(), keys, "nothing changed")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/locks"), [], "its lock was released")

        // A password to carry that opens nothing is a wrong password (exit 12), again before
        // any change.
        let wrong = try fx.run(["key", "rotate", "--settle-time", "0", "--carry-password-file", passwordFile(fx, "nobody")])
        XCTAssertEqual(wrong.status, 12, wrong.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/keys").sorted(), keys)

        // It waits out --settle-time (here 12 s) after the start before it retires the old key,
        // without holding the lock: other commands work meanwhile.
        let started = Date()
        let rotation = try fx.start(["key", "rotate", "--settle-time", "0.2", "--revoke-others"])
        var waiting = false
        for _ in 0..<400 where !waiting {
            usleep(50_000)
            waiting = (try? String(contentsOfFile: rotation.2, encoding: .utf8))?.contains("waiting") == true
        }
        XCTAssertTrue(waiting, "the rotation says it waits")
        let during = try fx.run(["dump", "latest"])
        XCTAssertEqual(during.status, 0, "a restore does not wait for the rotation's settle time: " + during.stderr)
        XCTAssertTrue(during.stdout == data)
        let revoked = fx.collect(rotation)
        XCTAssertEqual(revoked.status, 0, revoked.stderr)
        XCTAssertTrue(revoked.out.contains("revoked key slot"), revoked.out)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 11.5)
        let old = try fx.run(["snapshots", "--password-file", second])
        XCTAssertEqual(old.status, 12, old.stderr)
        XCTAssertEqual(try fx.snapshots().count, 1)
    }

    /// A damaged snapshot opens under no key: the rotation finishes everything else, leaves it
    /// as it was, and exits 13 naming it, as check does.
    func testDamagedObjectIsLeftAndReportedWith13() throws {
        let fx = Fixture()
        try fx.initRepo()
        let good = TestData.random(300_000)
        _ = try fx.store("good", from: fx.file("g", good))
        let bad = try XCTUnwrap(try fx.store("bad", from: fx.file("b", TestData.random(300_000)))["id"] as? String)
        let path = fx.repo + "/snapshots/" + bad
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        bytes[60] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        let r = try fx.run(["key", "rotate", "--settle-time", "0"])
        XCTAssertEqual(r.status, 13, r.stderr)
        XCTAssertTrue(r.stderr.contains(bad) && r.out.contains("rotation finished"), r.out + r.stderr)
        let snapshots = try fx.snapshots()
        XCTAssertEqual(snapshots.count, 1)
        XCTAssertTrue(try fx.run(["dump", try XCTUnwrap(snapshots.first?["id"] as? String)]).stdout == good)
        XCTAssertEqual(try slotList(fx).filter { $0["transition"] as? Bool == true }.count, 0, "the rotation itself finished")
    }

    /// A KMS slot whose key is gone cannot be carried: like a slot without a credential it is
    /// named (with the service's reason) and revoked only with --revoke-others; the others carry.
    func testDeadKMSKeyIsRevokedNotFatal() throws {
        let fx = Fixture()
        try fx.initRepo()
        _ = try fx.store("x", from: fx.file("x", TestData.random(200_000)))
        let kmsKeys = fx.dir + "/kms-keys"
        try FileManager.default.createDirectory(atPath: kmsKeys, withIntermediateDirectories: true)
        for k in ["k1", "k2"] { _ = fx.file("kms-keys/\(k).key", Data(TestData.random(32).base64EncodedString().utf8)) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/kms-command-example.sh").path
        let env = ["REPO_EXAMPLE_KMS_DIR": kmsKeys, "REPO_KMS_COMMAND": "sh \(script)"]
        for k in ["k1", "k2"] { XCTAssertEqual(try fx.run(["key", "add", "--kms-key-id", k], env: env).status, 0) }
        try FileManager.default.removeItem(atPath: kmsKeys + "/k2.key")

        let refused = try fx.run(["key", "rotate", "--settle-time", "0", "--carry-kms"], env: env)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("would stop working") && refused.stderr.contains("no key \"k2\""), refused.stderr)
        let rotated = try fx.run(["key", "rotate", "--settle-time", "0", "--carry-kms", "--revoke-others", "--json"], env: env)
        XCTAssertEqual(rotated.status, 0, rotated.stderr)
        let report = try XCTUnwrap(try json(rotated) as? [String: Any])
        XCTAssertEqual((report["carried"] as? [String])?.count, 2, "the password's and k1's: \(report)")
        XCTAssertEqual((report["revoked"] as? [String])?.count, 1, "k2's: \(report)")
        let viaKMS = try fx.run(["snapshots", "--kms"], env: env, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(viaKMS.status, 0, viaKMS.stderr)
    }

    /// Killed while dropping the transition slots: the next run only finishes that, and starts
    /// no second rotation.
    func testKilledWhileFinishingIsFinishedNotRestarted() throws {
        let fx = Fixture()
        try fx.initRepo()
        let data = TestData.random(300_000)
        _ = try fx.store("x", from: fx.file("x", data))
        let second = passwordFile(fx, "second admin")
        try fx.ok(["key", "add", "--new-password-file", second])
        let killed = try fx.run(["key", "rotate", "--settle-time", "0", "--carry-password-file", second],
                                env: ["REPO_TEST_ROTATE_KILL_AT_LABEL": "transition slot deleted"])
        XCTAssertEqual(killed.status, 128 + SIGKILL, killed.stderr)
        let midway = try slotList(fx)
        XCTAssertEqual(midway.filter { $0["transition"] as? Bool == true }.count, 1, "\(midway)")
        let master = try XCTUnwrap(midway.first?["master"] as? String)
        XCTAssertEqual(try fx.run(["snapshots", "--password-file", second]).status, 0)

        let again = try fx.run(["key", "rotate", "--settle-time", "0", "--password-file", second, "--carry-password-file", passwordFile(fx, fx.password)])
        XCTAssertEqual(again.status, 0, again.stderr)
        // Whichever password's transition slot is left, the run finishes this rotation.
        XCTAssertTrue(again.out.contains("only had its transition slots left") || again.out.contains("resuming the rotation"), again.out)
        let after = try slotList(fx)
        XCTAssertEqual(after.count, 2)
        XCTAssertEqual(Set(after.compactMap { $0["master"] as? String }), [master], "no second rotation")
        XCTAssertTrue(after.allSatisfy { $0["transition"] as? Bool == false })
        XCTAssertEqual(try fx.run(["check", "--read-data"]).status, 0)
    }

    /// kill -9 at random points of a rotation: after each, the repository checks clean and
    /// restores every snapshot; new data written meanwhile is kept; running it again finishes.
    func testKillNineAnywhereThenResume() throws {
        let fx = Fixture()
        try fx.initRepo()
        // 1 MiB packs, so the pass has many packs and rounds to be killed in.
        let configPath = fx.repo + "/config"
        var config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])
        config["packSize"] = 1 << 20
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        var expected: [String: Data] = [:]
        for i in 0..<3 {
            let data = TestData.random(1_500_000 + i * 100_000)
            let id = try XCTUnwrap(try fx.store("s\(i)", from: fx.file("s\(i)", data))["id"] as? String)
            expected["s\(i)"] = data
            _ = id
        }
        let oldKeys = fx.dir + "/old-keys"
        try FileManager.default.copyItem(atPath: fx.repo + "/keys", toPath: oldKeys)

        func verify(_ when: String) throws {
            let checked = try fx.run(["check", "--read-data"])
            XCTAssertEqual(checked.status, 0, "\(when): " + checked.stderr + checked.out)
            let snapshots = try fx.snapshots()
            // A kill between writing a snapshot's re-sealed copy and deleting the original
            // lists that one snapshot twice (FORMAT.md §7.6), never a different one.
            XCTAssertEqual(Set(snapshots.compactMap { $0["name"] as? String }), Set(expected.keys), when)
            XCTAssertTrue(snapshots.count == expected.count || snapshots.count == expected.count + 1, "\(when): \(snapshots.count) snapshots")
            for s in snapshots {
                let name = try XCTUnwrap(s["name"] as? String)
                let id = try XCTUnwrap(s["id"] as? String)
                XCTAssertTrue(try fx.run(["dump", id]).stdout == expected[name], "\(when): \(name) reads back")
            }
        }

        // Killed right after the slots changed: slots may not change now, and new data goes
        // under the new key at once.
        let begun = try fx.run(["key", "rotate", "--settle-time", "0"], env: ["REPO_TEST_ROTATE_KILL_AFTER_BEGIN": "1"])
        XCTAssertEqual(begun.status, 128 + SIGKILL, begun.stderr)
        try verify("after the slots changed")
        let add = try fx.run(["key", "add", "--new-password-file", passwordFile(fx, "late")])
        XCTAssertEqual(add.status, 1, add.stderr)
        XCTAssertTrue(add.stderr.contains("rotation"), add.stderr)
        // Opened with an old slot put back (or not yet deleted), slots may not change either.
        let planted = try FileManager.default.contentsOfDirectory(atPath: oldKeys)[0]
        try FileManager.default.copyItem(atPath: oldKeys + "/" + planted, toPath: fx.repo + "/keys/" + planted)
        let viaOld = try fx.run(["key", "add", "--new-password-file", passwordFile(fx, "late")],
                                env: ["REPO_REPOSITORY": fx.repo])
        XCTAssertEqual(viaOld.status, 1, viaOld.stderr)
        XCTAssertTrue(viaOld.stderr.contains("rotation"), viaOld.stderr)
        try FileManager.default.removeItem(atPath: fx.repo + "/keys/" + planted)
        let status = try fx.run(["status", "--json"])
        XCTAssertNotNil((try json(status) as? [String: Any])?["key_rotation_started"] as? String, status.out)
        XCTAssertTrue(try fx.run(["status"]).out.contains("key rotation under way"))
        let late = TestData.random(800_000)
        _ = try fx.store("late", from: fx.file("late", late))
        expected["late"] = late

        var seed = UInt64(ProcessInfo.processInfo.environment["REPO_TEST_SEED"] ?? "") ?? UInt64(Date().timeIntervalSince1970)
        print("KeyRotationTests: kill points from seed \(seed) (REPO_TEST_SEED to repeat)")
        var finished = false
        for attempt in 0..<60 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let killAt = Int(seed >> 33) % 14 + 1
            let r = try fx.run(["key", "rotate", "--settle-time", "0"], env: ["REPO_TEST_ROTATE_KILL_AT": String(killAt),
                                                                               "REPO_TEST_ROTATE_ROUND_BYTES": "1"])
            if r.status == 0 { finished = true; break }
            XCTAssertEqual(r.status, 128 + SIGKILL, "attempt \(attempt) (kill at step \(killAt)): " + r.stderr)
            try verify("killed at step \(killAt) of attempt \(attempt)")
        }
        XCTAssertTrue(finished, "the rotation finishes within 60 interrupted runs")
        try verify("after the rotation")
        XCTAssertEqual(try fx.snapshots().count, expected.count, "no snapshot is listed twice once the rotation finished")
        // A resumed run adopts the copies a killed one made instead of copying again: no pack
        // is left over for prune.
        let dry = try fx.run(["prune", "--dry-run", "--json", "--safety-margin", "0"])
        let plan = try XCTUnwrap(try json(dry) as? [String: Any], dry.stderr)
        XCTAssertEqual(plan["packs_deleted"] as? Int, 0, "\(plan)")
        XCTAssertEqual(try slotList(fx).filter { $0["transition"] as? Bool == true }.count, 0)
        XCTAssertTrue((try json(try fx.run(["status", "--json"])) as? [String: Any])?["key_rotation_started"] is NSNull)

        let stale = try repositoryWithOldSlots(fx, oldKeys: oldKeys)
        let env = ["REPO_REPOSITORY": stale, "REPO_CACHE_DIR": fx.dir + "/stale-cache"]
        let staleCheck = try fx.run(["check"], env: env)
        XCTAssertEqual(staleCheck.status, 13, staleCheck.stderr)
        XCTAssertEqual((try json(try fx.run(["snapshots", "--json"], env: env)) as? [Any])?.count, 0)
    }
}

/// `repo key rotate` on a real S3 server (radosgw on loopback): WAL objects re-sealed in place,
/// a kill mid-pass resumed.
final class KeyRotationS3Tests: XCTestCase {
    static let s3 = SharedS3Server()
    override class func setUp() { super.setUp(); s3.start() }
    override class func tearDown() { s3.stop(); super.tearDown() }

    func testRotateOnS3KilledAndResumed() throws {
        let server = try Self.s3.get()
        let fx = Fixture()
        fx.location = server.location(bucket: S3TestServer.uniqueBucket(), prefix: "repo")
        fx.extraEnvironment = server.environment
        try fx.initRepo()
        let data = TestData.random(2_500_000), sql = TestData.sqlDump(bytes: 300_000)
        _ = try fx.store("a", from: fx.file("a", data))
        _ = try fx.store("db.sql", from: fx.file("db.sql", sql))
        let walDir = fx.dir + "/pg_wal"
        try FileManager.default.createDirectory(atPath: walDir, withIntermediateDirectories: true)
        let segmentName = "000000010000000000000005"
        let segment = Data(WALArchiveTests.segment(5))
        FileManager.default.createFile(atPath: walDir + "/" + segmentName, contents: segment)
        try fx.ok(["wal-push", walDir + "/" + segmentName])
        let keyFile = fx.dir + "/host.key"
        try fx.ok(["key", "add", "--new-key-file", keyFile])

        let killed = try fx.run(["key", "rotate", "--settle-time", "0", "--carry-key-file", keyFile],
                                env: ["REPO_TEST_ROTATE_KILL_AT": "2", "REPO_TEST_ROTATE_ROUND_BYTES": "1"])
        XCTAssertEqual(killed.status, 128 + SIGKILL, killed.stderr)
        // Mid-rotation the WAL host (key file) keeps archiving, under the new key.
        let next = "000000010000000000000006"
        FileManager.default.createFile(atPath: walDir + "/" + next, contents: Data(WALArchiveTests.segment(6)))
        let pushed = try fx.run(["wal-push", walDir + "/" + next, "--key-file", keyFile], unset: ["REPO_PASSWORD"])
        XCTAssertEqual(pushed.status, 0, pushed.stderr)

        let resumed = try fx.run(["key", "rotate", "--settle-time", "0", "--carry-key-file", keyFile])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.out.contains("resuming"), resumed.out)
        let checked = try fx.run(["check", "--read-data"])
        XCTAssertEqual(checked.status, 0, checked.stderr + checked.out)
        let snapshots = try fx.snapshots()
        XCTAssertEqual(snapshots.count, 2)
        for s in snapshots {
            let id = try XCTUnwrap(s["id"] as? String)
            XCTAssertTrue(try fx.run(["dump", id]).stdout == ((s["name"] as? String) == "a" ? data : sql))
        }
        for (name, bytes) in [(segmentName, segment), (next, Data(WALArchiveTests.segment(6)))] {
            let out = fx.dir + "/fetched-" + name
            let fetched = try fx.run(["wal-fetch", name, out, "--key-file", keyFile], unset: ["REPO_PASSWORD"])
            XCTAssertEqual(fetched.status, 0, fetched.stderr)
            XCTAssertTrue(FileManager.default.contents(atPath: out) == bytes, name)
        }
        let slots = try JSONSerialization.jsonObject(with: try fx.ok(["key", "list", "--json"]).stdout) as? [[String: Any]] ?? []
        XCTAssertEqual(slots.count, 2)
        XCTAssertEqual(Set(slots.compactMap { $0["master"] as? String }).count, 1)
        XCTAssertTrue(slots.allSatisfy { $0["transition"] as? Bool == false })
    }
}
