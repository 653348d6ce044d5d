public import RepoPrimitives

/// The repository's random master secret: three independent 32-byte keys. It never leaves
/// memory unwrapped; key slots hold it encrypted under password-derived keys.
public struct MasterKey: Sendable, Equatable {
    /// Root of every encryption key (pack keys and object keys are derived from it).
    public var encryption: [UInt8]
    /// HMAC-SHA256 key that turns plaintext into blob ids.
    public var blobID: [UInt8]
    /// Key from which the chunker's gear table is derived.
    public var chunker: [UInt8]

    public static let magic = Array("RMK1".utf8)

    public init(encryption: [UInt8], blobID: [UInt8], chunker: [UInt8]) {
        self.encryption = encryption; self.blobID = blobID; self.chunker = chunker
    }

    public static func generate() -> MasterKey {
        MasterKey(encryption: SecureRandom.bytes(32), blobID: SecureRandom.bytes(32), chunker: SecureRandom.bytes(32))
    }

    /// `"RMK1" || encryption || blobID || chunker` (100 bytes).
    public var serialized: [UInt8] { Self.magic + encryption + blobID + chunker }

    public init(serialized b: [UInt8]) throws {
        guard b.count == 100, Array(b[0..<4]) == Self.magic else {
            throw RepoError(.integrity, "key slot holds a malformed master key")
        }
        self.init(encryption: Array(b[4..<36]), blobID: Array(b[36..<68]), chunker: Array(b[68..<100]))
    }

    /// A subkey for one object: HMAC-SHA256(encryption, label || salt).
    public func subkey(label: [UInt8], salt: [UInt8]) -> [UInt8] {
        HMACSHA256.mac(key: encryption, label + salt)
    }
}
