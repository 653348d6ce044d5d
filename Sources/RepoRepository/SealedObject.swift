public import RepoPrimitives

/// The encrypted envelope of index segments, snapshots and locks (FORMAT.md §Sealed objects):
///
///     object = magic[4] || salt[32] || AES-256-GCM(k, nonce = 0^12, ad = magic || salt, inner)
///     k      = HMAC-SHA256(masterKey.encryption, "repo/v1/object" || magic || salt)
///     inner  = u8 codec (0 raw, 1 zstd) || u64le plaintext length || body
///
/// Each object has its own random salt and therefore its own key, so the fixed nonce is never
/// reused under one key. The object's name is the SHA-256 of its bytes.
public enum SealedObject {
    public enum Kind: String, Sendable {
        case index = "RIX1", snapshot = "RSN1", lock = "RLK1"
        /// Retention: a pin (legal hold) on one snapshot, and the repository's default policy.
        case pin = "RPN1", policy = "RPL1"

        public var magic: [UInt8] { Array(rawValue.utf8) }
        /// The backend folder objects of this kind live in.
        public var folder: String {
            switch self {
            case .index: "index"; case .snapshot: "snapshots"; case .lock: "locks"
            case .pin: "pins"; case .policy: "policy"
            }
        }
    }

    static let label = Array("repo/v1/object".utf8)

    /// Seals `body`, compressing it with zstd when that makes it smaller.
    public static func seal(_ body: [UInt8], kind: Kind, key: MasterKey) throws -> [UInt8] {
        let salt = SecureRandom.bytes(32)
        var inner = ByteWriter(capacity: body.count + 9)
        if let z = body.withUnsafeBytes({ ZstdCompressor(level: 3).compressIfSmaller($0) }) {
            inner.u8(1); inner.u64(UInt64(body.count)); inner.raw(z)
        } else {
            inner.u8(0); inner.u64(UInt64(body.count)); inner.raw(body)
        }
        let k = key.subkey(label: label + kind.magic, salt: salt)
        let sealed = try AESGCM().seal(key: k, nonce: [UInt8](repeating: 0, count: 12), associatedData: kind.magic + salt,
                                       plaintext: inner.bytes)
        return kind.magic + salt + sealed
    }

    /// Opens an object of the expected kind. Throws `RepoError(.integrity)` if it is not one,
    /// was modified, or was sealed under another key.
    public static func open(_ object: [UInt8], kind: Kind, key: MasterKey, name: String) throws -> [UInt8] {
        guard object.count >= 4 + 32 + 16 + 9, Array(object[0..<4]) == kind.magic else {
            throw RepoError(.integrity, "\(name): not a \(kind.folder) object (bad magic or truncated)")
        }
        let salt = Array(object[4..<36])
        let k = key.subkey(label: label + kind.magic, salt: salt)
        let inner: [UInt8]
        do {
            inner = try object.withUnsafeBytes {
                try AESGCM().open(key: k, nonce: [UInt8](repeating: 0, count: 12), associatedData: kind.magic + salt,
                                  sealed: UnsafeRawBufferPointer(rebasing: $0[36...]))
            }
        } catch {
            throw RepoError(.integrity, "\(name): authentication failed (the object is corrupted or was not written with this repository's key)")
        }
        var r = ByteReader(inner)
        let codec = try r.u8()
        guard let length = Int(exactly: try r.u64()) else { throw RepoError(.integrity, "\(name): impossible length") }
        let body = try r.raw(r.remaining)
        switch codec {
        case 0:
            guard body.count == length else { throw RepoError(.integrity, "\(name): length mismatch") }
            return body
        case 1:
            return try body.withUnsafeBytes { try ZstdDecompressor().decompress($0, expectedSize: length) }
        default:
            throw RepoError(.integrity, "\(name): unknown codec \(codec)")
        }
    }

    /// Backend name for a sealed object: `<folder>/<sha256 hex of its bytes>`.
    public static func objectName(kind: Kind, bytes: [UInt8]) -> (name: String, id: Hash256) {
        let id = SHA256Hasher.hash(bytes)
        return (kind.folder + "/" + id.hex, id)
    }
}
