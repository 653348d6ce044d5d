import XCTest
@testable import RepoPrimitives

/// FastCDC boundary tests: agreement with an independent straightforward implementation of the
/// FORMAT.md rules, stability under edits, limits, and keying.
final class ChunkerTests: XCTestCase {
    let key = (0..<32).map { UInt8($0) }
    let params = ChunkerParameters(average: 64 * 1024)

    /// Deterministic pseudo-random bytes (xorshift64*), independent of the code under test.
    static func data(_ count: Int, seed: UInt64) -> [UInt8] {
        var s = seed | 1
        return (0..<count).map { _ in
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27
            return UInt8(truncatingIfNeeded: (s &* 2685821657736338717) >> 56)
        }
    }

    /// The chunking rule written out plainly from FORMAT.md, byte by byte.
    func referenceCuts(_ data: [UInt8]) -> [Int] {
        let mac = HMACSHA256(key: key)
        let gear: [UInt64] = (0..<256).map { i in
            let d = mac.mac(Array("repo/v1/gear".utf8) + [UInt8(i)]).bytes
            return d[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        }
        let bits = 16 // log2(64 KiB)
        let small = ~UInt64(0) << UInt64(64 - bits - 2), large = ~UInt64(0) << UInt64(64 - bits + 2)
        var out: [Int] = []
        var start = 0
        while start < data.count {
            let remaining = data.count - start
            var len = min(remaining, params.max)
            if remaining > params.min {
                var fp: UInt64 = 0
                for i in params.min..<min(remaining, params.max) {
                    fp = (fp &<< 1) &+ gear[Int(data[start + i])]
                    let mask = i < params.avg ? small : large
                    if fp & mask == 0 { len = i + 1; break }
                }
            } else { len = remaining }
            out.append(len)
            start += len
        }
        return out
    }

    func testMatchesReferenceImplementation() {
        let data = Self.data(3 << 20, seed: 42)
        let cdc = FastCDC(key: key, parameters: params)
        XCTAssertEqual(cdc.chunkLengths(data), referenceCuts(data))
    }

    /// The chunker rolls two bytes per step; cut points at odd and even offsets, streams of odd
    /// length, forced cuts at `max` (runs of one byte value) and short tails must all still agree
    /// with the byte-at-a-time rule.
    func testTwoBytesPerStepAgreesEverywhere() {
        let cdc = FastCDC(key: key, parameters: params)
        var cutsAtOdd = 0, cutsAtEven = 0
        for seed in UInt64(1)...12 {
            var data = Self.data((1 << 20) + Int(seed) * 7919, seed: seed)
            if seed % 3 == 0 {   // a long run of zeros: no natural cut, so max applies
                data.replaceSubrange(100_000..<(100_000 + 3 * params.max), with: [UInt8](repeating: 0, count: 3 * params.max))
            }
            let lengths = cdc.chunkLengths(data)
            XCTAssertEqual(lengths, referenceCuts(data), "seed \(seed)")
            for l in lengths.dropLast() { if l % 2 == 1 { cutsAtOdd += 1 } else { cutsAtEven += 1 } }
        }
        XCTAssertGreaterThan(cutsAtOdd, 20)
        XCTAssertGreaterThan(cutsAtEven, 20)
    }

    func testLimitsAndCoverage() {
        let data = Self.data(4 << 20, seed: 7)
        let lengths = FastCDC(key: key, parameters: params).chunkLengths(data)
        XCTAssertEqual(lengths.reduce(0, +), data.count)
        for l in lengths.dropLast() {
            XCTAssertGreaterThan(l, params.min)
            XCTAssertLessThanOrEqual(l, params.max)
        }
        // Normalized chunking keeps the mean near the target.
        let mean = Double(data.count) / Double(lengths.count)
        XCTAssertGreaterThan(mean, Double(params.avg) * 0.6)
        XCTAssertLessThan(mean, Double(params.avg) * 1.6)
    }

    func testInsertionOnlyDisturbsNearbyBoundaries() {
        let data = Self.data(4 << 20, seed: 99)
        var edited = data
        edited.insert(contentsOf: Array("a hundred bytes of new row data, inserted near the start of the stream..........................".utf8), at: 1000)
        let cdc = FastCDC(key: key, parameters: params)
        func boundaries(_ d: [UInt8]) -> Set<Int> {
            var pos = 0, out = Set<Int>()
            for l in cdc.chunkLengths(d) { pos += l; out.insert(d.count - pos) }   // distance from the end
            return out
        }
        let a = boundaries(data), b = boundaries(edited)
        XCTAssertGreaterThanOrEqual(Double(a.intersection(b).count) / Double(a.count), 0.9)
    }

    func testDeterministicAndKeyed() {
        let data = Self.data(2 << 20, seed: 5)
        let one = FastCDC(key: key, parameters: params).chunkLengths(data)
        XCTAssertEqual(one, FastCDC(key: key, parameters: params).chunkLengths(data))
        let other = FastCDC(key: [UInt8](repeating: 9, count: 32), parameters: params).chunkLengths(data)
        XCTAssertNotEqual(one, other)
    }

    func testGoldenBoundaries() {
        // Pinned cut points: a change here changes every repository's chunking (a format change).
        let data = Self.data(1 << 20, seed: 2024)
        let lengths = FastCDC(key: key, parameters: params).chunkLengths(data)
        XCTAssertEqual(Array(lengths.prefix(6)), ChunkerTests.golden)
    }

    static let golden: [Int] = [70023, 77263, 84805, 110457, 68335, 73078]

    func testSmallInputs() {
        let cdc = FastCDC(key: key, parameters: params)
        XCTAssertEqual(cdc.chunkLengths([]), [])
        XCTAssertEqual(cdc.chunkLengths([1]), [1])
        XCTAssertEqual(cdc.chunkLengths(Self.data(params.min, seed: 1)), [params.min])
        let zeros = [UInt8](repeating: 0, count: params.max * 3)
        XCTAssertEqual(cdc.chunkLengths(zeros).reduce(0, +), zeros.count)
    }

    func testParameterValidation() {
        XCTAssertNil(ChunkerParameters.default.invalidReason)
        XCTAssertNotNil(ChunkerParameters(average: 3000).invalidReason)
        XCTAssertNotNil(ChunkerParameters(average: 1000 * 1000).invalidReason)
        XCTAssertNotNil(ChunkerParameters(min: 100, avg: 65536, max: 65536).invalidReason)
    }
}
