/// A 32-byte value: a blob id (HMAC-SHA256), a pack or object name (SHA-256), a key.
///
/// Stored inline as four words so that it hashes and compares without allocation; printed and
/// parsed as 64 lowercase hex digits.
public struct Hash256: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public static let zero = Hash256(w0: 0, w1: 0, w2: 0, w3: 0)

    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }

    /// Builds from exactly 32 bytes (big-endian word order, so byte order equals hex order).
    @inlinable
    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        precondition(bytes.count == 32, "Hash256 needs 32 bytes")
        // Contiguous storage (arrays, slices, Data): four unaligned big-endian loads, no
        // allocation. This runs for every blob id and every catalog row.
        if let h = bytes.withContiguousStorageIfAvailable({ Hash256(pointer: UnsafeRawPointer($0.baseAddress!)) }) {
            self = h
            return
        }
        var w = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        for (i, b) in bytes.enumerated() {
            switch i / 8 {
            case 0: w.0 = w.0 << 8 | UInt64(b)
            case 1: w.1 = w.1 << 8 | UInt64(b)
            case 2: w.2 = w.2 << 8 | UInt64(b)
            default: w.3 = w.3 << 8 | UInt64(b)
            }
        }
        self.init(w0: w.0, w1: w.1, w2: w.2, w3: w.3)
    }

    /// Reads 32 bytes at `pointer` (any alignment).
    @inlinable
    public init(pointer: UnsafeRawPointer) {
        self.init(w0: UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                  w1: UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                  w2: UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                  w3: UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
    }

    /// Parses 64 hex digits; nil if the text is not exactly that.
    public init?(hex: String) {
        var text = hex
        guard let h = text.withUTF8({ Hash256(hexUTF8: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = h
    }

    /// Parses 64 hex digits (either case) from UTF-8 bytes without allocating (object names are
    /// parsed by the hundred thousand when a large repository is opened).
    public init?(hexUTF8 text: UnsafeRawBufferPointer) {
        guard text.count == 64 else { return nil }
        @inline(__always) func nibble(_ c: UInt8) -> UInt64? {
            switch c {
            case 48...57: return UInt64(c &- 48)
            case 97...102: return UInt64(c &- 87)
            case 65...70: return UInt64(c &- 55)
            default: return nil
            }
        }
        var words = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        for k in 0..<4 {
            var v: UInt64 = 0
            for j in 0..<16 {
                guard let n = nibble(text[k * 16 + j]) else { return nil }
                v = v << 4 | n
            }
            switch k {
            case 0: words.0 = v
            case 1: words.1 = v
            case 2: words.2 = v
            default: words.3 = v
            }
        }
        self.init(w0: words.0, w1: words.1, w2: words.2, w3: words.3)
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        for (i, w) in [w0, w1, w2, w3].enumerated() {
            for j in 0..<8 { out[i * 8 + j] = UInt8(truncatingIfNeeded: w >> (56 - 8 * UInt64(j))) }
        }
        return out
    }

    public var hex: String { Hex.encode(bytes) }
    public var shortHex: String { String(hex.prefix(8)) }
    public var description: String { hex }

    /// The first 8 bytes as an integer: a uniformly distributed fingerprint for filters.
    public var prefix64: UInt64 { w0 }

    /// Ids are uniformly distributed (HMACs and SHA-256 digests), so one word is as good a hash
    /// input as four, and sets of hundreds of thousands of pack names build faster.
    public func hash(into hasher: inout Hasher) { hasher.combine(w0) }

    public static func < (a: Hash256, b: Hash256) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }
}

extension Hash256: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let h = Hash256(hex: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a 64-digit hex id: \(s)")
        }
        self = h
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}

/// A blob id: HMAC-SHA256 of the blob's plaintext under the repository's id key.
public typealias BlobID = Hash256
