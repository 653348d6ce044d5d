import ArgumentParser
import RepoRepository
import RepoSnapshot
import RepoOperations
import RepoStorage
import RepoLaunch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension RepoCommand {
    struct WalFetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "wal-fetch",
            abstract: "Restore one archived WAL file: PostgreSQL's restore_command = 'repo wal-fetch %f %p'.",
            discussion: """
                Writes the verified file to DEST (through a temporary name, so DEST is whole or absent). \
                Exits 1 quietly when NAME is not archived (PostgreSQL asks for files that do not \
                exist, such as the next timeline's history). Any other failure (no repository, wrong \
                key, damaged object) exits 126, which makes PostgreSQL stop recovery instead of \
                taking the failure for the end of the archive and finishing early. After each fetch \
                a detached prefetcher brings the next --prefetch segments of the timeline into a \
                local spool, so replay does not wait for the repository (FORMAT.md §27.6).
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "WAL file name (%f).")
        var name: String

        @Argument(help: "Where to write it (%p).")
        var destination: String

        @Option(help: "Segments to fetch ahead into the spool (0: no prefetching).")
        var prefetch = Self.defaultPrefetch

        static let defaultPrefetch = WALFetchFastPath.defaultPrefetch

        @Option(help: ArgumentHelp("Spool directory for prefetched segments (env REPO_WAL_SPOOL; default: in the cache directory).", valueName: "DIR"))
        var spool: String?

        @Flag(help: .hidden)
        var prefetchWorker = false

        /// The prefetcher's nice value (`setpriority(2)`): background work beside replay.
        static let prefetcherNice: Int32 = 10

        /// PostgreSQL aborts recovery when restore_command exits above 125 (PostgreSQL
        /// documentation, "Recovering Using a Continuous Archive Backup").
        static let abortRecovery: Int32 = 126

        func run() throws {
            // PostgreSQL passes only WAL file names as %f; another NAME means a restore_command
            // written wrong (%p and %f swapped, say). Exit 1 would read as the end of the
            // archive and let recovery finish early, at whatever pg_wal holds: stop it instead.
            guard let wal = WALFileName(name) else {
                Console.error(RepoError(.usage, "\(name) is not the name of a WAL file (a segment, .partial, .backup or .history file)",
                                        hint: "use restore_command = 'repo wal-fetch %f %p' (the name first, then the destination)"))
                throw ExitCode(Self.abortRecovery)
            }
            // DEST as PostgreSQL passes it (pg_wal/RECOVERYXLOG) is UTF-8; another path would
            // reach us with its bytes replaced (CommandLine.arguments) and name another file:
            // stop recovery rather than write the segment where the server will not look.
            guard RawArguments.bytes(of: destination) == Array(destination.utf8) else {
                Console.error(RepoError(.usage, "the destination \(destination) is not UTF-8; wal-fetch writes only to UTF-8 paths"))
                throw ExitCode(Self.abortRecovery)
            }
            do {
                try fetch(wal)
            } catch let error as ExitCode {
                throw error
            } catch let error as RepoError {
                Console.error(error)
                throw ExitCode(Self.abortRecovery)
            } catch {
                Console.error(RepoError(.failure, "cannot fetch \(name): \(error)"))
                throw ExitCode(Self.abortRecovery)
            }
        }

        private func fetch(_ wal: WALFileName) throws {
            let backend = try global.backend()
            let config = try Repository.readConfig(backend: backend)
            let named = (spool ?? ProcessInfo.processInfo.environment["REPO_WAL_SPOOL"]).flatMap { $0.isEmpty ? nil : $0 }
            let spoolDirectory = named.map { WALSpool.directory(under: $0, location: global.locationText ?? "") }
                ?? Self.defaultSpool(cacheDirectory: global.cacheDirectory, config: config)
            let walSpool = WALSpool(directory: spoolDirectory)
            // The spool must hold this repository's WAL (a new repository at the same location
            // empties it); one that cannot be made so is not used: each segment then comes
            // from the repository, one process at a time (said with -v only, like the
            // prefetcher's own failures: PostgreSQL logs restore_command's stderr every call).
            let spoolUsable: Bool
            do { try walSpool.adopt(repository: config.id.hex); spoolUsable = true } catch {
                if global.verbose { Console.line("repo: warning: not using the WAL prefetch spool \(spoolDirectory): \(error)") }
                spoolUsable = false
            }
            if prefetchWorker {
                guard spoolUsable else { return }
                // Replay is the critical path and runs on one core (PostgreSQL's startup
                // process); the prefetcher only has to stay ahead of it. Niced, it gives way
                // when they share a core, and from a local repository it uses the cores replay
                // leaves free (1 of 2), not all of them: each segment costs it about 20 ms of CPU
                // against about 90 ms of replay on the 2-core test machine (FORMAT.md §27.6).
                // Fetches from S3 wait on the network more than they compute: 4 at a time there.
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Self.prefetcherNice)
                let workers = backend is LocalBackend ? max(1, min(4, ProcessInfo.processInfo.activeProcessorCount - 1)) : 4
                let (_, key) = try Repository.unlock(backend: backend, credential: try global.credential())
                _ = try walSpool.fill(after: wal, archive: WALArchive(backend: backend, config: config, key: key),
                                      repository: config.id.hex, depth: prefetch, workers: workers)
                return
            }
            if spoolUsable, walSpool.take(wal, to: destination) {
                if global.verbose { Console.line("restored \(wal) from the prefetch spool") }
                Self.startPrefetcher(after: wal, spool: walSpool, depth: prefetch, verbose: global.verbose)
                return
            }
            let (_, key) = try Repository.unlock(backend: backend, credential: try global.credential())
            guard let bytes = try WALArchive(backend: backend, config: config, key: key).fetch(wal) else {
                if global.verbose { Console.line("repo: \(wal) is not archived") }
                throw ExitCode(1)
            }
            do { try WALSpool.write(bytes, to: destination) } catch {
                throw RepoError(.failure, "cannot write \(destination): \(error)")
            }
            if global.verbose { Console.line("restored \(wal) (\(bytes.count) bytes)") }
            guard spoolUsable else { return }
            Self.startPrefetcher(after: wal, spool: walSpool, depth: prefetch, verbose: global.verbose)
        }

        /// The spool when neither `--spool` nor REPO_WAL_SPOOL names one.
        static func defaultSpool(cacheDirectory: String, config: RepositoryConfig) -> String {
            WALSpoolLayout.defaultDirectory(cacheDirectory: cacheDirectory, repository: config.id.hex)
        }

        /// Starts `repo-core wal-fetch … --prefetch-worker` detached with this command's
        /// arguments and environment when the spool runs low (`WALFetchFastPath.startPrefetcher`).
        static func startPrefetcher(after wal: WALFileName, spool: WALSpool, depth prefetch: Int, verbose: Bool) {
            guard wal.kind == .segment else { return }
            WALFetchFastPath.startPrefetcher(Launcher.executablePath() ?? CommandLine.arguments[0], after: wal.text,
                                             spool: spool.directory, depth: prefetch, verbose: verbose)
        }
    }
}
