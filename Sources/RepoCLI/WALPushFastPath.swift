import RepoRepository
import RepoStorage
import Foundation
import RepoLaunch

/// `wal-push` of a local repository opened with a key file, without the argument parser
/// (`FastCommandLine`): PostgreSQL starts `archive_command` once per WAL file, and the parser
/// costs 3–4 ms of a push that takes 60–80 ms (README, "Speed against pgBackRest").
///
/// Handles `wal-push [--repo DIR] [--key-file FILE] [--compression C] [--cache-dir DIR] [-q|-v]
/// PATH` where a key file opens the repository (`--key-file`, or REPO_KEY_FILE as
/// `GlobalOptions.credential` takes it); anything else — a password, KMS, S3, another option —
/// returns nil and `WalPush` runs as usual. What it does and reports is `WalPush.push`, and a
/// failure is reported as `RepoMain` reports a `RepoError`. `WALFetchFastPathTests` checks it
/// reads what the parser reads.
enum WALPushFastPath {
    struct Invocation: Equatable {
        var repository: String?
        var keyFile: String?
        var compression: String?
        var cacheDir: String?
        var quiet = false
        var verbose = false
        var path = ""
    }

    /// `arguments` after `wal-push`; nil outside the subset.
    static func parse(_ arguments: [String]) -> Invocation? {
        guard let line = FastCommandLine(arguments, options: ["--repo", "--key-file", "--compression", "--cache-dir"],
                                         flags: ["-q", "--quiet", "-v", "--verbose"], operands: 1),
              let verbose = line.verbose else { return nil }
        return Invocation(repository: line.value("--repo"), keyFile: line.value("--key-file"),
                          compression: line.value("--compression"), cacheDir: line.value("--cache-dir"),
                          quiet: line.quiet, verbose: verbose, path: line.operands[0])
    }

    /// The exit status, or nil to run the command through the parser.
    static func run(_ arguments: [String], environment: FastCommandLine.Environment) -> Int32? {
        guard let call = parse(arguments),
              let location = FastCommandLine.localRepository(option: call.repository, environment: environment),
              let keyFile = call.keyFile ?? environment("REPO_KEY_FILE").flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        do {
            let file = try RepoCommand.WalPush.open(call.path)
            let level = try RepoCommand.WalPush.level(call.compression)
            let backend = LocalBackend(path: location)
            let (config, key) = try Repository.unlock(backend: backend, credential: .keyFile(try KeyFile.read(path: keyFile)))
            try RepoCommand.WalPush.push(file, level: level, backend: backend, config: config, key: key,
                                         cacheDirectory: GlobalOptions.cacheDirectory(option: call.cacheDir, environment: environment),
                                         quiet: call.quiet, verbose: call.verbose)
            return 0
        } catch {
            return RepoMain.report(error)
        }
    }
}
