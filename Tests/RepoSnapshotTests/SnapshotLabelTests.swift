import XCTest
@testable import RepoSnapshot

/// The rules for stream names, snapshot names, tags and hosts.
final class SnapshotLabelTests: XCTestCase {
    func testStreamNamesAreFileNames() {
        for good in ["mydb.sql", "users.sql", "a b", "données.sql", ".hidden", "...", String(repeating: "x", count: 255),
                     String(repeating: "é", count: 127)] {
            XCTAssertNil(SnapshotLabel.invalidReason(good, kind: .streamName), good)
        }
        let cases: [(String, String)] = [
            ("", "empty"), (".", "file name"), ("..", "file name"), ("a/b", "\"/\""), ("/", "\"/\""),
            ("a\0b", "NUL"), ("a\nb", "control"), ("a\tb", "control"), ("\u{7F}", "control"), ("\u{85}", "control"),
            (String(repeating: "x", count: 256), "256 bytes"), (String(repeating: "é", count: 128), "256 bytes"),
        ]
        for (bad, rule) in cases {
            let reason = SnapshotLabel.invalidReason(bad, kind: .streamName)
            XCTAssertNotNil(reason, bad.debugDescription)
            XCTAssertTrue(reason?.contains(rule) == true, "\(bad.debugDescription): \(reason ?? "nil")")
        }
    }

    func testTagsHaveNoCommas() {
        XCTAssertNil(SnapshotLabel.invalidReason("nightly", kind: .tag))
        XCTAssertNil(SnapshotLabel.invalidReason("a/b", kind: .tag))
        XCTAssertTrue(SnapshotLabel.invalidReason("a,b", kind: .tag)?.contains("\",\"") == true)
        XCTAssertNotNil(SnapshotLabel.invalidReason("a\nb", kind: .tag))
        // A snapshot name (several streams) may hold commas and slashes, not control characters.
        XCTAssertNil(SnapshotLabel.invalidReason("a.sql,b.sql", kind: .snapshotName))
        XCTAssertNotNil(SnapshotLabel.invalidReason("a\rb", kind: .snapshotName))
        XCTAssertNotNil(SnapshotLabel.invalidReason("h\n", kind: .host))
    }

    func testErrorNamesTheValueAndTheRuleOnOneLine() {
        XCTAssertThrowsError(try SnapshotLabel.validate("a\nb", kind: .streamName)) { error in
            let text = "\(error)"
            XCTAssertEqual(text, "stream name \"a\\nb\": it must not contain control characters (found U+000A)")
        }
        XCTAssertThrowsError(try SnapshotLabel.validate(String(repeating: "n", count: 5000), kind: .streamName)) { error in
            XCTAssertTrue("\(error)".contains("5000 bytes"))
            XCTAssertLessThan("\(error)".count, 200)
        }
    }

    func testTableEscaping() {
        XCTAssertEqual(SnapshotLabel.escapedForTable("plain"), "plain")
        XCTAssertEqual(SnapshotLabel.escapedForTable("a\nb\\c"), "a\\nb\\\\c")
        XCTAssertEqual(SnapshotLabel.escapedForTable("a,b", extra: [","]), "a\\x2cb")
        XCTAssertEqual(SnapshotLabel.escapedForTable("\u{1B}[31m\r"), "\\x1b[31m\\x0d")
        XCTAssertEqual(SnapshotLabel.escapedForTable("next\u{85}line"), "next\\u{0085}line")
    }
}
