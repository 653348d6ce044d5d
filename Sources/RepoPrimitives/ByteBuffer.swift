/// Appends little-endian integers and raw bytes: the building block of every binary layout in
/// FORMAT.md.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func hash(_ h: Hash256) { bytes.append(contentsOf: h.bytes) }
    public mutating func raw<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }
}

/// Reads what `ByteWriter` wrote; every read is bounds-checked and throws `ByteReader.Truncated`.
public struct ByteReader {
    public struct Truncated: Error, CustomStringConvertible {
        public init() {}
        public var description: String { "truncated or malformed binary record" }
    }

    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw Truncated() }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    public mutating func u8() throws -> UInt8 { try take(1).first! }
    public mutating func u32() throws -> UInt32 {
        try take(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }
    public mutating func u64() throws -> UInt64 {
        try take(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
    public mutating func hash() throws -> Hash256 { Hash256(bytes: try take(32)) }
    public mutating func raw(_ n: Int) throws -> [UInt8] { Array(try take(n)) }
}

extension Array where Element == UInt8 {
    /// Reads a little-endian integer at `offset` (caller guarantees bounds).
    public func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var v: T = 0
        for i in (0..<MemoryLayout<T>.size).reversed() { v = v << 8 | T(self[offset + i]) }
        return v
    }
}
