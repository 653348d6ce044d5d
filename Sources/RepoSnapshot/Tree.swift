public import RepoPrimitives
public import Foundation

/// A directory: nodes sorted by the bytes of their names, serialized deterministically (JSON,
/// sorted keys, no whitespace) so that equal trees have equal blob ids and dedup
/// (FORMAT.md §Trees).
public struct Tree: Codable, Sendable, Equatable {
    public var nodes: [Node]

    public init(nodes: [Node]) {
        self.nodes = nodes.sorted { $0.nameBytes.lexicographicallyPrecedes($1.nameBytes) }
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try enc.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> Tree {
        try JSONDecoder().decode(Tree.self, from: Data(bytes))
    }

    /// The node whose name is exactly `name` (compared as bytes).
    public func node(named name: String) -> Node? { node(nameBytes: Array(name.utf8)) }

    /// The node whose name bytes are `bytes` (binary search: nodes are sorted by name bytes).
    public func node(nameBytes bytes: [UInt8]) -> Node? {
        var lo = 0, hi = nodes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let key = nodes[mid].nameBytes
            if key == bytes { return nodes[mid] }
            if key.lexicographicallyPrecedes(bytes) { lo = mid + 1 } else { hi = mid }
        }
        return nil
    }
}

/// One entry of a tree: a stored stream, or a file, directory or symbolic link of a backed-up
/// tree. Every field but `name` and `type` is optional so streams and trees share one shape.
public struct Node: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case file, dir, symlink }

    /// The name as text. When the name's bytes are not valid UTF-8, this is a lossy rendering
    /// and `nameRaw` holds the exact bytes.
    public var name: String
    /// Base64 of the exact name bytes, present only when they are not valid UTF-8.
    public var nameRaw: String?
    public var type: Kind
    /// Content size in bytes (files).
    public var size: Int?
    /// SHA-256 of the whole content, recorded for stored streams and verified by `dump`.
    public var sha256: Hash256?
    /// Permission bits including set-id and sticky bits (`st_mode & 0o7777`).
    public var mode: UInt32?
    /// Modification time, RFC 3339 UTC with nanoseconds for backed-up files.
    public var mtime: String?
    /// Inode change time, inode number, device and link count at backup time: used to detect
    /// unchanged files and to restore hard links (files sharing `device` and `inode`).
    public var ctime: String?
    public var inode: UInt64?
    public var device: UInt64?
    public var links: Int?
    public var uid: UInt32?
    public var gid: UInt32?
    /// Symbolic link target as text (lossy when not UTF-8; then `targetRaw` holds the bytes).
    public var target: String?
    public var targetRaw: String?
    /// Extended attributes (name, base64 value), sorted by name.
    public var xattrs: [ExtendedAttribute]?
    /// File content.
    public var content: Content?
    /// Subtree blob (directories).
    public var subtree: BlobID?

    public init(name: String, type: Kind, size: Int? = nil, sha256: Hash256? = nil, mode: UInt32? = nil,
                mtime: String? = nil, content: Content? = nil, subtree: BlobID? = nil) {
        self.name = name; self.type = type; self.size = size; self.sha256 = sha256; self.mode = mode
        self.mtime = mtime; self.content = content; self.subtree = subtree
    }

    /// A node named by raw bytes (file names on Linux are bytes, not text).
    public init(nameBytes: [UInt8], type: Kind) {
        self.init(name: "", type: type)
        self.nameBytes = nameBytes
    }

    /// The exact bytes of the name.
    public var nameBytes: [UInt8] {
        get { Self.bytes(text: name, raw: nameRaw) }
        set { (name, nameRaw) = Self.text(newValue) }
    }

    /// Why `name` cannot be one component of a path, or nil when it can (FORMAT.md §14.1): it
    /// must not be empty, `.` or `..`, and must contain neither `/` nor NUL. Every reader that
    /// turns a node name into a path (restore, the mount) refuses names that fail this, whatever
    /// a repository holds, so a crafted or damaged tree cannot reach outside its target.
    public static func componentProblem(_ name: [UInt8]) -> String? {
        if name.isEmpty { return "the name is empty" }
        if name == [0x2E] || name == [0x2E, 0x2E] { return "the name is `\(String(decoding: name, as: UTF8.self))`" }
        if name.contains(0x2F) { return "the name contains `/`" }
        if name.contains(0) { return "the name contains a NUL byte" }
        return nil
    }

    /// The exact bytes of the symlink target.
    public var targetBytes: [UInt8]? {
        get { target.map { Self.bytes(text: $0, raw: targetRaw) } }
        set {
            guard let newValue else { target = nil; targetRaw = nil; return }
            (target, targetRaw) = Self.text(newValue)
        }
    }

    static func bytes(text: String, raw: String?) -> [UInt8] {
        if let raw, let data = Data(base64Encoded: raw) { return [UInt8](data) }
        return Array(text.utf8)
    }

    static func text(_ bytes: [UInt8]) -> (String, String?) {
        if let s = String(validating: bytes, as: UTF8.self) { return (s, nil) }
        return (String(decoding: bytes, as: UTF8.self), Data(bytes).base64EncodedString())
    }
}

/// One extended attribute of a file.
public struct ExtendedAttribute: Codable, Sendable, Equatable {
    public var name: String
    /// Base64 of the value bytes.
    public var value: String

    public init(name: String, value: [UInt8]) { self.name = name; self.value = Data(value).base64EncodedString() }

    public var valueBytes: [UInt8] { Data(base64Encoded: value).map { [UInt8]($0) } ?? [] }
}
