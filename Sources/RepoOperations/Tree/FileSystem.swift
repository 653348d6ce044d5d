public import RepoSnapshot
import Foundation
import RepoStorage
import RepoLaunch
internal import CRepoPosix
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call on a path: which call, which path, and errno.
public struct PosixError: Error, CustomStringConvertible {
    public var operation: String
    public var path: [UInt8]
    public var code: Int32

    public init(_ operation: String, _ path: [UInt8], _ code: Int32) {
        self.operation = operation; self.path = path; self.code = code
    }

    public var description: String { "\(operation) \(PathText.display(path)): \(String(cString: strerror(code)))" }
}

/// What `lstat` says about a file, in the units the snapshot model stores.
public struct FileStatus: Sendable, Equatable {
    public var mode: UInt32          // full st_mode (type and permission bits)
    public var size: Int
    public var mtime: FileTime
    public var ctime: FileTime
    public var inode: UInt64
    public var device: UInt64
    public var links: Int
    public var uid: UInt32
    public var gid: UInt32
    /// 512-byte blocks allocated (a sparse file has fewer than size/512).
    public var blocks: Int

    init(_ s: stat) {
        mode = UInt32(s.st_mode); size = Int(s.st_size); mtime = FileTime(s.st_mtim); ctime = FileTime(s.st_ctim)
        inode = UInt64(s.st_ino); device = UInt64(s.st_dev); links = Int(s.st_nlink); uid = s.st_uid; gid = s.st_gid
        blocks = Int(s.st_blocks)
    }

    public var fileType: UInt32 { mode & UInt32(S_IFMT) }
    public var isRegular: Bool { fileType == UInt32(S_IFREG) }
    public var isDirectory: Bool { fileType == UInt32(S_IFDIR) }
    public var isSymlink: Bool { fileType == UInt32(S_IFLNK) }
    public var permissions: UInt32 { mode & 0o7777 }
}

/// Thin wrappers over the POSIX calls a tree backup and restore need, on byte paths (Linux file
/// names are bytes: they may hold newlines or invalid UTF-8). Blocking calls; run them on
/// dedicated threads.
public enum FileSystem {
    /// Calls `body` with `path` as a NUL-terminated C string.
    public static func withCPath<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        var p = path
        p.append(0)
        return try p.withUnsafeBufferPointer { buf in
            try buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { try body($0) }
        }
    }

    public static func join(_ dir: [UInt8], _ name: [UInt8]) -> [UInt8] {
        if dir.isEmpty { return name }
        if dir.last == UInt8(ascii: "/") { return dir + name }
        return dir + [UInt8(ascii: "/")] + name
    }

    public static func lstat(_ path: [UInt8]) throws(PosixError) -> FileStatus {
        var s = stat()
        let r = withCPath(path) { Glibc.lstat($0, &s) }
        guard r == 0 else { throw PosixError("lstat", path, errno) }
        return FileStatus(s)
    }

    /// `stat(2)`: like `lstat` but follows symlinks.
    public static func statFollowingLinks(_ path: [UInt8]) throws(PosixError) -> FileStatus {
        var s = Glibc.stat()
        let r = withCPath(path) { fstatat(AT_FDCWD, $0, &s, 0) }
        guard r == 0 else { throw PosixError("stat", path, errno) }
        return FileStatus(s)
    }

    public static func fstat(_ fd: Int32, path: [UInt8]) throws(PosixError) -> FileStatus {
        var s = stat()
        guard Glibc.fstat(fd, &s) == 0 else { throw PosixError("fstat", path, errno) }
        return FileStatus(s)
    }

    /// The names in a directory (without `.` and `..`), in no particular order.
    public static func list(_ path: [UInt8]) throws(PosixError) -> [[UInt8]] {
        guard let dir = withCPath(path, { opendir($0) }) else { throw PosixError("opendir", path, errno) }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw PosixError("readdir", path, errno) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> [UInt8] in
                let bytes = raw.bindMemory(to: UInt8.self)
                let n = bytes.firstIndex(of: 0) ?? bytes.count
                return Array(bytes[0..<n])
            }
            if name == [46] || name == [46, 46] { continue }
            names.append(name)
        }
        return names
    }

    public static func readLink(_ path: [UInt8]) throws(PosixError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = withCPath(path) { p in buf.withUnsafeMutableBufferPointer { readlink(p, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), 4096) } }
        guard n >= 0 else { throw PosixError("readlink", path, errno) }
        return Array(buf[0..<n])
    }

    /// Names of the extended attributes of `path` (not following symlinks); empty where the
    /// filesystem has none or does not support them.
    public static func extendedAttributeNames(_ path: [UInt8]) -> [String] {
        withCPath(path) { p -> [String] in
            let size = crepo_llistxattr(p, nil, 0)
            guard size > 0 else { return [] }
            var names = [CChar](repeating: 0, count: size)
            let got = crepo_llistxattr(p, &names, size)
            guard got > 0 else { return [] }
            return names[0..<got].split(separator: 0).map { raw in
                String(decoding: raw.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
    }

    /// Extended attributes of `path` (not following symlinks), sorted by name; empty where the
    /// filesystem has none or does not support them.
    public static func extendedAttributes(_ path: [UInt8]) -> [ExtendedAttribute] {
        withCPath(path) { p -> [ExtendedAttribute] in
            var out: [ExtendedAttribute] = []
            for name in extendedAttributeNames(path) {
                let len = crepo_lgetxattr(p, name, nil, 0)
                guard len >= 0 else { continue }
                var value = [UInt8](repeating: 0, count: len)
                let n = value.withUnsafeMutableBytes { crepo_lgetxattr(p, name, $0.baseAddress, len) }
                guard n >= 0 else { continue }
                out.append(ExtendedAttribute(name: name, value: Array(value[0..<n])))
            }
            return out.sorted { $0.name < $1.name }
        }
    }

    public static func setExtendedAttribute(_ path: [UInt8], _ attr: ExtendedAttribute) throws(PosixError) {
        let value = attr.valueBytes
        let r = withCPath(path) { p in value.withUnsafeBytes { crepo_lsetxattr(p, attr.name, $0.baseAddress, value.count) } }
        guard r == 0 else { throw PosixError("setxattr \(attr.name) on", path, errno) }
    }

    /// Removes one extended attribute without following symlinks.
    public static func removeExtendedAttribute(_ path: [UInt8], name: String) throws(PosixError) {
        let r = withCPath(path) { crepo_lremovexattr($0, name) }
        guard r == 0 else { throw PosixError("removexattr \(name) on", path, errno) }
    }

    /// Sets access and modification time to `mtime` without following symlinks.
    /// `O_NOATIME`: reading for a backup should not touch access times (needs ownership).
    public static let noAccessTimeFlag: Int32 = crepo_o_noatime()

    public static func setTimes(_ path: [UInt8], mtime: FileTime) throws(PosixError) {
        var times = [mtime.timespec, mtime.timespec]
        let r = withCPath(path) { utimensat(AT_FDCWD, $0, &times, AT_SYMLINK_NOFOLLOW) }
        guard r == 0 else { throw PosixError("utimensat", path, errno) }
    }

    /// Removes `path` whatever it is (recursively for directories); a missing path is fine.
    public static func remove(_ path: [UInt8]) throws(PosixError) {
        guard let st = try? lstat(path) else { return }
        if st.isDirectory {
            for name in try list(path) { try remove(join(path, name)) }
            guard withCPath(path, { rmdir($0) }) == 0 else { throw PosixError("rmdir", path, errno) }
        } else {
            guard withCPath(path, { unlink($0) }) == 0 else { throw PosixError("unlink", path, errno) }
        }
    }

    /// Starts writing `length` bytes of `fd` at `offset` back to disk (`sync_file_range(2)`
    /// with SYNC_FILE_RANGE_WRITE) and returns without waiting for it (it may wait for room in
    /// the device's queue); a later `makeDurable` then finds little left to write. Failures are
    /// left to that `makeDurable`, which reports them.
    static func startWriteback(_ fd: Int32, offset: Int, length: Int) {
        _ = crepo_start_writeback(fd, Int64(offset), Int64(length))
    }

    /// `fsync(2)` of the file or directory at `path` (not following a symlink), so that its
    /// data and, for a directory, its entries survive a crash or power loss (`Durability`).
    /// - Throws: `PosixError` ("open" or "fsync", path, errno).
    static func makeDurable(_ path: [UInt8], directory: Bool) throws {
        if let failure = withCPath(path, { Durability.sync($0, directory: directory, followingSymlink: false) }) {
            throw PosixError(failure.operation, path, failure.code)
        }
    }

    /// Makes `path` absolute against the working directory and removes `.`, `..`, repeated
    /// and trailing slashes, without resolving symlinks.
    public static func normalize(_ path: String) -> String { LocalPath.normalize(path) }
}

/// Renders paths for people: printable text as is; control characters, backslashes and bytes
/// that are not UTF-8 as C-style escapes, so every name fits on one line.
public enum PathText {
    public static func display(_ bytes: [UInt8]) -> String {
        if let s = String(validating: bytes, as: UTF8.self),
           !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "\\" }) {
            return s
        }
        var out = ""
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\") { out += "\\\\"; i += 1; continue }
            if b == 0x0A { out += "\\n"; i += 1; continue }
            if b == 0x09 { out += "\\t"; i += 1; continue }
            if b < 0x20 || b == 0x7F { out += String(format: "\\x%02x", b); i += 1; continue }
            // Take the longest valid UTF-8 sequence starting here (1–4 bytes).
            var taken = false
            for len in 1...4 where i + len <= bytes.count {
                if let s = String(validating: bytes[i..<(i + len)], as: UTF8.self) {
                    out += s; i += len; taken = true; break
                }
            }
            if !taken { out += String(format: "\\x%02x", b); i += 1 }
        }
        return out
    }
}
