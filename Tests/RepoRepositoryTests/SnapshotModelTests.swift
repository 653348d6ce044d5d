import XCTest
import Foundation
import RepoSnapshot

/// The snapshot model's encodings: nanosecond file times and byte names.
final class SnapshotModelTests: XCTestCase {
    /// The hand-rolled RFC 3339 formatter agrees with gmtime for many instants, including
    /// negative times, leap days and century years, and parses back exactly.
    func testFileTimeMatchesGmtimeAndRoundTrips() {
        var rng = SystemRandomNumberGenerator()
        var samples: [Int64] = [0, -1, 86399, 86400, 951_782_400 /* 2000-02-29 */, 4_107_542_400 /* 2100-03-01 */,
                                -2_208_988_800 /* 1900-01-01 */, 253_402_300_799 /* 9999-12-31 23:59:59 */]
        for _ in 0..<5000 { samples.append(Int64.random(in: -2_208_988_800...253_402_300_799, using: &rng)) }
        for s in samples {
            let ns = Int32.random(in: 0..<1_000_000_000, using: &rng)
            let t = FileTime(seconds: s, nanoseconds: ns)
            var tt = time_t(s)
            var parts = tm()
            gmtime_r(&tt, &parts)
            let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                                  Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(ns))
            XCTAssertEqual(t.rfc3339, expected, "seconds \(s)")
            XCTAssertEqual(FileTime(rfc3339: t.rfc3339), t)
        }
        XCTAssertEqual(FileTime(rfc3339: "2024-05-01T12:00:00+02:00"), FileTime(seconds: 1_714_557_600, nanoseconds: 0))
        XCTAssertEqual(FileTime(rfc3339: "2024-05-01T10:00:00.5Z")?.nanoseconds, 500_000_000)
        XCTAssertNil(FileTime(rfc3339: "2024/05/01T10:00:00Z"))
        XCTAssertNil(FileTime(rfc3339: "2024-05-01T10:00:00"))
    }

    /// Names that are not UTF-8 survive encoding exactly; trees sort by name bytes.
    func testRawNamesAndByteOrder() throws {
        let raw: [UInt8] = [0x62, 0xFF, 0x0A, 0x61]
        var a = Node(nameBytes: raw, type: .file)
        a.targetBytes = [0xFE]
        let b = Node(nameBytes: Array("é".utf8), type: .dir)
        let c = Node(nameBytes: Array("Z".utf8), type: .symlink)
        let tree = Tree(nodes: [b, a, c])
        XCTAssertEqual(tree.nodes.map(\.nameBytes), [Array("Z".utf8), raw, Array("é".utf8)])
        let decoded = try Tree.decode(try tree.encoded())
        XCTAssertEqual(decoded, tree)
        XCTAssertEqual(decoded.node(nameBytes: raw)?.targetBytes, [0xFE])
        XCTAssertNotNil(decoded.nodes[1].nameRaw)
        XCTAssertNil(decoded.nodes[2].nameRaw, "valid UTF-8 names carry no raw copy")
        XCTAssertEqual(try tree.encoded(), try Tree(nodes: [c, b, a]).encoded(), "encoding is deterministic")
    }
}
