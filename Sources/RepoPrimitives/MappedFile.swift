#if canImport(Glibc)
import Glibc
#endif

/// A whole file mapped read-only into memory (`mmap`, `MAP_POPULATE`): its bytes without a
/// copy, and without zeroing and faulting in a fresh buffer of its size. For whole-file reads
/// on a latency budget (`wal-push`, a 16 MiB segment per process). Unmapped on deinit.
public final class MappedFile {
    public let path: String
    private let base: UnsafeMutableRawPointer?
    public let count: Int

    /// A failed call: which one, and errno.
    public struct Failure: Error, CustomStringConvertible {
        public var operation: String
        public var path: String
        public var code: Int32
        public var description: String { "cannot \(operation) \(path): \(String(cString: strerror(code)))" }
    }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(operation: "open", path: path, code: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure(operation: "stat", path: path, code: errno) }
        count = Int(st.st_size)
        guard count > 0 else { base = nil; return }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw Failure(operation: "map", path: path, code: errno) }
        base = p
    }

    deinit { if let base { munmap(base, count) } }

    /// The file's bytes, valid while this object lives.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
