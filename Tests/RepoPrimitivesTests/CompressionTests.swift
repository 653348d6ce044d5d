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

    func testIncompressibleInputGivesNil() {
        let input = (0..<(4 << 20)).map { _ in UInt8.random(in: 0...255) }
        XCTAssertNil(input.withUnsafeBytes { ZstdCompressor.compressInParts($0, level: 3, parts: 2) })
    }
}
