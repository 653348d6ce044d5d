#if canImport(Glibc)
import Glibc
#endif

/// Messages to standard error with `write(2)`. A closed or broken stderr (`2>&-`, a reader that
/// went away, with SIGPIPE ignored) loses the message and nothing else: Foundation's
/// `FileHandle.write(_:)` traps on such an error, which ended `wal-fetch` with SIGILL (exit
/// 132, which PostgreSQL takes as fatal) where it meant to exit 1 with a `-v` line.
public enum StandardError {
    /// Opens /dev/null on each of descriptors 0, 1 and 2 that is closed, before anything else
    /// opens a file: otherwise the next `open` (a repository object, a restored file) would
    /// get that number, and messages or output meant for the terminal would be written into it.
    public static func reserveStandardDescriptors() {
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
            let opened = open("/dev/null", O_RDWR)
            if opened >= 0, opened != fd { close(opened) }
        }
    }

    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            done += n
        }
    }
}
