import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import Foundation

extension RepoCommand {
    struct Store: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store one stream (standard input, or the output of CMD), or several named streams, as a snapshot.",
            discussion: """
                Examples:
                  pg_dump mydb | repo store --name mydb.sql
                  repo store --name mydb.sql -- pg_dump mydb
                  repo store --name nightly --stream users.sql='pg_dump -t users db' --stream orders.sql='pg_dump -t orders db'
                With `-- CMD ARG…`, a command that exits non-zero commits no snapshot. Each \
                --stream COMMAND runs with /bin/sh -c, all at once; if any fails, none is \
                committed and the message names the failing stream. Prints the new snapshot's id.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: "Name of the stream (e.g. mydb.sql; a file name: not empty, . or .., no / or control characters, at most 255 bytes); with --stream, the snapshot's name (default: the stream names joined by commas).")
        var name: String?

        @Option(name: .customLong("stream"), help: ArgumentHelp("A named stream from a shell command (repeatable; run concurrently). NAME is a file name, as for --name with one stream.", valueName: "NAME=COMMAND"))
        var streams: [String] = []

        @Option(name: .customLong("tag"), help: "Tag for the snapshot (repeatable; no commas or control characters, at most 255 bytes).")
        var tags: [String] = []

        @Option(help: "Host to record (default: this machine's hostname).")
        var host: String?

        @Option(help: ArgumentHelp(TimeInput.help("Time to file the snapshot under (default: now)."), valueName: "TIME"))
        var time: String?

        @OptionGroup var timeZone: TimeZoneOption

        @Argument(parsing: .postTerminator, help: ArgumentHelp("Command whose standard output is stored.", valueName: "CMD"))
        var command: [String] = []

        /// `--stream` values split into (name, command).
        var parsedStreams: [(name: String, command: String)] {
            streams.map { s in
                let i = s.firstIndex(of: "=")!
                return (String(s[..<i]), String(s[s.index(after: i)...]))
            }
        }

        func validate() throws {
            // One stream: --name is the stream's name, a file name at restore. With --stream,
            // it names the snapshot and each NAME of NAME=COMMAND is a stream's.
            try LabelInput.check(name, kind: streams.isEmpty ? .streamName : .snapshotName, flag: "--name")
            try LabelInput.check(tags, kind: .tag, flag: "--tag")
            try LabelInput.check(host, kind: .host, flag: "--host")
            try TimeInput.check(time, flag: "--time", zone: try timeZone.zone())
            if streams.isEmpty {
                if name == nil { throw ValidationError("give the stream a name with --name (e.g. --name mydb.sql)") }
                if command.isEmpty && isatty(0) != 0 {
                    throw ValidationError("standard input is a terminal: pipe a stream in (`pg_dump db | repo store --name db.sql`) or give the command after `--`")
                }
                return
            }
            if !command.isEmpty { throw ValidationError("use either --stream NAME=COMMAND or `-- CMD`, not both") }
            var seen = Set<String>()
            for s in streams {
                guard let i = s.firstIndex(of: "="), i != s.startIndex, s.index(after: i) != s.endIndex else {
                    throw ValidationError("--stream takes NAME=COMMAND, e.g. --stream users.sql='pg_dump -t users db'; got \"\(s)\"")
                }
                let n = String(s[..<i])
                try LabelInput.check(n, kind: .streamName, flag: "--stream")
                guard seen.insert(n).inserted else { throw ValidationError("stream name \(n) is given twice") }
            }
        }

        func run() throws {
            let snapshotName = name ?? parsedStreams.map(\.name).joined(separator: ",")
            let repo = try global.open()
            let lock = try global.lock(repo, command: "store --name \(snapshotName)")
            defer { lock?.release() }
            SignalTrap.stopCooperatively()

            let cancellation = SignalTrap.cancellation
            var children: [Process] = []
            var inputs: [StreamStore.Input] = []
            if !streams.isEmpty {
                for (streamName, cmd) in parsedStreams {
                    let p = try Self.start(["/bin/sh", "-c", cmd], display: cmd, stream: streamName)
                    children.append(p.process)
                    let process = p.process
                    inputs.append(StreamStore.Input(name: streamName, fd: p.fd, finished: {
                        try Self.checkExit(process, display: cmd, stream: streamName, cancellation: cancellation)
                    }, abort: { Self.stop(process) }))
                }
            } else if !command.isEmpty {
                let cmdText = command.joined(separator: " ")
                let p = try Self.start(["/usr/bin/env"] + command, display: cmdText, stream: nil)
                children.append(p.process)
                let process = p.process
                inputs.append(StreamStore.Input(name: snapshotName, fd: p.fd, finished: {
                    try Self.checkExit(process, display: cmdText, stream: nil, cancellation: cancellation)
                }))
            } else {
                inputs.append(StreamStore.Input(name: snapshotName, fd: 0))
            }
            let running = children
            SignalTrap.onStop { _ in for p in running { Self.stop(p) } }

            var op = StreamStore(repository: repo, name: snapshotName, tags: tags, host: host ?? HostInfo.hostname,
                                 time: try time.map { try TimeInput.parse($0, flag: "--time", zone: try timeZone.zone()) } ?? Date())
            let line = global.progressLine("stored")
            if let line { op.progress = { line.update($0) } }
            op.cancellation = cancellation
            let result: StreamStore.Result
            do {
                result = try op.run(inputs: inputs)
            } catch {
                line?.finish()
                for p in children { Self.stop(p) }
                // `repo` is about to exit, which would cancel the delayed SIGKILL: wait for the
                // groups here, and kill what ignored SIGTERM.
                Self.reap(children)
                throw error
            }
            line?.finish()
            let s = result.snapshot.stats
            CommandMetrics.shared.snapshotWritten(result.snapshot, date: Timestamp.parse(result.snapshot.time) ?? Date())
            if global.json {
                try Console.printJSON(StoreOutput(id: result.snapshotID.hex, shortID: result.snapshotID.shortHex,
                                                  name: snapshotName, bytes: s.totalBytes, sha256: result.sha256.hex,
                                                  chunks: s.chunks, newChunks: result.newChunks,
                                                  newBlobs: s.newBlobs, newBytes: s.newBytes,
                                                  packs: result.session.packs, seconds: s.seconds,
                                                  streams: result.streams.count > 1 || !streams.isEmpty
                                                    ? result.streams.map { StreamOutput(name: $0.name, bytes: $0.size, sha256: $0.sha256.hex, chunks: $0.chunks, newChunks: $0.newChunks) }
                                                    : nil))
            } else {
                print(result.snapshotID.hex)
                if global.verbose || (Console.stderrIsTerminal && !global.quiet) {
                    Console.line("stored \(Format.bytes(s.totalBytes)) in \(String(format: "%.1f", s.seconds)) s (\(Format.rate(s.totalBytes, s.seconds))): \(s.chunks) chunks, \(result.newChunks) new, \(Format.bytes(s.newBytes)) added")
                }
            }
        }

        /// Starts a producer with its standard output on a pipe.
        static func start(_ argv: [String], display: String, stream: String?) throws -> (process: Process, fd: Int32) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: argv[0])
            p.arguments = Array(argv.dropFirst())
            let pipe = Pipe()
            p.standardOutput = pipe
            do { try p.run() } catch {
                throw RepoError(.failure, "\(stream.map { "stream \($0): " } ?? "")cannot start `\(display)`: \(error.localizedDescription)")
            }
            try? pipe.fileHandleForWriting.close()
            return (p, pipe.fileHandleForReading.fileDescriptor)
        }

        /// Stops a producer and everything it started: the producer leads its own process group
        /// (Foundation's `Process` starts it so), and a grandchild that holds the pipe open
        /// (`sh -c 'a & b'`) must not keep `repo` waiting. SIGTERM to the group, SIGKILL to what
        /// is left a second later.
        static func stop(_ p: Process) {
            let pid = p.processIdentifier
            guard pid > 0 else { return }
            if kill(-pid, SIGTERM) != 0 { kill(pid, SIGTERM) }
            DispatchQueue.global().asyncAfter(deadline: .now() + 1) { kill(-pid, SIGKILL) }
        }

        /// Waits up to a second for the producers' process groups to end after `stop`, then
        /// SIGKILLs whatever is left (a command that ignores SIGTERM must not outlive `repo`).
        static func reap(_ processes: [Process]) {
            let groups = processes.map(\.processIdentifier).filter { $0 > 0 }
            let deadline = Date().addingTimeInterval(1)
            // A group whose only member is a zombie (the leader, until Foundation reaps it) is done.
            while Date() < deadline, groups.contains(where: { kill(-$0, 0) == 0 && groupHasLivingMembers($0) }) { usleep(20_000) }
            for pid in groups where kill(-pid, 0) == 0 { kill(-pid, SIGKILL) }
        }

        /// Whether any process of group `pgid` other than a zombie exists (from /proc).
        static func groupHasLivingMembers(_ pgid: Int32) -> Bool {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return true }
            for e in entries where e.first?.isNumber == true {
                guard let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { continue }
                // Fields after "comm)": state, ppid, pgrp, …
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 2, Int32(fields[2]) == pgid, fields[0] != "Z" { return true }
            }
            return false
        }

        /// Waits for a producer and turns a failure into an error naming it.
        static func checkExit(_ p: Process, display: String, stream: String?, cancellation: Cancellation) throws {
            p.waitUntilExit()
            if let sig = cancellation.requestedBy {
                throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
            }
            let who = stream.map { "stream \($0): `\(display)`" } ?? "`\(display)`"
            if p.terminationReason == .uncaughtSignal {
                throw RepoError(.failure, "\(who) was killed by signal \(p.terminationStatus): no snapshot was saved",
                                hint: "the data read so far is kept and will be reused by the next store")
            }
            if p.terminationStatus != 0 {
                throw RepoError(.failure, "\(who) exited with status \(p.terminationStatus): no snapshot was saved",
                                hint: "fix the command and run the store again; data already uploaded will be reused")
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
    var streams: [StreamOutput]?

    enum CodingKeys: String, CodingKey {
        case id, shortID = "short_id", name, bytes, sha256, chunks, newChunks = "new_chunks", newBlobs = "new_blobs"
        case newBytes = "new_bytes", packs, seconds, streams
    }

    /// Every key, `streams` as `null` for a single stream.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(shortID, forKey: .shortID); try c.encode(name, forKey: .name)
        try c.encode(bytes, forKey: .bytes); try c.encode(sha256, forKey: .sha256); try c.encode(chunks, forKey: .chunks)
        try c.encode(newChunks, forKey: .newChunks); try c.encode(newBlobs, forKey: .newBlobs)
        try c.encode(newBytes, forKey: .newBytes); try c.encode(packs, forKey: .packs); try c.encode(seconds, forKey: .seconds)
        try c.encode(streams, forKey: .streams)
    }
}

struct StreamOutput: Encodable {
    var name: String
    var bytes: Int
    var sha256: String
    var chunks: Int
    var newChunks: Int

    enum CodingKeys: String, CodingKey { case name, bytes, sha256, chunks, newChunks = "new_chunks" }
}
