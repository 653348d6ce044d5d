public import Foundation
import RepoStorage

extension S3Backend {
    /// Whether this server refuses a PutObject with `If-None-Match: *` on a key that exists,
    /// as `create` needs (Amazon S3 API Reference, PutObject, "Conditional writes"; some
    /// S3-compatible servers accept the header and ignore it).
    ///
    /// The answer is read from `cacheFile` when it was written within `maxAge` seconds;
    /// otherwise the server is asked once: `existing` (an object that exists, whose bytes are
    /// read first) is written again, byte for byte, with the header. A server that honours it
    /// answers 412 and writes nothing; one that ignores it replaces the object with identical
    /// bytes, which changes nothing a reader sees. One GET and one PUT, no delete, so a host
    /// whose credentials cannot delete can ask too. The answer is then written to `cacheFile`
    /// (best effort: a cache that cannot be written means asking again next time).
    ///
    /// - Throws: storage errors of the GET or PUT.
    public func conditionalWritesHonoured(probing existing: String, cacheFile: String?, maxAge: TimeInterval = 86_400) throws -> Bool {
        if let cacheFile, let attributes = try? FileManager.default.attributesOfItem(atPath: cacheFile),
           let modified = attributes[.modificationDate] as? Date, Date().timeIntervalSince(modified) < maxAge,
           let text = try? String(contentsOfFile: cacheFile, encoding: .utf8) {
            switch text.trimmingCharacters(in: .whitespacesAndNewlines) {
            case "honoured": return true
            case "ignored": return false
            default: break
            }
        }
        let bytes = try get(existing, range: nil)
        let honoured = try !create(existing, data: bytes)
        if let cacheFile {
            let tmp = cacheFile + ".tmp-\(getpid())"
            if FileManager.default.createFile(atPath: tmp, contents: Data((honoured ? "honoured\n" : "ignored\n").utf8)) {
                if rename(tmp, cacheFile) != 0 { unlink(tmp) }
            }
        }
        return honoured
    }
}
