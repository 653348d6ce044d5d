import ArgumentParser
import RepoRepository
import RepoSnapshot
import RepoOperations
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

        func run() throws {
            let base = String(path.split(separator: "/").last ?? "")
            guard let name = WALFileName(base) else {
                throw RepoError(.usage, "\(path): \(base) is not the name of a WAL file (a segment, .partial, .backup or .history file)",
                                hint: "use archive_command = 'repo wal-push %p'")
            }
            let bytes = try Self.read(path)
            let (backend, config, key) = try global.unlock()
            let started = Date()
            let outcome = try WALArchive(backend: backend, config: config, key: key).push(name: name, bytes: bytes)
            switch outcome {
            case .stored:
                if global.verbose { Console.line("archived \(name) (\(bytes.count) bytes) in \(Int(Date().timeIntervalSince(started) * 1000)) ms") }
            case .alreadyStored:
                if !global.quiet { Console.line("repo: \(name) was already archived with the same contents") }
            case .replacedDamaged:
                if !global.quiet { Console.line("repo: warning: the archived copy of \(name) was damaged and has been replaced") }
            }
        }

        /// The whole file, read with one `read` per call into an array of its size.
        static func read(_ path: String) throws -> [UInt8] {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw RepoError(.failure, "cannot open \(path): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw RepoError(.failure, "cannot stat \(path): \(String(cString: strerror(errno)))") }
            let size = Int(st.st_size)
            var failure: Int32 = 0
            let bytes = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buf, count in
                var done = 0
                while done < size {
                    let n = Glibc.read(fd, buf.baseAddress! + done, size - done)
                    if n < 0 { if errno == EINTR { continue }; failure = errno; break }
                    if n == 0 { break }
                    done += n
                }
                count = done
            }
            if failure != 0 { throw RepoError(.failure, "cannot read \(path): \(String(cString: strerror(failure)))") }
            guard bytes.count == size else {
                throw RepoError(.failure, "\(path) changed size while it was read (\(bytes.count) of \(size) bytes)",
                                hint: "PostgreSQL does not change a WAL file it hands to archive_command; check what else writes there")
            }
            return bytes
        }
    }
}
