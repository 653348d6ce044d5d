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

    /// A sealed object whose inner record is given as is.
    func sealed(inner: [UInt8], kind: SealedObject.Kind = .snapshot) throws -> [UInt8] {
        let salt = [UInt8](repeating: 9, count: 32)
        let k = key.subkey(label: SealedObject.label + kind.magic, salt: salt)
        return kind.magic + salt + (try AESGCM().seal(key: k, nonce: [UInt8](repeating: 0, count: 12),
                                                      associatedData: kind.magic + salt, plaintext: inner))
    }

    func testSealedObjectLengthBeyondIntOrItsFrameIsRefused() throws {
        let body = Array(String(repeating: "snapshot body ", count: 100).utf8)
        let z = try XCTUnwrap(body.withUnsafeBytes { ZstdCompressor(level: 3).compressIfSmaller($0) })
        func inner(_ codec: UInt8, _ length: UInt64, _ rest: [UInt8]) -> [UInt8] {
            var w = ByteWriter(); w.u8(codec); w.u64(length); w.raw(rest); return w.bytes
        }
        // Each case through both `open`s: the one returning the body and the one into a
        // reused buffer (the WAL prefetcher's), which starts out holding other bytes.
        var buffer = [UInt8](repeating: 7, count: 5000)
        func both(_ object: [UInt8]) throws -> [UInt8] {
            let body = try SealedObject.open(object, kind: .snapshot, key: key, name: "x")
            try SealedObject.open(object, kind: .snapshot, key: key, name: "x", into: &buffer, decompressor: ZstdDecompressor())
            XCTAssertEqual(buffer, body)
            return body
        }
        func neither(_ object: [UInt8], _ line: UInt = #line) {
            XCTAssertThrowsError(try SealedObject.open(object, kind: .snapshot, key: key, name: "x"), line: line)
            XCTAssertThrowsError(try SealedObject.open(object, kind: .snapshot, key: key, name: "x", into: &buffer,
                                                       decompressor: ZstdDecompressor()), line: line)
        }
        XCTAssertEqual(try both(sealed(inner: inner(1, UInt64(body.count), z))), body)
        XCTAssertEqual(try both(sealed(inner: inner(0, UInt64(body.count), body))), body)
        for length: UInt64 in [UInt64.max, 1 << 63] {
            neither(try sealed(inner: inner(0, length, body)))
            neither(try sealed(inner: inner(1, length, z)))
        }
        // A length the frame cannot produce is refused before anything that size is allocated.
        neither(try sealed(inner: inner(1, 1 << 50, z)))
        neither(try sealed(inner: inner(0, UInt64(body.count) + 1, body)))
        neither(try sealed(inner: inner(2, UInt64(body.count), body)))
        var tampered = try sealed(inner: inner(0, UInt64(body.count), body))
        tampered[tampered.count - 1] ^= 1
        neither(tampered)
    }

    func testBlobRawLengthBeyondItsFrameIsRefused() throws {
        let plain = Array(String(repeating: "chunk ", count: 500).utf8)
        let stored = try XCTUnwrap(plain.withUnsafeBytes { ZstdCompressor(level: 3).compressIfSmaller($0) })
        let salt = [UInt8](repeating: 5, count: 32)
        let k = key.subkey(label: PackWriter.label, salt: salt)
        func open(rawLength: Int) throws -> [UInt8] {
            let e = PackBlobEntry(id: .zero, type: .data, flags: 1, offset: 0, length: stored.count + 16, rawLength: rawLength)
            let sealed = try AESGCM().seal(key: k, nonce: PackWriter.blobNonce(offset: 0),
                                           associatedData: PackWriter.blobAD(type: .data, flags: 1, id: .zero), plaintext: stored)
            return try sealed.withUnsafeBytes { try PackReader(master: key).open($0, entry: e, packSalt: salt, pack: .zero) }
        }
        XCTAssertEqual(try open(rawLength: plain.count), plain)
        XCTAssertThrowsError(try open(rawLength: Int(UInt32.max)))
    }

    func testTimestampsParseWithoutICU() throws {
        XCTAssertEqual(Timestamp.parse("2024-05-01T02:00:00.500Z")?.timeIntervalSince1970, 1_714_528_800.5)
        XCTAssertEqual(Timestamp.parse("2024-05-01T04:00:00+02:00")?.timeIntervalSince1970, 1_714_528_800)
        XCTAssertEqual(Timestamp.parse("2024-05-01")?.timeIntervalSince1970, 1_714_521_600)
        // Text that merely starts with a date is not that date.
        XCTAssertNil(Timestamp.parse("2024-05-01Tgarbage"))
        XCTAssertNil(Timestamp.parse("2024-05-0x"))
        // ICU's ISO 8601 parser died of SIGFPE on this (a snapshot's `time`, found by fuzzing).
        XCTAssertNil(Timestamp.parse("2026-11-30T11:48:05." + String(repeating: "1", count: 40) + "x" + String(repeating: "1", count: 40) + "Z"))
    }
}
