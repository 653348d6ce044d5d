import XCTest
import Foundation
import RepoPrimitives
import RepoSnapshot
@testable import RepoMount

/// Trees whose file content the mount cannot size (found by fuzzing, Fuzz/README.md): the
/// directory fails to decode (the mount answers EIO for it) instead of trapping.
final class TreeDirectoryTests: XCTestCase {
    func tree(sizes: [String]) -> [UInt8] {
        let id = String(repeating: "ab", count: 32)
        let chunks = sizes.map { "{\"id\":\"\(id)\",\"size\":\($0)}" }.joined(separator: ",")
        return Array("{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":{\"chunks\":[\(chunks)]}}]}".utf8)
    }

    func testContentSizesThatOverflowOrAreNegativeAreMalformed() throws {
        let ok = try TreeDirectory.decode(tree(sizes: ["3", "4"]), fallbackTime: .zero)
        XCTAssertEqual(ok.entry(named: "f")?.attributes.size, 7)
        XCTAssertEqual(try TreeDirectory.decode(tree(sizes: ["\(Int.max)"]), fallbackTime: .zero).entries.first?.attributes.size,
                       Int.max)
        XCTAssertThrowsError(try TreeDirectory.decode(tree(sizes: ["\(Int.max)", "1"]), fallbackTime: .zero))
        XCTAssertThrowsError(try TreeDirectory.decode(tree(sizes: ["-5", "1"]), fallbackTime: .zero))
        XCTAssertNil(TreeDirectory.contentSize(.lists([ListRef(id: .zero, size: Int.max, count: 1),
                                                       ListRef(id: .zero, size: Int.max, count: 1)])))
    }
}
