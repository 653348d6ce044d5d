import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import Foundation

extension RepoCommand {
    struct Backup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Back up files and directory trees as one snapshot.",
            discussion: """
                Stores regular files, directories, symlinks and hard links with mode, owner, \
                mtime (nanoseconds) and extended attributes. Files whose size, mtime, ctime and \
                inode equal those in the newest snapshot of the same host and paths are not read \
                again. Entries that vanish or cannot be read are reported and left out: the \
                snapshot is then marked partial and the exit code is 3.
                Examples:
                  repo backup /var/lib/clickhouse/shadow/nightly
                  repo backup /srv/exports --exclude '*.tmp' --tag nightly
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Files or directories to back up.")
        var paths: [String]

        @Option(name: .customLong("tag"), help: "Tag for the snapshot (repeatable; no commas or control characters, at most 255 bytes).")
        var tags: [String] = []

        @Option(name: .customLong("exclude"), help: ArgumentHelp("Leave out entries matching GLOB (repeatable). A glob without `/` matches names, one with `/` whole paths.", valueName: "GLOB"))
        var excludes: [String] = []

        @Option(help: "Host to record (default: this machine's hostname).")
        var host: String?

        @Option(help: ArgumentHelp(TimeInput.help("Time to file the snapshot under (default: now)."), valueName: "TIME"))
        var time: String?

        @OptionGroup var timeZone: TimeZoneOption

        func validate() throws {
            if paths.isEmpty { throw ValidationError("name at least one path to back up") }
            try LabelInput.check(tags, kind: .tag, flag: "--tag")
            try LabelInput.check(host, kind: .host, flag: "--host")
            try TimeInput.check(time, flag: "--time", zone: try timeZone.zone())
        }

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, command: "backup \(paths.joined(separator: " "))")
            defer { lock?.release() }
            SignalTrap.stopCooperatively()
            let cancellation = SignalTrap.cancellation
            var op = RepoOperations.Backup(repository: repo, paths: paths, tags: tags, host: host ?? HostInfo.hostname,
                                           time: try time.map { try TimeInput.parse($0, flag: "--time", zone: try timeZone.zone()) } ?? Date())
            op.excludes = excludes
            op.cancellation = cancellation
            op.warn = global.warningPrinter
            let result = try global.withProgress("read") { progress in
                op.progress = progress
                return try op.run()
            }
            let s = result.snapshot.stats
            CommandMetrics.shared.snapshotWritten(result.snapshot, date: Timestamp.parse(result.snapshot.time) ?? Date())
            if global.json {
                try Console.printJSON(BackupOutput(result))
            } else {
                print(result.snapshotID.hex)
                if global.verbose || (Console.stderrIsTerminal && !global.quiet) {
                    Console.line("backed up \(s.files ?? 0) files, \(s.dirs ?? 0) dirs, \(Format.bytes(s.totalBytes)) in \(String(format: "%.1f", s.seconds)) s: \(s.unchangedFiles ?? 0) files unchanged, \(Format.bytes(s.newBytes)) added" + (result.parent.map { " (parent \($0.shortHex))" } ?? ""))
                }
            }
            if result.partial {
                throw RepoError(.partial, "\(s.unreadable ?? 0) entr\(s.unreadable == 1 ? "y" : "ies") could not be read and \(s.unreadable == 1 ? "was" : "were") left out; snapshot \(result.snapshotID.shortHex) is marked partial",
                                hint: "see the warnings above; fix permissions and run the backup again")
            }
        }
    }
}

/// `repo backup --json` output (documented in the README).
struct BackupOutput: Encodable {
    var id: String
    var short_id: String
    var parent: String?
    var paths: [String]
    var files: Int
    var dirs: Int
    var unchanged_files: Int
    var unreadable: Int
    var changed_while_read: Int
    var bytes: Int
    var new_blobs: Int
    var new_bytes: Int
    var partial: Bool
    var seconds: Double

    init(_ r: RepoOperations.Backup.Result) {
        let s = r.snapshot.stats
        id = r.snapshotID.hex; short_id = r.snapshotID.shortHex; parent = r.parent?.hex; paths = r.snapshot.paths ?? []
        files = s.files ?? 0; dirs = s.dirs ?? 0; unchanged_files = s.unchangedFiles ?? 0; unreadable = s.unreadable ?? 0
        changed_while_read = r.changedWhileRead; bytes = s.totalBytes; new_blobs = s.newBlobs; new_bytes = s.newBytes
        partial = r.partial; seconds = s.seconds
    }

    enum CodingKeys: String, CodingKey { case id, short_id, parent, paths, files, dirs, unchanged_files, unreadable, changed_while_read, bytes, new_blobs, new_bytes, partial, seconds }

    /// Every key, `parent` as `null` when no earlier snapshot was reused.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(short_id, forKey: .short_id); try c.encode(parent, forKey: .parent)
        try c.encode(paths, forKey: .paths); try c.encode(files, forKey: .files); try c.encode(dirs, forKey: .dirs)
        try c.encode(unchanged_files, forKey: .unchanged_files); try c.encode(unreadable, forKey: .unreadable)
        try c.encode(changed_while_read, forKey: .changed_while_read); try c.encode(bytes, forKey: .bytes)
        try c.encode(new_blobs, forKey: .new_blobs); try c.encode(new_bytes, forKey: .new_bytes)
        try c.encode(partial, forKey: .partial); try c.encode(seconds, forKey: .seconds)
    }
}
