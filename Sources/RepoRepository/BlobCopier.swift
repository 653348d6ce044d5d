public import RepoPrimitives
public import RepoIndex

/// Moves blobs from one pack into another without decompressing them: decrypts a blob's stored
/// form under its old pack's key and appends it, with the same type, flags and lengths, to a
/// `PackWriter` (which encrypts it under the new pack's key and offset). Used by prune to
/// repack. Not thread-safe: one per thread.
public final class BlobCopier {
    private let aes = AESGCM()
    /// Opens blobs: under the current root or, during a rotation, a retired one (FORMAT.md §7.6).
    private let reader: PackReader

    public init(master: MasterKey) { reader = PackReader(master: master) }

    /// Copies the blob `entry` whose encrypted bytes are `sealed` (from the pack `pack` with
    /// salt `packSalt`) into `writer`.
    /// - Throws: `RepoError(.integrity)` if the blob does not authenticate.
    public func copy(_ sealed: UnsafeRawBufferPointer, entry: PackBlobEntry, packSalt: [UInt8], pack: Hash256,
                     into writer: PackWriter) throws {
        let stored: [UInt8]
        do {
            stored = try reader.withPackKey(salt: packSalt) { key in
                try aes.open(key: key, nonce: PackWriter.blobNonce(offset: entry.offset),
                             associatedData: PackWriter.blobAD(type: entry.type, flags: entry.flags, id: entry.id),
                             sealed: sealed)
            }
        } catch {
            throw RepoError(.integrity, "blob \(entry.id.shortHex) in pack \(pack.hex): authentication failed (data corrupted)",
                            hint: "run `repo check --read-data` to list every damaged pack")
        }
        try stored.withUnsafeBytes {
            try writer.append(id: entry.id, type: entry.type, flags: entry.flags, rawLength: entry.rawLength, stored: $0)
        }
    }
}
