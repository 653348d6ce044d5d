import RepoPrimitives
import RepoStorage
import Foundation
import Glibc

/// A machine key file (FORMAT.md §7.4): a random 256-bit secret that opens the repository's
/// `keyfile` slots without a password, for unattended hosts (cron, `archive_command`).
///
/// On disk it is one line, `repo-keyfile-v1 <64 hex digits>\n`, mode 0600. Whoever can read it
/// can read the repository (FORMAT.md §22), so `read` refuses a file that grants group or other
/// users any access, as OpenSSH does for private keys.
public struct KeyFile: Sendable {
    /// Length of the secret in bytes.
    public static let secretSize = 32
    /// The first word of the line: tells a key file from a password file or anything else.
    public static let tag = "repo-keyfile-v1"
    /// Key files larger than this are not key files (the line is 81 bytes).
    static let maximumSize = 4096

    /// The 32 secret bytes.
    public let secret: [UInt8]
    /// Where the file was read from or written to; named in messages.
    public let path: String

    /// - Precondition: `secret` is `secretSize` bytes.
    public init(secret: [UInt8], path: String) {
        precondition(secret.count == Self.secretSize, "a key file secret is \(Self.secretSize) bytes")
        self.secret = secret; self.path = path
    }

    /// The file's exact contents: `"repo-keyfile-v1 " || hex(secret) || "\n"` (81 bytes).
    public var encoded: [UInt8] { Array((Self.tag + " " + Hex.encode(secret) + "\n").utf8) }

    /// The secret in a key file's contents; nil unless they are exactly the tag, one space and
    /// 64 hex digits (either case), optionally followed by `\n` or `\r\n`.
    public static func parse(_ bytes: [UInt8]) -> [UInt8]? {
        var line = bytes[...]
        if line.last == 0x0A { line = line.dropLast() }
        if line.last == 0x0D { line = line.dropLast() }
        let prefix = Array((tag + " ").utf8)
        guard line.count == prefix.count + 2 * secretSize, line.starts(with: prefix) else { return nil }
        guard let secret = Hex.decode(String(decoding: line.dropFirst(prefix.count), as: UTF8.self)),
              secret.count == secretSize else { return nil }
        return secret
    }

    /// Reads and checks the key file at `path`.
    ///
    /// - Throws: `RepoError` `.failure` when the file cannot be opened, is not a regular file,
    ///   grants group or other users any permission (the message says `chmod 600`), or is not a
    ///   key file.
    public static func read(path: String) throws -> KeyFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw RepoError(.failure, "cannot read the key file \(path): \(reason)",
                            hint: "check the path given with --key-file / REPO_KEY_FILE, and that this user may read it")
        }
        defer { close(fd) }
        // Checked on the open descriptor, so the file checked is the file read.
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw RepoError(.failure, "cannot read the key file \(path): \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw RepoError(.failure, "the key file \(path) is not a regular file",
                            hint: "pass the file that `repo key add --new-key-file` created")
        }
        let mode = st.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw RepoError(.failure, "the key file \(path) is accessible by other users (mode \(String(mode, radix: 8))); it opens the repository like a password, so it is not used",
                            hint: "make it private with `chmod 600 \(path)` (and check who may have read it; if in doubt, remove its slot with `repo key remove`)")
        }
        var bytes = [UInt8](repeating: 0, count: maximumSize + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                throw RepoError(.failure, "cannot read the key file \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumSize, let secret = parse(Array(bytes[..<count])) else {
            throw RepoError(.failure, "\(path) is not a repo key file (expected one line: `\(tag)` and 64 hex digits)",
                            hint: "a password file goes with --password-file; key files are made by `repo key add --new-key-file FILE`")
        }
        return KeyFile(secret: secret, path: path)
    }

    /// Creates a key file with a fresh random secret at `path`: created exclusively (`O_EXCL`,
    /// never over an existing file or through a symlink), mode 0600, and fsynced with its
    /// directory before this returns.
    ///
    /// - Throws: `RepoError` `.failure` if `path` exists or cannot be written (nothing is left
    ///   behind then).
    public static func create(path: String) throws -> KeyFile {
        let file = KeyFile(secret: SecureRandom.bytes(secretSize), path: path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST {
                throw RepoError(.failure, "\(path) already exists; a key file is never written over",
                                hint: "choose a new path (to replace a key file, add the new one, then `repo key remove` the old one's slot)")
            }
            throw RepoError(.failure, "cannot create the key file \(path): \(String(cString: strerror(errno)))",
                            hint: "check that its directory exists and that this user may write there")
        }
        do {
            defer { close(fd) }
            // The umask may have removed owner bits; 0600 exactly, whatever it is.
            guard fchmod(fd, 0o600) == 0 else { throw posixFailure("set the mode of", path) }
            let bytes = file.encoded
            var written = 0
            while written < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw posixFailure("write", path) }
                written += n
            }
            guard fsync(fd) == 0 else { throw posixFailure("fsync", path) }
        } catch {
            unlink(path)
            throw error
        }
        // Its directory entry too: a key file that a crash can take away is no key file. A
        // failure here (the entry may not be on disk) removes the file, as any other does.
        let dir = (path as NSString).deletingLastPathComponent
        if let failure = Durability.sync(dir.isEmpty ? "." : dir, directory: true) {
            unlink(path)
            errno = failure.code
            throw Self.posixFailure(failure.operation + " the directory of", path)
        }
        return file
    }

    /// Deletes the file (undoes `create` when its slot could not be written).
    public func remove() { unlink(path) }

    private static func posixFailure(_ what: String, _ path: String) -> RepoError {
        RepoError(.failure, "cannot \(what) the key file \(path): \(String(cString: strerror(errno)))",
                  hint: "check the disk and the directory's permissions, then run the command again")
    }
}
