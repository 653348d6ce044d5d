import XCTest
import Foundation
import RepoStorage
#if canImport(Glibc)
import Glibc
#endif

/// `Durability.sync`: what it accepts, and which call it names when it cannot.
final class DurabilityTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "durability-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/file", contents: Data("x".utf8)))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/file")
        try FileManager.default.createSymbolicLink(atPath: dir + "/dirlink", withDestinationPath: dir)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testFilesAndDirectoriesThatExistAreSynced() {
        XCTAssertNil(Durability.sync(dir + "/file", directory: false))
        XCTAssertNil(Durability.sync(dir, directory: true))
        XCTAssertNil(Durability.sync(dir + "/link", directory: false), "a final symlink is followed by default")
        XCTAssertNil(Durability.sync(dir + "/dirlink", directory: true))
    }

    func testAFailureNamesTheCallAndItsErrno() {
        XCTAssertEqual(Durability.sync(dir + "/missing", directory: false), .init(operation: "open", code: ENOENT))
        XCTAssertEqual(Durability.sync(dir + "/file", directory: true), .init(operation: "open", code: ENOTDIR),
                       "a file is not taken for a directory: its entries would not be what was synced")
    }

    func testWithoutFollowingAFinalSymlinkIsRefused() {
        XCTAssertEqual(Durability.sync(dir + "/link", directory: false, followingSymlink: false), .init(operation: "open", code: ELOOP))
        XCTAssertEqual(Durability.sync(dir + "/dirlink", directory: true, followingSymlink: false)?.operation, "open")
        XCTAssertNil(Durability.sync(dir + "/file", directory: false, followingSymlink: false))
    }
}
