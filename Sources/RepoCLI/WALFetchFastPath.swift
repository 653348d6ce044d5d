import RepoRepository
import RepoSnapshot
import RepoStorage
import RepoOperations

/// `wal-fetch` of a segment that is already in the prefetch spool, without the argument
/// parser (`FastCommandLine`). PostgreSQL runs `restore_command` once per segment and replays
/// nothing while it runs, ~64 times per GiB of WAL during recovery.
///
/// Handles the command line `pg-restore` writes (and close variants) when the segment is
/// spooled; anything else — another option, a name that is not a segment's, a segment not in
/// the spool, an S3 repository without an explicit spool — returns nil and `WalFetch` runs as
/// usual. `WALFetchFastPathTests` checks that both read the same values.
enum WALFetchFastPath {
    /// The options and operands of a `wal-fetch` command line.
    struct Invocation: Equatable {
        var repository: String?
        var cacheDir: String?
        var spool: String?
        var prefetch = RepoCommand.WalFetch.defaultPrefetch
        var verbose = false
        var name = ""
        var destination = ""
    }

    /// The key options matter only to the prefetcher, which runs the full command with the
    /// same arguments.
    static let options: [String] = ["--repo", "--cache-dir", "--spool", "--prefetch",
                                       "--key-file", "--password-file", "--password-command"]

    /// `arguments` after `wal-fetch`; nil outside the subset.
    static func parse(_ arguments: [String]) -> Invocation? {
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

    /// Takes the segment from the spool and starts the prefetcher when the spool runs low;
    /// the exit status, or nil to run the command through the parser.
    static func run(_ arguments: [String], environment: FastCommandLine.Environment) -> Int32? {
        guard let call = parse(arguments), let name = WALFileName(call.name), name.kind == .segment,
              let directory = spoolDirectory(call, environment: environment) else { return nil }
        let spool = WALSpool(directory: directory)
        guard spool.take(name, to: call.destination) else { return nil }
        if call.verbose { Console.line("restored \(name) from the prefetch spool") }
        RepoCommand.WalFetch.startPrefetcher(after: name, spool: spool, depth: call.prefetch, verbose: call.verbose)
        return 0
    }

    /// The spool `WalFetch` would use: under `--spool` or `REPO_WAL_SPOOL`, the repository
    /// location's subdirectory (`WALSpool.directory(under:location:)`); else the default in the
    /// cache directory, which names the repository's id: read from a local repository's
    /// `config`; nil for S3, whose config the parser's path reads (and reports any failure of).
    /// Under a named spool, a local repository whose config can be read must be the one whose
    /// WAL the spool holds (its `.repository` file), else nil: the parser's path then empties
    /// the spool of the other repository's WAL (`WALSpool.adopt`).
    static func spoolDirectory(_ call: Invocation, environment: FastCommandLine.Environment) -> String? {
        let local = FastCommandLine.localRepository(option: call.repository, environment: environment)
        if let named = (call.spool ?? environment("REPO_WAL_SPOOL")).flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let location = call.repository ?? environment("REPO_REPOSITORY"), !location.isEmpty else { return nil }
            let spool = WALSpool(directory: WALSpool.directory(under: named, location: location))
            if let local, let config = try? LocalBackend(path: local).get(RepositoryConfig.objectName),
               !spool.holds(repositoryConfig: config) { return nil }
            return spool.directory
        }
        guard let local, let config = try? Repository.readConfig(backend: LocalBackend(path: local)) else { return nil }
        let cache = GlobalOptions.cacheDirectory(option: call.cacheDir, environment: environment)
        return RepoCommand.WalFetch.defaultSpool(cacheDirectory: cache, config: config)
    }
}
