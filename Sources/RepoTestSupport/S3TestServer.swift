public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real S3 server for tests: Ceph's RADOS Gateway on loopback (one monitor, one memstore
/// OSD, radosgw), started by `scripts/s3-server.sh start DIR` in a fresh temporary directory
/// and stopped by `stop`. About 2–20 s to start, so test classes share one. With
/// `Kind.moto`, moto's server instead (`scripts/moto-server.sh`): AWS's other APIs too (KMS),
/// on the same endpoint. Tests that need a server fail when none can be started: CI installs
/// radosgw and moto (scripts/install-deps.sh).
public final class S3TestServer: @unchecked Sendable {
    public let directory: String
    /// `http://127.0.0.1:PORT`
    public let endpoint: String
    public let accessKeyID: String
    public let secretAccessKey: String
    public let region: String
    /// A second user of a radosgw server (nil for moto): its name and credentials. It owns
    /// nothing; a test grants it access with a bucket policy.
    public let secondUser: (name: String, accessKeyID: String, secretAccessKey: String)?
    private var stopped = false
    let script: String

    /// Which server: radosgw (`scripts/s3-server.sh`) or moto (`scripts/moto-server.sh`).
    public enum Kind: String, Sendable {
        case radosgw = "s3-server.sh"
        case moto = "moto-server.sh"
    }

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    static func script(_ kind: Kind) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/" + kind.rawValue).path
    }

    /// Starts a server; throws with the script's error output if it cannot.
    public init(_ kind: Kind = .radosgw) throws {
        directory = NSTemporaryDirectory() + "repo-s3-" + UUID().uuidString
        script = Self.script(kind)
        let (status, out, err) = Self.run([script, "start", directory])
        guard status == 0 else {
            _ = Self.run([script, "stop", directory])
            try? FileManager.default.removeItem(atPath: directory)
            throw StartError(description: "scripts/\(kind.rawValue) start failed (\(status)): \(err)")
        }
        var values: [String: String] = [:]
        for line in out.split(separator: "\n") {
            for word in line.split(separator: " ") {
                let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { values[parts[0]] = parts[1] }
            }
        }
        guard let e = values["S3_ENDPOINT"], let id = values["AWS_ACCESS_KEY_ID"], let secret = values["AWS_SECRET_ACCESS_KEY"] else {
            throw StartError(description: "scripts/\(kind.rawValue) start printed no endpoint: \(out)")
        }
        endpoint = e; accessKeyID = id; secretAccessKey = secret
        region = values["AWS_DEFAULT_REGION"] ?? "us-east-1"
        if let name = values["SECOND_USER"], let id = values["SECOND_ACCESS_KEY_ID"], let secret = values["SECOND_SECRET_ACCESS_KEY"] {
            secondUser = (name, id, secret)
        } else {
            secondUser = nil
        }
    }

    deinit { stop() }

    /// Stops the daemons and removes the directory; safe to call twice.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        _ = Self.run([script, "stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `s3:http://127.0.0.1:PORT/BUCKET[/PREFIX]`
    public func location(bucket: String, prefix: String = "") -> String {
        "s3:\(endpoint)/\(bucket)\(prefix.isEmpty ? "" : "/" + prefix)"
    }

    /// The environment a `repo` process needs to reach this server.
    public var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": accessKeyID, "AWS_SECRET_ACCESS_KEY": secretAccessKey, "AWS_DEFAULT_REGION": region]
    }

    /// A bucket name no other test uses.
    public static func uniqueBucket(_ label: String = "t") -> String {
        "\(label)-\(UUID().uuidString.lowercased().prefix(13))"
    }

    /// Runs the script with its output in files (the daemons it starts inherit its standard
    /// output and error, so pipes would never reach end-of-file), by posix_spawn and waitpid:
    /// Foundation's `Process.waitUntilExit` was seen to wait forever for this script, whose
    /// daemons outlive it.
    static func run(_ args: [String]) -> (Int32, String, String) {
        let base = NSTemporaryDirectory() + "repo-s3-run-" + UUID().uuidString
        defer { unlink(base + ".out"); unlink(base + ".err") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, base + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, base + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = (["/bin/bash"] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/bash", &actions, nil, argv, environ)
        guard rc == 0 else { return (127, "", "posix_spawn: \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let o = FileManager.default.contents(atPath: base + ".out") ?? Data()
        let e = FileManager.default.contents(atPath: base + ".err") ?? Data()
        return (code, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

/// One `S3TestServer` shared by the tests of a class: started in the class's `setUp`, stopped
/// in its `tearDown`; a start failure is kept and thrown by every test that asks for it.
public final class SharedS3Server: @unchecked Sendable {
    private var server: S3TestServer?
    private var startError: Error?
    private let kind: S3TestServer.Kind

    public init(_ kind: S3TestServer.Kind = .radosgw) { self.kind = kind }

    public func start() {
        do { server = try S3TestServer(kind) } catch { startError = error }
    }

    public func stop() {
        server?.stop()
        server = nil
    }

    /// The running server, or the error that kept it from starting.
    public func get() throws -> S3TestServer {
        if let startError { throw startError }
        guard let server else { throw S3TestServer.StartError(description: "the shared S3 server is not running") }
        return server
    }
}
