import CRepoPosix
#if canImport(Glibc)
import Glibc
#endif

/// `wal-fetch` of a segment that is already in the prefetch spool, without the argument
/// parser (`FastCommandLine`) and, in the launcher, without loading `repo-core` at all.
/// PostgreSQL runs `restore_command` once per segment and replays nothing while it runs,
/// ~64 times per GiB of WAL during recovery.
///
/// Handles the command line `pg-restore` writes (and close variants) when the segment is
/// spooled; anything else — another option, a name that is not a segment's, a segment not in
/// the spool, an S3 repository without an explicit spool — returns nil and the full
/// `wal-fetch` runs as usual. `WALFetchFastPathTests` checks that both read the same values.
public enum WALFetchFastPath {
    /// Segments fetched ahead by default (`--prefetch`).
    public static let defaultPrefetch = 32

    /// The options and operands of a `wal-fetch` command line.
    public struct Invocation: Equatable {
        public var repository: String?
        public var cacheDir: String?
        public var spool: String?
        public var prefetch = WALFetchFastPath.defaultPrefetch
        public var verbose = false
        public var name = ""
        public var destination = ""
    }

    /// The key options matter only to the prefetcher, which runs the full command with the
    /// same arguments.
    static let options: [String] = ["--repo", "--cache-dir", "--spool", "--prefetch",
                                    "--key-file", "--password-file", "--password-command"]

    /// `arguments` after `wal-fetch`; nil outside the subset.
    public static func parse(_ arguments: [String]) -> Invocation? {
        guard let line = FastCommandLine(arguments, options: options, flags: ["-q", "--quiet", "-v", "--verbose"], operands: 2),
              let verbose = line.verbose else { return nil }
        var out = Invocation(repository: line.value("--repo"), cacheDir: line.value("--cache-dir"), spool: line.value("--spool"),
                             verbose: verbose, name: line.operands[0], destination: line.operands[1])
        if let p = line.value("--prefetch") {
            guard let n = Int(p), n >= 0 else { return nil }
            out.prefetch = n
        }
        return out
    }

    /// Takes the segment from the spool and starts the prefetcher — `prefetcher` with this
    /// command's arguments and `--prefetch-worker` — when the spool runs low; the exit status,
    /// or nil to run the full command.
    public static func run(_ arguments: [String], environment: FastCommandLine.Environment, prefetcher: String) -> Int32? {
        guard let call = parse(arguments), WALSpoolLayout.isSegmentName(call.name),
              let directory = spoolDirectory(call, environment: environment),
              WALSpoolLayout.take(call.name, from: directory, to: call.destination) else { return nil }
        if call.verbose { StandardError.write("restored \(call.name) from the prefetch spool\n") }
        startPrefetcher(prefetcher, after: call.name, spool: directory, depth: call.prefetch, verbose: call.verbose)
        return 0
    }

    /// The spool the full `wal-fetch` would use: under `--spool` or `REPO_WAL_SPOOL`, the
    /// repository location's subdirectory (`WALSpoolLayout.directory(under:location:)`); else
    /// the default in the cache directory, which names the repository's id, read from a local
    /// repository's `config`; nil for S3, whose config the full command reads (and reports any
    /// failure of). A local repository whose config can be read must be the one whose WAL the
    /// spool holds (its `.repository` file), else nil: the full command then empties the spool
    /// of the other repository's WAL (`WALSpool.adopt`); one whose config exists but cannot
    /// be read here: nil.
    public static func spoolDirectory(_ call: Invocation, environment: FastCommandLine.Environment) -> String? {
        let local = FastCommandLine.localRepository(option: call.repository, environment: environment)
        let config = local.flatMap { WALSpoolLayout.readSmallFile($0 + "/config", limit: 1 << 16) }
        // A config that is there but cannot be read here (too large, unreadable): the full
        // command decides, rather than serving by location alone.
        if let local, config == nil, access(local + "/config", F_OK) == 0 { return nil }
        if let named = (call.spool ?? environment("REPO_WAL_SPOOL")).flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let location = call.repository ?? environment("REPO_REPOSITORY"), !location.isEmpty else { return nil }
            let directory = WALSpoolLayout.directory(under: named, location: location)
            if let config, !WALSpoolLayout.holds(directory, repositoryConfig: config) { return nil }
            return directory
        }
        guard let config, let id = WALSpoolLayout.repositoryID(inConfig: config),
              let cache = cacheDirectory(option: call.cacheDir, environment: environment) else { return nil }
        let directory = WALSpoolLayout.defaultDirectory(cacheDirectory: cache, repository: id)
        return WALSpoolLayout.holds(directory, repositoryConfig: config) ? directory : nil
    }

    /// The cache directory: `--cache-dir`, REPO_CACHE_DIR, `$XDG_CACHE_HOME/repo`, then
    /// `$HOME/.cache/repo`; nil when none of them is set (the full command then decides).
    public static func cacheDirectory(option: String?, environment env: FastCommandLine.Environment) -> String? {
        if let d = option ?? env("REPO_CACHE_DIR"), !d.isEmpty { return d }
        if let x = env("XDG_CACHE_HOME"), !x.isEmpty { return x + "/repo" }
        return env("HOME").map { $0 + "/.cache/repo" }
    }

    /// Starts `executable` with this process's command line after its program name (`wal-fetch
    /// …`, byte for byte: paths need not be UTF-8) and `--prefetch-worker`, detached and with
    /// this process's environment, unless the spool still holds at least half of `depth`
    /// segments after `name` (a prefetcher started every time would mostly find its work done,
    /// and each costs a process start on the core replay is not using). The prefetcher exits
    /// at once if another one holds the spool.
    public static func startPrefetcher(_ executable: String, after name: String, spool: String, depth: Int, verbose: Bool) {
        guard depth > 0, WALSpoolLayout.isSegmentName(name),
              WALSpoolLayout.segmentsAhead(of: name, in: spool) < (depth + 1) / 2 else { return }
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable)]
        for i in 1..<Int(CommandLine.argc) { argv.append(strdup(CommandLine.unsafeArgv[i]!)) }
        argv += [strdup("--prefetch-worker"), nil]
        defer { argv.forEach { free($0) } }
        if crepo_spawn_detached(executable, &argv, environ) < 0, verbose {
            StandardError.write("repo: warning: cannot start the WAL prefetcher: \(String(cString: strerror(errno)))\n")
        }
    }
}
