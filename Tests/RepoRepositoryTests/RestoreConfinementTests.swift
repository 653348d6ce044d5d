import XCTest
import Foundation
@testable import RepoPrimitives
@testable import RepoStorage
@testable import RepoRepository
@testable import RepoSnapshot
@testable import RepoOperations

/// Restore never writes outside its target, whatever a (crafted or damaged) repository holds.
final class RestoreConfinementTests: XCTestCase {
    var base: String!
    var repo: Repository!

    override func setUpWithError() throws {
        base = NSTemporaryDirectory() + "repo-confine-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let backend = MemoryBackend()
        _ = try Repository.create(backend: backend, password: Array("pw".utf8), chunker: ChunkerParameters(average: 64 * 1024),
                                  compression: "zstd:3", kdfN: 1024)
        repo = try Repository.open(backend: backend, password: Array("pw".utf8), cacheDirectory: base + "/cache")
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: base) }

    /// Saves `trees` bottom-up through one write session; `file` makes a file node.
    func file(_ name: [UInt8], _ text: String, session: WriteSession, context: WriteSession.Context) throws -> Node {
        let bytes = Array(text.utf8)
        let saved = try bytes.withUnsafeBytes { try session.save($0, type: .data, context: context) }
        var node = Node(nameBytes: name, type: .file)
        node.size = bytes.count
        node.mode = 0o644
        node.content = .chunks([ChunkRef(id: saved.id, size: bytes.count)])
        return node
    }

    func dir(_ name: [UInt8], _ children: [Node], session: WriteSession, context: WriteSession.Context) throws -> Node {
        let encoded = try Tree(nodes: children).encoded()
        let saved = try encoded.withUnsafeBytes { try session.save($0, type: .tree, context: context) }
        var node = Node(nameBytes: name, type: .dir)
        node.mode = 0o755
        node.subtree = saved.id
        return node
    }

    func testUnsafeNamesAreRefusedAndNothingLeavesTheTarget() throws {
        let session = try WriteSession(repository: repo)
        let ctx = session.makeContext()
        let nested = try dir(Array("sub".utf8), [
            try file(Array("../../../escape-nested".utf8), "evil", session: session, context: ctx),
            try file(Array("inner.txt".utf8), "inner", session: session, context: ctx),
        ], session: session, context: ctx)
        let dotdot = try dir(Array("..".utf8), [try file(Array("escape-dotdot".utf8), "evil", session: session, context: ctx)],
                             session: session, context: ctx)
        let nodes = [
            try file(Array("../../escape.txt".utf8), "evil", session: session, context: ctx),
            try file(Array("/etc-escape".utf8), "evil", session: session, context: ctx),
            try file([], "evil", session: session, context: ctx),
            try file(Array("nul\u{0}name".utf8), "evil", session: session, context: ctx),
            try file(Array(".".utf8), "evil", session: session, context: ctx),
            dotdot, nested,
            try file(Array("ok.txt".utf8), "fine", session: session, context: ctx),
            try file(Array("dup".utf8), "first", session: session, context: ctx),
            try file(Array("dup".utf8), "second", session: session, context: ctx),
        ]
        _ = try session.finish()

        let target = base + "/out/a/b"
        let result = try Restore(repository: repo).run(tree: Tree(nodes: nodes), snapshotPath: Array("/".utf8), target: target)
        XCTAssertEqual(try String(contentsOfFile: target + "/ok.txt", encoding: .utf8), "fine")
        XCTAssertEqual(try String(contentsOfFile: target + "/sub/inner.txt", encoding: .utf8), "inner")
        XCTAssertEqual(result.refusedEntries.count, 8, "\(result.refusedEntries)")
        XCTAssertTrue(result.hasIntegrityProblems)
        // Nothing anywhere under base but the target's two files and its directories.
        var found: [String] = []
        let e = FileManager.default.enumerator(atPath: base)!
        while let f = e.nextObject() as? String {
            if f.hasPrefix("cache") { continue }
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: base + "/" + f, isDirectory: &isDir)
            if !isDir.boolValue { found.append(f) }
        }
        XCTAssertEqual(found.sorted(), ["out/a/b/dup", "out/a/b/ok.txt", "out/a/b/sub/inner.txt"])
        XCTAssertEqual(try String(contentsOfFile: target + "/dup", encoding: .utf8).count, 5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/escape-nested"))
    }

    func testSymlinkInsideTheTargetIsReplacedNotFollowed() throws {
        let session = try WriteSession(repository: repo)
        let ctx = session.makeContext()
        let sub = try dir(Array("sub".utf8), [try file(Array("f.txt".utf8), "inside", session: session, context: ctx)],
                          session: session, context: ctx)
        _ = try session.finish()
        let target = base + "/target", outside = base + "/outside"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        // Left by an earlier restore of a snapshot where `sub` was a symlink.
        try FileManager.default.createSymbolicLink(atPath: target + "/sub", withDestinationPath: outside)
        _ = try Restore(repository: repo).run(tree: Tree(nodes: [sub]), snapshotPath: Array("/".utf8), target: target)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), [])
        let attrs = try FileManager.default.attributesOfItem(atPath: target + "/sub")
        XCTAssertEqual(attrs[.type] as? FileAttributeType, .typeDirectory)
        XCTAssertEqual(try String(contentsOfFile: target + "/sub/f.txt", encoding: .utf8), "inside")
    }

    func testSingleNodeWithUnsafeNameIsRefused() throws {
        let session = try WriteSession(repository: repo)
        let ctx = session.makeContext()
        let node = try file(Array("../up.txt".utf8), "evil", session: session, context: ctx)
        _ = try session.finish()
        let result = try Restore(repository: repo).run(node: node, snapshotPath: Array("/x".utf8), target: base + "/t")
        XCTAssertEqual(result.refusedEntries.count, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: base + "/up.txt"))
    }
}
