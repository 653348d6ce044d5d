import XCTest
import Foundation

/// `repo key list|add|remove|passwd` and machine key files (`--key-file`, REPO_KEY_FILE)
/// through the real binary (README, "Keys"; FORMAT.md §7).
final class KeyTests: XCTestCase {
    /// `repo key list --json`.
    func slots(_ fx: Fixture, _ extra: [String] = [], env: [String: String] = [:], unset: [String] = [],
               file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let r = try fx.run(["key", "list", "--json"] + extra, env: env, unset: unset)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return try JSONSerialization.jsonObject(with: r.stdout) as? [[String: Any]] ?? []
    }

    /// A password file holding `password` on its first line.
    func passwordFile(_ fx: Fixture, _ password: String) -> String {
        fx.file("pw-" + UUID().uuidString, Data((password + "\n").utf8))
    }

    /// `repo key add --new-key-file PATH --json`; returns the new slot's id.
    func addKeyFile(_ fx: Fixture, _ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try fx.run(["key", "add", "--new-key-file", path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        let out = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] ?? [:]
        XCTAssertEqual(out["kind"] as? String, "keyfile", file: file, line: line)
        return try XCTUnwrap(out["id"] as? String, file: file, line: line)
    }

    func testAddListRemoveRoundTrip() throws {
        let fx = Fixture()
        try fx.initRepo()
        let first = try slots(fx)
        XCTAssertEqual(first.count, 1)
        XCTAssertEqual(first[0]["current"] as? Bool, true)
        let original = try XCTUnwrap(first[0]["id"] as? String)

        let second = passwordFile(fx, "second password")
        let add = try fx.run(["key", "add", "--new-password-file", second])
        XCTAssertEqual(add.status, 0, add.stderr)
        XCTAssertTrue(add.out.contains("added key slot"), add.out)
        let both = try slots(fx)
        XCTAssertEqual(both.count, 2)
        XCTAssertEqual(both.filter { $0["current"] as? Bool == true }.map { $0["id"] as? String }, [original])
        let added = try XCTUnwrap(both.first { $0["id"] as? String != original }?["id"] as? String)

        // The new password opens the repository, and `list` then marks its slot.
        let viaSecond = try slots(fx, ["--password-file", second])
        XCTAssertEqual(viaSecond.filter { $0["current"] as? Bool == true }.map { $0["id"] as? String }, [added])
        let table = try fx.run(["key", "list", "--password-file", second])
        XCTAssertTrue(table.out.contains("* " + added.prefix(8)), table.out)

        // Removed by a unique prefix: the second password stops working, the first still works.
        let remove = try fx.run(["key", "remove", String(added.prefix(10))])
        XCTAssertEqual(remove.status, 0, remove.stderr)
        XCTAssertTrue(remove.out.contains(added), remove.out)
        let wrong = try fx.run(["snapshots", "--password-file", second])
        XCTAssertEqual(wrong.status, 12, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("wrong password"), wrong.stderr)
        XCTAssertEqual(try slots(fx).compactMap { $0["id"] as? String }, [original])
        XCTAssertEqual(try fx.run(["key", "remove", "0123abcd"]).status, 1)
        XCTAssertEqual(try fx.run(["key", "remove", "not-hex"]).status, 2)
    }

    func testPasswdReplacesThePasswordThatOpenedIt() throws {
        let fx = Fixture()
        try fx.initRepo()
        let other = passwordFile(fx, "another admin")
        try fx.ok(["key", "add", "--new-password-file", other])
        let data = TestData.sqlDump(bytes: 50_000)
        let id = try XCTUnwrap(try fx.store("db.sql", from: fx.file("in", data))["id"] as? String)

        let newPassword = passwordFile(fx, "a new password")
        let passwd = try fx.run(["key", "passwd", "--new-password-file", newPassword])
        XCTAssertEqual(passwd.status, 0, passwd.stderr)
        XCTAssertTrue(passwd.out.contains("password changed"), passwd.out)

        let old = try fx.run(["snapshots"])   // REPO_PASSWORD: the old password
        XCTAssertEqual(old.status, 12, old.stderr)
        XCTAssertTrue(old.stderr.contains("wrong password"), old.stderr)
        let dumped = try fx.run(["dump", id, "--password-file", newPassword])
        XCTAssertEqual(dumped.status, 0, dumped.stderr)
        XCTAssertTrue(dumped.stdout == data)
        // The other password's slot is untouched.
        XCTAssertEqual(try fx.run(["snapshots", "--password-file", other]).status, 0)
        XCTAssertEqual(try slots(fx, ["--password-file", newPassword]).count, 2)

        // Without a terminal and without --new-password-file there is no new password.
        let noTTY = try fx.run(["key", "passwd", "--password-file", newPassword])
        XCTAssertEqual(noTTY.status, 2, noTTY.stderr)
        XCTAssertTrue(noTTY.stderr.contains("--new-password-file"), noTTY.stderr)
        let empty = try fx.run(["key", "add", "--password-file", newPassword, "--new-password-file", fx.file("empty", Data("\n".utf8))])
        XCTAssertEqual(empty.status, 2, empty.stderr)
    }

    func testKeyFileOpensWithoutAnyPassword() throws {
        let fx = Fixture()
        try fx.initRepo()
        let keyPath = fx.dir + "/host.key"
        let slot = try addKeyFile(fx, keyPath)
        let attributes = try FileManager.default.attributesOfItem(atPath: keyPath)
        XCTAssertEqual(attributes[.posixPermissions] as? Int, 0o600)
        let text = try String(contentsOfFile: keyPath, encoding: .utf8)
        XCTAssertNotNil(text.range(of: "^repo-keyfile-v1 [0-9a-f]{64}\n$", options: .regularExpression), text)

        // Store and dump with only the key file: no REPO_PASSWORD, no terminal to ask on.
        let data = TestData.random(300_000)
        let input = fx.file("in", data)
        let stored = try fx.run(["store", "--name", "wal", "--key-file", keyPath], stdinPath: input, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(stored.status, 0, stored.stderr)
        let id = stored.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let dumped = try fx.run(["dump", id], env: ["REPO_KEY_FILE": keyPath], unset: ["REPO_PASSWORD"])
        XCTAssertEqual(dumped.status, 0, dumped.stderr)
        XCTAssertTrue(dumped.stdout == data)
        let listed = try slots(fx, env: ["REPO_KEY_FILE": keyPath], unset: ["REPO_PASSWORD"])
        XCTAssertEqual(listed.filter { $0["current"] as? Bool == true }.map { $0["id"] as? String }, [slot])

        // REPO_KEY_FILE wins over a (wrong) REPO_PASSWORD; a password flag wins over REPO_KEY_FILE.
        XCTAssertEqual(try fx.run(["snapshots"], env: ["REPO_KEY_FILE": keyPath, "REPO_PASSWORD": "wrong"]).status, 0)
        let flagWins = try fx.run(["snapshots", "--password-file", fx.file("bad", Data("wrong\n".utf8))], env: ["REPO_KEY_FILE": keyPath])
        XCTAssertEqual(flagWins.status, 12, flagWins.stderr)
        let both = try fx.run(["snapshots", "--key-file", keyPath, "--password-file", passwordFile(fx, fx.password)])
        XCTAssertEqual(both.status, 2, both.stderr)

        // A key file is never written over, and init does not take one.
        let again = try fx.run(["key", "add", "--new-key-file", keyPath])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
        XCTAssertEqual(try String(contentsOfFile: keyPath, encoding: .utf8), text)
        XCTAssertEqual(try Fixture().run(["init", "--key-file", keyPath]).status, 2)
        // passwd changes a password, not a key file.
        let passwd = try fx.run(["key", "passwd", "--key-file", keyPath, "--new-password-file", passwordFile(fx, "x")])
        XCTAssertEqual(passwd.status, 2, passwd.stderr)
        XCTAssertEqual(try slots(fx).count, 2)
    }

    func testGroupOrWorldReadableKeyFileIsRefused() throws {
        let fx = Fixture()
        try fx.initRepo()
        let keyPath = fx.dir + "/host.key"
        _ = try addKeyFile(fx, keyPath)
        for mode in [0o640, 0o604, 0o644] {
            XCTAssertEqual(chmod(keyPath, mode_t(mode)), 0)
            let r = try fx.run(["snapshots", "--key-file", keyPath], unset: ["REPO_PASSWORD"])
            XCTAssertEqual(r.status, 1, "mode \(String(mode, radix: 8)): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("chmod 600 \(keyPath)"), r.stderr)
        }
        XCTAssertEqual(chmod(keyPath, 0o600), 0)
        XCTAssertEqual(try fx.run(["snapshots", "--key-file", keyPath], unset: ["REPO_PASSWORD"]).status, 0)

        // A password file given as a key file is named as not being one.
        let pw = passwordFile(fx, fx.password)
        XCTAssertEqual(chmod(pw, 0o600), 0)
        let notKey = try fx.run(["snapshots", "--key-file", pw])
        XCTAssertEqual(notKey.status, 1, notKey.stderr)
        XCTAssertTrue(notKey.stderr.contains("is not a repo key file"), notKey.stderr)
    }

    func testRemovedKeyFileSlotRevokesTheFile() throws {
        let fx = Fixture()
        try fx.initRepo()
        let keyPath = fx.dir + "/host.key"
        let slot = try addKeyFile(fx, keyPath)
        XCTAssertEqual(try fx.run(["snapshots", "--key-file", keyPath]).status, 0)
        try fx.ok(["key", "remove", slot])
        let r = try fx.run(["snapshots", "--key-file", keyPath], unset: ["REPO_PASSWORD"])
        XCTAssertEqual(r.status, 12, r.stderr)
        XCTAssertTrue(r.stderr.contains("key file \(keyPath) does not open any slot"), r.stderr)
        XCTAssertTrue(r.stderr.contains("was its slot removed?"), r.stderr)
        // Another key file of the same repository does not open the removed one's slot either.
        let second = fx.dir + "/second.key"
        _ = try addKeyFile(fx, second)
        XCTAssertEqual(try fx.run(["snapshots", "--key-file", second], unset: ["REPO_PASSWORD"]).status, 0)
        XCTAssertEqual(try fx.run(["snapshots", "--key-file", keyPath], unset: ["REPO_PASSWORD"]).status, 12)
    }

    func testRefusesToRemoveTheCurrentOrLastSlot() throws {
        let fx = Fixture()
        try fx.initRepo()
        let only = try XCTUnwrap(try slots(fx).first?["id"] as? String)
        for force in [[], ["--force"]] {
            let last = try fx.run(["key", "remove", only] + force)
            XCTAssertEqual(last.status, 1, last.stderr)
            XCTAssertTrue(last.stderr.contains("last usable key slot"), last.stderr)
        }
        XCTAssertEqual(try slots(fx).count, 1)

        // With a key-file slot beside it, --force removes the current slot: the password is gone,
        // the key file still opens, and its now-last slot is kept even with --force.
        let keyPath = fx.dir + "/host.key"
        let keySlot = try addKeyFile(fx, keyPath)
        let current = try fx.run(["key", "remove", only])
        XCTAssertEqual(current.status, 1, current.stderr)
        XCTAssertTrue(current.stderr.contains("the one this command was opened with"), current.stderr)
        try fx.ok(["key", "remove", only, "--force"])
        XCTAssertEqual(try fx.run(["snapshots"]).status, 12)
        let byKey = try fx.run(["key", "remove", keySlot, "--force", "--key-file", keyPath])
        XCTAssertEqual(byKey.status, 1, byKey.stderr)
        XCTAssertTrue(byKey.stderr.contains("last usable key slot"), byKey.stderr)
        XCTAssertEqual(try slots(fx, ["--key-file", keyPath]).compactMap { $0["id"] as? String }, [keySlot])
        // A password does not open a repository with only a key-file slot, and says so.
        let pw = try fx.run(["snapshots"])
        XCTAssertTrue(pw.stderr.contains("no password slots"), pw.stderr)
    }

    func testListJSONFields() throws {
        let fx = Fixture()
        try fx.initRepo()
        _ = try addKeyFile(fx, fx.dir + "/host.key")
        let list = try slots(fx)
        XCTAssertEqual(list.count, 2)
        XCTAssertEqual(Set(list.compactMap { $0["kind"] as? String }), ["password", "keyfile"])
        for s in list {
            // kms_provider and kms_key_id are null except in KMS slots (KMSTests).
            XCTAssertEqual(Set(s.keys), ["id", "kind", "created", "host", "username", "current", "kms_provider", "kms_key_id", "master", "transition"])
            XCTAssertTrue(s["kms_provider"] is NSNull && s["kms_key_id"] is NSNull)
            let id = try XCTUnwrap(s["id"] as? String)
            // The id is the object's name, the SHA-256 of its bytes (sha256sum, not repo's code).
            let bytes = try XCTUnwrap(FileManager.default.contents(atPath: fx.repo + "/keys/" + id))
            XCTAssertEqual(Process.sha256(bytes), id)
            XCTAssertNotNil((s["created"] as? String)?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"#, options: .regularExpression))
            XCTAssertFalse((s["host"] as? String ?? "").isEmpty)
            XCTAssertNotNil(s["username"] as? String)
            XCTAssertEqual(s["current"] as? Bool, s["kind"] as? String == "password")
        }
    }

    func testMalformedSlotsDoNotLockOutOthers() throws {
        let fx = Fixture()
        try fx.initRepo()
        let keyPath = fx.dir + "/host.key"
        _ = try addKeyFile(fx, keyPath)
        // Sorted before the real slots: a key-file slot with bad hex, one whose wrap does not
        // authenticate, a slot of an unknown kdf, and bytes that are not JSON.
        let planted: [(String, String)] = [
            ("0000", #"{"version":1,"kdf":"keyfile","salt":"zz","nonce":"00","wrapped":"00","created":"x","host":"h","username":"u"}"#),
            ("0001", "{\"version\":1,\"kdf\":\"keyfile\",\"salt\":\"\(String(repeating: "11", count: 32))\",\"nonce\":\"\(String(repeating: "22", count: 12))\",\"wrapped\":\"\(String(repeating: "33", count: 116))\",\"created\":\"2025-01-01T00:00:00Z\",\"host\":\"h\",\"username\":\"u\"}"),
            ("0002", #"{"version":1,"kdf":"argon2id","salt":"00","nonce":"00","wrapped":"00","created":"x","host":"h","username":"u"}"#),
            ("0003", "not json at all"),
        ]
        for (name, text) in planted {
            XCTAssertTrue(FileManager.default.createFile(atPath: fx.repo + "/keys/" + name, contents: Data(text.utf8)))
        }
        XCTAssertEqual(try fx.run(["snapshots"]).status, 0)
        XCTAssertEqual(try fx.run(["snapshots", "--key-file", keyPath], unset: ["REPO_PASSWORD"]).status, 0)
        let list = try slots(fx)
        XCTAssertEqual(list.count, 6)
        // 0001 is well-formed: only opening it could tell, and `list` opens nothing.
        for (name, kind) in [("0000", "unreadable"), ("0001", "keyfile"), ("0002", "unreadable"), ("0003", "unreadable")] {
            let s = try XCTUnwrap(list.first { $0["id"] as? String == name })
            XCTAssertEqual(s["kind"] as? String, kind, name)
        }
        // Planted slots can be removed like any other.
        try fx.ok(["key", "remove", "0003"])
        XCTAssertEqual(try slots(fx).count, 5)
    }

    /// A key file costs no scrypt: a planted scrypt slot of the highest accepted cost (1 GiB,
    /// p = 16: tens of seconds if derived) sorted first does not slow opening with a key file.
    func testKeyFileRunsNoScrypt() throws {
        let fx = Fixture()
        try fx.initRepo()
        let keyPath = fx.dir + "/host.key"
        _ = try addKeyFile(fx, keyPath)
        let slow = "{\"version\":1,\"kdf\":\"scrypt\",\"n\":1048576,\"r\":8,\"p\":16,\"salt\":\"\(String(repeating: "11", count: 32))\",\"nonce\":\"\(String(repeating: "22", count: 12))\",\"wrapped\":\"\(String(repeating: "33", count: 116))\",\"created\":\"2025-01-01T00:00:00Z\",\"host\":\"h\",\"username\":\"u\"}"
        XCTAssertTrue(FileManager.default.createFile(atPath: fx.repo + "/keys/0000", contents: Data(slow.utf8)))
        let started = Date()
        let r = try fx.run(["key", "list", "--key-file", keyPath], unset: ["REPO_PASSWORD"])
        let seconds = Date().timeIntervalSince(started)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertLessThan(seconds, 5, "opening with a key file took \(seconds) s: did it run scrypt?")
    }
}
