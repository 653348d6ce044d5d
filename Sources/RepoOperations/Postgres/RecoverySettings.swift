import RepoRepository
public import RepoSnapshot
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The recovery configuration `pg-restore` writes into a restored data directory (PostgreSQL
/// documentation, "Recovering Using a Continuous Archive Backup" and "Server Configuration —
/// Archive Recovery, Recovery Target"): an empty `recovery.signal`, and a block of settings
/// appended to `postgresql.auto.conf`, which PostgreSQL reads after `postgresql.conf`, so these
/// values win; for a repeated setting the last line counts.
public struct RecoverySettings: Sendable {
    /// The shell command PostgreSQL runs to fetch a WAL file (`%f` name, `%p` destination).
    public var restoreCommand: String
    public var target: RecoveryTarget
    public var action: RecoveryTarget.Action?
    /// `recovery_target_timeline`: a timeline ID, or nil for `latest`.
    public var timeline: UInt32?
    /// Writes `archive_mode = 'off'`: the restored server archives nothing, whatever the
    /// restored `postgresql.conf` says (a test restore must not archive into production's
    /// repository: once promoted, its new timeline becomes the newest there).
    public var archiveOff = false
    /// A comment line written above the block (who wrote it, from which snapshot).
    public var comment: String

    public init(restoreCommand: String, target: RecoveryTarget, action: RecoveryTarget.Action?, timeline: UInt32? = nil, comment: String) {
        self.restoreCommand = restoreCommand; self.target = target; self.action = action; self.timeline = timeline
        self.comment = comment
    }

    /// Every setting, in the order written.
    public var settings: [(name: String, value: String)] {
        [("restore_command", restoreCommand)] + target.settings(action: action, timeline: timeline)
            + (archiveOff ? [("archive_mode", "off")] : [])
    }

    /// The block appended to `postgresql.auto.conf`.
    public var text: String {
        var out = "\n# " + comment.replacingOccurrences(of: "\n", with: " ") + "\n"
        for (name, value) in settings { out += "\(name) = \(Self.configQuote(value))\n" }
        return out
    }

    /// `restore_command` running `repo wal-fetch`: `binary wal-fetch --repo LOCATION ARGS… %f %p`,
    /// each word quoted for `/bin/sh` (PostgreSQL runs the command with `system()`) and every
    /// `%` in it doubled (PostgreSQL replaces `%f`, `%p`, `%r` and `%%`).
    public static func walFetchCommand(binary: String, repository: String, extraArguments: [String]) -> String {
        let words = [binary, "wal-fetch", "--repo", repository] + extraArguments
        return (words.map { shellQuote($0.replacingOccurrences(of: "%", with: "%%")) } + ["%f", "%p"]).joined(separator: " ")
    }

    /// `word` as one `/bin/sh` word: unchanged when it has only safe characters, else in
    /// single quotes with each `'` written `'\''`.
    public static func shellQuote(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:@%+,")
        if !word.isEmpty && word.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// `value` as a quoted string of a PostgreSQL configuration file ("Parameter Interaction via
    /// the Configuration File"): in single quotes, `'` doubled; backslashes are escapes there,
    /// so each is doubled too.
    public static func configQuote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// Writes `recovery.signal` and appends the block to `postgresql.auto.conf` in
    /// `dataDirectory` (files created with mode 0600; owned by `owner` when given, as root).
    /// - Throws: `RepoError(.failure)` naming the file that cannot be written.
    public func write(into dataDirectory: String, owner: (uid: UInt32, gid: UInt32)?) throws {
        try Self.append([], to: dataDirectory + "/recovery.signal", owner: owner)
        try Self.append(Array(text.utf8), to: dataDirectory + "/postgresql.auto.conf", owner: owner)
    }

    private static func append(_ bytes: [UInt8], to path: String, owner: (uid: UInt32, gid: UInt32)?) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw RepoError(.failure, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            guard n > 0 else { throw RepoError(.failure, "cannot write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        guard fsync(fd) == 0 else { throw RepoError(.failure, "cannot write \(path): \(String(cString: strerror(errno)))") }
        if let owner, geteuid() == 0, fchown(fd, owner.uid, owner.gid) != 0 {
            throw RepoError(.failure, "cannot set the owner of \(path): \(String(cString: strerror(errno)))")
        }
    }
}
