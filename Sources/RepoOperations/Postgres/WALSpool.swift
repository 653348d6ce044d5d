public import RepoSnapshot
import RepoStorage
import RepoRepository
import RepoPrimitives
import RepoLaunch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A local directory of WAL segments fetched ahead of PostgreSQL's recovery (FORMAT.md §27.6),
/// so that replay does not wait for one process and one repository round trip per segment.
///
/// `wal-fetch NAME` first looks here; a segment found is moved to the destination without
/// opening the repository. After each fetch a detached prefetcher (`fill`) brings the next
/// archived segments of the same timeline into the spool, several at a time. Only verified
/// bytes are spooled (written as `.tmp-NAME`, renamed when complete), so a file in the spool
/// is as good as the archive's copy. One prefetcher runs at a time (`flock` on `.lock`).
///
/// A spool holds one repository's WAL: segment names repeat across clusters, so a spool shared
/// by two repositories would hand one recovery the other's segment. A spool directory the user
/// names (which several repositories may share) gets a subdirectory per repository location
/// (`directory(under:location:)`), and `adopt` empties a spool that held another repository's WAL.
public struct WALSpool: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// The spool for the repository at `location` (`--repo` or REPO_REPOSITORY) under `spool`,
    /// a directory the user named (`WALSpoolLayout.directory(under:location:)`, FORMAT.md §27.6).
    public static func directory(under spool: String, location: String) -> String {
        WALSpoolLayout.directory(under: spool, location: location)
    }

    /// True when the spool's `.repository` file names repository `id` (hex).
    public func holds(repository id: String) -> Bool { WALSpoolLayout.owner(of: directory) == id }

    /// True when the spool's `.repository` file names the repository whose `config` object is
    /// `config` (its bytes, unparsed; `WALSpoolLayout.holds(_:repositoryConfig:)`).
    public func holds(repositoryConfig config: [UInt8]) -> Bool {
        WALSpoolLayout.holds(directory, repositoryConfig: config)
    }

    /// Makes this the spool of repository `id` (hex): creates the directory (mode 0700) and,
    /// when its `.repository` file is missing or names another repository (a new one at the
    /// same location), removes the WAL files in it before writing `id` there, holding `.lock`
    /// so that no prefetcher fills it meanwhile. Returns how many files it removed.
    ///
    /// - Throws: `RepoError` `.failure` when a prefetcher holds the spool (for the repository
    ///   that was there: the caller then does without the spool); `PosixError` when the
    ///   directory or a file cannot be created.
    @discardableResult
    public func adopt(repository id: String) throws -> Int {
        guard !holds(repository: id) else { return 0 }
        try Self.makePrivateDirectory(directory)
        let lock = open(directory + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw PosixError("open", Array((directory + "/.lock").utf8), errno) }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw RepoError(.failure, "a prefetcher is filling the WAL prefetch spool \(directory), which is not yet this repository's")
        }
        guard !holds(repository: id) else { return 0 }
        var removed = 0
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where WALFileName(file) != nil || file.hasPrefix(".tmp-") {
            if unlink(directory + "/" + file) == 0 { removed += 1 }
        }
        try Self.write(Array((id + "\n").utf8), to: directory + "/" + WALSpoolLayout.ownerFile)
        return removed
    }

    /// Creates `path` and any missing parents with mode 0700: plain WAL lives here, as in
    /// pg_wal, and only its owner may read it.
    ///
    /// - Throws: `PosixError` naming the directory that could not be created.
    static func makePrivateDirectory(_ path: String) throws {
        if access(path, F_OK) == 0 { return }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex { try makePrivateDirectory(String(path[..<slash])) }
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw PosixError("create directory", Array(path.utf8), errno) }
    }

    /// Moves the spooled copy of `name` to `destination`; false if there is none.
    /// (`WALSpoolLayout.take`: a rename, or a copy from another file system.)
    public func take(_ name: WALFileName, to destination: String) -> Bool {
        WALSpoolLayout.take(name.text, from: directory, to: destination)
    }

    /// How many complete segments of `name`'s timeline after `name` the spool holds.
    public func segmentsAhead(of name: WALFileName) -> Int {
        WALSpoolLayout.segmentsAhead(of: name.segmentName, in: directory)
    }

    /// Fetches up to `depth` archived segments that follow `name` on its timeline into the
    /// spool, `workers` at a time, and removes spooled segments that come before it. Returns
    /// how many it fetched; 0 at once when another prefetcher holds the spool, or when the
    /// spool is no longer repository `id`'s (`adopt`).
    public func fill(after name: WALFileName, archive: WALArchive, repository id: String, depth: Int, workers: Int) throws -> Int {
        try Self.makePrivateDirectory(directory)
        let lock = open(directory + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { return 0 }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0, holds(repository: id) else { return 0 }
        let spooled = Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        for file in spooled {
            if let other = WALFileName(file), other.kind == .segment, other.timeline == name.timeline, other <= name {
                unlink(directory + "/" + file)
            }
        }
        let wanted = try archive.list(timeline: name.timeline)
            .map(\.name)
            .filter { $0.kind == .segment && $0 > name }
            .prefix(depth)
            .filter { !spooled.contains($0.text) }
        let queue = Array(wanted)
        guard !queue.isEmpty else { return 0 }
        let next = NSLock()
        nonisolated(unsafe) var index = 0, fetched = 0
        DispatchQueue.concurrentPerform(iterations: max(1, min(workers, queue.count))) { _ in
            // One segment buffer per worker, reused: its pages are touched once, not per segment.
            var segment: [UInt8] = []
            let decompressor = ZstdDecompressor()
            while true {
                next.lock()
                guard index < queue.count else { next.unlock(); return }
                let item = queue[index]
                index += 1
                next.unlock()
                guard (try? archive.fetch(item, into: &segment, decompressor: decompressor)) == true,
                      (try? Self.write(segment, to: directory + "/" + item.text, durable: true)) != nil else { continue }
                next.lock(); fetched += 1; next.unlock()
            }
        }
        return fetched
    }

    /// Writes `bytes` to `path` through `.tmp-` + a random suffix in the same directory and
    /// a rename, so `path` is either absent or complete.
    public static func write(_ bytes: [UInt8], to path: String, durable: Bool = false) throws {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let tmp = dir + "/.tmp-" + (slash.map { String(path[path.index(after: $0)...]) } ?? path) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PosixError("create", Array(tmp.utf8), errno) }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        try bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    let e = errno
                    close(fd)
                    throw PosixError("write", Array(tmp.utf8), e)
                }
                off += n
            }
        }
        if durable, fdatasync(fd) != 0 {
            let e = errno
            close(fd)
            throw PosixError("fdatasync", Array(tmp.utf8), e)
        }
        guard close(fd) == 0 else { throw PosixError("close", Array(tmp.utf8), errno) }
        guard rename(tmp, path) == 0 else { throw PosixError("rename", Array(path.utf8), errno) }
        ok = true
    }
}
