public import RepoPrimitives

/// The encrypted envelope of index segments, snapshots, locks and the other small objects (FORMAT.md §Sealed objects):
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
        /// The WAL archive (FORMAT.md §27): one archived file, and the cluster it belongs to.
        case wal = "RWL1", walCluster = "RWC1"
        /// Run records (FORMAT.md §30): the outcome of a `check`, and of a restore drill.
        case check = "RCK1", drill = "RDR1"

        public var magic: [UInt8] { Array(rawValue.utf8) }
        /// The backend folder objects of this kind live in.
        public var folder: String {
            switch self {
            case .index: "index"; case .snapshot: "snapshots"; case .lock: "locks"
            case .pin: "pins"; case .policy: "policy"
            case .wal, .walCluster: "wal"
            case .check: "checks"; case .drill: "drills"
            }
        }
    }

    static let label = Array("repo/v1/object".utf8)

    /// Seals `body`, compressing it with zstd when that makes it smaller.
    ///
    /// - Parameters:
    ///   - context: bytes appended to the associated data, binding the object to something
    ///     the reader knows (a WAL object's file name, FORMAT.md §27); empty for other kinds.
    ///   - level: zstd level (0: store raw); `workers` > 1 compresses that many parts in
    ///     parallel, as concatenated frames (FORMAT.md §11).
    public static func seal(_ body: [UInt8], kind: Kind, key: MasterKey, context: [UInt8] = [],
                            level: Int32 = 3, workers: Int32 = 0) throws -> [UInt8] {
        try body.withUnsafeBytes { try seal($0, kind: kind, key: key, context: context, level: level, workers: workers) }
    }

    /// `seal` of bytes in place (a mapped file), copied only if they do not compress.
    public static func seal(_ body: UnsafeRawBufferPointer, kind: Kind, key: MasterKey, context: [UInt8] = [],
                            level: Int32 = 3, workers: Int32 = 0) throws -> [UInt8] {
        let salt = SecureRandom.bytes(32)
        let k = key.subkey(label: label + kind.magic, salt: salt)
        let associatedData = kind.magic + salt + context
        if level > 0 && workers > 1 {
            // The object is assembled in one buffer: magic ‖ salt ‖ codec ‖ length ‖ frames ‖
            // tag. The frames are compressed into it and encrypted in place as each joins the
            // ones before, while later frames are still compressing (a 16 MiB WAL segment,
            // FORMAT.md §27: no copy of the compressed bytes, and little left to do at the end).
            let header = 4 + 32 + 9
            let capacity = header + ZstdCompressor.partsBound(body.count, workers: Int(workers)) + AESGCM.tagSize
            var failure: Error?
            let object = [UInt8](unsafeUninitializedCapacity: capacity) { buf, count in
                count = 0
                let base = UnsafeMutableRawBufferPointer(buf)
                var inner = ByteWriter(capacity: header)
                inner.raw(kind.magic); inner.raw(salt); inner.u8(1); inner.u64(UInt64(body.count))
                inner.bytes.withUnsafeBytes { base.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: header) }
                let gcm = AESGCM()
                do {
                    try gcm.sealBegin(key: k, nonce: [UInt8](repeating: 0, count: 12), associatedData: associatedData)
                    try gcm.sealUpdate(inPlace: UnsafeMutableRawBufferPointer(rebasing: base[36..<header]))
                } catch { failure = error; return }
                guard let n = ZstdCompressor.compressInParts(
                    body, level: level, workers: Int(workers),
                    into: UnsafeMutableRawBufferPointer(rebasing: base[header..<(capacity - AESGCM.tagSize)]),
                    emit: { frame in
                        do { try gcm.sealUpdate(inPlace: frame); return true } catch { failure = error; return false }
                    }) else { return }
                do {
                    try gcm.sealFinish(tag: base.baseAddress! + header + n)
                    count = header + n + AESGCM.tagSize
                } catch { failure = error }
            }
            if let failure { throw failure }
            if !object.isEmpty { return object }
        }
        var inner = ByteWriter(capacity: 9)
        let compressed = level <= 0 || workers > 1 ? nil : ZstdCompressor(level: level).compressIfSmaller(body)
        let sealed: [UInt8]
        if let z = compressed {
            inner.u8(1); inner.u64(UInt64(body.count)); inner.raw(z)
            sealed = try AESGCM().seal(key: k, nonce: [UInt8](repeating: 0, count: 12), associatedData: associatedData,
                                       plaintext: inner.bytes)
        } else {
            var plain = [UInt8](); plain.reserveCapacity(body.count + 9)
            inner.u8(0); inner.u64(UInt64(body.count))
            plain.append(contentsOf: inner.bytes); plain.append(contentsOf: body)
            sealed = try AESGCM().seal(key: k, nonce: [UInt8](repeating: 0, count: 12), associatedData: associatedData,
                                       plaintext: plain)
        }
        return kind.magic + salt + sealed
    }

    /// Opens an object of the expected kind. Throws `RepoError(.integrity)` if it is not one,
    /// was modified, or was sealed under another key. During a rotation an object still sealed
    /// under a retired root opens too (FORMAT.md §7.6).
    public static func open(_ object: [UInt8], kind: Kind, key: MasterKey, name: String, context: [UInt8] = []) throws -> [UInt8] {
        try openReportingRoot(object, kind: kind, key: key, name: name, context: context).body
    }

    /// `open`, also telling whether the object is sealed under the current encryption root
    /// (false: under a retired one, so a rotation still has to re-seal it).
    public static func openReportingRoot(_ object: [UInt8], kind: Kind, key: MasterKey, name: String,
                                         context: [UInt8] = []) throws -> (body: [UInt8], current: Bool) {
        let (inner, current) = try authenticate(object, kind: kind, key: key, name: name, context: context)
        return (try body(inner, name: name), current)
    }

    /// `open` into `buffer`, whose storage is reused when large enough, with `decompressor`:
    /// for a caller opening object after object of one size (the WAL prefetcher, FORMAT.md
    /// §27.6; `ZstdDecompressor.decompress(_:expectedSize:into:)` says why). Throws as `open`;
    /// on failure `buffer`'s contents are unspecified.
    public static func open(_ object: [UInt8], kind: Kind, key: MasterKey, name: String, context: [UInt8] = [],
                            into buffer: inout [UInt8], decompressor: ZstdDecompressor) throws {
        let inner = try authenticate(object, kind: kind, key: key, name: name, context: context).inner
        let (codec, length, start) = try layout(inner, name: name)
        switch codec {
        case 0:
            guard inner.count - start == length else { throw RepoError(.integrity, "\(name): length mismatch") }
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: inner[start...])
        case 1:
            try inner.withUnsafeBytes {
                try decompressor.decompress(UnsafeRawBufferPointer(rebasing: $0[start...]), expectedSize: length, into: &buffer)
            }
        default:
            throw RepoError(.integrity, "\(name): unknown codec \(codec)")
        }
    }

    /// The inner bytes of an object (codec, length, body), authenticated, and whether the
    /// current encryption root sealed them.
    private static func authenticate(_ object: [UInt8], kind: Kind, key: MasterKey, name: String,
                                     context: [UInt8]) throws -> (inner: [UInt8], current: Bool) {
        guard object.count >= 4 + 32 + 16 + 9, Array(object[0..<4]) == kind.magic else {
            throw RepoError(.integrity, "\(name): not a \(kind.folder) object (bad magic or truncated)")
        }
        let salt = Array(object[4..<36])
        var opened: [UInt8]?, current = true
        for (i, k) in key.readSubkeys(label: label + kind.magic, salt: salt).enumerated() {
            opened = try? object.withUnsafeBytes {
                try AESGCM().open(key: k, nonce: [UInt8](repeating: 0, count: 12), associatedData: kind.magic + salt + context,
                                  sealed: UnsafeRawBufferPointer(rebasing: $0[36...]))
            }
            if opened != nil { current = i == 0; break }
        }
        guard let inner = opened else {
            throw RepoError(.integrity, "\(name): authentication failed (the object is corrupted or was not written with this repository's key)")
        }
        return (inner, current)
    }

    /// The object sealed again under the current encryption root with a fresh salt, its inner
    /// bytes (codec, length, possibly compressed body) unchanged: a rotation's re-encryption
    /// (FORMAT.md §7.6), which never decompresses. Nil when it is sealed under the current root
    /// already.
    ///
    /// - Throws: `RepoError(.integrity)` as `open` when no root opens it.
    public static func resealed(_ object: [UInt8], kind: Kind, key: MasterKey, name: String, context: [UInt8] = []) throws -> [UInt8]? {
        guard object.count >= 4 + 32 + 16 + 9, Array(object[0..<4]) == kind.magic else {
            throw RepoError(.integrity, "\(name): not a \(kind.folder) object (bad magic or truncated)")
        }
        let salt = Array(object[4..<36])
        for (i, k) in key.readSubkeys(label: label + kind.magic, salt: salt).enumerated() {
            guard let inner = try? object.withUnsafeBytes({
                try AESGCM().open(key: k, nonce: [UInt8](repeating: 0, count: 12), associatedData: kind.magic + salt + context,
                                  sealed: UnsafeRawBufferPointer(rebasing: $0[36...]))
            }) else { continue }
            if i == 0 { return nil }
            _ = try body(inner, name: name)   // reseal only what a reader accepts
            let newSalt = SecureRandom.bytes(32)
            let sealed = try AESGCM().seal(key: key.subkey(label: label + kind.magic, salt: newSalt), nonce: [UInt8](repeating: 0, count: 12),
                                           associatedData: kind.magic + newSalt + context, plaintext: inner)
            return kind.magic + newSalt + sealed
        }
        throw RepoError(.integrity, "\(name): authentication failed (the object is corrupted or was not written with this repository's key)")
    }

    /// The codec, the length after decompression and where the body starts in `inner`.
    private static func layout(_ inner: [UInt8], name: String) throws -> (codec: UInt8, length: Int, start: Int) {
        var r = ByteReader(inner)
        let codec = try r.u8()
        guard let length = Int(exactly: try r.u64()) else { throw RepoError(.integrity, "\(name): impossible length") }
        return (codec, length, inner.count - r.remaining)
    }

    private static func body(_ inner: [UInt8], name: String) throws -> [UInt8] {
        let (codec, length, start) = try layout(inner, name: name)
        switch codec {
        case 0:
            guard inner.count - start == length else { throw RepoError(.integrity, "\(name): length mismatch") }
            return Array(inner[start...])
        case 1:
            return try inner.withUnsafeBytes {
                try ZstdDecompressor().decompress(UnsafeRawBufferPointer(rebasing: $0[start...]), expectedSize: length)
            }
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
