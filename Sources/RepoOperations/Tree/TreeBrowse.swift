public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
import Foundation

/// A node found at a path inside a snapshot, or the snapshot's root.
public struct TreeLocation: Sendable {
    /// The node, nil for the root.
    public var node: Node?
    /// Path inside the snapshot (`/` for the root), as bytes.
    public var path: [UInt8]
    /// The directory's tree, when the location is the root or a directory.
    public var tree: Tree?
}

extension Repository {
    /// Finds `path` (absolute or relative to the snapshot root; `/` or empty for the root).
    public func locate(path: String, in entry: SnapshotEntry) throws -> TreeLocation {
        try locate(pathBytes: Array(path.utf8), in: entry)
    }

    /// Finds `path`, given as bytes (Linux names need not be UTF-8). A stream name containing
    /// `/` (written before names were restricted) is matched whole first.
    public func locate(pathBytes path: [UInt8], in entry: SnapshotEntry) throws -> TreeLocation {
        let slash = UInt8(ascii: "/")
        let shown = PathText.display(path)
        let root = try loadTree(entry.snapshot.tree)
        let trimmed = path.first == slash ? Array(path.dropFirst()) : path
        if trimmed.isEmpty { return TreeLocation(node: nil, path: [slash], tree: root) }
        if let n = root.node(nameBytes: trimmed) {
            return TreeLocation(node: n, path: [slash] + trimmed, tree: try n.subtree.map(loadTree))
        }
        var tree = root
        var node: Node?
        var at: [UInt8] = []
        for part in trimmed.split(separator: slash, omittingEmptySubsequences: true) {
            guard node == nil || node?.type == .dir else {
                throw RepoError(.failure, "no \(shown) in snapshot \(entry.id.shortHex): \(PathText.display(at)) is not a directory")
            }
            if let n = node { tree = try n.subtree.map(loadTree) ?? Tree(nodes: []) }
            guard let next = tree.node(nameBytes: Array(part)) else {
                throw RepoError(.failure, "no \(shown) in snapshot \(entry.id.shortHex)",
                                hint: "list its contents with `repo ls \(entry.id.shortHex)`")
            }
            node = next
            at += [slash] + Array(part)
        }
        let sub: Tree? = node?.type == .dir ? try node?.subtree.map(loadTree) ?? Tree(nodes: []) : nil
        return TreeLocation(node: node, path: at, tree: sub)
    }

    /// Calls `visit` for every node below `tree`, depth-first in name order, with its path.
    public func walk(_ tree: Tree, prefix: [UInt8], _ visit: ([UInt8], Node) throws -> Void) throws {
        for node in tree.nodes {
            let path = (prefix == [UInt8(ascii: "/")] ? [] : prefix) + [UInt8(ascii: "/")] + node.nameBytes
            try visit(path, node)
            if node.type == .dir, let sub = node.subtree { try walk(try loadTree(sub), prefix: path, visit) }
        }
    }
}

/// `repo diff`: what changed between two snapshot trees.
public struct TreeDiff {
    public enum Change: String, Codable, Sendable {
        case added = "+", removed = "-", modified = "M", typeChanged = "T", metadata = "U"
    }

    public struct Entry: Sendable {
        public var change: Change
        public var path: [UInt8]
        public var type: Node.Kind
        public var size: Int?
        public var oldSize: Int?
    }

    public struct Summary: Sendable, Codable {
        public var added = 0, removed = 0, modified = 0, typeChanged = 0, metadata = 0
        public var addedBytes = 0, removedBytes = 0
    }

    public let repository: Repository

    public init(repository: Repository) { self.repository = repository }

    /// Compares `a` (old) with `b` (new), reporting each difference in path order.
    public func run(_ a: Tree, _ b: Tree, visit: (Entry) throws -> Void) throws -> Summary {
        var summary = Summary()
        try compare(a, b, prefix: [], summary: &summary, visit: visit)
        return summary
    }

    private func compare(_ a: Tree, _ b: Tree, prefix: [UInt8], summary: inout Summary, visit: (Entry) throws -> Void) throws {
        var i = 0, j = 0
        while i < a.nodes.count || j < b.nodes.count {
            let an = i < a.nodes.count ? a.nodes[i] : nil
            let bn = j < b.nodes.count ? b.nodes[j] : nil
            if let an, bn == nil || an.nameBytes.lexicographicallyPrecedes(bn!.nameBytes) {
                try report(.removed, an, prefix: prefix, summary: &summary, visit: visit)
                i += 1
            } else if let bn, an == nil || bn.nameBytes.lexicographicallyPrecedes(an!.nameBytes) {
                try report(.added, bn, prefix: prefix, summary: &summary, visit: visit)
                j += 1
            } else {
                let an = an!, bn = bn!
                i += 1; j += 1
                let path = prefix + [UInt8(ascii: "/")] + bn.nameBytes
                if an.type != bn.type {
                    summary.typeChanged += 1
                    try visit(Entry(change: .typeChanged, path: path, type: bn.type, size: bn.size, oldSize: an.size))
                    if an.type == .dir { try reportChildren(of: an, .removed, path: path, summary: &summary, visit: visit) }
                    if bn.type == .dir { try reportChildren(of: bn, .added, path: path, summary: &summary, visit: visit) }
                    continue
                }
                switch bn.type {
                case .dir:
                    if an.subtree != bn.subtree {
                        let at = try an.subtree.map(repository.loadTree) ?? Tree(nodes: [])
                        let bt = try bn.subtree.map(repository.loadTree) ?? Tree(nodes: [])
                        try compare(at, bt, prefix: path, summary: &summary, visit: visit)
                    }
                    if an.mode != bn.mode || an.uid != bn.uid || an.gid != bn.gid {
                        summary.metadata += 1
                        try visit(Entry(change: .metadata, path: path, type: .dir))
                    }
                case .file, .symlink:
                    if an.content != bn.content || an.targetBytes != bn.targetBytes || an.size != bn.size {
                        summary.modified += 1
                        summary.addedBytes += max(0, (bn.size ?? 0) - (an.size ?? 0))
                        summary.removedBytes += max(0, (an.size ?? 0) - (bn.size ?? 0))
                        try visit(Entry(change: .modified, path: path, type: bn.type, size: bn.size, oldSize: an.size))
                    } else if an.mode != bn.mode || an.mtime != bn.mtime || an.uid != bn.uid || an.gid != bn.gid
                                || an.xattrs != bn.xattrs {
                        summary.metadata += 1
                        try visit(Entry(change: .metadata, path: path, type: bn.type, size: bn.size, oldSize: an.size))
                    }
                }
            }
        }
    }

    private func report(_ change: Change, _ node: Node, prefix: [UInt8], summary: inout Summary,
                        visit: (Entry) throws -> Void) throws {
        let path = prefix + [UInt8(ascii: "/")] + node.nameBytes
        if change == .added { summary.added += 1; summary.addedBytes += node.size ?? 0 }
        else { summary.removed += 1; summary.removedBytes += node.size ?? 0 }
        try visit(Entry(change: change, path: path, type: node.type, size: node.size))
        if node.type == .dir { try reportChildren(of: node, change, path: path, summary: &summary, visit: visit) }
    }

    private func reportChildren(of node: Node, _ change: Change, path: [UInt8], summary: inout Summary,
                                visit: (Entry) throws -> Void) throws {
        guard let sub = node.subtree else { return }
        for child in try repository.loadTree(sub).nodes {
            try report(change, child, prefix: path, summary: &summary, visit: visit)
        }
    }
}
