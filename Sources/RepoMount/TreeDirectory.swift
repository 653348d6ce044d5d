public import RepoPrimitives
public import RepoSnapshot
import Foundation

/// One decoded tree blob as the mount shows it: entries by escaped name, with attributes
/// computed once. Generic over `Node`: directories through `subtree`, files through `content`,
/// symlinks through their `target`.
public final class TreeDirectory: Sendable {
    public struct Entry: Sendable {
        public var name: String
        public var attributes: Attributes
        public var subtree: BlobID?
        public var content: Content?
        public var target: String?
    }

    public let entries: [Entry]
    private let index: [String: Int]

    public init(entries: [Entry]) {
        let sorted = entries.sorted { $0.name < $1.name }
        self.entries = sorted
        var idx: [String: Int] = [:]
        for (i, e) in sorted.enumerated() where idx[e.name] == nil { idx[e.name] = i }
        index = idx
    }

    public func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// Optional node fields that newer writers add (symlink targets, ownership, link counts);
    /// read from the tree JSON directly so the mount shows them whatever `Node` declares.
    private struct ExtraTree: Decodable { var nodes: [ExtraNode] }
    private struct ExtraNode: Decodable {
        var target: String?
        var uid: UInt32?
        var gid: UInt32?
        var links: Int?
    }

    /// Decodes a tree blob.
    /// - Parameter fallbackTime: mtime for nodes that record none (the snapshot's time).
    public static func decode(_ bytes: [UInt8], fallbackTime: FileTime) throws -> TreeDirectory {
        let tree = try Tree.decode(bytes)
        let extras = (try? JSONDecoder().decode(ExtraTree.self, from: Data(bytes)))?.nodes
        var out: [Entry] = []
        out.reserveCapacity(tree.nodes.count)
        for (i, n) in tree.nodes.enumerated() {
            let x = extras.flatMap { i < $0.count ? $0[i] : nil }
            let mtime = n.mtime.flatMap(FileTime.parse) ?? fallbackTime
            let attrs: Attributes
            switch n.type {
            case .file:
                guard let size = n.content.map(Self.contentSize) ?? 0 else {
                    throw MalformedContent(name: n.name)
                }
                attrs = Attributes(kind: .file, mode: (n.mode ?? 0o644) & 0o7777, size: size, mtime: mtime,
                                   uid: x?.uid, gid: x?.gid, links: max(1, x?.links ?? 1))
            case .dir:
                attrs = Attributes(kind: .directory, mode: (n.mode ?? 0o755) & 0o7777, size: 0, mtime: mtime,
                                   uid: x?.uid, gid: x?.gid, links: 2)
            case .symlink:
                attrs = Attributes(kind: .symlink, mode: 0o777, size: (x?.target ?? "").utf8.count, mtime: mtime,
                                   uid: x?.uid, gid: x?.gid, links: 1)
            }
            out.append(Entry(name: PathName.escape(n.name), attributes: attrs, subtree: n.subtree,
                             content: n.type == .file ? (n.content ?? .chunks([])) : nil,
                             target: n.type == .symlink ? (x?.target ?? "") : nil))
        }
        return TreeDirectory(entries: out)
    }

    /// Bytes of content, from the chunk or list sizes (what reads return); nil when a size is
    /// negative or the sum does not fit an Int (only a crafted tree says so).
    public static func contentSize(_ c: Content) -> Int? {
        let sizes: [Int] = switch c {
        case .chunks(let v): v.map(\.size)
        case .lists(let v): v.map(\.size)
        }
        var total = 0
        for s in sizes {
            guard s >= 0 else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(s)
            if overflow { return nil }
            total = sum
        }
        return total
    }

    /// A file node whose content sizes are negative or add up to more than an Int holds.
    public struct MalformedContent: Error, CustomStringConvertible {
        public var name: String
        public var description: String { "file \(name): content sizes are negative or too large" }
    }
}
