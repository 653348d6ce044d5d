public import RepoPrimitives
public import RepoRepository
public import RepoS3
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL
public import Foundation

/// AWS KMS as the wrapping service of `kms` key slots (FORMAT.md §7.5): `Encrypt` wraps a
/// slot's secret under a KMS key, `Decrypt` unwraps it, both with the encryption context
/// `{"repo-repository": <hex id>}` so a ciphertext from one repository does not unwrap for
/// another, and so AWS CloudTrail names the repository that asked.
///
/// Requests follow the AWS KMS API Reference: `POST /` with `X-Amz-Target: TrentService.Encrypt`
/// (or `.Decrypt`), a JSON body (`Content-Type: application/x-amz-json-1.1`), signed with
/// Signature Version 4 for the service `kms` (the S3 backend's `SigV4Signer`). Errors are JSON
/// `{"__type": "...Exception", "message": "..."}`; throttling, 5xx and dropped connections are
/// retried with full-jitter backoff, anything else is reported as the service said it.
public final class AWSKMS: KeyManagementService, @unchecked Sendable {
    public let provider = "aws-kms"
    /// The endpoint the user set (`AWS_ENDPOINT_URL_KMS` or `AWS_ENDPOINT_URL`), or nil for
    /// AWS's `https://kms.REGION.amazonaws.com`.
    public let endpoint: URL?
    /// The region for new slots (the region a slot records is used to unwrap it).
    public let region: String
    /// Nil when the environment had none: every request then fails with a clear message.
    let credentials: S3Credentials?
    let http: HTTPClient
    /// Attempts per request, the first included; each waits at most `timeout` seconds for an
    /// answer. A refused connection is not tried again: async-http-client's pool already keeps
    /// reconnecting for `connectTimeout` before it gives up.
    let attempts = 4
    let timeout: Int64 = 10, connectTimeout: Int64 = 5

    /// - Parameters:
    ///   - endpoint: scheme, host and port of a KMS-compatible endpoint; nil for AWS's.
    ///   - caFile: PEM certificates to trust for https instead of the system's.
    public init(credentials: S3Credentials?, region: String, endpoint: URL?, caFile: String? = nil) {
        self.credentials = credentials; self.region = region; self.endpoint = endpoint
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .file(caFile) }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(connectTimeout), read: .seconds(timeout)))
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { try? http.syncShutdown() }

    /// The encryption context of every request: the repository's id.
    static func context(_ repositoryID: Hash256) -> [String: String] { ["repo-repository": repositoryID.hex] }

    public func wrap(secret: [UInt8], keyID: String, repositoryID: Hash256) throws -> KMSEnvelope {
        let answer = try call("Encrypt", region: region, keyID: keyID, body: [
            "KeyId": keyID, "Plaintext": Data(secret).base64EncodedString(),
            "EncryptionContext": Self.context(repositoryID),
        ])
        guard let blob = answer["CiphertextBlob"] as? String, !blob.isEmpty else {
            throw RepoError(.keyService, "AWS KMS Encrypt with key \(keyID) at \(host(region)) answered without a CiphertextBlob")
        }
        // Store the ARN KMS reports, not an alias: an alias can later point at another key.
        let arn = (answer["KeyId"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? keyID
        return KMSEnvelope(provider: provider, keyID: arn, region: region, ciphertext: blob)
    }

    public func unwrap(_ envelope: KMSEnvelope, repositoryID: Hash256) throws -> [UInt8] {
        let region = envelope.region ?? self.region
        let answer = try call("Decrypt", region: region, keyID: envelope.keyID, body: [
            "KeyId": envelope.keyID, "CiphertextBlob": envelope.ciphertext,
            "EncryptionContext": Self.context(repositoryID),
        ])
        guard let plain = answer["Plaintext"] as? String, let bytes = Data(base64Encoded: plain) else {
            throw RepoError(.keyService, "AWS KMS Decrypt with key \(envelope.keyID) at \(host(region)) answered without a Plaintext")
        }
        return [UInt8](bytes)
    }

    /// `https://kms.REGION.amazonaws.com`, or the endpoint set.
    func url(_ region: String) -> URL {
        endpoint ?? URL(string: "https://kms.\(region).amazonaws.com")!
    }

    func host(_ region: String) -> String {
        let u = url(region)
        return (u.host ?? "?") + (u.port.map { ":\($0)" } ?? "")
    }

    /// Sends `TrentService.<action>` and returns the decoded JSON answer.
    ///
    /// - Throws: `RepoError` `.keyService` naming the action, key, endpoint and the service's
    ///   `__type` and message (or the transport failure), with a hint for the usual causes.
    func call(_ action: String, region: String, keyID: String, body: [String: Any]) throws -> [String: Any] {
        guard credentials != nil else {
            throw RepoError(.keyService, "AWS KMS \(action) with key \(keyID): no AWS credentials",
                            hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)")
        }
        let payload = [UInt8](try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]))
        let target = url(region)
        let authority = host(region)
        var attempt = 0
        while true {
            attempt += 1
            let outcome: (status: Int, body: [UInt8])
            do {
                outcome = try send(action: action, to: target, authority: authority, region: region, payload: payload)
            } catch let reason as TransportFailure {
                if attempt < attempts && !reason.refused { backoff(attempt); continue }
                throw RepoError(.keyService, "AWS KMS \(action) with key \(keyID) failed: \(reason.text)",
                                hint: "check that the KMS endpoint \(authority) is reachable (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, AWS_REGION); the repository is untouched")
            }
            let json = (try? JSONSerialization.jsonObject(with: Data(outcome.body))) as? [String: Any] ?? [:]
            if outcome.status == 200 { return json }
            let type = ((json["__type"] as? String) ?? "HTTP \(outcome.status)").split(separator: "#").last.map(String.init) ?? ""
            let message = (json["message"] as? String) ?? (json["Message"] as? String) ?? ""
            let retryable = outcome.status >= 500 || ["ThrottlingException", "KMSInternalException", "DependencyTimeoutException",
                                                      "LimitExceededException"].contains(type)
            if retryable && attempt < attempts { backoff(attempt); continue }
            throw RepoError(.keyService, "AWS KMS refused \(action) with key \(keyID) at \(authority): \(type)\(message.isEmpty ? "" : ": " + message)",
                            hint: Self.hint(type: type, action: action))
        }
    }

    /// What to do about a KMS error type (AWS KMS API Reference, "Errors" of Encrypt/Decrypt).
    static func hint(type: String, action: String) -> String {
        switch type {
        case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature":
            return "the AWS credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) must be valid and allowed kms:\(action) on this key by its key policy or IAM"
        case "ExpiredTokenException":
            return "the session token in AWS_SESSION_TOKEN has expired: get new temporary credentials"
        case "NotFoundException":
            return "the KMS key does not exist in this account and region (was it deleted, or is AWS_REGION / the endpoint wrong?)"
        case "DisabledException", "KMSInvalidStateException":
            return "the KMS key is disabled or pending deletion: enable it (or cancel its deletion) in KMS, or open with another key slot"
        case "InvalidCiphertextException", "IncorrectKeyException":
            return "KMS refused the slot's ciphertext: the slot was altered, or made for another repository"
        default:
            return "the repository is untouched; open with another key slot (password or key file) if KMS stays unavailable"
        }
    }

    struct TransportFailure: Error {
        var text: String
        var refused = false
    }

    private func backoff(_ attempt: Int) {
        Thread.sleep(forTimeInterval: Double.random(in: 0..<min(2.0, 0.1 * pow(2, Double(attempt - 1)))))
    }

    private func send(action: String, to url: URL, authority: String, region: String, payload: [UInt8]) throws -> (status: Int, body: [UInt8]) {
        let signer = SigV4Signer(credentials: credentials!, region: region, service: "kms")
        let request = SigV4Signer.Request(
            method: "POST", path: "/",
            headers: [("Host", authority), ("Content-Type", "application/x-amz-json-1.1"),
                      ("X-Amz-Target", "TrentService.\(action)"), ("Content-Length", String(payload.count))],
            payloadHash: SHA256Hasher.hash(payload).hex)
        var headers = HTTPHeaders()
        for (k, v) in signer.sign(request, date: Date()) where k != "Content-Length" { headers.add(name: k, value: v) }
        let scheme = url.scheme ?? "https"
        do {
            let r = try HTTPClient.Request(url: "\(scheme)://\(authority)/", method: .POST, headers: headers, body: .bytes(payload))
            let response = try http.execute(request: r, deadline: .now() + .seconds(2 * timeout)).wait()
            var bytes: [UInt8] = []
            if var b = response.body { bytes = b.readBytes(length: b.readableBytes) ?? [] }
            return (Int(response.status.code), bytes)
        } catch {
            let text = String(describing: error)
            if text.contains("connectionRefused") || text.contains("Connection refused") {
                throw TransportFailure(text: "connection to \(authority) refused", refused: true)
            }
            if text.contains("Timeout") || text.contains("deadlineExceeded") {
                throw TransportFailure(text: "no answer from \(authority) in \(timeout) s")
            }
            throw TransportFailure(text: "connection to \(authority) failed: \(text)")
        }
    }
}
