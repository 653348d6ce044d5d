import ArgumentParser
import RepoRepository
import RepoSnapshot
import Foundation

/// `--notify-command CMD` (README, "Notifications"): when store, backup, pg-backup, forget,
/// prune, check, drill or copy ends, `/bin/sh -c CMD` runs with one JSON event on standard
/// input, so a hook can post to Slack, send mail or page someone. Which endings notify is
/// `--notify-on` (`always`, `failure`, `success`). The hook's own failure (it exits non-zero,
/// cannot start, or is still running after `timeout` seconds and is killed) is a warning and
/// never changes the command's exit code.
///
/// The event (version 1): `version`, `event` (`"command_finished"`), `command`, `success`,
/// `exit_code`, `error` and `hint` (null on success), `started`, `ended` (RFC 3339, UTC),
/// `duration_seconds`, `host`, `username`, `repository` (the location as given), and for
/// commands that wrote a snapshot `snapshot` (`name`, `paths`, `host`, `total_bytes`,
/// `added_bytes`), else null. The same values are in the hook's environment as
/// `REPO_EVENT_COMMAND`, `REPO_EVENT_SUCCESS` (`1`/`0`), `REPO_EVENT_EXIT_CODE`.
final class CommandNotification: @unchecked Sendable {
    static let shared = CommandNotification()
    /// The commands that notify (their path below `repo`).
    static let commands: Set<String> = ["store", "backup", "pg-backup", "forget", "prune", "check", "drill", "copy"]
    /// Seconds a hook may run before it is killed.
    static let timeout: TimeInterval = 60

    enum When: String, ExpressibleByArgument, CaseIterable { case always, failure, success }

    private let lock = NSLock()
    private var hook: String?
    private var when = When.always
    private var command = ""
    private var repository: String?
    private var quiet = false
    private var started = Date()
    private var snapshot: SnapshotEvent?

    struct SnapshotEvent: Encodable {
        var name: String?
        var paths: [String]?
        var host: String
        var total_bytes: Int
        var added_bytes: Int

        enum CodingKeys: String, CodingKey { case name, paths, host, total_bytes, added_bytes }

        /// Every key, `null` where there is no value.
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name); try c.encode(paths, forKey: .paths); try c.encode(host, forKey: .host)
            try c.encode(total_bytes, forKey: .total_bytes); try c.encode(added_bytes, forKey: .added_bytes)
        }
    }

    /// Arms the hook for a parsed command, from its global options (`--notify-command`,
    /// `--notify-on`, or their environment variables). Commands that do not notify cost one
    /// reflection of their options.
    static func arm(for command: ParsableCommand) {
        for child in Mirror(reflecting: command).children {
            guard let group = child.value as? OptionGroup<GlobalOptions> else { continue }
            let options = group.wrappedValue
            let (hook, when) = options.notification
            guard hook != nil else { return }
            shared.begin(command: CommandMetrics.path(of: type(of: command)), hook: hook, when: when,
                         repository: options.locationText, quiet: options.quiet)
            return
        }
    }

    /// Arms the hook from the raw arguments and the environment, for a command line that did
    /// not parse (a cron job with a broken command line must still reach its hook).
    static func arm(arguments: [String]) {
        let env = ProcessInfo.processInfo.environment
        var hook = env["REPO_NOTIFY_COMMAND"], when = env["REPO_NOTIFY_ON"].flatMap { When(rawValue: $0.lowercased()) }
        var name: String?
        var i = 0
        while i < arguments.count, arguments[i] != "--" {
            let a = arguments[i]
            for (flag, set) in [("--notify-command", { (v: String) in hook = v }), ("--notify-on", { (v: String) in when = When(rawValue: v) ?? when })] {
                if a == flag, i + 1 < arguments.count { set(arguments[i + 1]); i += 1 }
                if a.hasPrefix(flag + "=") { set(String(a.dropFirst(flag.count + 1))) }
            }
            if name == nil, !a.hasPrefix("-") { name = a }
            i += 1
        }
        guard let name else { return }
        shared.begin(command: name, hook: hook, when: when ?? .always, repository: env["REPO_REPOSITORY"], quiet: false)
    }

    /// Arms the hook for `command` when it is one that notifies and a hook is set.
    func begin(command: String, hook: String?, when: When, repository: String?, quiet: Bool) {
        guard let hook, !hook.isEmpty, Self.commands.contains(command) else { return }
        lock.withLock {
            self.hook = hook; self.when = when; self.command = command; self.repository = repository
            self.quiet = quiet; started = Date()
        }
    }

    /// `store`, `backup`, `pg-backup`: the snapshot the command wrote.
    func snapshotWritten(_ s: Snapshot) {
        lock.withLock {
            snapshot = SnapshotEvent(name: s.name, paths: s.paths, host: s.host, total_bytes: s.stats.totalBytes, added_bytes: s.stats.newBytes)
        }
    }

    struct Event: Encodable {
        var version = 1
        var event = "command_finished"
        var command: String
        var success: Bool
        var exit_code: Int32
        var error: String?
        var hint: String?
        var started: String
        var ended: String
        var duration_seconds: Double
        var host: String
        var username: String
        var repository: String?
        var snapshot: SnapshotEvent?

        enum CodingKeys: String, CodingKey {
            case version, event, command, success, exit_code, error, hint, started, ended, duration_seconds, host, username, repository, snapshot
        }

        /// Every key, `null` where there is no value.
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(version, forKey: .version); try c.encode(event, forKey: .event); try c.encode(command, forKey: .command)
            try c.encode(success, forKey: .success); try c.encode(exit_code, forKey: .exit_code); try c.encode(error, forKey: .error)
            try c.encode(hint, forKey: .hint); try c.encode(started, forKey: .started); try c.encode(ended, forKey: .ended)
            try c.encode(duration_seconds, forKey: .duration_seconds); try c.encode(host, forKey: .host)
            try c.encode(username, forKey: .username); try c.encode(repository, forKey: .repository); try c.encode(snapshot, forKey: .snapshot)
        }
    }

    /// Runs the hook once for the command's end (`error` when it failed with one). Waits for
    /// it (at most `timeout`), so a `repo` run from cron does not leave it orphaned.
    func finish(exitCode: Int32, error: RepoError?) {
        let armed = lock.withLock { () -> (String, Event)? in
            guard let hook else { return nil }
            self.hook = nil
            let success = exitCode == 0
            guard when == .always || (when == .success) == success else { return nil }
            let now = Date()
            return (hook, Event(command: command, success: success, exit_code: exitCode, error: success ? nil : (error?.message ?? "exit code \(exitCode)"),
                                hint: success ? nil : error?.hint, started: Timestamp.format(started), ended: Timestamp.format(now),
                                duration_seconds: (now.timeIntervalSince(started) * 1000).rounded() / 1000,
                                host: HostInfo.hostname, username: HostInfo.username, repository: repository, snapshot: snapshot))
        }
        guard let (hook, event) = armed else { return }
        do {
            try run(hook, event: event)
        } catch {
            // Printed even with -q: a cron job runs with -q, and a silent hook is what it
            // must not have (the exit code stays the command's own).
            Console.line("repo: warning: the notify command failed: \(error)")
        }
    }

    private func run(_ hook: String, event: Event) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(event) + Data("\n".utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", hook]
        var env = ProcessInfo.processInfo.environment
        env["REPO_EVENT_COMMAND"] = event.command
        env["REPO_EVENT_SUCCESS"] = event.success ? "1" : "0"
        env["REPO_EVENT_EXIT_CODE"] = String(event.exit_code)
        process.environment = env
        let stdin = Pipe()
        process.standardInput = stdin
        // The hook's output goes where ours does (a cron mail, a journal), not into our stdout
        // data: stdout of the command may be a dump being piped somewhere.
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        try process.run()
        try? stdin.fileHandleForWriting.write(contentsOf: body)
        try? stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(Self.timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw RepoError(.failure, "`\(hook)` was still running after \(Int(Self.timeout)) s and was killed")
        }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw RepoError(.failure, "`\(hook)` \(process.terminationReason == .exit ? "exited with status" : "was killed by signal") \(process.terminationStatus)")
        }
    }
}
