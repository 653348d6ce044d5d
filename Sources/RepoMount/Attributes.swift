public import Foundation
import RepoPrimitives
#if canImport(Glibc)
import Glibc
#endif

/// What `stat` shows for one entry of the mount.
public struct Attributes: Equatable, Sendable {
    public enum Kind: Sendable { case directory, file, symlink }

    public var kind: Kind
    /// Permission bits (no file-type bits).
    public var mode: UInt32
    public var size: Int
    public var mtime: FileTime
    /// Owner; nil shows the mounting user.
    public var uid: UInt32?
    public var gid: UInt32?
    public var links: Int

    public init(kind: Kind, mode: UInt32, size: Int, mtime: FileTime, uid: UInt32? = nil, gid: UInt32? = nil, links: Int = 1) {
        self.kind = kind; self.mode = mode; self.size = size; self.mtime = mtime
        self.uid = uid; self.gid = gid; self.links = links
    }
}

/// Seconds and nanoseconds since the Unix epoch.
public struct FileTime: Equatable, Comparable, Sendable {
    public var seconds: Int
    public var nanoseconds: Int

    public init(seconds: Int, nanoseconds: Int = 0) { self.seconds = seconds; self.nanoseconds = nanoseconds }

    public init(_ date: Date) {
        let t = date.timeIntervalSince1970
        let s = t.rounded(.down)
        self.init(seconds: Int(s), nanoseconds: Int(((t - s) * 1e9).rounded()) % 1_000_000_000)
    }

    public static let zero = FileTime(seconds: 0)

    public static func < (a: FileTime, b: FileTime) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    /// Parses RFC 3339 (`2024-05-01T12:00:00.123456789Z`, `…+02:00`) exactly, nanoseconds
    /// included, without a formatter (directories of many files parse thousands of these).
    public static func parse(_ text: String) -> FileTime? {
        guard let (s, ns) = RFC3339.parse(text) else { return nil }
        return FileTime(seconds: Int(s), nanoseconds: Int(ns))
    }

    /// `2024-05-01T12:00:00Z` (UTC, whole seconds): the name of a snapshot's time in the mount.
    public var directoryName: String {
        var t = time_t(seconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1,
                      Int(tm.tm_mday), Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }
}
