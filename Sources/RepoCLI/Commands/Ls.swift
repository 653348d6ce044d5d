import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoSnapshot
import Foundation

extension RepoCommand {
    struct Ls: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the files in a snapshot, recursively from PATH.",
            discussion: "Each line: mode, owner uid/gid, size, mtime (local time), path; symlinks show their target. Control characters and bytes that are not UTF-8 in names are printed as escapes (\\n, \\xNN).")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: SnapshotFilterOptions

        @Argument(help: "Snapshot id (or unique prefix), or `latest`.")
        var snapshot: String

        @Argument(help: "Directory or file inside the snapshot (default: the root).")
        var path: String = "/"

        @Flag(help: "Only the entries directly in PATH, not below.")
        var noRecursive = false

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, command: "ls \(snapshot)", readOnly: true)
            defer { lock?.release() }
            let entry = try repo.findSnapshot(snapshot, filter: filter.snapshotFilter)
            let at = try repo.locate(pathBytes: RawArguments.bytes(of: path), in: entry)
            var out = StandardOutput()
            var rows: [LsJSON] = []
            func emit(_ p: [UInt8], _ n: Node) throws {
                if global.json { rows.append(LsJSON(path: p, node: n)) } else { try out.write(Self.line(p, n) + "\n") }
            }
            if let node = at.node, node.type != .dir {
                try emit(at.path, node)
            } else if let tree = at.tree {
                if noRecursive {
                    for n in tree.nodes {
                        try emit((at.path == [UInt8(ascii: "/")] ? [] : at.path) + [UInt8(ascii: "/")] + n.nameBytes, n)
                    }
                } else {
                    try repo.walk(tree, prefix: at.path, emit)
                }
            }
            if global.json { try Console.printJSON(rows) }
            try out.flush()
        }

        static func line(_ path: [UInt8], _ n: Node) -> String {
            let typeChar = n.type == .dir ? "d" : n.type == .symlink ? "l" : "-"
            let mode = typeChar + permissionString(n.mode ?? 0)
            let owner = n.uid.map { "\($0)/\(n.gid ?? 0)" } ?? "-"
            let size = n.type == .file ? String(n.size ?? 0) : "-"
            let time = n.mtime.flatMap(FileTime.init(rfc3339:)).map { Self.local.string(from: $0.date) } ?? "-"
            var text = [mode, owner.leftPad(9), size.leftPad(12), time, PathText.display(path)].joined(separator: " ")
            if n.type == .symlink, let t = n.targetBytes { text += " -> " + PathText.display(t) }
            return text
        }

        nonisolated(unsafe) static let local: DateFormatter = {
            let f = DateFormatter()
            f.dateFormat = "yyyy-MM-dd HH:mm:ss"
            return f
        }()

        static func permissionString(_ mode: UInt32) -> String {
            var s = ""
            for (i, c) in "rwxrwxrwx".enumerated() { s.append(mode & (0o400 >> UInt32(i)) != 0 ? c : "-") }
            return s
        }
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// Buffered standard output for long listings. A reader that closed the pipe ends the command
/// quietly (`RepoError.Kind.outputClosed`, exit 0), releasing its lock on the way out.
struct StandardOutput {
    private var buffer: [UInt8] = []
    mutating func write(_ s: String) throws {
        buffer.append(contentsOf: s.utf8)
        if buffer.count > 1 << 16 { try flush() }
    }
    mutating func flush() throws {
        fflush(nil)
        try RepoOperations.Dump.writeAll(1, buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// `repo ls --json` element.
struct LsJSON: Encodable {
    var path: String
    var path_raw: String?
    var type: String
    var size: Int?
    var mode: UInt32?
    var uid: UInt32?
    var gid: UInt32?
    var mtime: String?
    var target: String?
    /// Base64 of the symlink target's exact bytes, when they are not UTF-8 (as `path_raw`).
    var target_raw: String?

    init(path p: [UInt8], node n: Node) {
        if let s = String(validating: p, as: UTF8.self) { path = s } else {
            path = String(decoding: p, as: UTF8.self); path_raw = Data(p).base64EncodedString()
        }
        type = n.type.rawValue; size = n.type == .file ? (n.size ?? 0) : nil; mode = n.mode; uid = n.uid; gid = n.gid
        mtime = n.mtime; target = n.target; target_raw = n.targetRaw
    }

    enum CodingKeys: String, CodingKey { case path, path_raw, type, size, mode, uid, gid, mtime, target, target_raw }

    /// Every key, `null` when absent (`path_raw` of UTF-8 names, `size` of non-files, `target`
    /// of non-symlinks, `target_raw` of UTF-8 targets, owner and mode where not recorded).
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path); try c.encode(path_raw, forKey: .path_raw); try c.encode(type, forKey: .type)
        try c.encode(size, forKey: .size); try c.encode(mode, forKey: .mode); try c.encode(uid, forKey: .uid)
        try c.encode(gid, forKey: .gid); try c.encode(mtime, forKey: .mtime); try c.encode(target, forKey: .target)
        try c.encode(target_raw, forKey: .target_raw)
    }
}
