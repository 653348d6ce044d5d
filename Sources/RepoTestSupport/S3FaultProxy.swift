public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `scripts/s3-fault-proxy.py` between a client and an `S3TestServer`: forwards requests and
/// injects the faults named in its control file (503 bursts, dropped connections, uploads cut
/// short, delays), which `setFaults` rewrites while it runs.
public final class S3FaultProxy: @unchecked Sendable {
    public let port: Int
    public let controlFile: String
    private let pid: pid_t
    private let directory: String

    /// Starts the proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    public init(upstream: String) throws {
        directory = NSTemporaryDirectory() + "repo-s3-proxy-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        controlFile = directory + "/control.json"
        let portFile = directory + "/port"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/s3-fault-proxy.py").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, directory + "/proxy.log", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let args = ["/usr/bin/env", "python3", script, "--upstream", upstream, "--port-file", portFile, "--control-file", controlFile]
        let argv = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, "/usr/bin/env", &actions, nil, argv, environ)
        guard rc == 0 else { throw S3TestServer.StartError(description: "cannot start the fault proxy: \(String(cString: strerror(rc)))") }
        pid = child
        var found: Int?
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let p = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                found = p
                break
            }
            usleep(50_000)
        }
        guard let found else {
            kill(child, SIGKILL)
            var status: Int32 = 0
            waitpid(child, &status, 0)
            let log = (try? String(contentsOfFile: directory + "/proxy.log", encoding: .utf8)) ?? ""
            throw S3TestServer.StartError(description: "the fault proxy did not start: \(log)")
        }
        port = found
    }

    deinit { stop() }

    private var stopped = false

    public func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGTERM)
        var status: Int32 = 0
        var reaped = false
        for _ in 0..<30 where !reaped {
            reaped = waitpid(pid, &status, WNOHANG) == pid
            if !reaped { usleep(100_000) }
        }
        if !reaped { kill(pid, SIGKILL); waitpid(pid, &status, 0) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `http://127.0.0.1:PORT`
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Replaces the faults (the proxy re-reads the file on every request); `[:]` for none.
    public func setFaults(_ faults: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: faults)
        let tmp = controlFile + ".tmp"
        try data.write(to: URL(fileURLWithPath: tmp))
        rename(tmp, controlFile)
    }

    /// The proxy's counters (`GET /__proxy/stats`).
    public func stats() throws -> [String: Any] {
        let (status, out, err) = S3TestServer.run(["-c", "curl -sf \(endpoint)/__proxy/stats"])
        guard status == 0 else { throw S3TestServer.StartError(description: "proxy stats: curl exit \(status): \(err)") }
        return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
    }

    /// The proxy's request log, for failure messages.
    public var log: String { (try? String(contentsOfFile: directory + "/proxy.log", encoding: .utf8)) ?? "" }
}
