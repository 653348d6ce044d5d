import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoSnapshot
import Foundation

extension RepoCommand {
    struct Snapshots: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List snapshots, oldest first.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: SnapshotFilterOptions

        func run() throws {
            let repo = try global.open()
            let list = try repo.snapshots(matching: SnapshotFilter(name: filter.name, host: filter.host, tags: filter.tags))
            if global.json {
                try Console.printJSON(list.map(SnapshotJSON.init))
                return
            }
            let local = DateFormatter()
            local.dateFormat = "yyyy-MM-dd HH:mm:ss"
            var rows = [["ID", "Time", "Host", "Name", "Size", "Tags"]]
            for e in list {
                // One row per snapshot: labels from older versions (or other writers) may hold
                // newlines or commas, so cells are escaped (`SnapshotLabel.escapedForTable`).
                let s = e.snapshot
                rows.append([e.id.shortHex, local.string(from: e.date), SnapshotLabel.escapedForTable(s.host),
                             s.name.map { SnapshotLabel.escapedForTable($0) }
                                ?? (s.paths ?? []).map { SnapshotLabel.escapedForTable($0, extra: [","]) }.joined(separator: ","),
                             Format.bytes(s.stats.totalBytes) + (s.partial == true ? " (partial)" : ""),
                             s.tags.map { SnapshotLabel.escapedForTable($0, extra: [","]) }.joined(separator: ",")])
            }
            let widths = (0..<6).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for (i, r) in rows.enumerated() {
                print(zip(r, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    .trimmingCharacters(in: .whitespaces))
                if i == 0 { print(String(repeating: "-", count: widths.reduce(0, +) + 10)) }
            }
            if !global.quiet { print("\(list.count) snapshot\(list.count == 1 ? "" : "s")") }
        }
    }
}

/// `repo snapshots --json` element (documented in the README).
struct SnapshotJSON: Encodable {
    var id: String
    var short_id: String
    var time: String
    var host: String
    var username: String
    var name: String?
    var paths: [String]?
    var tags: [String]
    var tree: String
    var size: Int
    var chunks: Int
    var new_bytes: Int
    var partial: Bool
    var program: String
    /// The id of the snapshot this one copies (`repo copy`) or re-seals (`repo key rotate`),
    /// FORMAT.md §13; null otherwise.
    var original: String?

    init(_ e: SnapshotEntry) {
        let s = e.snapshot
        id = e.id.hex; short_id = e.id.shortHex; time = s.time; host = s.host; username = s.username
        name = s.name; paths = s.paths; tags = s.tags; tree = s.tree.hex; size = s.stats.totalBytes
        chunks = s.stats.chunks; new_bytes = s.stats.newBytes; partial = s.partial ?? false; program = s.program
        original = s.original
    }

    enum CodingKeys: String, CodingKey { case id, short_id, time, host, username, name, paths, tags, tree, size, chunks, new_bytes, partial, program, original }

    /// Every key, `null` when absent (`name` of a tree snapshot, `paths` of a stream snapshot).
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(short_id, forKey: .short_id); try c.encode(time, forKey: .time)
        try c.encode(host, forKey: .host); try c.encode(username, forKey: .username); try c.encode(name, forKey: .name)
        try c.encode(paths, forKey: .paths); try c.encode(tags, forKey: .tags); try c.encode(tree, forKey: .tree)
        try c.encode(size, forKey: .size); try c.encode(chunks, forKey: .chunks); try c.encode(new_bytes, forKey: .new_bytes)
        try c.encode(partial, forKey: .partial); try c.encode(program, forKey: .program)
        try c.encode(original, forKey: .original)
    }
}
