#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
internal import CRepoPosix

/// A storage backend in a local directory.
///
/// `put` writes `<dir>/.tmp-<random>` in the target's directory, `fsync`s it, `rename`s it into
/// place and `fsync`s the directory, so an object is either absent or complete and durable.
/// Temporary files left by a crash are never listed.
public struct LocalBackend: StorageBackend {
    public let root: String
    public var location: String { root }

    public init(path: String) {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        root = p
    }

    fileprivate func path(_ name: String) -> String { root + "/" + name }

    public func prepare() throws {
        try Self.makeDirectories(root)
        guard let dir = opendir(root) else { throw Self.error("open directory", root) }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let n = Self.entryName(entry)
            if n != "." && n != ".." {
                throw StorageError.io(operation: "prepare", name: root, reason: "directory is not empty")
            }
        }
    }

    public func put(_ name: String, data: [UInt8]) throws {
        let target = path(name)
        let staged = try StagedFile(backend: self, directory: String(target[..<target.lastIndex(of: "/")!]), label: name)
        try data.withUnsafeBytes { try staged.appendWhole($0) }
        try staged.commit(as: name)
    }

    /// Like `put`, but publishes with `link(2)` instead of `rename(2)`, which fails with
    /// `EEXIST` rather than replace an object that is already there.
    public func create(_ name: String, data: [UInt8]) throws -> Bool {
        let target = path(name)
        let staged = try StagedFile(backend: self, directory: String(target[..<target.lastIndex(of: "/")!]), label: name)
        try data.withUnsafeBytes { try staged.appendWhole($0) }
        return try staged.commit(as: name, exclusive: true)
    }

    /// Stages into `<root>/.tmp-<random>` (a pack's final directory depends on its name, known
    /// only at the end); `commit` publishes it exactly as `put` does.
    public func stage() throws -> StagedObject {
        try StagedFile(backend: self, directory: root, label: "a new object in \(root)")
    }

    /// A `.tmp-<random>` file in `directory`: appended to, then fsynced, renamed into place and
    /// the target directory fsynced (`put` and `stage` both write through one).
    final class StagedFile: StagedObject {
        private let backend: LocalBackend
        private var fd: Int32
        private let temporaryPath: String
        /// What a "no space" error names.
        private let label: String
        private var published = false
        private(set) var size = 0

        init(backend: LocalBackend, directory: String, label: String) throws {
            try LocalBackend.makeDirectories(directory)
            let tmp = directory + "/.tmp-" + LocalBackend.randomSuffix()
            let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw LocalBackend.error("create", tmp, writing: label) }
            self.backend = backend; self.fd = fd; self.temporaryPath = tmp; self.label = label
        }

        deinit { discard() }

        func append(_ buf: UnsafeRawBufferPointer) throws {
            precondition(fd >= 0, "staged object used after commit or discard")
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw errno == ENOSPC || errno == EDQUOT ? StorageError.noSpace(name: label) : LocalBackend.error("write", temporaryPath)
                }
                off += n
            }
            size += buf.count
        }

        /// The whole object at once into the empty file (`put`, `create`). From 1 MiB on, the
        /// block-aligned part goes past the page cache (O_DIRECT), through a page-aligned 1 MiB
        /// buffer, and the last partial block through it: an object written whole is not read
        /// again soon (a WAL segment until recovery), and copying it into fresh page-cache pages
        /// cost more than the device write on the 2-core VM this was measured on (6 MB: write
        /// and fsync 27 ms buffered, 8 ms direct). `commit`'s fsync makes both durable alike.
        /// File systems that refuse direct I/O (EINVAL) get the buffered write.
        func appendWhole(_ buf: UnsafeRawBufferPointer) throws {
            let direct = crepo_o_direct(), block = 4096, chunk = 1 << 20
            let aligned = buf.count / block * block
            let flags = fcntl(fd, F_GETFL)
            guard direct != 0, size == 0, aligned >= chunk, flags >= 0, fcntl(fd, F_SETFL, flags | direct) == 0 else {
                return try append(buf)
            }
            var bounce: UnsafeMutableRawPointer?
            guard posix_memalign(&bounce, block, chunk) == 0, let bounce else {
                _ = fcntl(fd, F_SETFL, flags)
                return try append(buf)
            }
            defer { free(bounce) }
            var done = 0
            while done < aligned {
                let k = min(chunk, aligned - done)
                bounce.copyMemory(from: buf.baseAddress! + done, byteCount: k)
                let n = write(fd, bounce, k)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EINVAL { break }      // no direct I/O here after all: the rest buffered
                    let e = errno
                    _ = fcntl(fd, F_SETFL, flags)
                    errno = e
                    throw errno == ENOSPC || errno == EDQUOT ? StorageError.noSpace(name: label) : LocalBackend.error("write", temporaryPath)
                }
                done += n
                if n < k { break }                    // a short write leaves the offset unaligned
            }
            guard fcntl(fd, F_SETFL, flags) == 0 else { throw LocalBackend.error("fcntl", temporaryPath) }
            size = done
            try append(UnsafeRawBufferPointer(rebasing: buf[done...]))
        }

        func commit(as name: String) throws {
            _ = try commit(as: name, exclusive: false)
        }

        /// Publishes the file as `name`; with `exclusive`, only if no object has that name
        /// (false when one has, and nothing is written).
        func commit(as name: String, exclusive: Bool) throws -> Bool {
            precondition(fd >= 0, "staged object used after commit or discard")
            defer { discard() }
            if fsync(fd) != 0 {
                throw errno == ENOSPC || errno == EDQUOT ? StorageError.noSpace(name: name) : LocalBackend.error("fsync", temporaryPath)
            }
            let target = backend.path(name)
            let dir = String(target[..<target.lastIndex(of: "/")!])
            try LocalBackend.makeDirectories(dir)
            let closed = close(fd)
            fd = -1
            if closed != 0 { throw LocalBackend.error("close", temporaryPath) }
            if exclusive {
                if link(temporaryPath, target) != 0 {
                    if errno == EEXIST { return false }
                    throw errno == ENOSPC || errno == EDQUOT ? StorageError.noSpace(name: name) : LocalBackend.error("link", target)
                }
            } else if rename(temporaryPath, target) != 0 {
                throw LocalBackend.error("rename", target)
            }
            published = !exclusive
            try LocalBackend.syncDirectory(dir)
            return true
        }

        /// Closes and removes the temporary file unless it was renamed into place.
        func discard() {
            if fd >= 0 { close(fd); fd = -1 }
            if !published { unlink(temporaryPath) }
        }
    }

    public func get(_ name: String, range: Range<Int>?) throws -> [UInt8] {
        let p = path(name)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw StorageError.notFound(name) }
            throw Self.error("open", p)
        }
        defer { close(fd) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw Self.error("stat", p) }
        let size = Int(st.st_size)
        let r = range ?? 0..<size
        guard r.lowerBound >= 0, r.upperBound <= size else {
            throw StorageError.badRange(name: name, size: size, requested: r)
        }
        return try [UInt8](unsafeUninitializedCapacity: max(r.count, 1)) { buf, count in
            var done = 0
            while done < r.count {
                let n = pread(fd, buf.baseAddress! + done, r.count - done, off_t(r.lowerBound + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Self.error("read", p)
                }
                if n == 0 { throw StorageError.badRange(name: name, size: r.lowerBound + done, requested: r) }
                done += n
            }
            count = r.count
        }
    }

    public func stat(_ name: String) throws -> ObjectInfo {
        var st = Glibc.stat()
        guard sysStat(path(name), &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw StorageError.notFound(name) }
            throw Self.error("stat", path(name))
        }
        return ObjectInfo(name: name, size: Int(st.st_size),
                          modified: Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9))
    }

    public func list(prefix: String) throws -> [ObjectInfo] {
        // Walk the deepest directory the prefix names, then filter by the full prefix.
        let dirPart = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) : ""
        var out: [ObjectInfo] = []
        try walk(relative: dirPart, sizes: true) { out.append(ObjectInfo(name: $0, size: $1.size, modified: $1.modified)) }
        return out.filter { $0.name.hasPrefix(prefix) }
    }

    public func listNames(prefix: String) throws -> [String] {
        let dirPart = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) : ""
        var out: [String] = []
        try walk(relative: dirPart, sizes: false) { name, _ in out.append(name) }
        // Everything under a directory prefix ("data/") matches it; only a partial last
        // component ("data/3f") needs the filter.
        return prefix.isEmpty || prefix == dirPart + "/" ? out : out.filter { $0.hasPrefix(prefix) }
    }

    /// Visits every regular file below `relative` (skipping `.tmp-*`). With `sizes`, each is
    /// `lstat`ed for its size; without, the directory entry's type decides and no `stat` is
    /// made per object (a repository with a few hundred thousand packs is listed on every open).
    private func walk(relative: String, sizes: Bool, _ visit: (String, (size: Int, modified: Date?)) -> Void) throws {
        let full = relative.isEmpty ? root : path(relative)
        guard let dir = opendir(full) else {
            if errno == ENOENT || errno == ENOTDIR { return }
            throw Self.error("open directory", full)
        }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let n = Self.entryName(entry)
            if n == "." || n == ".." || n.hasPrefix(".tmp-") { continue }
            let rel = relative.isEmpty ? n : relative + "/" + n
            var type = entry.pointee.d_type
            var size = 0
            var modified: Date?
            if sizes || type == UInt8(DT_UNKNOWN) {
                var st = Glibc.stat()
                guard lstat(path(rel), &st) == 0 else { continue }   // vanished meanwhile
                let format = st.st_mode & S_IFMT
                type = format == S_IFDIR ? UInt8(DT_DIR) : format == S_IFREG ? UInt8(DT_REG) : 0
                size = Int(st.st_size)
                modified = Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
            }
            if type == UInt8(DT_DIR) {
                try walk(relative: rel, sizes: sizes, visit)
            } else if type == UInt8(DT_REG) {
                visit(rel, (size, modified))
            }
        }
    }

    public func delete(_ name: String) throws {
        if unlink(path(name)) != 0 && errno != ENOENT { throw Self.error("delete", path(name)) }
    }

    // MARK: helpers

    private static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
        withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
    }

    /// The current `errno` as a `StorageError`: a full device is `.noSpace` (naming `writing`,
    /// or the path), a read-only file system or missing permission `.readOnly`.
    fileprivate static func error(_ op: String, _ p: String, writing: String? = nil) -> StorageError {
        let e = errno
        let reason = String(cString: strerror(e))
        switch e {
        case ENOSPC, EDQUOT: return .noSpace(name: writing ?? p)
        case EROFS, EACCES, EPERM: return .readOnly(operation: op, name: p, reason: reason)
        default: return .io(operation: op, name: p, reason: reason)
        }
    }

    fileprivate static func randomSuffix() -> String {
        var g = SystemRandomNumberGenerator()
        return String(g.next(), radix: 16) + String(g.next(), radix: 16)
    }

    static func makeDirectories(_ p: String) throws {
        var st = Glibc.stat()
        if sysStat(p, &st) == 0 { return }
        if let slash = p.lastIndex(of: "/"), slash != p.startIndex {
            try makeDirectories(String(p[..<slash]))
        }
        if mkdir(p, 0o755) != 0 && errno != EEXIST { throw error("create directory", p) }
    }

    fileprivate static func syncDirectory(_ dir: String) throws {
        guard let failure = Durability.sync(dir, directory: true) else { return }
        errno = failure.code
        throw error(failure.operation + " directory", dir)
    }
}

/// `stat(2)` under a name that the struct's own `stat(_:)` method does not shadow.
private func sysStat(_ path: String, _ st: inout Glibc.stat) -> Int32 { stat(path, &st) }
