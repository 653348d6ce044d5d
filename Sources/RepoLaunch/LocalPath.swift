#if canImport(Glibc)
import Glibc
#endif

/// Local paths as `repo` compares them: the key of a repository location (FORMAT.md §27.6)
/// and the files `pg-restore` writes into `restore_command`.
public enum LocalPath {
    /// `path` made absolute against the working directory, with `.`, `..` and repeated or
    /// trailing slashes removed (no symlinks resolved). `/` for the root.
    public static func normalize(_ path: String) -> String {
        var full = path
        if !full.hasPrefix("/") { full = workingDirectory() + "/" + full }
        var parts: [Substring] = []
        for part in full.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        // Concatenated by hand: `joined(separator:)` looks up a generic witness at run time the
        // first time, a scan of every conformance record that costs a process about 0.5 ms.
        var out = ""
        for part in parts { out += "/"; out += part }
        return out.isEmpty ? "/" : out
    }

    /// The working directory (`getcwd`), or "/" when it cannot be read.
    static func workingDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
