import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import Foundation

extension RepoCommand {
    struct Store: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store one stream (standard input, or the output of CMD) as a snapshot.",
            discussion: """
                Examples:
                  pg_dump mydb | repo store --name mydb.sql
                  repo store --name mydb.sql -- pg_dump mydb
                With `-- CMD ARG…`, a command that exits non-zero commits no snapshot. \
                Prints the new snapshot's id.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: "Name of the stream (e.g. mydb.sql).")
        var name: String

        @Option(name: .customLong("tag"), help: "Tag for the snapshot (repeatable).")
        var tags: [String] = []

        @Option(help: "Host to record (default: this machine's hostname).")
        var host: String?

        @Option(help: ArgumentHelp("Time to file the snapshot under (ISO 8601 / RFC 3339; default now).", valueName: "ISO8601"))
        var time: String?

        @Argument(parsing: .postTerminator, help: ArgumentHelp("Command whose standard output is stored.", valueName: "CMD"))
        var command: [String] = []

        func validate() throws {
            if name.isEmpty || name.contains("\0") { throw ValidationError("--name must be a non-empty name") }
            if let time, Timestamp.parse(time) == nil { throw ValidationError("--time: \"\(time)\" is not an ISO 8601 time") }
            if command.isEmpty && isatty(0) != 0 {
                throw ValidationError("standard input is a terminal: pipe a stream in (`pg_dump db | repo store --name db.sql`) or give the command after `--`")
            }
        }

        func run() throws {
            let repo = try global.open()
            let lock = try repo.lock(exclusive: false, command: "store --name \(name)")
            defer { lock.release() }

            let cancellation = Cancellation()
            var child: Process?
            var input: Int32 = 0
            if !command.isEmpty {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.arguments = command
                let pipe = Pipe()
                p.standardOutput = pipe
                do { try p.run() } catch {
                    throw RepoError(.failure, "cannot start `\(command.joined(separator: " "))`: \(error.localizedDescription)")
                }
                try? pipe.fileHandleForWriting.close()
                input = pipe.fileHandleForReading.fileDescriptor
                child = p
            }
            let running = child
            SignalTrap.install(cancellation) { _ in running?.terminate() }

            var op = StreamStore(repository: repo, name: name, tags: tags, host: host ?? HostInfo.hostname,
                                 time: time.flatMap(Timestamp.parse) ?? Date())
            let line = global.progressLine("stored")
            if let line { op.progress = { line.update($0) } }
            op.cancellation = cancellation
            let cmdText = command.joined(separator: " ")
            let result: StreamStore.Result
            do {
                result = try op.run(input: input) {
                    guard let p = child else { return }
                    p.waitUntilExit()
                    if let sig = cancellation.requestedBy {
                        throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
                    }
                    if p.terminationReason == .uncaughtSignal {
                        throw RepoError(.failure, "`\(cmdText)` was killed by signal \(p.terminationStatus): no snapshot was saved",
                                        hint: "the data read so far is kept and will be reused by the next store")
                    }
                    if p.terminationStatus != 0 {
                        throw RepoError(.failure, "`\(cmdText)` exited with status \(p.terminationStatus): no snapshot was saved",
                                        hint: "fix the command and run the store again; data already uploaded will be reused")
                    }
                }
            } catch {
                line?.finish()
                if let p = child, p.isRunning { p.terminate(); p.waitUntilExit() }
                throw error
            }
            line?.finish()
            let s = result.snapshot.stats
            if global.json {
                try Console.printJSON(StoreOutput(id: result.snapshotID.hex, shortID: result.snapshotID.shortHex,
                                                  name: name, bytes: s.totalBytes, sha256: result.sha256.hex,
                                                  chunks: s.chunks, newChunks: result.newChunks,
                                                  newBlobs: s.newBlobs, newBytes: s.newBytes,
                                                  packs: result.session.packs, seconds: s.seconds))
            } else {
                print(result.snapshotID.hex)
                if global.verbose || (Console.stderrIsTerminal && !global.quiet) {
                    Console.line("stored \(Format.bytes(s.totalBytes)) in \(String(format: "%.1f", s.seconds)) s (\(Format.rate(s.totalBytes, s.seconds))): \(s.chunks) chunks, \(result.newChunks) new, \(Format.bytes(s.newBytes)) added")
                }
            }
        }
    }
}

struct StoreOutput: Encodable {
    var id: String
    var shortID: String
    var name: String
    var bytes: Int
    var sha256: String
    var chunks: Int
    var newChunks: Int
    var newBlobs: Int
    var newBytes: Int
    var packs: Int
    var seconds: Double

    enum CodingKeys: String, CodingKey {
        case id, shortID = "short_id", name, bytes, sha256, chunks, newChunks = "new_chunks", newBlobs = "new_blobs"
        case newBytes = "new_bytes", packs, seconds
    }
}
