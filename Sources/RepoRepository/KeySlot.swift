public import RepoPrimitives
import Foundation

/// One way to open the repository: the master key wrapped under a key derived from a password
/// with scrypt (`kdf` `"scrypt"`), or from a key file's secret with HMAC-SHA256 (`kdf`
/// `"keyfile"`). Stored as JSON in `keys/<id>` (FORMAT.md §7.2); adding or removing a slot never
/// touches data.
public struct KeySlot: Codable, Sendable {
    /// What opens a slot, as `repo key list` names it.
    public enum Kind: String, Sendable {
        /// `kdf` `"scrypt"`: a password.
        case password
        /// `kdf` `"keyfile"`: a machine key file (FORMAT.md §7.4).
        case keyFile = "keyfile"
    }

    public var version: Int = 1
    /// `"scrypt"` or `"keyfile"`; any other value makes the slot unreadable (skipped).
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

    /// Default scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s).
    public static let defaultN: UInt64 = 1 << 15
    static let scryptKDF = "scrypt", keyFileKDF = "keyfile"

    /// The slot's kind; nil for a `kdf` this version does not know.
    public var kind: Kind? {
        switch kdf {
        case Self.scryptKDF: .password
        case Self.keyFileKDF: .keyFile
        default: nil
        }
    }

    /// `"repo/v1/keyslot" || id` for scrypt slots, `"repo/v1/keyslot/keyfile" || id` for key-file
    /// slots (FORMAT.md §7.2, §7.4): the repository and the slot's kind are authenticated.
    static func associatedData(kind: Kind, repositoryID: Hash256) -> [UInt8] {
        Array((kind == .password ? "repo/v1/keyslot" : "repo/v1/keyslot/keyfile").utf8) + repositoryID.bytes
    }

    /// The key-encryption key of a key-file slot: HMAC-SHA256(secret, "repo/v1/keyfile" || salt)
    /// (FORMAT.md §7.4), 32 bytes. The secret is uniformly random, so one keyed hash is a sound
    /// KDF and no stretching is needed: it costs about a microsecond.
    public static func keyFileKEK(secret: [UInt8], salt: [UInt8]) -> [UInt8] {
        HMACSHA256.mac(key: secret, Array("repo/v1/keyfile".utf8) + salt)
    }

    /// Wraps `master` in a new slot that `credential` opens; `n` is the scrypt cost of a
    /// password slot (ignored for key files).
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
        }
        slot.wrapped = Hex.encode(try AESGCM().seal(key: kek, nonce: nonce,
                                                    associatedData: associatedData(kind: credential.slotKind, repositoryID: repositoryID),
                                                    plaintext: master.serialized))
        return slot
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
    /// another key file, or a slot of the other kind (which costs no key derivation).
    ///
    /// - Throws: `RepoError` `.integrity` when the slot is malformed (`checkedFields`) or wraps
    ///   a malformed master key.
    public func open(_ credential: Credential, repositoryID: Hash256) throws -> MasterKey? {
        let (kind, salt, nonce, wrapped) = try checkedFields()
        let kek: [UInt8]
        switch credential {
        case .password(let password):
            guard kind == .password, let n, let r, let p else { return nil }
            kek = try Scrypt.derive(password: password, salt: salt, n: n, r: r, p: p, length: 32)
        case .keyFile(let file):
            guard kind == .keyFile else { return nil }
            kek = Self.keyFileKEK(secret: file.secret, salt: salt)
        }
        do {
            let plain = try AESGCM().open(key: kek, nonce: nonce,
                                          associatedData: Self.associatedData(kind: kind, repositoryID: repositoryID),
                                          sealed: wrapped)
            return try MasterKey(serialized: plain)
        } catch CryptoError.authenticationFailed {
            return nil
        }
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try enc.encode(self)) + [0x0A]
    }

    public static func decode(_ bytes: [UInt8]) throws -> KeySlot {
        try JSONDecoder().decode(KeySlot.self, from: Data(bytes))
    }
}
