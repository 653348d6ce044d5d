public import RepoPrimitives
public import RepoIndex
public import RepoStorage

/// Reads pack headers and blobs (the inverse of `PackWriter`). Not thread-safe: one per thread.
public final class PackReader {
    private let master: MasterKey
    private let aes = AESGCM()
    private let zstd = ZstdDecompressor()
    /// The pack key that last opened something, and the salt it belongs to: consecutive blobs
    /// of one pack cost no key derivation, and during a rotation (FORMAT.md §7.6) a pack under
    /// a retired root is not tried under the current one for every blob.
    private var cachedSalt: [UInt8] = [], cachedKey: [UInt8] = []

    public init(master: MasterKey) { self.master = master }

    /// Runs `attempt` with the pack key of `salt`: the cached one, else the current root's,
    /// then each retired root's (FORMAT.md §7.6), until one authenticates.
    ///
    /// - Throws: `CryptoError.authenticationFailed` when none does; what `attempt` throws otherwise.
    func withPackKey<T>(salt: [UInt8], _ attempt: ([UInt8]) throws -> T) throws -> T {
        if salt == cachedSalt, let value = try? attempt(cachedKey) { return value }
        var failure: Error = CryptoError.authenticationFailed
        for key in master.readSubkeys(label: PackWriter.label, salt: salt) where !(salt == cachedSalt && key == cachedKey) {
            do {
                let value = try attempt(key)
                cachedSalt = salt; cachedKey = key
                return value
            } catch { failure = error }
        }
        throw failure
    }

    /// Whether the pack with trailer salt `salt`, whose header this reader has just read, is
    /// encrypted under the current root (false: a retired one, FORMAT.md §7.6).
    public func isUnderCurrentRoot(salt: [UInt8]) -> Bool {
        cachedSalt == salt && cachedKey == master.subkey(label: PackWriter.label, salt: salt)
    }

    /// Parses a pack's header from its last bytes. `tail` must hold at least the sealed header
    /// and trailer; `packSize` is the whole object's size.
    public func header(name: Hash256, tail: [UInt8], packSize: Int) throws -> PackDescriptor {
        let label = "pack \(name.shortHex)"
        let t = tail.count
        guard t >= PackWriter.trailerSize + 16, Array(tail[(t - 4)...]) == PackWriter.magic else {
            throw RepoError(.integrity, "\(label): not a pack (bad trailer magic or truncated)")
        }
        let salt = Array(tail[(t - 40)..<(t - 8)])
        let hlen = Int(tail.readLE(UInt32.self, at: t - 8))
        guard hlen >= 16, hlen + PackWriter.trailerSize <= t else {
            throw RepoError(.integrity, "\(label): header length \(hlen) does not fit the pack")
        }
        let start = t - PackWriter.trailerSize - hlen
        let plain: [UInt8]
        do {
            plain = try withPackKey(salt: salt) { key in
                try tail.withUnsafeBytes {
                    try aes.open(key: key, nonce: PackWriter.headerNonce, associatedData: PackWriter.magic + salt,
                                 sealed: UnsafeRawBufferPointer(rebasing: $0[start..<(t - PackWriter.trailerSize)]))
                }
            }
        } catch {
            throw RepoError(.integrity, "\(label): header authentication failed (pack corrupted)")
        }
        var r = ByteReader(plain)
        guard try r.u8() == 1 else { throw RepoError(.integrity, "\(label): unknown header version") }
        guard let kind = BlobType(rawValue: try r.u8()) else { throw RepoError(.integrity, "\(label): unknown pack kind") }
        let count = Int(try r.u32())
        guard r.remaining == count * PackBlobEntry.encodedSize else {
            throw RepoError(.integrity, "\(label): header lists \(count) blobs but has \(r.remaining) bytes of entries")
        }
        var entries: [PackBlobEntry] = []
        entries.reserveCapacity(count)
        let headerStart = packSize - PackWriter.trailerSize - hlen
        for _ in 0..<count {
            let e = try PackBlobEntry.decode(from: &r)
            // `offset + length` could overflow for a crafted offset; compare without adding.
            guard e.offset <= headerStart, e.length <= headerStart - e.offset else {
                throw RepoError(.integrity, "\(label): blob \(e.id.shortHex) lies outside the pack's data area")
            }
            entries.append(e)
        }
        return PackDescriptor(name: name, salt: salt, kind: kind, size: packSize, blobs: entries)
    }

    /// Reads and parses the header of a pack object in a backend (two ranged reads at most).
    public func readHeader(name: Hash256, backend: StorageBackend) throws -> PackDescriptor {
        let objectName = PackDescriptor.objectName(name)
        let size = try backend.stat(objectName).size
        let guess = min(size, 64 * 1024)
        var tail = try backend.get(objectName, range: (size - guess)..<size)
        if guess >= 8 {
            let hlen = Int(tail.readLE(UInt32.self, at: tail.count - 8))
            let need = hlen + PackWriter.trailerSize
            if need > guess && need <= size {
                tail = try backend.get(objectName, range: (size - need)..<size)
            }
        }
        return try header(name: name, tail: tail, packSize: size)
    }

    /// Decrypts (and decompresses) one blob from its encrypted bytes.
    public func open(_ sealed: UnsafeRawBufferPointer, entry: PackBlobEntry, packSalt: [UInt8], pack: Hash256) throws -> [UInt8] {
        let stored: [UInt8]
        do {
            stored = try withPackKey(salt: packSalt) { key in
                try aes.open(key: key, nonce: PackWriter.blobNonce(offset: entry.offset),
                             associatedData: PackWriter.blobAD(type: entry.type, flags: entry.flags, id: entry.id),
                             sealed: sealed)
            }
        } catch {
            throw RepoError(.integrity, "blob \(entry.id.shortHex) in pack \(pack.hex): authentication failed (data corrupted)",
                            hint: "run `repo check --read-data` to list every damaged pack")
        }
        guard entry.isCompressed else {
            guard stored.count == entry.rawLength else {
                throw RepoError(.integrity, "blob \(entry.id.shortHex) in pack \(pack.hex): length mismatch")
            }
            return stored
        }
        do {
            return try stored.withUnsafeBytes { try zstd.decompress($0, expectedSize: entry.rawLength) }
        } catch {
            throw RepoError(.integrity, "blob \(entry.id.shortHex) in pack \(pack.hex): \(error)")
        }
    }
}
