public import RepoPrimitives
import Foundation

/// One way to open the repository: the master key wrapped under a key derived from a password
/// with scrypt (`kdf` `"scrypt"`), from a key file's secret with HMAC-SHA256 (`kdf`
/// `"keyfile"`), or from a secret that a key management service wraps (`kdf` `"kms"`). Stored
/// as JSON in `keys/<id>` (FORMAT.md §7.2, §7.4, §7.5); adding or removing a slot never touches
/// data.
public struct KeySlot: Codable, Sendable {
    /// What opens a slot, as `repo key list` names it.
    public enum Kind: String, Sendable {
        /// `kdf` `"scrypt"`: a password.
        case password
        /// `kdf` `"keyfile"`: a machine key file (FORMAT.md §7.4).
        case keyFile = "keyfile"
        /// `kdf` `"kms"`: a secret wrapped by a key management service (FORMAT.md §7.5).
        case kms
    }

    public var version: Int = 1
    /// `"scrypt"`, `"keyfile"` or `"kms"`; any other value makes the slot unreadable (skipped).
    public var kdf: String
    /// scrypt cost (only in `scrypt` slots).
    public var n: UInt64?
    public var r: UInt64?
    public var p: UInt64?
    /// Hex of the 32-byte random salt (scrypt's, or the key-file derivation's).
    public var salt: String
    /// Hex of the 12-byte GCM nonce.
    public var nonce: String
    /// Hex of AES-256-GCM(kek, nonce, ad, masterKey.serialized) including the tag.
    public var wrapped: String
    public var created: String
    public var host: String
    public var username: String
    /// The service, key and ciphertext of a `kms` slot's secret (only in `kms` slots).
    public var kms: KMSEnvelope?
    /// `MasterKey.fingerprint` of the encryption root the slot wraps (FORMAT.md §7.6):
    /// informational, and how a rotation tells its own slots from the ones it replaces. Absent
    /// in slots written before rotation existed.
    public var master: String?
    /// True in the *transition* slots of a rotation, which wrap the key with its retired roots
    /// (FORMAT.md §7.6); openers try them first. Absent otherwise.
    public var transition: Bool?

    /// Default scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s).
    public static let defaultN: UInt64 = 1 << 15
    static let scryptKDF = "scrypt", keyFileKDF = "keyfile", kmsKDF = "kms"

    /// The slot's kind; nil for a `kdf` this version does not know.
    public var kind: Kind? {
        switch kdf {
        case Self.scryptKDF: .password
        case Self.keyFileKDF: .keyFile
        case Self.kmsKDF: .kms
        default: nil
        }
    }

    /// `"repo/v1/keyslot" || id` for scrypt slots, `"repo/v1/keyslot/keyfile" || id` for key-file
    /// slots, `"repo/v1/keyslot/kms" || id` for KMS slots (FORMAT.md §7.2, §7.4, §7.5): the
    /// repository and the slot's kind are authenticated.
    static func associatedData(kind: Kind, repositoryID: Hash256) -> [UInt8] {
        let label = switch kind {
        case .password: "repo/v1/keyslot"
        case .keyFile: "repo/v1/keyslot/keyfile"
        case .kms: "repo/v1/keyslot/kms"
        }
        return Array(label.utf8) + repositoryID.bytes
    }

    /// The key-encryption key of a KMS slot: HMAC-SHA256(secret, "repo/v1/kms" || salt)
    /// (FORMAT.md §7.5), where the secret is the 32 bytes the service unwrapped.
    public static func kmsKEK(secret: [UInt8], salt: [UInt8]) -> [UInt8] {
        HMACSHA256.mac(key: secret, Array("repo/v1/kms".utf8) + salt)
    }

    /// The key-encryption key of a key-file slot: HMAC-SHA256(secret, "repo/v1/keyfile" || salt)
    /// (FORMAT.md §7.4), 32 bytes. The secret is uniformly random, so one keyed hash is a sound
    /// KDF and no stretching is needed: it costs about a microsecond.
    public static func keyFileKEK(secret: [UInt8], salt: [UInt8]) -> [UInt8] {
        HMACSHA256.mac(key: secret, Array("repo/v1/keyfile".utf8) + salt)
    }

    /// Wraps `master` in a new `kms` slot: a fresh random secret, wrapped by `service` under its
    /// key `keyID`, is the root of the slot's KEK (FORMAT.md §7.5).
    ///
    /// - Throws: what `service.wrap` throws (`RepoError` `.keyService`).
    public static func make(master: MasterKey, service: any KeyManagementService, keyID: String, repositoryID: Hash256,
                            host: String, username: String) throws -> KeySlot {
        let secret = SecureRandom.bytes(32), salt = SecureRandom.bytes(32), nonce = SecureRandom.bytes(12)
        let envelope = try service.wrap(secret: secret, keyID: keyID, repositoryID: repositoryID)
        guard envelope.isWellFormed else {
            throw RepoError(.keyService, "the \(service.provider) service returned a ciphertext this format cannot store (empty, over \(KMSEnvelope.maximumCiphertext) bytes, or not one line of printable ASCII)")
        }
        var slot = KeySlot(kdf: kmsKDF, salt: Hex.encode(salt), nonce: Hex.encode(nonce), wrapped: "",
                           created: Timestamp.format(Date()), host: host, username: username, kms: envelope)
        try slot.wrap(master, kek: kmsKEK(secret: secret, salt: salt), nonce: nonce, repositoryID: repositoryID)
        return slot
    }

    /// Wraps `master` in a new slot that `credential` opens; `n` is the scrypt cost of a
    /// password slot (ignored for key files). KMS slots are made by
    /// `make(master:service:keyID:…)`.
    public static func make(master: MasterKey, credential: Credential, repositoryID: Hash256,
                            n: UInt64 = defaultN, host: String, username: String) throws -> KeySlot {
        let salt = SecureRandom.bytes(32), nonce = SecureRandom.bytes(12)
        var slot = KeySlot(kdf: scryptKDF, salt: Hex.encode(salt), nonce: Hex.encode(nonce), wrapped: "",
                           created: Timestamp.format(Date()), host: host, username: username)
        let kek: [UInt8]
        switch credential {
        case .password(let password):
            kek = try Scrypt.derive(password: password, salt: salt, n: n, r: 8, p: 1, length: 32)
            slot.n = n; slot.r = 8; slot.p = 1
        case .keyFile(let file):
            kek = keyFileKEK(secret: file.secret, salt: salt)
            slot.kdf = keyFileKDF
        case .kms:
            throw RepoError(.usage, "a KMS slot is made with a service and a key id (`repo key add --kms-key-id ID`)")
        }
        try slot.wrap(master, kek: kek, nonce: nonce, repositoryID: repositoryID)
        return slot
    }

    /// Sets `wrapped`, `master` and `transition` for `master` under `kek`.
    private mutating func wrap(_ master: MasterKey, kek: [UInt8], nonce: [UInt8], repositoryID: Hash256) throws {
        guard let kind else { throw RepoError(.integrity, "key slot has an unknown kdf \"\(kdf)\"") }
        wrapped = Hex.encode(try AESGCM().seal(key: kek, nonce: nonce, associatedData: Self.associatedData(kind: kind, repositoryID: repositoryID),
                                               plaintext: master.serialized))
        self.master = master.fingerprint
        transition = master.isRotating ? true : nil
    }

    /// New slots that the same credential opens, one wrapping each of `masters`: for a
    /// rotation (FORMAT.md §7.6), which carries a slot over to the new key. Each has a fresh
    /// salt and nonce (a password's scrypt runs again; a KMS slot's secret is unwrapped once and
    /// kept, so its ciphertext and key id stay), and this slot's `created`, `host` and
    /// `username`. Nil when `credential` does not open this slot.
    ///
    /// - Throws: as `open`.
    public func rewrapped(masters: [MasterKey], credential: Credential, repositoryID: Hash256) throws -> [KeySlot]? {
        guard let (root, _) = try unwrap(credential, repositoryID: repositoryID) else { return nil }
        return try masters.map { master in
            let salt = SecureRandom.bytes(32), nonce = SecureRandom.bytes(12)
            var slot = self
            slot.salt = Hex.encode(salt); slot.nonce = Hex.encode(nonce)
            let kek: [UInt8]
            switch credential {
            case .password(let password):
                kek = try Scrypt.derive(password: password, salt: salt, n: n ?? Self.defaultN, r: r ?? 8, p: p ?? 1, length: 32)
            case .keyFile(let file):
                kek = Self.keyFileKEK(secret: file.secret, salt: salt)
            case .kms:
                kek = Self.kmsKEK(secret: root, salt: salt)
            }
            try slot.wrap(master, kek: kek, nonce: nonce, repositoryID: repositoryID)
            return slot
        }
    }

    /// The slot's salt, nonce and wrapped key, after checking every field a reader relies on
    /// (FORMAT.md §7.2): a known `kdf`, well-formed hex, a salt of at least 16 bytes, a 12-byte
    /// nonce, and for scrypt a cost within N a power of two, 128·r·N ≤ 1 GiB, r ≤ 32, p ≤ 16.
    ///
    /// - Throws: `RepoError` `.integrity` naming the first field that is wrong.
    public func checkedFields() throws -> (kind: Kind, salt: [UInt8], nonce: [UInt8], wrapped: [UInt8]) {
        guard let kind else { throw RepoError(.integrity, "key slot has an unknown kdf \"\(kdf)\"") }
        guard let salt = Hex.decode(salt), salt.count >= 16, let nonce = Hex.decode(nonce), nonce.count == 12,
              let wrapped = Hex.decode(wrapped) else {
            throw RepoError(.integrity, "key slot is malformed (bad hex, a salt under 16 bytes or a nonce other than 12 bytes)")
        }
        if kind == .kms {
            guard let kms, kms.isWellFormed else {
                throw RepoError(.integrity, "KMS key slot has a missing or malformed \"kms\" object (provider, key_id, ciphertext)")
            }
        }
        if kind == .password {
            // Bound the work and memory a (possibly planted) slot can demand: at most 1 GiB.
            guard let n, let r, let p, n >= 2, n & (n - 1) == 0, r >= 1, r <= 32, p >= 1, p <= 16,
                  n <= (1 << 30) / (128 * r) else {
                throw RepoError(.integrity, "key slot has missing or implausible scrypt parameters N=\(n.map(String.init) ?? "-") r=\(r.map(String.init) ?? "-") p=\(p.map(String.init) ?? "-")")
            }
        }
        return (kind, salt, nonce, wrapped)
    }

    /// Unwraps the master key. Nil when `credential` does not open this slot: a wrong password,
    /// another key file, a slot of another kind (which costs no key derivation), or a KMS slot
    /// of a provider the credential has no service for, or of a key other than a pinned one.
    ///
    /// - Throws: `RepoError` `.integrity` when the slot is malformed (`checkedFields`) or wraps
    ///   a malformed master key; `.keyService` when the KMS refuses or cannot be reached.
    public func open(_ credential: Credential, repositoryID: Hash256) throws -> MasterKey? {
        try unwrap(credential, repositoryID: repositoryID)?.master
    }

    /// `open`, also returning the slot's root secret: the KMS secret of a `kms` slot (empty for
    /// the other kinds, whose credential is the root).
    func unwrap(_ credential: Credential, repositoryID: Hash256) throws -> (root: [UInt8], master: MasterKey)? {
        let (kind, salt, nonce, wrapped) = try checkedFields()
        let kek: [UInt8]
        var root: [UInt8] = []
        switch credential {
        case .password(let password):
            guard kind == .password, let n, let r, let p else { return nil }
            kek = try Scrypt.derive(password: password, salt: salt, n: n, r: r, p: p, length: 32)
        case .keyFile(let file):
            guard kind == .keyFile else { return nil }
            kek = Self.keyFileKEK(secret: file.secret, salt: salt)
        case .kms(let access):
            guard kind == .kms, let kms, let service = access.service(for: kms.provider),
                  access.pinnedKeyID.map({ $0 == kms.keyID }) ?? true else { return nil }
            let secret = try service.unwrap(kms, repositoryID: repositoryID)
            guard secret.count == 32 else {
                throw RepoError(.integrity, "the \(kms.provider) service unwrapped \(secret.count) bytes for a KMS slot; the secret is 32")
            }
            kek = Self.kmsKEK(secret: secret, salt: salt)
            root = secret
        }
        do {
            let plain = try AESGCM().open(key: kek, nonce: nonce,
                                          associatedData: Self.associatedData(kind: kind, repositoryID: repositoryID),
                                          sealed: wrapped)
            return (root, try MasterKey(serialized: plain))
        } catch CryptoError.authenticationFailed {
            return nil
        }
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try enc.encode(self)) + [0x0A]
    }

    public static func decode(_ bytes: [UInt8]) throws -> KeySlot {
        try JSONDecoder().decode(KeySlot.self, from: Data(bytes))
    }
}
