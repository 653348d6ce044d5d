import RepoS3
import ArgumentParser
import RepoRepository
import Foundation
import CRepoPosix
import RepoLaunch

/// The root command: `repo`.
struct RepoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repo",
        abstract: "A content-addressed, deduplicating, encrypted backup repository.",
        discussion: """
            Exit codes: 0 success, 1 error, 2 usage, 3 some input unreadable, 10 no repository, \
            11 repository locked, 12 wrong password or key file, or the KMS refused, 13 integrity errors, \
            130/143/129 interrupted.
            """,
        version: "repo \(RepoOperationsVersion.string)",
        subcommands: [Init.self, Store.self, Backup.self, Snapshots.self, Ls.self, Dump.self, Restore.self, Diff.self,
                      Mount.self, Forget.self, Prune.self, Pin.self, Unpin.self, Policy.self,
                      Check.self, Stats.self, Unlock.self, Key.self, WalPush.self, WalFetch.self,
                      PgBackup.self, PgRestore.self, PgStatus.self, Copy.self, Status.self, Drill.self]
    )
}

/// Entry point for `repo-core`, which the `repo` launcher execs (RepoLaunch): parses, runs,
/// maps errors to exit codes.
public enum RepoMain {
    /// The command line parsed. `wal-push` and `wal-fetch`, which PostgreSQL starts once per
    /// WAL file, are parsed on their own: building the whole command tree costs the Swift
    /// runtime a few milliseconds of protocol-conformance lookups per process. Help, version
    /// and anything that does not parse take the usual path, so their output is the same.
    static func parse() throws -> ParsableCommand {
        let args = Array(CommandLine.arguments.dropFirst())
        let fast: [String: ParsableCommand.Type] = ["wal-push": RepoCommand.WalPush.self, "wal-fetch": RepoCommand.WalFetch.self]
        if let first = args.first, let command = fast[first],
           !args.contains(where: { ["-h", "--help", "--version", "help"].contains($0) }) {
            if let parsed = try? command.parseAsRoot(Array(args.dropFirst())) { return parsed }
        }
        return try RepoCommand.parseAsRoot()
    }

    public static func main() -> Never {
        // Run directly, not through the launcher, repo-core reserves them itself.
        StandardError.reserveStandardDescriptors()
        // Blocks of 256 KiB and more (chunks, compressed blobs, pack buffers) get mappings of
        // their own and go back to the system when freed. Left alone, glibc raises its threshold
        // once the 32 MiB scrypt buffer is freed, and 1 MiB chunks then churn through per-thread
        // heaps that keep their peak: 106 MB peak RSS storing 300 MB, 79 MB with this, same CPU.
        _ = crepo_set_mmap_threshold(256 * 1024)
        // A reader that closes the pipe (`repo ls latest | head`) makes writes fail with EPIPE,
        // which ends the command quietly with its lock released (see `SignalTrap`).
        signal(SIGPIPE, SIG_IGN)
        // `-v`: how many S3 requests the command made, however it ends (README, "S3").
        if CommandLine.arguments.dropFirst().contains(where: { $0 == "-v" || $0 == "--verbose" }) {
            atexit {
                if RequestCounters.process.total > 0 { Console.line("repo: S3: \(RequestCounters.process.summary)") }
            }
        }
        // `--metrics-file`: written as the command ends, whichever way (`finish`).
        func finish(_ code: Int32, _ error: RepoError? = nil) -> Never {
            CommandMetrics.shared.finish(exitCode: code)
            fflush(nil)
            CommandNotification.shared.finish(exitCode: code, error: error)
            exit(code)
        }
        // PostgreSQL's archive_command and restore_command, once per WAL file: without the
        // argument parser where the command line allows (FastCommandLine).
        // Only a command line that is UTF-8 throughout: `CommandLine.arguments` replaces
        // other bytes, and a path changed that way names another file.
        if CommandLine.arguments.count > 1, Launcher.utf8Arguments() != nil {
            let rest = Array(CommandLine.arguments.dropFirst(2)), env = FastCommandLine.processEnvironment
            switch CommandLine.arguments[1] {
            case "wal-fetch":
                let me = Launcher.executablePath() ?? CommandLine.arguments[0]
                if let code = WALFetchFastPath.run(rest, environment: env, prefetcher: me) { exit(code) }
            case "wal-push": if let code = WALPushFastPath.run(rest, environment: env) { exit(code) }
            default: break
            }
        }
        do {
            var command = try parse()
            let metrics = CommandMetrics.configuration(of: command)
            CommandMetrics.shared.begin(command: metrics.name, file: metrics.file)
            CommandNotification.arm(for: command)
            try command.run()
            // Output that could not be written (a full disk, an I/O error) means the command
            // did not do all of it: `repo snapshots --json > f` must not exit 0 with f empty.
            if crepo_flush_stdout() != 0 {
                let code = errno
                if code == EPIPE { finish(0) }   // the reader closed the pipe: see above
                Console.error(RepoError(.failure, "cannot write to standard output: \(String(cString: strerror(code)))",
                                        hint: "check where the output goes (a full disk?) and run the command again"))
                finish(1)
            }
            fflush(nil)
            finish(0)
        } catch let error as RepoError where error.kind == .outputClosed {
            // What the reader asked for (`| head`): no message, success, like git and restic.
            finish(0)
        } catch let error as RepoError {
            finish(report(error), error)
        } catch let error as ExitCode {
            finish(report(error))
        } catch where !String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            finish(report(error), RepoError(.failure, String(describing: error)))
        } catch {
            fflush(nil)
            let code = RepoCommand.exitCode(for: error)
            let message = RepoCommand.fullMessage(for: error)
            if code == .success {
                print(message)
                fflush(nil)
                exit(0)
            }
            Console.line(message)
            // A command line that did not parse still reports to the monitor, if it named a file.
            let raw = CommandMetrics.configuration(arguments: Array(CommandLine.arguments.dropFirst()))
            CommandMetrics.shared.begin(command: raw.name, file: raw.file)
            CommandNotification.arm(arguments: Array(CommandLine.arguments.dropFirst()))
            // ArgumentParser reports usage errors as EX_USAGE (64); the contract says 2.
            finish(code == .validationFailure ? 2 : code.rawValue, RepoError(.usage, message))
        }
    }

    /// Prints a command's failure and returns its exit status: a `RepoError` with its hint and
    /// kind's code, an `ExitCode` as it is, anything else (storage, decoding…) as a failure, 1.
    static func report(_ error: Error) -> Int32 {
        fflush(nil)
        switch error {
        case let error as RepoError where error.kind == .outputClosed:
            return 0
        case let error as RepoError:
            Console.error(error)
            return exitCode(error.kind)
        case let error as ExitCode:
            return error.rawValue
        default:
            Console.error(RepoError(.failure, String(describing: error)))
            return 1
        }
    }

    static func exitCode(_ kind: RepoError.Kind) -> Int32 {
        switch kind {
        case .failure: 1
        case .usage: 2
        case .partial: 3
        case .noRepository: 10
        case .locked: 11
        case .wrongPassword, .keyService: 12
        case .integrity: 13
        case .interrupted(let sig): 128 + sig
        case .outputClosed: 0
        }
    }
}

enum RepoOperationsVersion {
    static let string = "0.1.0"
}
