public import RepoPrimitives
public import RepoIndex
public import RepoStorage

/// Accumulates encrypted blobs into one pack (FORMAT.md §Packs):
///
///     pack   = blob_0 || … || blob_{n-1} || sealedHeader || salt[32] || u32le len(sealedHeader) || "RPK1"
///     blob_i = AES-256-GCM(packKey, nonce = 0^4 || u64be(offset_i), ad = type || flags || id, stored_i)
///     packKey = HMAC-SHA256(masterKey.encryption, "repo/v1/pack" || salt)
///
/// Offsets are unique within a pack and every pack has a fresh random salt, so no
/// (key, nonce) pair repeats. The bytes go straight to a `StagedObject` (a temporary file for a
/// local repository) and are hashed as they go, so a writer holds no pack in memory; the caller
/// publishes the finished pack with `output.commit(as: descriptor.objectName)`.
/// Not thread-safe: one writer is used by one thread at a time.
public final class PackWriter: @unchecked Sendable {
    public let kind: BlobType
    private let salt: [UInt8]
    private let key: [UInt8]
    /// Where the pack's bytes go.
    public let output: StagedObject
    private let hasher = SHA256Hasher()
    private var offset = 0
    private(set) var entries: [PackBlobEntry] = []
    private let aes = AESGCM()

    public static let magic = Array("RPK1".utf8)
    static let label = Array("repo/v1/pack".utf8)
    public static let trailerSize = 32 + 4 + 4
    public static let headerNonce = [UInt8](repeating: 0xFF, count: 12)

    public init(kind: BlobType, master: MasterKey, output: StagedObject) {
        self.kind = kind
        self.output = output
        salt = SecureRandom.bytes(32)
        key = master.subkey(label: Self.label, salt: salt)
    }

    /// Bytes written so far.
    public var size: Int { offset }
    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    static func blobNonce(offset: Int) -> [UInt8] {
        var n = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { n[4 + i] = UInt8(truncatingIfNeeded: UInt64(offset) >> (56 - 8 * UInt64(i))) }
        return n
    }

    static func blobAD(type: BlobType, flags: UInt8, id: BlobID) -> [UInt8] {
        [type.rawValue, flags] + id.bytes
    }

    /// Encrypts and appends one blob whose stored form (`stored`, compressed or raw) is ready.
    public func append(id: BlobID, type: BlobType, flags: UInt8, rawLength: Int, stored: UnsafeRawBufferPointer) throws {
        let sealed = try aes.seal(key: key, nonce: Self.blobNonce(offset: offset),
                                  associatedData: Self.blobAD(type: type, flags: flags, id: id), plaintext: stored)
        try write(sealed)
        entries.append(PackBlobEntry(id: id, type: type, flags: flags, offset: offset - sealed.count, length: sealed.count, rawLength: rawLength))
    }

    private func write(_ bytes: [UInt8]) throws {
        try output.append(bytes)
        hasher.update(bytes)
        offset += bytes.count
    }

    /// Seals the header and appends it and the trailer; returns the finished pack's descriptor
    /// (its name is the SHA-256 of every byte written). The pack is not published yet.
    public func finish() throws -> PackDescriptor {
        var header = ByteWriter(capacity: 6 + entries.count * PackBlobEntry.encodedSize)
        header.u8(1)                // header version
        header.u8(kind.rawValue)
        header.u32(UInt32(entries.count))
        for e in entries { e.encode(into: &header) }
        let sealed = try aes.seal(key: key, nonce: Self.headerNonce, associatedData: Self.magic + salt, plaintext: header.bytes)
        var t = ByteWriter()
        t.raw(sealed)
        t.raw(salt)
        t.u32(UInt32(sealed.count))
        t.raw(Self.magic)
        try write(t.bytes)
        return PackDescriptor(name: hasher.finalize(), salt: salt, kind: kind, size: offset, blobs: entries)
    }
}
