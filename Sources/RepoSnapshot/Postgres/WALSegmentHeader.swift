/// The long page header at the start of every WAL segment file (PostgreSQL source
/// `access/xlog_internal.h`, `XLogLongPageHeaderData`; little-endian on the platforms we
/// run on):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | `xlp_magic` (version-specific, e.g. 0xD110 for PostgreSQL 15) |
/// | 2 | 2 | `xlp_info` (bit 0x0002 `XLP_LONG_HEADER` set on a segment's first page) |
/// | 4 | 4 | `xlp_tli` timeline of the page |
/// | 8 | 8 | `xlp_pageaddr` LSN of the page: the segment's start |
/// | 24 | 8 | `xlp_sysid` database system identifier |
/// | 32 | 4 | `xlp_seg_size` segment size in bytes |
/// | 36 | 4 | `xlp_xlog_blcksz` WAL page size |
public struct WALSegmentHeader: Sendable, Equatable {
    public var magic: UInt16
    public var timeline: UInt32
    public var pageAddress: LSN
    public var systemIdentifier: UInt64
    public var segmentSize: Int
    public var blockSize: Int

    /// Why bytes are not the start of a WAL segment.
    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses the header; throws `Malformed` when the bytes cannot be a segment's first page.
    public init(_ bytes: [UInt8]) throws {
        guard bytes.count >= 40 else { throw Malformed(description: "only \(bytes.count) bytes, shorter than a WAL page header") }
        func u16(_ o: Int) -> UInt16 { UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[o + $1]) << (8 * $1) } }
        func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[o + $1]) << (8 * $1) } }
        magic = u16(0)
        let info = u16(2)
        timeline = u32(4)
        pageAddress = LSN(u64(8))
        systemIdentifier = u64(24)
        segmentSize = Int(u32(32))
        blockSize = Int(u32(36))
        guard info & 0x0002 != 0 else { throw Malformed(description: "the first page has no long header (XLP_LONG_HEADER)") }
        guard magic & 0xFF00 == 0xD100 else {
            throw Malformed(description: "page magic 0x\(String(magic, radix: 16)) is not a WAL page's (0xD1xx)")
        }
        guard segmentSize >= 1 << 20, segmentSize <= 1 << 30, segmentSize & (segmentSize - 1) == 0 else {
            throw Malformed(description: "segment size \(segmentSize) is not a power of two from 1 MiB to 1 GiB")
        }
        guard blockSize >= 1024, blockSize <= 1 << 16, blockSize & (blockSize - 1) == 0 else {
            throw Malformed(description: "WAL block size \(blockSize) is implausible")
        }
        guard systemIdentifier != 0 else { throw Malformed(description: "system identifier is 0") }
        guard pageAddress.value % UInt64(segmentSize) == 0 else {
            throw Malformed(description: "first page address \(pageAddress) is not at a segment boundary")
        }
    }

    /// Checks the header against the file's name and size: the page address must be the
    /// start of the named segment and the file exactly one segment long.
    public func check(against name: WALFileName, fileSize: Int) throws {
        let number = name.segmentNumber(segmentSize: segmentSize)
        guard pageAddress.segment(size: segmentSize) == number else {
            throw Malformed(description: "it starts at \(pageAddress), which is not segment \(name.segmentName)")
        }
        guard fileSize == segmentSize else {
            throw Malformed(description: "it has \(fileSize) bytes; its header says segments have \(segmentSize)")
        }
        // A segment that opens a timeline starts with the parent timeline's pages.
        guard timeline <= name.timeline else {
            throw Malformed(description: "its pages are on timeline \(timeline), after the name's \(name.timeline)")
        }
    }
}
