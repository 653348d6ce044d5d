import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One `--include`/`--exclude` glob, normalised the way users write them.
///
/// - A pattern without `/` (after trailing slashes are dropped) matches an entry's name
///   (`*.tmp`, `cache`); one with `/` matches the entry's whole path (`/var/lib/*.conf`).
/// - Trailing slashes mean "directories only", as in `.gitignore` and rsync: `cache/` matches
///   directories named `cache`, `/srv/data/` the directory `/srv/data`.
/// - Repeated slashes are collapsed, so `/srv//data` means `/srv/data`.
/// Matching is `fnmatch(3)` without flags, on the bytes of the name or path.
public struct PathPattern: Sendable, Equatable {
    /// The pattern as the user gave it, for messages.
    public let text: String
    /// The glob after normalisation.
    public let glob: String
    /// Whether it had a trailing slash (matches directories only).
    public let directoriesOnly: Bool
    /// Whether it matches whole paths (it contains `/`) rather than names.
    public let matchesPath: Bool

    public init(_ text: String) {
        self.text = text
        var g = text
        var dirOnly = false
        while g.count > 1, g.hasSuffix("/") { g.removeLast(); dirOnly = true }
        while g.contains("//") { g = g.replacingOccurrences(of: "//", with: "/") }
        glob = g
        directoriesOnly = dirOnly
        matchesPath = g.contains("/")
    }

    /// Whether the entry at `path` (absolute, bytes) named `name` matches.
    public func matches(path: [UInt8], name: [UInt8], isDirectory: Bool) -> Bool {
        if directoriesOnly && !isDirectory { return false }
        let subject = matchesPath ? path : name
        return FileSystem.withCPath(subject) { fnmatch(glob, $0, 0) == 0 }
    }
}
