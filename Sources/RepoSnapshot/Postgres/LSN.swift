/// A PostgreSQL write-ahead log position (`pg_lsn`): a byte offset in the WAL stream, written
/// `X/Y` with the high and low 32 bits in upper-case hex (PostgreSQL documentation, "pg_lsn
/// Type"). Ordered; 0/0 is the invalid position.
public struct LSN: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    /// Parses `X/Y` (1–8 hex digits each, either case). Nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...8).contains(parts[0].count), (1...8).contains(parts[1].count),
              let hi = UInt32(parts[0], radix: 16), let lo = UInt32(parts[1], radix: 16),
              parts.allSatisfy({ $0.allSatisfy(\.isHexDigit) }) else { return nil }
        value = UInt64(hi) << 32 | UInt64(lo)
    }

    public var description: String {
        String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    /// The number of the WAL segment holding this position, for segments of `segmentSize` bytes.
    public func segment(size segmentSize: Int) -> UInt64 { value / UInt64(segmentSize) }

    public static func < (a: LSN, b: LSN) -> Bool { a.value < b.value }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let lsn = LSN(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an LSN: \(text)"))
        }
        self = lsn
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
