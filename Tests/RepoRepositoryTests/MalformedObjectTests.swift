import XCTest
import Foundation
@testable import RepoPrimitives
@testable import RepoIndex
@testable import RepoRepository

/// Repository bytes that once trapped a parser (found by fuzzing, Fuzz/README.md): each must
/// be refused with an error instead. The fuzz corpus keeps the original inputs too.
final class MalformedObjectTests: XCTestCase {
    let key = MasterKey(encryption: Array(0..<32), blobID: Array(32..<64), chunker: Array(64..<96))

    func entry(offset: UInt64, length: UInt32 = 16) -> [UInt8] {
        var w = ByteWriter()
        w.u8(0); w.u8(0); w.u64(offset); w.u32(length); w.u32(0); w.hash(.zero)
        return w.bytes
    }

    /// u8 version || u32 0 superseded || u32 1 pack || pack with `size` and one entry.
    func segment(size: UInt64, entryOffset: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.u8(1); w.u32(0); w.u32(1)
        w.hash(.zero); w.raw([UInt8](repeating: 7, count: 32)); w.u8(0); w.u8(0); w.u64(size); w.u32(1)
        w.raw(entry(offset: entryOffset))
        return w.bytes
    }

    func testIndexSegmentWithSizeOrOffsetBeyondIntIsMalformed() throws {
        XCTAssertNoThrow(try IndexSegment.decode(segment(size: 1000, entryOffset: 0)))
        XCTAssertThrowsError(try IndexSegment.decode(segment(size: 1 << 63, entryOffset: 0)))
        XCTAssertThrowsError(try IndexSegment.decode(segment(size: 1000, entryOffset: UInt64.max)))
    }

    /// A pack of `area` zero bytes and a header listing one entry, sealed under `key`.
    func pack(area: Int, entryOffset: UInt64, length: UInt32) throws -> [UInt8] {
        var h = ByteWriter()
        h.u8(1); h.u8(0); h.u32(1); h.raw(entry(offset: entryOffset, length: length))
        let salt = [UInt8](repeating: 3, count: 32)
        let k = key.subkey(label: PackWriter.label, salt: salt)
        let b = try AESGCM().seal(key: k, nonce: PackWriter.headerNonce, associatedData: PackWriter.magic + salt, plaintext: h.bytes)
        var w = ByteWriter()
        w.raw([UInt8](repeating: 0, count: area)); w.raw(b); w.raw(salt); w.u32(UInt32(b.count)); w.raw(PackWriter.magic)
        return w.bytes
    }

    func testPackHeaderEntryWhoseEndOverflowsIsRefused() throws {
        let reader = PackReader(master: key)
        let ok = try pack(area: 100, entryOffset: 10, length: 90)
        XCTAssertEqual(try reader.header(name: .zero, tail: ok, packSize: ok.count).blobs.count, 1)
        let past = try pack(area: 100, entryOffset: 11, length: 90)
        XCTAssertThrowsError(try reader.header(name: .zero, tail: past, packSize: past.count))
        // offset + length wraps around Int.max: refused, not a trap.
        let wraps = try pack(area: 100, entryOffset: UInt64(Int.max) - 10, length: 100)
        XCTAssertThrowsError(try reader.header(name: .zero, tail: wraps, packSize: wraps.count))
        let huge = try pack(area: 100, entryOffset: UInt64.max, length: 1)
        XCTAssertThrowsError(try reader.header(name: .zero, tail: huge, packSize: huge.count))
    }
}
