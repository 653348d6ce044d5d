import XCTest
@testable import RepoPrimitives

/// `ZstdCompressor.compressInParts`: frames compressed in parallel into one buffer, then moved
/// together; the concatenation must decode to the input whatever the size and worker count.
final class CompressionTests: XCTestCase {
    /// Input whose compressibility changes along its length (zeros, text, random), so frames
    /// differ in size and the compaction moves every one of them.
    static func mixed(_ size: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        var out = [UInt8](repeating: 0, count: size)
        for i in 0..<size {
            switch (i >> 18) % 3 {
            case 0: out[i] = 0
            case 1: out[i] = UInt8(truncatingIfNeeded: (i * 7) % 61) + 32
            default: out[i] = UInt8.random(in: 0...255, using: &rng)
            }
        }
        return out
    }

    func testPartsDecodeToTheInput() throws {
        for (size, workers) in [(16 << 20, 2), (5 << 20 + 3, 3), (2 << 20, 2), (2 << 20 - 1, 2), (3 << 20 + 1, 1), (9 << 20, 8)] {
            let input = Self.mixed(size)
            let compressed = try XCTUnwrap(input.withUnsafeBytes { ZstdCompressor.compressInParts($0, level: 3, parts: workers) },
                                           "\(size) bytes on \(workers) workers did not compress")
            XCTAssertLessThan(compressed.count, size)
            let plain = try compressed.withUnsafeBytes { try ZstdDecompressor().decompress($0, expectedSize: size) }
            XCTAssertEqual(plain, input, "\(size) bytes on \(workers) workers")
        }
    }

    /// Decompressing into a caller's buffer gives exactly the input whatever the buffer held
    /// before, and reuses its storage when it is large enough (the WAL prefetcher's point: one
    /// mapping touched once, not a new one per segment); bad input still throws.
    func testDecompressIntoAReusedBuffer() throws {
        let big = Self.mixed(3 << 20), small = Self.mixed(100_000)
        let zBig = try XCTUnwrap(big.withUnsafeBytes { ZstdCompressor(level: 1).compressIfSmaller($0) })
        let zSmall = try XCTUnwrap(small.withUnsafeBytes { ZstdCompressor(level: 1).compressIfSmaller($0) })
        let d = ZstdDecompressor()
        var buffer: [UInt8] = []
        try zBig.withUnsafeBytes { try d.decompress($0, expectedSize: big.count, into: &buffer) }
        XCTAssertEqual(buffer, big)
        let storage = buffer.withUnsafeBufferPointer { $0.baseAddress }
        for (z, plain) in [(zSmall, small), (zBig, big), (zSmall, small)] {
            try z.withUnsafeBytes { try d.decompress($0, expectedSize: plain.count, into: &buffer) }
            XCTAssertEqual(buffer, plain)
            XCTAssertEqual(buffer.withUnsafeBufferPointer { $0.baseAddress }, storage, "the storage was replaced")
        }
        // Growing from a smaller buffer, and the failures `decompress` reports.
        buffer = [1, 2, 3]
        try zSmall.withUnsafeBytes { try d.decompress($0, expectedSize: small.count, into: &buffer) }
        XCTAssertEqual(buffer, small)
        XCTAssertThrowsError(try zSmall.withUnsafeBytes { try d.decompress($0, expectedSize: small.count - 1, into: &buffer) })
        XCTAssertThrowsError(try zSmall.withUnsafeBytes { try d.decompress($0, expectedSize: 1 << 40, into: &buffer) })
        XCTAssertThrowsError(try small.withUnsafeBytes { try d.decompress($0, expectedSize: 10, into: &buffer) })
    }

    /// A frame header may declare any content size, so that declaration is not taken on trust
    /// before allocating: a 90-byte frame that claims more than 2 GiB is refused as a size
    /// mismatch before any buffer is made (the fuzzer's `blob` harness ran out of memory on it,
    /// Fuzz/regressions/blob/declared-2gib-content-size-on-small-frame), while the most
    /// compressible real input, zeros, still decodes at the format's limit of expansion.
    func testADeclaredContentSizeIsNotTakenOnTrust() throws {
        let frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xE2] + [UInt8](repeating: 0xE2, count: 79) + [0x60, 0x88, 0x12, 0x01, 0x00, 0x00]
        let d = ZstdDecompressor()
        var buffer: [UInt8] = []
        for attempt in 0..<2 {
            XCTAssertThrowsError(try frame.withUnsafeBytes { raw in
                if attempt == 0 { _ = try d.decompress(raw, expectedSize: 0x8000_1388) } else { try d.decompress(raw, expectedSize: 0x8000_1388, into: &buffer) }
            }) { error in
                guard case CompressionError.sizeMismatch = error else { return XCTFail("refused only after allocating: \(error)") }
            }
        }
        XCTAssertEqual(buffer.capacity, 0, "nothing was allocated")
        let zeros = [UInt8](repeating: 0, count: 32 << 20)
        let z = try XCTUnwrap(zeros.withUnsafeBytes { ZstdCompressor(level: 1).compressIfSmaller($0) })
        XCTAssertLessThan(z.count, 8192)
        XCTAssertEqual(try z.withUnsafeBytes { try d.decompress($0, expectedSize: zeros.count) }, zeros)
        try z.withUnsafeBytes { try d.decompress($0, expectedSize: zeros.count, into: &buffer) }
        XCTAssertEqual(buffer, zeros)
    }

    /// Each frame reaches `emit` once, in order, already in its final place right after the
    /// one before; changing it there (as encryption in place does) changes the result.
    func testFramesAreEmittedInOrderInTheirFinalPlace() throws {
        let size = 9 << 20 + 5
        let input = Self.mixed(size)
        let capacity = ZstdCompressor.partsBound(size, workers: 4)
        var out = [UInt8](repeating: 0, count: capacity)
        var emitted: [(start: Int, count: Int)] = []
        var copies: [[UInt8]] = []
        let n = try XCTUnwrap(out.withUnsafeMutableBytes { buf in
            input.withUnsafeBytes { src in
                ZstdCompressor.compressInParts(src, level: 1, workers: 4, into: buf) { frame in
                    emitted.append((frame.baseAddress! - buf.baseAddress!, frame.count))
                    copies.append(Array(frame))
                    for i in frame.indices { frame[i] ^= 0x5A }
                    return true
                }
            }
        })
        XCTAssertEqual(emitted.count, 9, "one frame per MiB, up to four per worker: 9 frames")
        var end = 0
        for e in emitted {
            XCTAssertEqual(e.start, end, "each frame follows the one before")
            end += e.count
        }
        XCTAssertEqual(end, n)
        XCTAssertEqual(Array(out[0..<n]), copies.joined().map { $0 ^ 0x5A }, "emit changed the bytes in place")
        let plain = try Array(copies.joined()).withUnsafeBytes { try ZstdDecompressor().decompress($0, expectedSize: size) }
        XCTAssertEqual(plain, input)
        // A false from emit stops the work: nil.
        var calls = 0
        let stopped = out.withUnsafeMutableBytes { buf in
            input.withUnsafeBytes { src in
                ZstdCompressor.compressInParts(src, level: 1, workers: 4, into: buf) { _ in calls += 1; return calls < 3 }
            }
        }
        XCTAssertNil(stopped)
        XCTAssertEqual(calls, 3)
    }

    /// AES-GCM in pieces (`sealBegin`, `sealUpdate`, `sealFinish`) equals one `sealInPlace`.
    func testGCMInPiecesEqualsOneSeal() throws {
        let key = (0..<32).map { UInt8($0) }, nonce = [UInt8](repeating: 0, count: 12), ad = Array("RWL1 name".utf8)
        let plain = Self.mixed(3 << 20 + 17)
        var whole = plain, tagWhole = [UInt8](repeating: 0, count: 16)
        try whole.withUnsafeMutableBytes { b in
            try tagWhole.withUnsafeMutableBytes { try AESGCM().sealInPlace(key: key, nonce: nonce, associatedData: ad, buffer: b, tag: $0.baseAddress!) }
        }
        var pieces = plain, tagPieces = [UInt8](repeating: 0, count: 16)
        let gcm = AESGCM()
        try gcm.sealBegin(key: key, nonce: nonce, associatedData: ad)
        try pieces.withUnsafeMutableBytes { b in
            var at = 0
            for len in [9, 1, 15, 16, 33, 1 << 20, 7] + [b.count] {
                let end = min(b.count, at + len)
                try gcm.sealUpdate(inPlace: UnsafeMutableRawBufferPointer(rebasing: b[at..<end]))
                at = end
            }
        }
        try tagPieces.withUnsafeMutableBytes { try gcm.sealFinish(tag: $0.baseAddress!) }
        XCTAssertEqual(pieces, whole)
        XCTAssertEqual(tagPieces, tagWhole)
    }

    func testIncompressibleInputGivesNil() {
        let input = (0..<(4 << 20)).map { _ in UInt8.random(in: 0...255) }
        XCTAssertNil(input.withUnsafeBytes { ZstdCompressor.compressInParts($0, level: 3, parts: 2) })
    }
}
