/// The name of a file PostgreSQL archives through `archive_command` (PostgreSQL documentation,
/// "Continuous Archiving and Point-in-Time Recovery"; FORMAT.md §27):
///
/// | kind | pattern | example |
/// |---|---|---|
/// | segment | `TTTTTTTTLLLLLLLLSSSSSSSS` | `000000010000000A000000FE` |
/// | partial segment | segment + `.partial` | `000000010000000A000000FE.partial` |
/// | backup history | segment + `.` + 8 hex (start offset) + `.backup` | `000000010000000A000000FE.00000028.backup` |
/// | timeline history | `TTTTTTTT.history` | `00000002.history` |
///
/// T is the timeline, L and S the high and low parts of the segment number (for 16 MiB
/// segments S runs 00000000…000000FF). Hex is upper case, as PostgreSQL writes it; other names
/// are refused.
public struct WALFileName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable { case segment, partial, backup, history }

    public let kind: Kind
    public let text: String
    /// Timeline the file belongs to.
    public let timeline: UInt32
    /// High and low 32-bit halves of the segment number (0 for history files).
    public let log: UInt32
    public let seg: UInt32

    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        func hex(_ r: Range<Int>) -> UInt32? {
            guard r.upperBound <= bytes.count,
                  bytes[r].allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x46).contains($0) }) else { return nil }
            return UInt32(String(decoding: bytes[r], as: UTF8.self), radix: 16)
        }
        guard let tli = hex(0..<8) else { return nil }
        self.text = text
        timeline = tli
        if bytes.count == 16, text.hasSuffix(".history") {
            kind = .history; log = 0; seg = 0
            return
        }
        guard let log = hex(8..<16), let seg = hex(16..<24) else { return nil }
        self.log = log; self.seg = seg
        switch bytes.count {
        case 24: kind = .segment
        case 32 where text.hasSuffix(".partial"): kind = .partial
        case 40 where text.hasSuffix(".backup") && bytes[24] == 0x2E && hex(25..<33) != nil: kind = .backup
        default: return nil
        }
    }

    /// The segment file name for segment number `number` on `timeline` with `segmentSize`-byte
    /// segments (PostgreSQL's XLogFileName).
    public init(timeline: UInt32, segment number: UInt64, segmentSize: Int) {
        let perLog = 0x1_0000_0000 / UInt64(segmentSize)
        let text = Self.hex8(timeline) + Self.hex8(UInt32(number / perLog)) + Self.hex8(UInt32(number % perLog))
        self.init(text)!
    }

    /// The segment number (for segments, partial segments and backup history files).
    public func segmentNumber(segmentSize: Int) -> UInt64 {
        UInt64(log) * (0x1_0000_0000 / UInt64(segmentSize)) + UInt64(seg)
    }

    /// The 24-character segment name this file belongs to (itself for a segment).
    public var segmentName: String { String(text.prefix(24)) }

    /// Object name in the repository: `wal/<timeline>/<file name>` (FORMAT.md §27).
    public var objectName: String { "wal/" + Self.hex8(timeline) + "/" + text }

    public var description: String { text }

    /// PostgreSQL's own order: timeline, then position, then kind (a segment before its
    /// `.partial` and `.backup` companions).
    public static func < (a: WALFileName, b: WALFileName) -> Bool {
        (a.timeline, a.log, a.seg, a.text) < (b.timeline, b.log, b.seg, b.text)
    }

    public static func hex8(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - s.count) + s
    }
}
