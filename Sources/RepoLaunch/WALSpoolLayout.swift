import CRepoXXHash
#if canImport(Glibc)
import Glibc
#endif

/// Where a WAL prefetch spool is and how its files are named and checked (FORMAT.md §27.6),
/// with POSIX calls only: the launcher serves spooled segments with it before the Swift
/// runtime of the full `repo-core` is loaded, and `WALSpool` (RepoOperations) uses the same
/// functions, so the two cannot drift apart.
public enum WALSpoolLayout {
    /// The spool for the repository at `location` (`--repo` or REPO_REPOSITORY) under `spool`,
    /// a directory the user named: `<spool>/<XXH3-64 of the key's UTF-8, 16 lowercase hex
    /// digits>`, where the key is the location with a `file://` prefix removed and a local path
    /// made absolute against the working directory (`LocalPath.normalize`); an S3 location as written.
    /// The location, not the repository id, so that `wal-fetch` finds a spooled segment
    /// without opening the repository.
    public static func directory(under spool: String, location: String) -> String {
        var key = location
        if key.hasPrefix("file://") { key = String(key.dropFirst(7)) }
        if !key.contains("://"), !key.hasPrefix("s3:") { key = LocalPath.normalize(key) }
        let bytes = Array(key.utf8)
        let h = String(bytes.withUnsafeBytes { crepo_xxh3_64($0.baseAddress, $0.count) }, radix: 16)
        return spool + "/" + String(repeating: "0", count: 16 - h.count) + h
    }

    /// The default spool of repository `id` (hex): `<cache>/<id>/wal-prefetch`.
    public static func defaultDirectory(cacheDirectory: String, repository id: String) -> String {
        cacheDirectory + "/" + id + "/wal-prefetch"
    }

    /// The file naming the repository whose WAL the spool holds (its id in hex, one line).
    public static let ownerFile = ".repository"

    /// The repository id (hex) the spool's `.repository` file names, white space around it
    /// removed; nil when there is none or it is longer than 256 bytes.
    public static func owner(of directory: String) -> String? {
        guard let bytes = readSmallFile(directory + "/" + ownerFile, limit: 256) else { return nil }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) }
        var text = bytes[...]
        while let first = text.first, isSpace(first) { text = text.dropFirst() }
        while let last = text.last, isSpace(last) { text = text.dropLast() }
        return String(decoding: text, as: UTF8.self)
    }

    /// True when the spool's `.repository` file names the repository whose `config` object is
    /// `config` (its bytes, unparsed): the config holds the recorded id as a quoted string
    /// (FORMAT.md §6), and ids are random 256-bit values, so no other repository's config holds
    /// it.
    public static func holds(_ directory: String, repositoryConfig config: [UInt8]) -> Bool {
        guard let id = owner(of: directory), id.utf8.count >= 32, id.utf8.allSatisfy(isHexDigit) else { return false }
        return contains(config, Array(("\"" + id + "\"").utf8))
    }

    /// The `id` field of a repository `config` (FORMAT.md §6), read from its bytes without a
    /// JSON parser: `"id"`, white space, `:`, white space, then a quoted string of 32 or more
    /// hex digits. Nil when the bytes hold no such field; a config that escapes characters
    /// there only sends the caller the slow way, never to another repository's spool, since
    /// the caller also checks `holds(_:repositoryConfig:)`.
    public static func repositoryID(inConfig config: [UInt8]) -> String? {
        let key = Array("\"id\"".utf8)
        var i = 0
        while i + key.count <= config.count {
            defer { i += 1 }
            guard config[i] == key[0], config[i..<(i + key.count)].elementsEqual(key) else { continue }
            var j = i + key.count
            func skipSpace() { while j < config.count, config[j] == 0x20 || (config[j] >= 0x09 && config[j] <= 0x0D) { j += 1 } }
            skipSpace()
            guard j < config.count, config[j] == UInt8(ascii: ":") else { continue }
            j += 1
            skipSpace()
            guard j < config.count, config[j] == UInt8(ascii: "\"") else { continue }
            let start = j + 1
            var end = start
            while end < config.count, isHexDigit(config[end]) { end += 1 }
            guard end < config.count, config[end] == UInt8(ascii: "\""), end - start >= 32 else { continue }
            return String(decoding: config[start..<end], as: UTF8.self)
        }
        return nil
    }

    /// True for a WAL segment's name: 24 upper-case hex digits (timeline, then the high and
    /// low parts of the segment number; FORMAT.md §27).
    public static func isSegmentName(_ name: String) -> Bool {
        name.utf8.count == 24 && name.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x46).contains($0) }
    }

    /// Moves the spooled copy of segment `name` to `destination`: `rename(2)`, or, when the
    /// spool is on another file system (a tmpfs spool, a data directory on its own volume), a
    /// copy through a temporary name in the destination's directory, renamed into place, and
    /// then the spooled copy removed. False when there is none or it cannot be moved.
    public static func take(_ name: String, from directory: String, to destination: String) -> Bool {
        let path = directory + "/" + name
        if rename(path, destination) == 0 { return true }
        guard errno == EXDEV else { return false }
        guard copy(path, to: destination) else { return false }
        unlink(path)
        return true
    }

    /// Copies the file at `source` to `destination` through `.tmp-<name>-<random>` beside it;
    /// false (and no temporary file left) on any failure.
    static func copy(_ source: String, to destination: String) -> Bool {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return false }
        defer { close(input) }
        let slash = destination.lastIndex(of: "/")
        let dir = slash.map { String(destination[..<$0]) } ?? "."
        let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        let tmp = dir + "/.tmp-" + base + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let output = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var ok = true
        copying: while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { ok = n == 0; break }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + done, n - done) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { ok = false; break copying }
                done += w
            }
        }
        if close(output) != 0 { ok = false }
        guard ok, rename(tmp, destination) == 0 else { unlink(tmp); return false }
        return true
    }

    /// How many complete segments of segment `name`'s timeline after it the spool holds.
    /// Names of one width in upper-case hex sort as their numbers do.
    public static func segmentsAhead(of name: String, in directory: String) -> Int {
        guard isSegmentName(name), let dir = opendir(directory) else { return 0 }
        defer { closedir(dir) }
        let timeline = name.utf8.prefix(8)
        var count = 0
        while let entry = readdir(dir) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if isSegmentName(file), file.utf8.prefix(8).elementsEqual(timeline), file > name { count += 1 }
        }
        return count
    }

    /// Up to `limit` bytes of the file at `path`; nil when it cannot be opened or read, or is
    /// longer.
    public static func readSmallFile(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            count += n
        }
        guard count <= limit else { return nil }
        return Array(bytes[..<count])
    }

    static func isHexDigit(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b)
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for i in 0...(haystack.count - needle.count)
        where haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
        return false
    }
}
