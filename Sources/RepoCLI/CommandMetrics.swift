import ArgumentParser
import RepoRepository
import RepoSnapshot
import RepoOperations
import Foundation

/// `--metrics-file FILE` (README, "Monitoring"): the outcome of this command as Prometheus
/// metrics, written when the command ends, however it ends (success, error, usage error,
/// signal), for node_exporter's textfile collector.
///
/// Every command gets `repo_command_success`, `repo_command_exit_code`,
/// `repo_command_duration_seconds`, `repo_command_last_run_timestamp_seconds` and
/// `repo_command_last_success_timestamp_seconds` (labelled `command`); commands that know more
/// add it (`record`). The file is replaced atomically: written as `.FILE.tmp-<pid>` in the same
/// directory, fsynced, renamed over FILE, so the collector never reads half a file. When the
/// command fails, the last-success time is carried over from the file it replaces. A file that
/// cannot be written is a warning and never changes the exit code.
final class CommandMetrics: @unchecked Sendable {
    static let shared = CommandMetrics()

    private let lock = NSLock()
    private var file: String?
    private var command = ""
    private var started = Date()
    private var extra = PrometheusText()
    private var written = false

    /// Starts timing `command` (e.g. `store`, `key add`) and remembers where to write.
    func begin(command: String, file: String?) {
        lock.withLock {
            self.command = command; self.file = file; started = Date()
        }
    }

    /// Metrics the command adds to the file (ignored without `--metrics-file`).
    func record(_ body: (inout PrometheusText) -> Void) {
        lock.withLock { body(&extra) }
    }

    /// Writes the file once, for `exitCode`; a second call does nothing. A failure is printed
    /// as a warning even with -q: cron jobs run with -q, and a monitor reading a stale file must
    /// not be the only one to know.
    func finish(exitCode: Int32) {
        let (target, text) = lock.withLock { () -> (String?, String) in
            guard let path = file, !written else { return (nil, "") }
            written = true
            return (path, render(exitCode: exitCode, previous: try? String(contentsOfFile: path, encoding: .utf8), file: path))
        }
        guard let file = target else { return }
        do { try Self.writeAtomically(text, to: file) } catch {
            Console.line("repo: warning: cannot write the metrics file \(file): \(error)")
        }
    }

    /// The file's text. Every sample carries `metrics_file`, the file's name without its
    /// directory and `.prom`: node_exporter refuses a series that two files both expose, and
    /// two jobs (two stores, or a store and `status`) would otherwise write the same ones.
    private func render(exitCode: Int32, previous: String?, file: String) -> String {
        let now = Date()
        var base = URL(fileURLWithPath: file).lastPathComponent
        if base.hasSuffix(".prom") { base.removeLast(5) }
        let label = [("command", command)]
        var m = PrometheusText()
        m.add("repo_command_success", "1 if the last run of the command succeeded (exit code 0), else 0.",
              labels: label, exitCode == 0 ? 1 : 0)
        m.add("repo_command_exit_code", "Exit code of the last run of the command (README: Exit codes).", labels: label, Double(exitCode))
        m.add("repo_command_duration_seconds", "Wall time of the last run of the command.", labels: label, now.timeIntervalSince(started))
        m.add("repo_command_last_run_timestamp_seconds", "When the last run of the command ended (Unix time).",
              labels: label, now.timeIntervalSince1970.rounded(.down))
        let lastSuccess = exitCode == 0 ? now.timeIntervalSince1970.rounded(.down)
            : previous.flatMap { Self.sample(in: $0, name: "repo_command_last_success_timestamp_seconds", labels: [("metrics_file", base)] + label) }
        m.add("repo_command_last_success_timestamp_seconds", "When the command last ended successfully (Unix time); absent until it has.",
              labels: label, lastSuccess)
        m.append(extra)
        return m.labelled("metrics_file", base).text
    }

    /// The value of sample `name{labels}` in exposition text written by this class.
    static func sample(in text: String, name: String, labels: [(String, String)]) -> Double? {
        let key = name + "{" + labels.map { "\($0.0)=\"\(PrometheusText.escapeLabel($0.1))\"" }.joined(separator: ",") + "} "
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return Double(line.dropFirst(key.count))
        }
        return nil
    }

    /// Writes `text` to `.NAME.tmp-<pid>` next to `path`, fsyncs it and renames it over `path`
    /// (node_exporter skips names starting with a dot and not ending in `.prom`).
    static func writeAtomically(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RepoError(.failure, "create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = true
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 { if errno == EINTR { continue }; ok = false; return }
                off += n
            }
        }
        let reason = String(cString: strerror(errno))
        if !ok || fsync(fd) != 0 {
            close(fd); unlink(tmp)
            throw RepoError(.failure, "write \(tmp): \(ok ? String(cString: strerror(errno)) : reason)")
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw RepoError(.failure, "rename to \(path): \(reason)")
        }
    }

    // MARK: finding the option and the command's name

    /// The `--metrics-file` value and the command's name (`key add`) of a parsed command.
    /// The name is only looked up when there is a file: walking the command tree costs the
    /// runtime milliseconds of conformance lookups, which `wal-push` does not pay (`RepoMain.parse`).
    static func configuration(of command: ParsableCommand) -> (file: String?, name: String, quiet: Bool) {
        for child in Mirror(reflecting: command).children {
            if let group = child.value as? OptionGroup<GlobalOptions>, let file = group.wrappedValue.metricsFile {
                return (file, path(of: type(of: command)), group.wrappedValue.quiet)
            }
        }
        return (nil, "", false)
    }

    /// `--metrics-file FILE` (or `=FILE`) and the command word from the raw arguments, for a
    /// command line that did not parse (a usage error must still reach the monitor).
    static func configuration(arguments: [String]) -> (file: String?, name: String) {
        var file: String?
        var name: String?
        var i = 0
        while i < arguments.count, arguments[i] != "--" {
            let a = arguments[i]
            if a == "--metrics-file", i + 1 < arguments.count { file = arguments[i + 1]; i += 2; continue }
            if a.hasPrefix("--metrics-file=") { file = String(a.dropFirst("--metrics-file=".count)) }
            if name == nil, !a.hasPrefix("-") { name = a }
            i += 1
        }
        return (file, name ?? "repo")
    }

    /// The words that name `type` below `repo`, e.g. `store` or `key add`.
    static func path(of type: ParsableCommand.Type) -> String {
        func walk(_ t: ParsableCommand.Type, _ prefix: [String]) -> [String]? {
            for sub in t.configuration.subcommands {
                let p = prefix + [sub._commandName]
                if ObjectIdentifier(sub) == ObjectIdentifier(type) { return p }
                if let found = walk(sub, p) { return found }
            }
            return nil
        }
        return walk(RepoCommand.self, [])?.joined(separator: " ") ?? type._commandName
    }
}

// MARK: what commands add

extension CommandMetrics {
    /// The labels of a snapshot's group: `host`, `name` and `paths` (comma-joined; empty
    /// where the snapshot has none), the same set on every group metric.
    static func groupLabels(host: String, name: String?, paths: [String]?) -> [(String, String)] {
        [("host", host), ("name", name ?? ""), ("paths", (paths ?? []).joined(separator: ","))]
    }

    /// `store` and `backup`: the snapshot written and what it cost.
    func snapshotWritten(_ s: Snapshot, date: Date) {
        CommandNotification.shared.snapshotWritten(s)
        let labels = Self.groupLabels(host: s.host, name: s.name, paths: s.paths)
        record { m in
            m.add("repo_store_bytes_total", "Content bytes the command read and stored (before deduplication).",
                  labels: labels, Double(s.stats.totalBytes))
            m.add("repo_store_added_bytes_total", "Bytes the command added to the repository (new blobs, as stored).",
                  labels: labels, Double(s.stats.newBytes))
            m.add("repo_snapshot_last_timestamp_seconds", "Time of the group's newest snapshot (Unix time).",
                  labels: labels, date.timeIntervalSince1970)
            m.add("repo_snapshot_last_size_bytes", "Content bytes of the group's newest snapshot.", labels: labels, Double(s.stats.totalBytes))
            m.add("repo_snapshot_last_added_bytes", "Bytes the group's newest snapshot added to the repository.",
                  labels: labels, Double(s.stats.newBytes))
        }
    }

    /// `check`: errors found and data read.
    func checkFinished(_ r: RepoOperations.Check.Report) {
        record { m in
            m.add("repo_check_errors", "Integrity errors the check found.", Double(r.errors.count))
            m.add("repo_check_read_bytes_total", "Bytes of packs and WAL files the check read and verified.", Double(r.bytesRead))
            m.add("repo_check_packs_read_total", "Packs the check read in full.", Double(r.packsRead))
        }
    }

    /// `prune` (and `forget --prune`): what was freed.
    func pruneFinished(_ r: Prune.Report) {
        guard !r.dryRun else { return }
        record { m in
            m.add("repo_prune_freed_bytes_total", "Pack bytes prune freed (deleted and repacked minus written).", Double(r.bytesFreed))
            m.add("repo_prune_packs_deleted_total", "Packs prune deleted.", Double(r.packsDeleted))
            m.add("repo_pack_bytes", "Bytes of packs in the repository after the command.", Double(r.packBytesAfter))
        }
    }

    /// `drill`: the outcome, as `status` shows a group's newest drill.
    func drillFinished(_ d: DrillRecord) {
        let labels = Self.groupLabels(host: d.snapshotHost, name: d.snapshotName, paths: d.snapshotPaths)
        record { m in
            m.add("repo_drill_last_timestamp_seconds", "When the group's newest restore drill ended (Unix time).", labels: labels,
                  Timestamp.parse(d.time)?.timeIntervalSince1970)
            m.add("repo_drill_last_success", "1 if the group's newest restore drill passed, else 0.", labels: labels, d.ok ? 1 : 0)
            m.add("repo_drill_last_restore_seconds", "Restore time (RTO) measured by the group's newest drill.", labels: labels, d.restoreSeconds)
        }
    }

    /// `forget`: snapshots kept and forgotten.
    func forgetFinished(kept: Int, forgotten: Int, dryRun: Bool) {
        guard !dryRun else { return }
        record { m in
            m.add("repo_forget_snapshots_forgotten_total", "Snapshots forget deleted.", Double(forgotten))
            m.add("repo_forget_snapshots_kept", "Snapshots forget kept (of those it considered).", Double(kept))
        }
    }
}
