public import RepoPrimitives
public import Foundation

/// The repository's random master secret: three independent 32-byte keys, plus, while a
/// master-key rotation runs (FORMAT.md §7.6), the encryption roots it retires. It never leaves
/// memory unwrapped; key slots hold it encrypted under password-derived keys.
public struct MasterKey: Sendable, Equatable {
    /// Root of every encryption key (pack keys and object keys are derived from it): what every
    /// new object is written under.
    public var encryption: [UInt8]
    /// HMAC-SHA256 key that turns plaintext into blob ids.
    public var blobID: [UInt8]
    /// Key from which the chunker's gear table is derived.
    public var chunker: [UInt8]
    /// Encryption roots of the master key a rotation replaces (FORMAT.md §7.6): objects not yet
    /// re-encrypted are still read under them, nothing is written under them. Empty outside a
    /// rotation.
    public var retired: [[UInt8]] = []
    /// When the rotation began (its first slot change), on the storage's clock; nil outside one.
    public var rotationStarted: Date?

    public static let magic = Array("RMK1".utf8)
    /// A master key during a rotation: `RMK1`'s fields, the start, and the retired roots.
    public static let rotationMagic = Array("RMK2".utf8)

    public init(encryption: [UInt8], blobID: [UInt8], chunker: [UInt8]) {
        self.encryption = encryption; self.blobID = blobID; self.chunker = chunker
    }

    public static func generate() -> MasterKey {
        MasterKey(encryption: SecureRandom.bytes(32), blobID: SecureRandom.bytes(32), chunker: SecureRandom.bytes(32))
    }

    /// Whether a rotation is under way (this key carries retired encryption roots).
    public var isRotating: Bool { !retired.isEmpty }

    /// `"RMK1" || encryption || blobID || chunker` (100 bytes); during a rotation
    /// `"RMK2" || encryption || blobID || chunker || u64le started (Unix seconds) || u8 n || retired × n`.
    public var serialized: [UInt8] {
        guard !retired.isEmpty else { return Self.magic + encryption + blobID + chunker }
        var w = ByteWriter(capacity: 109 + 32 * retired.count)
        w.raw(Self.rotationMagic); w.raw(encryption); w.raw(blobID); w.raw(chunker)
        w.u64(UInt64(max(0, (rotationStarted ?? Date(timeIntervalSince1970: 0)).timeIntervalSince1970.rounded(.down))))
        w.u8(UInt8(retired.count))
        for r in retired { w.raw(r) }
        return w.bytes
    }

    public init(serialized b: [UInt8]) throws {
        if b.count == 100, Array(b[0..<4]) == Self.magic {
            self.init(encryption: Array(b[4..<36]), blobID: Array(b[36..<68]), chunker: Array(b[68..<100]))
            return
        }
        guard b.count >= 109 + 32, Array(b[0..<4]) == Self.rotationMagic, Int(b[108]) >= 1,
              b.count == 109 + 32 * Int(b[108]) else {
            throw RepoError(.integrity, "key slot holds a malformed master key")
        }
        self.init(encryption: Array(b[4..<36]), blobID: Array(b[36..<68]), chunker: Array(b[68..<100]))
        let seconds = b.readLE(UInt64.self, at: 100)
        rotationStarted = Date(timeIntervalSince1970: TimeInterval(seconds))
        retired = (0..<Int(b[108])).map { Array(b[(109 + 32 * $0)..<(141 + 32 * $0)]) }
    }

    /// The key without its retired roots: what the slots hold once a rotation is finished.
    public var withoutRetired: MasterKey { MasterKey(encryption: encryption, blobID: blobID, chunker: chunker) }

    /// A subkey for one object: HMAC-SHA256(encryption, label || salt), under the current root.
    public func subkey(label: [UInt8], salt: [UInt8]) -> [UInt8] {
        HMACSHA256.mac(key: encryption, label + salt)
    }

    /// The subkeys to try when reading an object: the current root's first, then each retired
    /// root's (FORMAT.md §7.6). One key outside a rotation.
    public func readSubkeys(label: [UInt8], salt: [UInt8]) -> [[UInt8]] {
        [subkey(label: label, salt: salt)] + retired.map { HMACSHA256.mac(key: $0, label + salt) }
    }

    /// A public fingerprint of an encryption root: the first 8 bytes of
    /// HMAC-SHA256(root, "repo/v1/master-id"), in hex. Key slots record it (`master`) so that
    /// slots of two generations can be told apart without opening them; it reveals nothing of
    /// the root.
    public static func fingerprint(_ root: [UInt8]) -> String {
        Hex.encode(Array(HMACSHA256.mac(key: root, Array("repo/v1/master-id".utf8)).prefix(8)))
    }

    /// The fingerprint of the current encryption root.
    public var fingerprint: String { Self.fingerprint(encryption) }
}
