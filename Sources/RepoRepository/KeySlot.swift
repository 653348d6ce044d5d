public import RepoPrimitives
import Foundation

/// One way to open the repository: the master key wrapped under a key derived from a password
/// with scrypt. Stored as JSON in `keys/<id>`; adding or removing a slot never touches data.
public struct KeySlot: Codable, Sendable {
    public var version: Int = 1
    public var kdf: String = "scrypt"
    public var n: UInt64
    public var r: UInt64
    public var p: UInt64
    /// Hex of the 32-byte scrypt salt.
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

    static func associatedData(repositoryID: Hash256) -> [UInt8] {
        Array("repo/v1/keyslot".utf8) + repositoryID.bytes
    }

    /// Wraps `master` under `password`.
    public static func make(master: MasterKey, password: [UInt8], repositoryID: Hash256,
                            n: UInt64 = defaultN, host: String, username: String) throws -> KeySlot {
        let salt = SecureRandom.bytes(32), nonce = SecureRandom.bytes(12)
        let kek = try Scrypt.derive(password: password, salt: salt, n: n, r: 8, p: 1, length: 32)
        let wrapped = try AESGCM().seal(key: kek, nonce: nonce, associatedData: associatedData(repositoryID: repositoryID),
                                        plaintext: master.serialized)
        return KeySlot(n: n, r: 8, p: 1, salt: Hex.encode(salt), nonce: Hex.encode(nonce), wrapped: Hex.encode(wrapped),
                       created: Timestamp.format(Date()), host: host, username: username)
    }

    /// Unwraps the master key; nil when the password does not open this slot.
    public func open(password: [UInt8], repositoryID: Hash256) throws -> MasterKey? {
        guard kdf == "scrypt", let salt = Hex.decode(salt), let nonce = Hex.decode(nonce), nonce.count == 12,
              let wrapped = Hex.decode(wrapped) else {
            throw RepoError(.integrity, "key slot is malformed (unknown kdf or bad hex)")
        }
        // Bound the work and memory a (possibly planted) slot can demand: at most 1 GiB.
        guard salt.count >= 16, n >= 2, n & (n - 1) == 0, r >= 1, r <= 32, p >= 1, p <= 16,
              n <= (1 << 30) / (128 * r) else {
            throw RepoError(.integrity, "key slot has implausible scrypt parameters N=\(n) r=\(r) p=\(p)")
        }
        let kek = try Scrypt.derive(password: password, salt: salt, n: n, r: r, p: p, length: 32)
        do {
            let plain = try AESGCM().open(key: kek, nonce: nonce, associatedData: Self.associatedData(repositoryID: repositoryID),
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
