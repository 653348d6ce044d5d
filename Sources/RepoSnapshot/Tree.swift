public import RepoPrimitives
public import Foundation

/// A directory: nodes sorted by name, serialized deterministically (JSON, sorted keys, no
/// whitespace) so that equal trees have equal blob ids and dedup (FORMAT.md §Trees).
public struct Tree: Codable, Sendable, Equatable {
    public var nodes: [Node]

    public init(nodes: [Node]) { self.nodes = nodes.sorted { $0.name < $1.name } }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return Array(try enc.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> Tree {
        try JSONDecoder().decode(Tree.self, from: Data(bytes))
    }

    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }
}

/// One entry of a tree.
public struct Node: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case file, dir, symlink }

    public var name: String
    public var type: Kind
    /// Content size in bytes (files).
    public var size: Int?
    /// SHA-256 of the whole content, recorded for stored streams and verified by `dump`.
    public var sha256: Hash256?
    /// Permission bits (octal in spirit, stored as a number).
    public var mode: UInt32?
    /// RFC 3339 modification time.
    public var mtime: String?
    /// File content.
    public var content: Content?
    /// Subtree blob (directories).
    public var subtree: BlobID?

    public init(name: String, type: Kind, size: Int? = nil, sha256: Hash256? = nil, mode: UInt32? = nil,
                mtime: String? = nil, content: Content? = nil, subtree: BlobID? = nil) {
        self.name = name; self.type = type; self.size = size; self.sha256 = sha256; self.mode = mode
        self.mtime = mtime; self.content = content; self.subtree = subtree
    }
}
