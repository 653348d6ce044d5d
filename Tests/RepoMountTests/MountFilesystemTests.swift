import XCTest
import Foundation
import RepoPrimitives
import RepoRepository
import RepoSnapshot
@testable import RepoMount

/// The filesystem model without FUSE: layout, browsing trees, reads, damage, new snapshots.
final class MountFilesystemTests: XCTestCase {
    final class Logs: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ l: String) { lock.withLock { lines.append(l) } }
        var all: [String] { lock.withLock { lines } }
    }

    private func makeFS(_ src: MemorySource, _ configure: (inout MountFilesystem.Options) -> Void = { _ in }) -> (MountFilesystem, Logs) {
        let logs = Logs()
        var o = MountFilesystem.Options()
        o.refreshInterval = 0
        configure(&o)
        let fs = MountFilesystem(source: src, options: o) { logs.append($0) }
        return (fs, logs)
    }

    private func stream(_ src: MemorySource, _ name: String, _ data: [UInt8], sizes: [Int] = [1000, 3000, 7]) throws -> BlobID {
        try src.tree([Node(name: name, type: .file, size: data.count, mode: 0o640, mtime: "2024-05-01T12:00:00.25Z",
                           content: src.content(data, sizes: sizes, inlineLimit: 8, listCapacity: 16))])
    }

    func testLayoutNamesGroupsAndLatest() throws {
        let src = MemorySource()
        let t = try stream(src, "db/main.sql", [1, 2, 3])
        let a = src.addSnapshot(name: "db/main.sql", time: "2024-05-01T12:00:00Z", host: "pg1", tags: ["nightly"], tree: t)
        let b = src.addSnapshot(name: "db/main.sql", time: "2024-05-01T12:00:00.5Z", host: "pg1", tags: ["nightly", "x"], tree: t)
        let c = src.addSnapshot(name: "other", time: "2024-05-02T00:00:00Z", host: "pg2", tree: t)
        let (fs, _) = makeFS(src)
        XCTAssertEqual(try fs.list("/").map(\.0), ["by-host", "by-name", "by-tag", "snapshots"])
        let snaps = try fs.list("/snapshots").map(\.0)
        XCTAssertEqual(snaps, ["2024-05-01T12:00:00Z_\(a.id.shortHex)", "2024-05-01T12:00:00Z_\(b.id.shortHex)",
                               "2024-05-02T00:00:00Z_\(c.id.shortHex)", "latest"].sorted())
        XCTAssertEqual(try fs.linkTarget(at: "/snapshots/latest"), "2024-05-02T00:00:00Z_\(c.id.shortHex)")
        // Same second in one group: both get the short id; `latest` is the later one.
        XCTAssertEqual(try fs.list("/by-name").map(\.0), ["db%2Fmain.sql", "other"])
        XCTAssertEqual(try fs.linkTarget(at: "/by-name/db%2Fmain.sql/latest"), "2024-05-01T12:00:00Z_\(b.id.shortHex)")
        XCTAssertEqual(try fs.list("/by-name/other").map(\.0), ["2024-05-02T00:00:00Z", "latest"])
        XCTAssertEqual(try fs.list("/by-host").map(\.0), ["pg1", "pg2"])
        XCTAssertEqual(try fs.list("/by-tag").map(\.0), ["nightly", "x"])
        XCTAssertEqual(try fs.list("/by-tag/x").map(\.0), ["2024-05-01T12:00:00Z", "latest"])
        // Inside a snapshot: the stream, escaped, with its size, mode and mtime.
        let e = try fs.entry(at: "/by-name/other/2024-05-02T00:00:00Z/db%2Fmain.sql")
        XCTAssertEqual(e.attributes.kind, .file)
        XCTAssertEqual(e.attributes.size, 3)
        XCTAssertEqual(e.attributes.mode, 0o640)
        XCTAssertEqual(e.attributes.mtime, FileTime(seconds: 1_714_564_800, nanoseconds: 250_000_000))
        XCTAssertEqual(try fs.entry(at: "/by-host/pg2/2024-05-02T00:00:00Z").attributes.mtime, FileTime(seconds: 1_714_608_000))
        XCTAssertThrowsError(try fs.entry(at: "/snapshots/nope")) { XCTAssertEqual($0 as? MountError, .notFound) }
        XCTAssertThrowsError(try fs.list("/snapshots/latest")) { XCTAssertEqual($0 as? MountError, .notDirectory) }
    }

    func testBrowsesTreesWithDirectoriesAndSymlinks() throws {
        let src = MemorySource()
        let data = pseudoRandom(10_000, seed: 3)
        let sub = try src.tree([
            Node(name: "part-1.bin", type: .file, size: data.count, mode: 0o600, mtime: "2023-01-02T03:04:05Z",
                 content: src.content(data, sizes: [999])),
            Node(name: "empty", type: .file, size: 0, content: .chunks([])),
        ])
        // A symlink target as newer writers record it (an optional `target` field).
        var treeJSON = try JSONSerialization.jsonObject(with: Data(try Tree(nodes: [
            Node(name: "data", type: .dir, mode: 0o750, mtime: "2023-01-02T03:04:05Z", subtree: sub),
            Node(name: "current", type: .symlink),
        ]).encoded())) as! [String: Any]
        var nodes = treeJSON["nodes"] as! [[String: Any]]
        nodes[0]["target"] = "data/part-1.bin"
        nodes[0]["uid"] = 1234
        treeJSON["nodes"] = nodes
        let root = src.put(Array(try JSONSerialization.data(withJSONObject: treeJSON)))
        src.addSnapshot(name: nil, time: "2024-06-01T00:00:00Z", tree: root, paths: ["/srv/ch"])
        let (fs, _) = makeFS(src)
        XCTAssertEqual(try fs.list("/by-name").map(\.0), ["%2Fsrv%2Fch"])
        let base = "/snapshots/latest/"
        XCTAssertThrowsError(try fs.list(base)) // `latest` is a symlink; the kernel follows it, not the model
        let snap = "/snapshots/" + (try fs.linkTarget(at: "/snapshots/latest")) + "/"
        XCTAssertEqual(try fs.list(snap).map(\.0), ["current", "data"])
        XCTAssertEqual(try fs.linkTarget(at: snap + "current"), "data/part-1.bin")
        XCTAssertEqual(try fs.entry(at: snap + "current").attributes.uid, 1234)
        XCTAssertEqual(try fs.entry(at: snap + "data").attributes.mode, 0o750)
        XCTAssertEqual(try fs.list(snap + "data").map(\.0), ["empty", "part-1.bin"])
        XCTAssertEqual(try fs.readAll(snap + "data/part-1.bin"), data)
        XCTAssertEqual(try fs.readAll(snap + "data/empty"), [])
        XCTAssertThrowsError(try fs.open(snap + "data")) { XCTAssertEqual($0 as? MountError, .isDirectory) }
        XCTAssertThrowsError(try fs.entry(at: snap + "data/part-1.bin/x")) { XCTAssertEqual($0 as? MountError, .notDirectory) }
    }

    func testRandomReadsMatchAcrossChunkAndListBoundaries() throws {
        let src = MemorySource()
        let data = pseudoRandom(300_000, seed: 4)
        src.addSnapshot(name: "big", time: "2024-05-01T00:00:00Z", tree: try stream(src, "big", data))
        let (fs, _) = makeFS(src) { $0.readAheadBytes = 20_000 }
        let h = try fs.open("/by-name/big/latest/big".replacingOccurrences(of: "latest", with: "2024-05-01T00:00:00Z"))
        defer { fs.close(h) }
        var g = SystemRandomNumberGenerator()
        var buf = [UInt8](repeating: 0, count: 70_000)
        for i in 0..<500 {
            let off = i < 10 ? [0, 999, 1000, 3999, 4000, 4006, 4007, 299_999, 300_000, 150_000][i] : Int.random(in: 0...data.count, using: &g)
            let len = Int.random(in: 1...buf.count, using: &g)
            let n = try buf.withUnsafeMutableBytes { try fs.read(h, offset: off, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<len])) }
            XCTAssertEqual(n, max(0, min(len, data.count - off)), "offset \(off)")
            XCTAssertEqual(Array(buf[0..<n]), Array(data[off..<(off + n)]), "offset \(off) length \(len)")
        }
    }

    func testSequentialReadsDecodeAhead() throws {
        let src = MemorySource()
        let data = pseudoRandom(200_000, seed: 5)
        src.addSnapshot(name: "s", time: "2024-05-01T00:00:00Z", tree: try stream(src, "s", data, sizes: [10_000]))
        let (fs, _) = makeFS(src) { $0.readAheadBytes = 50_000; $0.threads = 2 }
        let h = try fs.open("/by-name/s/2024-05-01T00:00:00Z/s")
        var buf = [UInt8](repeating: 0, count: 4096)
        _ = try buf.withUnsafeMutableBytes { try fs.read(h, offset: 0, into: $0) }
        // The read-ahead threads decode the next ~50 KB (5 chunks) without further reads.
        let deadline = Date().addingTimeInterval(5)
        while fs.chunks.prefetched < 5 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertGreaterThanOrEqual(fs.chunks.prefetched, 5)
        XCTAssertLessThanOrEqual(fs.chunks.prefetched, 7)
        XCTAssertEqual(try fs.readAll("/by-name/s/2024-05-01T00:00:00Z/s"), data)
        fs.close(h)
        XCTAssertEqual(fs.openFiles, 0)
    }

    func testDamagedChunkFailsTheReadAndIsLoggedNeverWrongBytes() throws {
        let src = MemorySource()
        let data = pseudoRandom(50_000, seed: 6)
        let tree = try stream(src, "d.dump", data, sizes: [10_000])
        src.addSnapshot(name: "d.dump", time: "2024-05-01T00:00:00Z", tree: tree)
        let (fs, logs) = makeFS(src) { $0.readAheadBytes = 0 }
        let path = "/by-name/d.dump/2024-05-01T00:00:00Z/d.dump"
        let h = try fs.open(path)
        defer { fs.close(h) }
        let bad = try XCTUnwrap(try ContentMap(content: src.content(data, sizes: [10_000]), loadList: src.contentList).locate(25_000))
        src.damaged = [bad.chunk.id]
        var buf = [UInt8](repeating: 0, count: 8192)
        // Reads inside other chunks still work.
        XCTAssertEqual(try buf.withUnsafeMutableBytes { try fs.read(h, offset: 0, into: $0) }, 8192)
        XCTAssertEqual(Array(buf), Array(data[0..<8192]))
        // Any read touching the damaged chunk fails.
        for off in [bad.start - 100, bad.start, bad.start + 5000] {
            XCTAssertThrowsError(try buf.withUnsafeMutableBytes { try fs.read(h, offset: off, into: $0) }) { e in
                guard case .io = e as? MountError else { return XCTFail("\(e)") }
            }
        }
        let lines = logs.all
        XCTAssertEqual(lines.count, 1, "one line per damaged chunk: \(lines)")
        XCTAssertTrue(lines[0].contains(bad.chunk.id.hex) && lines[0].contains("d.dump") && lines[0].contains("authentication failed"), lines[0])
    }

    func testNewSnapshotsAppearWithoutRemounting() throws {
        let src = MemorySource()
        let t = try stream(src, "a", [1])
        src.addSnapshot(name: "a", time: "2024-05-01T00:00:00Z", tree: t)
        let (fs, _) = makeFS(src) { $0.refreshInterval = 3600 }
        try fs.refresh()
        XCTAssertEqual(try fs.list("/by-name").map(\.0), ["a"])
        let loads = src.snapshotLoads
        src.addSnapshot(name: "b", time: "2024-05-02T00:00:00Z", tree: t)
        Thread.sleep(forTimeInterval: 0.25)
        // A lookup of a name not yet known asks the repository again (the list is otherwise reused).
        XCTAssertEqual(try fs.entry(at: "/by-name/b").attributes.kind, .directory)
        XCTAssertEqual(src.snapshotLoads, loads + 1)
        XCTAssertEqual(try fs.list("/by-name").map(\.0), ["a", "b"])
        XCTAssertEqual(src.snapshotLoads, loads + 1)
    }

    func testListsManySnapshotsQuickly() throws {
        let src = MemorySource()
        let t = try stream(src, "s", [1])
        for i in 0..<1000 {
            src.addSnapshot(name: "s\(i % 10)", time: Timestamp.format(Date(timeIntervalSince1970: 1_700_000_000 + Double(i) * 60)), tree: t)
        }
        let (fs, _) = makeFS(src) { $0.refreshInterval = 1 }
        let started = Date()
        let names = try fs.list("/snapshots")
        for (n, _) in names { _ = try fs.entry(at: "/snapshots/" + n) }
        XCTAssertEqual(names.count, 1001)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)   // debug build; the release figure is in the README
    }
}
