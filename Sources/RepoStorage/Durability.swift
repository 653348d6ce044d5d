#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `fsync(2)` by path: the one way the layers above make a file's data, or a directory's
/// entries (the names created, renamed or removed in it), survive a crash or a power loss.
/// Callers wrap a failure in their own error type (`StorageError`, `PosixError`, `RepoError`).
public enum Durability {
    /// Which call failed, and its errno.
    public struct Failure: Error, Equatable, Sendable {
        public var operation: String
        public var code: Int32

        public init(operation: String, code: Int32) { self.operation = operation; self.code = code }
    }

    /// Opens `path` read-only (with `directory`, as a directory) and fsyncs it, retrying
    /// after EINTR. A directory on a file system that cannot fsync directories (EINVAL) counts
    /// as done, as nothing more can be asked of it; a file never does. Without
    /// `followingSymlink` a final symlink is refused (ELOOP) instead of followed.
    /// - Returns: nil, or the `open` or `fsync` that failed.
    public static func sync(_ path: UnsafePointer<CChar>, directory: Bool, followingSymlink: Bool = true) -> Failure? {
        let flags = O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0) | (followingSymlink ? 0 : O_NOFOLLOW)
        let fd = open(path, flags)
        guard fd >= 0 else { return Failure(operation: "open", code: errno) }
        defer { close(fd) }
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            if directory && errno == EINVAL { return nil }
            return Failure(operation: "fsync", code: errno)
        }
        return nil
    }

    /// `sync` of a path given as a string.
    public static func sync(_ path: String, directory: Bool, followingSymlink: Bool = true) -> Failure? {
        path.withCString { sync($0, directory: directory, followingSymlink: followingSymlink) }
    }
}
