public import RepoPrimitives

/// A key management service that wraps and unwraps the 32-byte secret of a `kms` key slot
/// (FORMAT.md §7.5): AWS KMS (`RepoKMS.AWSKMS`) or an external command (`RepoKMS.KMSCommand`).
/// The secret never leaves the process except to the service; the slot stores only the
/// service's ciphertext of it.
///
/// Implementations throw `RepoError` `.keyService` (exit 12) for everything the service says or
/// fails to say (unreachable, access denied, key disabled or deleted, ciphertext refused), with
/// the service's own reason in the message, so a KMS problem is never reported as a wrong
/// password.
public protocol KeyManagementService: Sendable {
    /// The `provider` value of the slots this service opens: `"aws-kms"` or `"command"`.
    var provider: String { get }

    /// Wraps `secret` (32 bytes) under the service's key `keyID`. `repositoryID` is the
    /// repository's id, passed to the service as context (AWS KMS's encryption context), so a
    /// ciphertext made for one repository does not unwrap for another.
    func wrap(secret: [UInt8], keyID: String, repositoryID: Hash256) throws -> KMSEnvelope

    /// The secret `envelope` wraps; the service checks the same context it was wrapped with.
    func unwrap(_ envelope: KMSEnvelope, repositoryID: Hash256) throws -> [UInt8]
}

/// The `kms` object of a `kms` key slot (FORMAT.md §7.5): which service wrapped the slot's
/// secret, under which of its keys, and the service's ciphertext.
public struct KMSEnvelope: Codable, Sendable, Equatable {
    /// `"aws-kms"` or `"command"`.
    public var provider: String
    /// The service's key: for AWS KMS the key ARN the service reported at wrapping (what was
    /// asked may have been an alias or a bare key id); for a command, the id given to it.
    public var keyID: String
    /// AWS region of the key (AWS KMS only).
    public var region: String?
    /// The service's ciphertext of the secret as one line of printable ASCII: base64 of AWS
    /// KMS's `CiphertextBlob`, or whatever line the command printed.
    public var ciphertext: String

    public init(provider: String, keyID: String, region: String? = nil, ciphertext: String) {
        self.provider = provider; self.keyID = keyID; self.region = region; self.ciphertext = ciphertext
    }

    enum CodingKeys: String, CodingKey {
        case provider, keyID = "key_id", region, ciphertext
    }

    /// Longest `ciphertext` and `key_id` a reader accepts (a planted slot cannot make a reader
    /// send megabytes to its KMS).
    public static let maximumCiphertext = 8192, maximumKeyID = 2048

    /// True when every field is within what a service produces: a known provider, a non-empty
    /// key id and ciphertext of printable ASCII within the limits.
    public var isWellFormed: Bool {
        func printable(_ s: String, max: Int) -> Bool {
            !s.isEmpty && s.utf8.count <= max && s.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        }
        return ["aws-kms", "command"].contains(provider) && printable(keyID, max: Self.maximumKeyID)
            && printable(ciphertext, max: Self.maximumCiphertext) && (region.map { printable($0, max: 64) } ?? true)
    }
}

/// The KMS services a `.kms` credential may use, with an optional pin: when `pinnedKeyID` is
/// set, only slots whose key id is exactly it are tried (README, "Keys": a host that pins its
/// key cannot be handed a planted slot that unwraps under someone else's key).
public struct KMSAccess: Sendable {
    public var services: [any KeyManagementService]
    public var pinnedKeyID: String?

    public init(services: [any KeyManagementService], pinnedKeyID: String? = nil) {
        self.services = services; self.pinnedKeyID = pinnedKeyID
    }

    /// The service for slots of `provider`; nil when this process has none configured.
    public func service(for provider: String) -> (any KeyManagementService)? {
        services.first { $0.provider == provider }
    }
}
