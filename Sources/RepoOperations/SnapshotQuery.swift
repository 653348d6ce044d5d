public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
import Foundation

/// Filters shared by `snapshots` and by every command that resolves `latest`.
public struct SnapshotFilter: Sendable {
    public var name: String?
    public var host: String?
    public var tags: [String]

    public init(name: String? = nil, host: String? = nil, tags: [String] = []) {
        self.name = name; self.host = host; self.tags = tags
    }

    public func matches(_ s: Snapshot) -> Bool {
        if let name, s.name != name { return false }
        if let host, s.host != host { return false }
        return tags.allSatisfy { s.tags.contains($0) }
    }
}

extension Repository {
    /// All readable snapshots, oldest first.
    public func snapshots(matching filter: SnapshotFilter = SnapshotFilter()) throws -> [SnapshotEntry] {
        try snapshotsAndDamage(matching: filter).entries
    }

    /// All readable snapshots matching `filter`, oldest first, and the ids of snapshot objects
    /// that cannot be read or decoded (they might match any filter).
    public func snapshotsAndDamage(matching filter: SnapshotFilter = SnapshotFilter()) throws -> (entries: [SnapshotEntry], damaged: [Hash256]) {
        var out: [SnapshotEntry] = []
        let (bodies, unreadable) = try snapshotBodiesAndDamage()
        var damaged = unreadable
        for (id, body) in bodies {
            guard let s = try? Snapshot.decode(body) else {
                warn("snapshot \(id.hex) could not be decoded and was skipped")
                damaged.append(id)
                continue
            }
            guard filter.matches(s) else { continue }
            out.append(SnapshotEntry(id: id, snapshot: s, date: Timestamp.parse(s.time) ?? .distantPast))
        }
        return (out.sorted { ($0.date, $0.id) < ($1.date, $1.id) }, damaged)
    }

    /// Resolves `latest`, a full id or a unique id prefix.
    ///
    /// A damaged snapshot object could be the newest of any name, so `latest` is refused while
    /// one exists rather than silently answered with an older snapshot; an id that names a
    /// damaged snapshot is reported as damaged, not as missing.
    /// - Throws: `RepoError(.failure)` when nothing or more than one snapshot matches;
    ///   `.integrity` when a damaged snapshot makes the answer uncertain.
    public func findSnapshot(_ ref: String, filter: SnapshotFilter) throws -> SnapshotEntry {
        if ref == "latest" {
            let (entries, damaged) = try snapshotsAndDamage(matching: filter)
            if !damaged.isEmpty {
                let names = damaged.prefix(3).map(\.shortHex).joined(separator: ", ")
                throw RepoError(.integrity, "`latest` cannot be determined: snapshot\(damaged.count == 1 ? "" : "s") \(names)\(damaged.count > 3 ? ", …" : "") cannot be read, and could be newer than \(entries.last.map { $0.id.shortHex } ?? "any readable one")",
                                hint: "name the snapshot by id (`repo snapshots` lists the readable ones); run `repo check` to see the damage")
            }
            guard let s = entries.last else {
                throw RepoError(.failure, "no snapshot matches \(Self.describe(filter))",
                                hint: "list them with `repo snapshots`")
            }
            return s
        }
        guard !ref.isEmpty, Hex.isHex(ref) else {
            throw RepoError(.usage, "\"\(ref)\" is not a snapshot id: use `latest` or a hex id (prefix) from `repo snapshots`")
        }
        let (all, damaged) = try snapshotsAndDamage(matching: SnapshotFilter())
        let hits = all.filter { $0.id.hex.hasPrefix(ref.lowercased()) }
        if let bad = damaged.first(where: { $0.hex.hasPrefix(ref.lowercased()) }), hits.isEmpty {
            throw RepoError(.integrity, "snapshot \(bad.hex) is damaged: it cannot be read or authenticated",
                            hint: "run `repo check` to see the damage; restore its object from a copy of the repository if you have one")
        }
        guard hits.count == 1 else {
            throw RepoError(.failure, hits.isEmpty ? "no snapshot with id \(ref)" : "snapshot id prefix \(ref) is ambiguous (\(hits.count) matches)",
                            hint: hits.isEmpty ? "list them with `repo snapshots`" : "give more digits of the id")
        }
        return hits[0]
    }

    static func describe(_ f: SnapshotFilter) -> String {
        var parts: [String] = []
        if let n = f.name { parts.append("name \(n)") }
        if let h = f.host { parts.append("host \(h)") }
        for t in f.tags { parts.append("tag \(t)") }
        return parts.isEmpty ? "(the repository has no snapshots)" : parts.joined(separator: ", ")
    }

    /// Loads and decodes a tree blob.
    public func loadTree(_ id: BlobID) throws -> Tree {
        let bytes = try loadBlob(id)
        do { return try Tree.decode(bytes) } catch {
            throw RepoError(.integrity, "tree \(id.hex) is malformed: \(error)")
        }
    }

    /// The file node to dump: `path` inside the snapshot, or its only file when `path` is nil.
    public func fileNode(in entry: SnapshotEntry, path: String?) throws -> Node {
        try fileNode(in: entry, pathBytes: path.map { Array($0.utf8) })
    }

    /// The file node to dump, with the path as bytes (Linux names need not be UTF-8).
    public func fileNode(in entry: SnapshotEntry, pathBytes path: [UInt8]?) throws -> Node {
        var tree = try loadTree(entry.snapshot.tree)
        guard let path, !path.isEmpty else {
            let files = tree.nodes.filter { $0.type == .file }
            guard files.count == 1, tree.nodes.count == 1 else {
                throw RepoError(.usage, "snapshot \(entry.id.shortHex) holds \(tree.nodes.count) entries; name the one to dump",
                                hint: "e.g. `repo dump \(entry.id.shortHex) \(tree.nodes.first?.name ?? "PATH")`")
            }
            return files[0]
        }
        let shown = PathText.display(path)
        // Stream names written before names were restricted may contain '/': try the whole path first.
        if let n = tree.node(nameBytes: path), n.type == .file { return n }
        let parts = path.split(separator: UInt8(ascii: "/")).map(Array.init)
        for (i, part) in parts.enumerated() {
            guard let n = tree.node(nameBytes: part) else { break }
            if i == parts.count - 1 {
                guard n.type == .file else { throw RepoError(.usage, "\(shown) is a \(n.type.rawValue), not a file") }
                return n
            }
            guard n.type == .dir, let sub = n.subtree else { break }
            tree = try loadTree(sub)
        }
        throw RepoError(.failure, "no file \(shown) in snapshot \(entry.id.shortHex)", hint: "list its contents with `repo ls \(entry.id.shortHex)`")
    }
}
