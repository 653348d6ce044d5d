import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Private temporary directories (mode 0700) that are removed when the process exits normally
/// (`exit`, the end of `main`), e.g. a stand-in catalog when the cache directory is unusable.
/// A process killed by a signal leaves them in the system's temporary directory.
public enum TemporaryDirectories {
    private static let made = Mutex<[String]>([])
    private static let registered = Mutex(false)

    /// Creates a new directory under `$TMPDIR` (or /tmp) and returns its path.
    public static func make(prefix: String) -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/" + prefix + "XXXXXX").utf8CString)
        let path = template.withUnsafeMutableBufferPointer { buf -> String in
            guard let p = mkdtemp(buf.baseAddress!) else { return base + "/" + prefix + UUID().uuidString }
            return String(cString: p)
        }
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        made.withLock { $0.append(path) }
        registered.withLock { done in
            guard !done else { return }
            done = true
            atexit { TemporaryDirectories.removeAll() }
        }
        return path
    }

    static func removeAll() {
        for path in made.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
