import XCTest
@testable import RepoPrimitives

/// The multi-buffer HMAC against libcrypto's, over lengths at every padding boundary, empty
/// messages, large chunks, batches that do not fill the sixteen lanes and batches that refill
/// them many times.
final class HMACBatchTests: XCTestCase {
    private func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<n).map { _ in
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27
            return UInt8(truncatingIfNeeded: (s &* 2685821657736338717) >> 56)
        }
    }

    func testKernelIsUsedExactlyWhereTheCPUHasIt() throws {
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        XCTAssertEqual(HMACBatch.isAccelerated, flags.contains("avx512f") && flags.contains("avx512bw"))
    }

    func testMatchesLibcryptoAtEveryBoundary() {
        let key = bytes(32, seed: 1)
        let batch = HMACBatch(key: key)
        let reference = HMACSHA256(key: key)
        var lengths = Array(0...200) + [255, 256, 257, 1000, 4095, 4096, 4097, 65_536, 65_537, 1 << 20]
        lengths += (0..<40).map { 100_000 + $0 * 12_345 }
        let messages = lengths.enumerated().map { bytes($1, seed: UInt64($0) + 7) }
        let got = batch.macs(messages)
        XCTAssertEqual(got.count, messages.count)
        for (i, m) in messages.enumerated() {
            XCTAssertEqual(got[i], reference.mac(m), "length \(m.count)")
        }
    }

    func testSmallAndUnevenBatches() {
        let key = bytes(64, seed: 3)
        let batch = HMACBatch(key: key)
        let reference = HMACSHA256(key: key)
        for count in [1, 2, 3, 15, 16, 17, 31, 33] {
            let messages = (0..<count).map { bytes(($0 * 7919) % 300_000, seed: UInt64(count * 100 + $0)) }
            XCTAssertEqual(batch.macs(messages), messages.map { reference.mac($0) }, "batch of \(count)")
        }
        XCTAssertEqual(batch.macs([]), [])
    }

    func testFallbackAgrees() {
        let key = bytes(32, seed: 5)
        let messages = (0..<20).map { bytes($0 * 1000 + 3, seed: UInt64($0)) }
        XCTAssertEqual(HMACBatch(key: key, accelerated: false).macs(messages), HMACBatch(key: key).macs(messages))
    }
}
