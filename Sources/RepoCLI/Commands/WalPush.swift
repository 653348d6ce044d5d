import ArgumentParser
import RepoRepository
import RepoStorage
import RepoSnapshot
import RepoOperations
import RepoS3
import RepoPrimitives
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension RepoCommand {
    struct WalPush: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "wal-push",
            abstract: "Archive one WAL file: PostgreSQL's archive_command = 'repo wal-push %p'.",
            discussion: """
                Stores a WAL segment, .partial, .backup or .history file, encrypted, compressed and \
                bound to its name, durably before exiting 0 (FORMAT.md §27). A name already archived \
                with the same bytes exits 0; with different bytes it exits 1 and is never overwritten. \
                Segments are checked against the cluster the repository archives (its system \
                identifier, recorded at the first push or base backup). Takes no lock and opens no \
                catalog: give it a key file (--key-file) so it does not pay a password derivation per file.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Path of the WAL file (%p); its file name must be PostgreSQL's.")
        var path: String

        @Option(help: ArgumentHelp("zstd:N (1–19) or none for this file (default: zstd:1, none if the repository stores uncompressed). zstd:3 stores up to 11% less on very compressible WAL for 30% more CPU.", valueName: "C"))
        var compression: String?

        func run() throws {
            let file = try Self.open(path)
            let level = try Self.level(compression)
            let (backend, config, key) = try global.unlock()
            try Self.push(file, level: level, backend: backend, config: config, key: key,
                          cacheDirectory: global.cacheDirectory, quiet: global.quiet, verbose: global.verbose)
        }

        /// The WAL file at `path` (%p), mapped; its name checked first.
        static func open(_ path: String) throws -> (name: WALFileName, file: MappedFile) {
            let base = String(path.split(separator: "/").last ?? "")
            guard let name = WALFileName(base) else {
                throw RepoError(.usage, "\(path): \(base) is not the name of a WAL file (a segment, .partial, .backup or .history file)",
                                hint: "use archive_command = 'repo wal-push %p'")
            }
            do { return (name, try MappedFile(path: path)) } catch {
                throw RepoError(.failure, "\(error)", hint: "archive_command must pass %p, a path PostgreSQL's server can read")
            }
        }

        /// `--compression`: nil when not given (the archive's default), .some(nil) for none.
        static func level(_ compression: String?) throws -> Int32?? {
            guard let compression else { return nil }
            guard let parsed = RepositoryConfig.parseCompression(compression) else {
                throw RepoError(.usage, "--compression \(compression): expected zstd:N with N from 1 to 19, zstd, or none")
            }
            return parsed
        }

        /// Archives `file` (`WALArchive.push`) and reports it; `level` as `level(_:)` returns.
        static func push(_ file: (name: WALFileName, file: MappedFile), level: Int32??,
                         backend: StorageBackend, config: RepositoryConfig, key: MasterKey,
                         cacheDirectory: String, quiet: Bool, verbose: Bool) throws {
            let (name, file) = file
            let started = Date()
            var archive = WALArchive(backend: backend, config: config, key: key)
            if let level { archive.compressionLevel = level }
            // On S3, whether the server honours If-None-Match (asked once a day per host, FORMAT.md
            // §27.3); where it does not, each push looks its name up first.
            if let s3 = backend as? S3Backend {
                let dir = cacheDirectory + "/" + config.id.hex
                try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                // A probe that fails (a policy refusing the PUT, say) must not fail the push: the
                // name is then looked up first, as for a server that ignores the header.
                do {
                    if try !s3.conditionalWritesHonoured(probing: RepositoryConfig.objectName, cacheFile: dir + "/s3-conditional-writes") {
                        archive.checkBeforeWriting = true
                        if !quiet {
                            Console.line("repo: warning: \(backend.location) ignores conditional writes (If-None-Match); wal-push looks each name up before writing it, which leaves a short window in which two hosts pushing the same name at once could replace each other's file")
                        }
                    }
                } catch {
                    archive.checkBeforeWriting = true
                    if !quiet {
                        Console.line("repo: warning: could not find out whether \(backend.location) honours conditional writes (\(error)); wal-push looks the name up before writing it")
                    }
                }
            }
            let outcome = try archive.push(name: name, bytes: file.bytes)
            switch outcome {
            case .stored:
                if verbose { Console.line("archived \(name) (\(file.count) bytes) in \(Int(Date().timeIntervalSince(started) * 1000)) ms") }
            case .alreadyStored:
                if !quiet { Console.line("repo: \(name) was already archived with the same contents") }
            case .replacedDamaged:
                if !quiet { Console.line("repo: warning: the archived copy of \(name) was damaged and has been replaced") }
            }
        }
    }
}
