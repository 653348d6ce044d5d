import XCTest
import Foundation
@testable import RepoStorage

/// The contract of `StorageBackend` (see its doc comments), run against every backend.
class StorageBackendConformance: XCTestCase {
    /// A counter several threads add to.
    final class Atomic: @unchecked Sendable {
        private let lock = NSLock()
        private var count: Int
        init(_ value: Int) { count = value }
        func add(_ n: Int) { lock.lock(); count += n; lock.unlock() }
        var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    }

    /// Subclasses return a fresh, empty backend.
    func makeBackend() throws -> StorageBackend? { nil }

    func withBackend(_ body: (StorageBackend) throws -> Void) throws {
        guard let b = try makeBackend() else { return }   // the abstract base class runs nothing
        try body(b)
    }

    func testPutGetStat() throws {
        try withBackend { b in
            let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try b.put("data/ab/abcdef", data: data)
            XCTAssertEqual(try b.get("data/ab/abcdef"), data)
            XCTAssertEqual(try b.stat("data/ab/abcdef"), ObjectInfo(name: "data/ab/abcdef", size: data.count))
            XCTAssertEqual(try b.get("data/ab/abcdef", range: 10..<20), Array(data[10..<20]))
            XCTAssertEqual(try b.get("data/ab/abcdef", range: 99_990..<100_000), Array(data[99_990...]))
            XCTAssertTrue(try b.exists("data/ab/abcdef"))
        }
    }

    /// `create` never replaces: of many concurrent creates of one name exactly one wins, and
    /// the object holds the winner's bytes, whole.
    func testCreateNeverOverwrites() throws {
        try withBackend { b in
            XCTAssertTrue(try b.create("wal/00000001/000000010000000000000001", data: [1, 2, 3]))
            XCTAssertFalse(try b.create("wal/00000001/000000010000000000000001", data: [9, 9]))
            XCTAssertEqual(try b.get("wal/00000001/000000010000000000000001"), [1, 2, 3])
            let wins = Atomic(0)
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                let data = [UInt8](repeating: UInt8(i), count: 100_000)
                if (try? b.create("wal/00000001/000000010000000000000002", data: data)) == true { wins.add(1) }
            }
            XCTAssertEqual(wins.value, 1)
            let stored = try b.get("wal/00000001/000000010000000000000002")
            XCTAssertEqual(stored.count, 100_000)
            XCTAssertEqual(Set(stored).count, 1)
            XCTAssertEqual(try b.list(prefix: "wal/").count, 2, "no temporary file is listed or left")
        }
    }

    func testEmptyObject() throws {
        try withBackend { b in
            try b.put("keys/empty", data: [])
            XCTAssertEqual(try b.get("keys/empty"), [])
            XCTAssertEqual(try b.stat("keys/empty").size, 0)
        }
    }

    func testNotFoundAndBadRange() throws {
        try withBackend { b in
            XCTAssertThrowsError(try b.get("index/missing")) { XCTAssertEqual($0 as? StorageError, .notFound("index/missing")) }
            XCTAssertThrowsError(try b.stat("index/missing")) { XCTAssertEqual($0 as? StorageError, .notFound("index/missing")) }
            XCTAssertFalse(try b.exists("index/missing"))
            try b.put("index/x", data: [1, 2, 3])
            XCTAssertThrowsError(try b.get("index/x", range: 2..<5)) {
                guard case .badRange = $0 as? StorageError else { return XCTFail("expected badRange, got \($0)") }
            }
        }
    }

    func testListByPrefixRecursive() throws {
        try withBackend { b in
            try b.put("data/00/0011", data: [1])
            try b.put("data/ff/ff22", data: [1, 2])
            try b.put("index/aa", data: [3])
            try b.put("config", data: [4])
            XCTAssertEqual(Set(try b.list(prefix: "data/").map(\.name)), ["data/00/0011", "data/ff/ff22"])
            XCTAssertEqual(try b.list(prefix: "data/ff/").map(\.size), [2])
            XCTAssertEqual(try b.list(prefix: "index/").map(\.name), ["index/aa"])
            XCTAssertEqual(try b.list(prefix: "snapshots/"), [])
            XCTAssertEqual(Set(try b.listNames(prefix: "data/")), ["data/00/0011", "data/ff/ff22"])
            XCTAssertEqual(try b.listNames(prefix: "data/ff/"), ["data/ff/ff22"])
            XCTAssertEqual(Set(try b.listNames(prefix: "")), ["data/00/0011", "data/ff/ff22", "index/aa", "config"])
        }
    }

    func testOverwriteAndDeleteIdempotent() throws {
        try withBackend { b in
            try b.put("locks/l", data: [1])
            try b.put("locks/l", data: [2, 2])
            XCTAssertEqual(try b.get("locks/l"), [2, 2])
            try b.delete("locks/l")
            try b.delete("locks/l")
            XCTAssertFalse(try b.exists("locks/l"))
        }
    }

    func testStagedObjectIsInvisibleUntilCommitted() throws {
        try withBackend { b in
            let data = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let staged = try b.stage()
            try staged.append(Array(data[..<100_000]))
            try staged.append(Array(data[100_000...]))
            XCTAssertEqual(staged.size, data.count)
            XCTAssertEqual(try b.list(prefix: ""), [])
            try staged.commit(as: "data/9a/9abc")
            XCTAssertEqual(try b.list(prefix: "").map(\.name), ["data/9a/9abc"])
            XCTAssertEqual(try b.get("data/9a/9abc"), data)

            // Discarded or dropped: nothing is published and nothing is left behind.
            let dropped = try b.stage()
            try dropped.append([1, 2, 3])
            dropped.discard()
            do { let gone = try b.stage(); try gone.append([4, 5]) }
            XCTAssertEqual(try b.list(prefix: "").map(\.name), ["data/9a/9abc"])
            if let local = b as? LocalBackend {
                let left = try FileManager.default.subpathsOfDirectory(atPath: local.root).filter { $0.contains(".tmp-") }
                XCTAssertEqual(left, [])
            }
        }
    }

    func testConcurrentPuts() throws {
        try withBackend { b in
            DispatchQueue.concurrentPerform(iterations: 32) { i in
                try? b.put("data/\(i % 4)/obj\(i)", data: [UInt8](repeating: UInt8(i), count: 1000 + i))
            }
            let listed = try b.list(prefix: "data/")
            XCTAssertEqual(listed.count, 32)
            for o in listed { XCTAssertEqual(try b.get(o.name).count, o.size) }
        }
    }
}

final class MemoryBackendTests: StorageBackendConformance {
    override func makeBackend() throws -> StorageBackend? { MemoryBackend() }
}

final class LocalBackendTests: StorageBackendConformance {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "repo-backend-" + UUID().uuidString
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    override func makeBackend() throws -> StorageBackend? {
        let b = LocalBackend(path: dir)
        try b.prepare()
        return b
    }

    func testTemporaryFilesAreNeverListed() throws {
        let b = try XCTUnwrap(makeBackend())
        try FileManager.default.createDirectory(atPath: dir + "/data/ab", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/data/ab/.tmp-123", contents: Data([1, 2]))
        try b.put("data/ab/real", data: [1])
        XCTAssertEqual(try b.list(prefix: "data/").map(\.name), ["data/ab/real"])
    }

    /// Objects of 1 MiB and more are written whole past the page cache (`appendWhole`): every
    /// size around the 4 KiB blocks and the 1 MiB bounce buffer reads back exactly, with
    /// `create` and `put`, on this directory's file system and on tmpfs where there is one.
    func testLargeObjectsWrittenWholeReadBackExactly() throws {
        var dirs = [dir!]
        if FileManager.default.isWritableFile(atPath: "/dev/shm") { dirs.append("/dev/shm/repo-backend-" + UUID().uuidString) }
        defer { for d in dirs.dropFirst() { try? FileManager.default.removeItem(atPath: d) } }
        for d in dirs {
            let b = LocalBackend(path: d)
            try b.prepare()
            for (i, size) in [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20 + 4095, 2 << 20 + 4096, 5 << 20 + 123].enumerated() {
                var rng = SystemRandomNumberGenerator()
                let data = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
                XCTAssertTrue(try b.create("wal/big\(i)", data: data))
                XCTAssertEqual(try b.get("wal/big\(i)"), data, "\(d): create of \(size) bytes")
                XCTAssertFalse(try b.create("wal/big\(i)", data: [1]), "never replaced")
                try b.put("index/big\(i)", data: data)
                XCTAssertEqual(try b.get("index/big\(i)"), data, "\(d): put of \(size) bytes")
            }
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: d + "/wal").filter { $0.hasPrefix(".tmp") }, [])
        }
    }

    func testPrepareRefusesNonEmptyDirectory() throws {
        let b = try XCTUnwrap(makeBackend())
        try b.put("config", data: [1])
        XCTAssertThrowsError(try b.prepare())
    }
}
