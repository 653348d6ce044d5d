import XCTest
import Foundation
import RepoTestSupport

/// KMS key slots through the real binary (README, "Keys"; FORMAT.md §7.5): AWS KMS served by
/// moto's server, and the external-command protocol served by scripts/kms-command-example.sh.
final class KMSTests: XCTestCase {
    static let moto = SharedS3Server(.moto)
    override class func setUp() { super.setUp(); moto.start() }
    override class func tearDown() { moto.stop(); super.tearDown() }

    /// The environment that reaches moto's KMS: its credentials and AWS_ENDPOINT_URL_KMS.
    func kmsEnvironment() throws -> [String: String] {
        let server = try Self.moto.get()
        return server.environment.merging(["AWS_ENDPOINT_URL_KMS": server.endpoint]) { $1 }
    }

    /// Runs a boto3 KMS call against moto (Python, independent of the code under test) and
    /// returns what the snippet prints; `kms` is the client.
    func kmsAdmin(_ fx: Fixture, _ snippet: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let server = try Self.moto.get()
        let script = """
        import boto3
        kms = boto3.client("kms", endpoint_url="\(server.endpoint)", region_name="\(server.region)",
                           aws_access_key_id="\(server.accessKeyID)", aws_secret_access_key="\(server.secretAccessKey)")
        \(snippet)
        """
        let r = try fx.shell("python3 -c \"$SNIPPET\" 2>&1", env: ["SNIPPET": script])
        XCTAssertEqual(r.status, 0, r.out, file: file, line: line)
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func json(_ r: CLIResult) throws -> Any { try JSONSerialization.jsonObject(with: r.stdout) }

    func testAWSKMSSlotOpensEveryCommandAndFailuresExit12() throws {
        let fx = Fixture()
        try fx.initRepo()
        let env = try kmsEnvironment()
        let keyID = try kmsAdmin(fx, "print(kms.create_key(Description='repo test')['KeyMetadata']['KeyId'])")
        _ = try kmsAdmin(fx, "kms.create_alias(AliasName='alias/repo-backups', TargetKeyId='\(keyID)')")
        let data = TestData.sqlDump(bytes: 200_000)
        let before = try XCTUnwrap(try fx.store("db.sql", from: fx.file("in", data))["id"] as? String)

        // Added by alias (opened with the password); the slot records the key's ARN.
        let add = try fx.run(["key", "add", "--kms-key-id", "alias/repo-backups", "--json"], env: env)
        XCTAssertEqual(add.status, 0, add.stderr)
        let added = try XCTUnwrap(try json(add) as? [String: Any])
        XCTAssertEqual(added["kind"] as? String, "kms")
        XCTAssertEqual(added["kms_provider"] as? String, "aws-kms")
        let arn = try XCTUnwrap(added["kms_key_id"] as? String)
        XCTAssertTrue(arn.hasPrefix("arn:aws:kms:") && arn.hasSuffix(keyID), arn)
        let slotID = try XCTUnwrap(added["id"] as? String)

        // No password anywhere: --kms (or REPO_KMS=1) opens it for list, store, dump, check.
        var kmsEnv = env
        kmsEnv["REPO_KMS"] = "1"
        let list = try fx.run(["key", "list", "--json"], env: kmsEnv, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let slots = try XCTUnwrap(try json(list) as? [[String: Any]])
        XCTAssertEqual(slots.filter { $0["current"] as? Bool == true }.map { $0["id"] as? String }, [slotID])
        XCTAssertEqual(slots.first { $0["id"] as? String == slotID }?["kms_key_id"] as? String, arn)
        let second = TestData.random(300_000)
        let stored = try fx.run(["store", "--name", "blob", "--kms"], stdinPath: fx.file("in2", second), env: env, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(stored.status, 0, stored.stderr)
        let id = stored.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let dumped = try fx.run(["dump", id], env: kmsEnv, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(dumped.status, 0, dumped.stderr)
        XCTAssertTrue(dumped.stdout == second)
        let old = try fx.run(["dump", before], env: kmsEnv, unset: ["REPO_PASSWORD"])
        XCTAssertTrue(old.stdout == data, "data stored before the slot was added opens through it")
        XCTAssertEqual(try fx.run(["check", "--read-data"], env: kmsEnv, unset: ["REPO_PASSWORD"]).status, 0)

        // A pinned key id: only its slots are tried.
        XCTAssertEqual(try fx.run(["snapshots"], env: kmsEnv.merging(["REPO_KMS_KEY_ID": arn]) { $1 }, unset: ["REPO_PASSWORD"]).status, 0)
        let pinned = try fx.run(["snapshots"], env: kmsEnv.merging(["REPO_KMS_KEY_ID": "arn:aws:kms:us-east-1:000000000000:key/other"]) { $1 },
                                unset: ["REPO_PASSWORD"])
        XCTAssertEqual(pinned.status, 12, pinned.stderr)
        XCTAssertTrue(pinned.stderr.contains("pinned"), pinned.stderr)

        // passwd changes passwords only; --kms with a password flag is a usage error.
        XCTAssertEqual(try fx.run(["key", "passwd", "--kms", "--new-password-file", fx.file("np", Data("x\n".utf8))], env: env,
                                  unset: ["REPO_PASSWORD"]).status, 2)
        XCTAssertEqual(try fx.run(["snapshots", "--kms", "--password-file", fx.file("pw", Data("x\n".utf8))], env: env).status, 2)

        // KMS's own refusals, injected by a proxy in front of moto (moto's Decrypt ignores key
        // state and IAM): exit 12 with KMS's reason and a hint, never "wrong password". Server
        // errors are retried and then succeed.
        let proxy = try S3FaultProxy(upstream: env["AWS_ENDPOINT_URL_KMS"]!)
        defer { proxy.stop() }
        let proxied = kmsEnv.merging(["AWS_ENDPOINT_URL_KMS": proxy.endpoint]) { $1 }
        let refusals = [
            ("AccessDeniedException", "User: arn:aws:iam::123456789012:user/db1 is not authorized to perform: kms:Decrypt", "kms:Decrypt"),
            ("DisabledException", "arn:aws:kms:us-east-1:123456789012:key/x is disabled.", "disabled"),
            ("KMSInvalidStateException", "arn:aws:kms:us-east-1:123456789012:key/x is pending deletion.", "pending deletion"),
        ]
        for (type, message, hint) in refusals {
            try proxy.setFaults(["fail_next": 1, "status": 400, "code": type, "message": message, "json_error": true])
            let r = try fx.run(["snapshots"], env: proxied, unset: ["REPO_PASSWORD"])
            XCTAssertEqual(r.status, 12, r.stderr)
            XCTAssertTrue(r.stderr.contains(type) && r.stderr.contains(message), r.stderr)
            XCTAssertTrue(r.stderr.contains(hint), r.stderr)
            XCTAssertFalse(r.stderr.contains("wrong password"), r.stderr)
        }
        try proxy.setFaults(["fail_next": 2, "status": 500, "code": "KMSInternalException", "json_error": true])
        let retried = try fx.run(["snapshots"], env: proxied, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(retried.status, 0, retried.stderr)
        try proxy.setFaults(["fail_next": 10, "status": 400, "code": "ThrottlingException", "json_error": true])
        let throttled = try fx.run(["snapshots"], env: proxied, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(throttled.status, 12, throttled.stderr)
        XCTAssertTrue(throttled.stderr.contains("ThrottlingException"), throttled.stderr)
        // 3 refusals answered once each (not retried), 2 server errors, 4 attempts throttled.
        XCTAssertEqual((try proxy.stats()["faults"] as? [String: Any])?["fail"] as? Int, 3 + 2 + 4, proxy.log)

        // KMS unreachable, and no AWS credentials: exit 12, each saying so.
        let unreachable = try fx.run(["snapshots"], env: kmsEnv.merging(["AWS_ENDPOINT_URL_KMS": "http://127.0.0.1:9"]) { $1 },
                                     unset: ["REPO_PASSWORD"])
        XCTAssertEqual(unreachable.status, 12, unreachable.stderr)
        XCTAssertTrue(unreachable.stderr.contains("refused"), unreachable.stderr)
        let noCredentials = try fx.run(["snapshots", "--kms"], env: ["AWS_ENDPOINT_URL_KMS": env["AWS_ENDPOINT_URL_KMS"]!],
                                       unset: ["REPO_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
        XCTAssertEqual(noCredentials.status, 12, noCredentials.stderr)
        XCTAssertTrue(noCredentials.stderr.contains("no AWS credentials"), noCredentials.stderr)

        // An endpoint that is not a URL is a usage error, not a silent fallback to AWS.
        let noScheme = try fx.run(["snapshots"], env: kmsEnv.merging(["AWS_ENDPOINT_URL_KMS": "127.0.0.1:9"]) { $1 }, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(noScheme.status, 2, noScheme.stderr)
        XCTAssertTrue(noScheme.stderr.contains("AWS_ENDPOINT_URL_KMS"), noScheme.stderr)

        // Removing the slot: --kms then finds no KMS slot at all.
        XCTAssertEqual(try fx.run(["key", "remove", String(slotID.prefix(8))]).status, 0)
        let none = try fx.run(["snapshots"], env: kmsEnv, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(none.status, 12, none.stderr)
        XCTAssertTrue(none.stderr.contains("no KMS key slots"), none.stderr)
    }

    func testAWSKMSSlotCopiedToAnotherRepositoryDoesNotOpenIt() throws {
        let fx = Fixture()
        try fx.initRepo()
        let env = try kmsEnvironment()
        let keyID = try kmsAdmin(fx, "print(kms.create_key()['KeyMetadata']['KeyId'])")
        XCTAssertEqual(try fx.run(["key", "add", "--kms-key-id", keyID], env: env).status, 0)

        // A second repository given the first one's KMS slot: the encryption context (the
        // repository id) differs, so KMS refuses to decrypt.
        let other = Fixture()
        try other.initRepo()
        let slots = try FileManager.default.contentsOfDirectory(atPath: fx.repo + "/keys")
        for name in slots {
            let text = try String(contentsOfFile: fx.repo + "/keys/" + name, encoding: .utf8)
            if text.contains("\"kms\"") { try FileManager.default.copyItem(atPath: fx.repo + "/keys/" + name, toPath: other.repo + "/keys/" + name) }
        }
        let r = try other.run(["snapshots", "--kms"], env: env, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(r.status, 12, r.stderr)
        XCTAssertTrue(r.stderr.contains("InvalidCiphertextException") || r.stderr.contains("AccessDenied"), r.stderr)
        XCTAssertEqual(try fx.run(["snapshots", "--kms"], env: env, unset: ["REPO_PASSWORD"]).status, 0)
    }

    func testDeletedKMSKeyExits12AndThePasswordStillOpens() throws {
        let fx = Fixture()
        try fx.initRepo()
        let env = try kmsEnvironment()
        let keyID = try kmsAdmin(fx, "print(kms.create_key()['KeyMetadata']['KeyId'])")
        XCTAssertEqual(try fx.run(["key", "add", "--kms-key-id", keyID], env: env).status, 0)
        XCTAssertEqual(try fx.run(["snapshots", "--kms"], env: env, unset: ["REPO_PASSWORD"]).status, 0)
        // moto keeps a key scheduled for deletion usable; its reset deletes every key for real.
        _ = try kmsAdmin(fx, "import urllib.request; urllib.request.urlopen(urllib.request.Request('\(try Self.moto.get().endpoint)/moto-api/reset', method='POST'))")
        let deleted = try fx.run(["snapshots", "--kms"], env: env, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(deleted.status, 12, deleted.stderr)
        XCTAssertTrue(deleted.stderr.contains("NotFoundException"), deleted.stderr)
        XCTAssertTrue(deleted.stderr.contains("does not exist"), deleted.stderr)
        XCTAssertEqual(try fx.run(["snapshots"]).status, 0, "the password's slot is unaffected")
    }

    func testKMSCommandProtocol() throws {
        let fx = Fixture()
        try fx.initRepo()
        let keys = fx.dir + "/kms-keys"
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        _ = fx.file("kms-keys/vault-key.key", Data(TestData.random(32).base64EncodedString().utf8))
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/kms-command-example.sh").path
        let command = "sh \(script)"
        let env = ["REPO_EXAMPLE_KMS_DIR": keys]

        let add = try fx.run(["key", "add", "--kms-key-id", "vault-key", "--kms-command", command, "--json"], env: env)
        XCTAssertEqual(add.status, 0, add.stderr)
        let added = try XCTUnwrap(try json(add) as? [String: Any])
        XCTAssertEqual(added["kms_provider"] as? String, "command")
        XCTAssertEqual(added["kms_key_id"] as? String, "vault-key")

        let data = TestData.random(250_000)
        let stored = try fx.run(["store", "--name", "x", "--kms", "--kms-command", command], stdinPath: fx.file("in", data), env: env,
                                unset: ["REPO_PASSWORD"])
        XCTAssertEqual(stored.status, 0, stored.stderr)
        let id = stored.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let viaEnv = try fx.run(["dump", id], env: env.merging(["REPO_KMS": "1", "REPO_KMS_COMMAND": command]) { $1 }, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(viaEnv.status, 0, viaEnv.stderr)
        XCTAssertTrue(viaEnv.stdout == data)

        // The command comes from the opener, never from the slot: without one, a usage error.
        let noCommand = try fx.run(["snapshots", "--kms"], env: env, unset: ["REPO_PASSWORD", "REPO_KMS_COMMAND"])
        XCTAssertEqual(noCommand.status, 2, noCommand.stderr)
        XCTAssertTrue(noCommand.stderr.contains("--kms-command"), noCommand.stderr)

        // The program failing (its key gone): exit 12 with the program's own words.
        try FileManager.default.moveItem(atPath: keys + "/vault-key.key", toPath: keys + "/moved")
        let failing = try fx.run(["snapshots", "--kms", "--kms-command", command], env: env, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(failing.status, 12, failing.stderr)
        XCTAssertTrue(failing.stderr.contains("no key \"vault-key\""), failing.stderr)
        XCTAssertFalse(failing.stderr.contains("wrong password"), failing.stderr)
        try FileManager.default.moveItem(atPath: keys + "/moved", toPath: keys + "/vault-key.key")

        // A program that prints nonsense, or nothing: exit 12, not a crash or a wrong password.
        for bad in ["echo '%%% not base64'", "true", "exit 3"] {
            let r = try fx.run(["snapshots", "--kms", "--kms-command", bad], env: env, unset: ["REPO_PASSWORD"])
            XCTAssertEqual(r.status, 12, "\(bad): \(r.stderr)")
        }
        // A program that unwraps to the wrong secret: the slot does not open (GCM), exit 12.
        let wrong = try fx.run(["snapshots", "--kms", "--kms-command", "head -c 32 /dev/urandom | base64"], env: env, unset: ["REPO_PASSWORD"])
        XCTAssertEqual(wrong.status, 12, wrong.stderr)
        XCTAssertEqual(try fx.run(["snapshots", "--kms", "--kms-command", command], env: env, unset: ["REPO_PASSWORD"]).status, 0)
    }
}
