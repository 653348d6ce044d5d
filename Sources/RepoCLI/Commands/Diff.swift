import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoSnapshot
import Foundation

extension RepoCommand {
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what changed between two snapshots.",
            discussion: """
                One line per difference: `+` added, `-` removed, `M` content modified, `T` type \
                changed, `U` only metadata (mode, mtime, owner, xattrs) changed; then a summary. \
                Unchanged subtrees are skipped without being read.
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: SnapshotFilterOptions

        @Argument(help: "The older snapshot (id, prefix or `latest`).")
        var first: String

        @Argument(help: "The newer snapshot.")
        var second: String

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, command: "diff \(first) \(second)", readOnly: true)
            defer { lock?.release() }
            let a = try repo.findSnapshot(first, filter: filter.snapshotFilter)
            let b = try repo.findSnapshot(second, filter: filter.snapshotFilter)
            var out = StandardOutput()
            var rows: [DiffJSON] = []
            let summary = try TreeDiff(repository: repo).run(try repo.loadTree(a.snapshot.tree), try repo.loadTree(b.snapshot.tree)) { e in
                if global.json { rows.append(DiffJSON(e)); return }
                var size = ""
                switch e.change {
                case .modified: size = "\(Format.bytes(e.oldSize ?? 0)) -> \(Format.bytes(e.size ?? 0))"
                case .added, .removed, .typeChanged: size = e.type == .file ? Format.bytes(e.size ?? 0) : ""
                case .metadata: break
                }
                let suffix = e.type == .dir ? "/" : ""
                try out.write("\(e.change.rawValue)  \(PathText.display(e.path))\(suffix)\(size.isEmpty ? "" : "  (\(size))")\n")
            }
            if global.json {
                try Console.printJSON(DiffOutput(changes: rows, summary: summary))
            } else {
                try out.write("\nadded: \(summary.added), removed: \(summary.removed), modified: \(summary.modified), type changed: \(summary.typeChanged), metadata only: \(summary.metadata); +\(Format.bytes(summary.addedBytes)) -\(Format.bytes(summary.removedBytes))\n")
                try out.flush()
            }
        }
    }
}

struct DiffJSON: Encodable {
    var change: String
    var path: String
    var type: String
    var size: Int?
    var old_size: Int?

    init(_ e: TreeDiff.Entry) {
        change = e.change.rawValue; path = String(decoding: e.path, as: UTF8.self); type = e.type.rawValue
        size = e.size; old_size = e.oldSize
    }

    enum CodingKeys: String, CodingKey { case change, path, type, size, old_size }

    /// Every key, `null` when absent (`old_size` of added entries, `size` of removed ones…).
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(change, forKey: .change); try c.encode(path, forKey: .path); try c.encode(type, forKey: .type)
        try c.encode(size, forKey: .size); try c.encode(old_size, forKey: .old_size)
    }
}

struct DiffOutput: Encodable {
    var changes: [DiffJSON]
    var summary: TreeDiff.Summary
}
