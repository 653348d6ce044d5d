public import RepoPrimitives
public import RepoRepository
public import Foundation

/// An external program as the wrapping service of `kms` key slots (README, "Keys"; FORMAT.md
/// §7.5), so HashiCorp Vault's transit engine, a cloud KMS's command-line tool, age or an HSM
/// client can hold the key. The protocol:
///
/// - `/bin/sh -c CMD` runs with `REPO_KMS_OPERATION` set to `wrap` or `unwrap`,
///   `REPO_KMS_KEY_ID` to the key id (`repo key add --kms-key-id ID`) and `REPO_KMS_CONTEXT`
///   to the repository id (64 hex digits), which the program should bind to the ciphertext
///   where its service can (Vault's `context`, AWS's encryption context).
/// - `wrap`: stdin is one line, the base64 of the 32-byte secret; the program prints one line,
///   the ciphertext, as printable ASCII (at most 8192 bytes).
/// - `unwrap`: stdin is that ciphertext line; the program prints the base64 of the secret.
/// - Exit 0 on success. Any other status, or no such line, is a failure: its stderr's last
///   lines become the message (exit 12).
///
/// The command comes from the local options only (`--kms-command`, `REPO_KMS_COMMAND`), never
/// from the repository: a slot names a key id, and whoever can write the repository must not
/// be able to choose a program that every host runs.
public struct KMSCommand: KeyManagementService {
    public let provider = "command"
    /// The shell command line.
    public let command: String
    /// Seconds the program may take before it is killed and the attempt fails.
    public var timeout: TimeInterval = 120

    public init(command: String) { self.command = command }

    public func wrap(secret: [UInt8], keyID: String, repositoryID: Hash256) throws -> KMSEnvelope {
        let line = try run("wrap", keyID: keyID, repositoryID: repositoryID, input: Data(secret).base64EncodedString())
        return KMSEnvelope(provider: provider, keyID: keyID, ciphertext: line)
    }

    public func unwrap(_ envelope: KMSEnvelope, repositoryID: Hash256) throws -> [UInt8] {
        let line = try run("unwrap", keyID: envelope.keyID, repositoryID: repositoryID, input: envelope.ciphertext)
        guard let secret = Data(base64Encoded: line) else {
            throw RepoError(.keyService, "the KMS command `\(command)` printed something that is not base64 for unwrap of key \(envelope.keyID)",
                            hint: "unwrap must print the base64 of the secret on one line (README, \"Keys\")")
        }
        return [UInt8](secret)
    }

    /// Runs the program for one operation and returns the first line it printed, without its
    /// line ending.
    func run(_ operation: String, keyID: String, repositoryID: Hash256, input: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        var env = ProcessInfo.processInfo.environment
        env["REPO_KMS_OPERATION"] = operation
        env["REPO_KMS_KEY_ID"] = keyID
        env["REPO_KMS_CONTEXT"] = repositoryID.hex
        process.environment = env
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin; process.standardOutput = stdout; process.standardError = stderr
        do { try process.run() } catch {
            throw RepoError(.keyService, "cannot run the KMS command `\(command)`: \(error.localizedDescription)")
        }
        // Both outputs are drained on their own threads, so a chatty program cannot block on a
        // full pipe while this one waits for the other.
        let group = DispatchGroup()
        nonisolated(unsafe) var out = Data(), err = Data()
        group.enter()
        DispatchQueue.global().async { out = stdout.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { err = stderr.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        // A program that does not read its input must not fail the write: SIGPIPE is ignored by
        // the CLI, and the error is dropped here (the exit status tells).
        try? stdin.fileHandleForWriting.write(contentsOf: Data((input + "\n").utf8))
        try? stdin.fileHandleForWriting.close()
        let finished = group.wait(timeout: .now() + timeout)
        if finished == .timedOut {
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            _ = group.wait(timeout: .now() + 5)
            process.waitUntilExit()
            throw RepoError(.keyService, "the KMS command `\(command)` did not finish \(operation) for key \(keyID) within \(Int(timeout)) s; it was killed",
                            hint: "does it wait for input on a terminal? It must answer from stdin alone (README, \"Keys\")")
        }
        process.waitUntilExit()
        let reason = String(decoding: err, as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: " / ")
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let how = process.terminationReason == .exit ? "exited with status \(process.terminationStatus)" : "was killed by signal \(process.terminationStatus)"
            throw RepoError(.keyService, "the KMS command `\(command)` \(how) on \(operation) for key \(keyID)\(reason.isEmpty ? "" : ": " + reason)",
                            hint: "the repository is untouched; run the command by hand with REPO_KMS_OPERATION=\(operation) REPO_KMS_KEY_ID=\(keyID) to see why, or open with another key slot")
        }
        var line = String(decoding: out, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if line.hasSuffix("\r") { line.removeLast() }
        guard !line.isEmpty else {
            throw RepoError(.keyService, "the KMS command `\(command)` printed nothing on \(operation) for key \(keyID)\(reason.isEmpty ? "" : " (stderr: " + reason + ")")")
        }
        return line
    }
}
