public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
public import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `repo store`: reads one or more streams, chunks them, saves new chunks through one
/// `WriteSession` on all cores, and commits a snapshot whose root tree has one file node per
/// stream recording its size and SHA-256.
///
/// Several streams (`--stream NAME=CMD`) are read concurrently, each by its own thread and
/// worker pool. If any input fails, the others are aborted and no snapshot is written.
///
/// Write ordering (FORMAT.md): packs, then the index segment, then the snapshot. When an input
/// fails or the operation is cancelled, the session's packs are still indexed (so a retry
/// reuses them) but no snapshot is written.
public struct StreamStore {
    public var repository: Repository
    /// The snapshot's name (the retention group); for one stream also the node's name.
    public var name: String
    public var tags: [String]
    public var host: String
    public var time: Date
    public var workers: Int = defaultWorkerCount
    public var progress: ProgressHandler?
    public var cancellation: Cancellation?

    public init(repository: Repository, name: String, tags: [String], host: String, time: Date) {
        self.repository = repository; self.name = name; self.tags = tags; self.host = host; self.time = time
    }

    /// One input stream.
    public struct Input: @unchecked Sendable {
        public var name: String
        public var fd: Int32
        /// Called once the input reached its end and its chunks are saved; throws if whatever
        /// produced it failed (e.g. the dump command exited non-zero).
        public var finished: () throws -> Void
        /// Stops the producer because another stream failed.
        public var abort: () -> Void

        public init(name: String, fd: Int32, finished: @escaping () throws -> Void = {}, abort: @escaping () -> Void = {}) {
            self.name = name; self.fd = fd; self.finished = finished; self.abort = abort
        }
    }

    /// What was stored of one stream.
    public struct StreamResult: Sendable {
        public var name: String
        public var size: Int
        public var sha256: Hash256
        public var chunks: Int
        public var newChunks: Int
        var content: Content
    }

    public struct Result: Sendable {
        public var snapshotID: Hash256
        public var snapshot: Snapshot
        public var streams: [StreamResult]
        public var session: WriteSession.SessionStats
        /// The first stream's digest and new data chunks of all streams.
        public var sha256: Hash256 { streams[0].sha256 }
        public var newChunks: Int { streams.reduce(0) { $0 + $1.newChunks } }
    }

    /// Reads `fd` to its end and stores it as the single stream `name`.
    /// - Parameter beforeCommit: called after the input ended and every chunk is saved, before
    ///   the snapshot is written; throw to abandon the snapshot (e.g. the dump command failed).
    public func run(input fd: Int32, beforeCommit: @escaping () throws -> Void = {}) throws -> Result {
        try run(inputs: [Input(name: name, fd: fd, finished: beforeCommit)])
    }

    /// Reads every input to its end, concurrently, and stores them as one snapshot.
    public func run(inputs: [Input]) throws -> Result {
        precondition(!inputs.isEmpty, "StreamStore needs at least one input")
        let started = Date()
        let session = try WriteSession(repository: repository)
        let totals = Mutex<[Int]>([Int](repeating: 0, count: inputs.count))
        let progress = self.progress
        let report: @Sendable (Int, Int) -> Void = { index, bytes in
            let sum = totals.withLock { t -> Int in t[index] = bytes; return t.reduce(0, +) }
            progress?(ProgressReport(bytes: sum, newBytes: session.stats.newStoredBytes))
        }
        var results = [Swift.Result<StreamResult, Error>?](repeating: nil, count: inputs.count)
        if inputs.count == 1 {
            results[0] = Swift.Result { try ingest(inputs[0], session: session) { report(0, $0) } }
        } else {
            let slots = ResultSlots<Swift.Result<StreamResult, Error>>(inputs.count)
            let firstFailure = Mutex<Int?>(nil)
            let group = DispatchGroup()
            for (i, input) in inputs.enumerated() {
                group.enter()
                nonisolated(unsafe) let me = self
                let t = Thread {
                    defer { group.leave() }
                    let r = Swift.Result { try me.ingest(input, session: session) { report(i, $0) } }
                    if case .failure = r {
                        let first = firstFailure.withLock { f -> Bool in
                            if f == nil { f = i; return true }
                            return false
                        }
                        if first { for (j, other) in inputs.enumerated() where j != i { other.abort() } }
                    }
                    slots.lock.lock(); slots.values[i] = r; slots.lock.unlock()
                }
                t.stackSize = 1 << 20
                t.start()
            }
            group.wait()
            results = slots.values
            if let f = firstFailure.withLock({ $0 }), case .failure(let e) = results[f]! {
                _ = try? session.finish()
                let others = inputs.count - 1
                if var re = e as? RepoError, others > 0 {
                    re.message += others == 1 ? " (the other stream was stopped)" : " (the other \(others) streams were stopped)"
                    throw re
                }
                throw e
            }
        }
        var streams: [StreamResult] = []
        for r in results {
            switch r! {
            case .success(let s): streams.append(s)
            case .failure(let e):
                _ = try? session.finish()
                throw e
            }
        }
        if let sig = cancellation?.requestedBy {
            _ = try? session.finish()
            throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
        }
        let nodes = streams.map { s in
            Node(name: s.name, type: .file, size: s.size, sha256: s.sha256, mode: 0o644,
                 mtime: Timestamp.format(time), content: s.content)
        }
        let tree: Saved
        do {
            tree = Saved(id: try session.save(try Tree(nodes: nodes).encoded(), type: .tree, context: session.makeContext()).id)
        } catch {
            _ = try? session.finish()
            throw error
        }
        try session.finish()
        let stats = session.stats
        let snapshot = Snapshot(time: Timestamp.format(time), host: host, username: HostInfo.username, name: name,
                                paths: nil, tags: tags, tree: tree.id,
                                stats: .init(totalBytes: streams.reduce(0) { $0 + $1.size },
                                             chunks: streams.reduce(0) { $0 + $1.chunks }, newBlobs: stats.newBlobs,
                                             newBytes: stats.newStoredBytes, seconds: Date().timeIntervalSince(started)),
                                program: "repo " + repoVersion)
        let id = try repository.saveObject(try snapshot.encoded(), kind: .snapshot)
        return Result(snapshotID: id, snapshot: snapshot, streams: streams, session: stats)
    }

    private struct Saved { var id: BlobID }

    /// A batch ends at this many chunks or bytes: enough to keep the sixteen hashing lanes busy
    /// while chunk lengths differ, small enough to keep memory flat (2 workers: 3 batches).
    static let batchChunks = 24
    static let batchBytes = 6 << 20

    /// Reads one input to its end through its own worker pool; calls `input.finished` at the end.
    private func ingest(_ input: Input, session: WriteSession, progress: (Int) -> Void) throws -> StreamResult {
        let contexts = (0..<max(1, workers)).map { _ in session.makeContext() }
        // Work items are batches of chunks, so blob ids are computed sixteen at a time.
        let pool = OrderedWorkPool<[[UInt8]], [(ChunkRef, Bool)]>(threads: contexts.count) { batch, i in
            let ids = session.blobIDs(of: batch, context: contexts[i])
            return try zip(batch, ids).map { chunk, id in
                let saved = try session.save(chunk, id: id, type: .data, context: contexts[i])
                return (ChunkRef(id: saved.id, size: chunk.count), saved.isNew)
            }
        }
        defer { pool.close() }
        let metaContext = session.makeContext()
        var builder = ContentBuilder { list in
            try session.save(ContentList.encode(list), type: .tree, context: metaContext).id
        }
        let digest = StreamDigest()
        let window = contexts.count + 1   // batches in flight
        var total = 0
        var newChunks = 0

        func drain(until limit: Int) throws {
            while pool.inFlight > limit, let results = try pool.next() {
                for (ref, isNew) in results {
                    try builder.append(ref)
                    if isNew { newChunks += 1 }
                }
            }
        }

        do {
            var reader = ChunkReader(fd: input.fd, chunker: repository.chunker, cancellation: cancellation)
            var batch: [[UInt8]] = []
            var batchBytes = 0
            func submit() throws {
                guard !batch.isEmpty else { return }
                try drain(until: window - 1)
                pool.submit(batch)
                batch = []
                batchBytes = 0
            }
            while let chunk = try reader.next() {
                digest.update(chunk)
                total += chunk.count
                batch.append(chunk)
                batchBytes += chunk.count
                if batch.count == StreamStore.batchChunks || batchBytes >= StreamStore.batchBytes { try submit() }
                progress(total)
            }
            try submit()
            try drain(until: 0)
        } catch {
            // Let in-flight saves finish before the caller indexes what reached the repository.
            while pool.inFlight > 0 { _ = try? pool.next() }
            digest.cancel()
            throw error
        }
        let sha256 = digest.finalize()
        let content = try builder.finish()
        try input.finished()
        return StreamResult(name: input.name, size: total, sha256: sha256, chunks: builder.chunkCount,
                            newChunks: newChunks, content: content)
    }
}

/// The version string written into snapshots.
public let repoVersion = "0.1.0"

/// Builds a node's `Content` from chunks in stream order, flushing a content-list blob every
/// `ContentList.capacity` chunks so memory stays flat for any stream length.
struct ContentBuilder {
    private var pending: [ChunkRef] = []
    private var lists: [ListRef] = []
    private(set) var chunkCount = 0
    private let saveList: ([ChunkRef]) throws -> BlobID

    init(saveList: @escaping ([ChunkRef]) throws -> BlobID) { self.saveList = saveList }

    mutating func append(_ ref: ChunkRef) throws {
        pending.append(ref)
        chunkCount += 1
        if pending.count == ContentList.capacity { try flush() }
    }

    private mutating func flush() throws {
        guard !pending.isEmpty else { return }
        let id = try saveList(pending)
        lists.append(ListRef(id: id, size: pending.reduce(0) { $0 + $1.size }, count: pending.count))
        pending = []
    }

    mutating func finish() throws -> Content {
        if lists.isEmpty && pending.count <= ContentList.inlineLimit { return .chunks(pending) }
        try flush()
        return .lists(lists)
    }
}

/// Reads a file descriptor and cuts it into content-defined chunks. One reader (and its
/// buffer) can be reused for many files with `reset(fd:waitForInput:)`.
struct ChunkReader {
    private var fd: Int32 = -1
    private let chunker: FastCDC
    private let cancellation: Cancellation?
    private var buffer: [UInt8]
    private var start = 0, end = 0
    private var eof = false
    /// Poll before reading so a cancellation is noticed while a pipe is idle (regular files
    /// never block, so tree backups skip it).
    private var waitForInput = true
    /// Bytes read from the current descriptor.
    private(set) var bytesRead = 0

    init(chunker: FastCDC, cancellation: Cancellation?) {
        self.chunker = chunker; self.cancellation = cancellation
        buffer = [UInt8](repeating: 0, count: chunker.parameters.max * 2 + (4 << 20))
    }

    init(fd: Int32, chunker: FastCDC, cancellation: Cancellation?) {
        self.init(chunker: chunker, cancellation: cancellation)
        self.fd = fd
    }

    mutating func reset(fd: Int32, waitForInput: Bool) {
        self.fd = fd; self.waitForInput = waitForInput
        start = 0; end = 0; eof = false; bytesRead = 0
    }

    /// The next chunk, or nil at the end of the input.
    mutating func next() throws -> [UInt8]? {
        let maxSize = chunker.parameters.max
        while !eof && end - start < maxSize { try fill() }
        guard end > start else { return nil }
        let n = buffer.withUnsafeBytes { chunker.cut(UnsafeRawBufferPointer(rebasing: $0[start..<end]), final: eof) }
        let chunk = Array(buffer[start..<(start + n)])
        start += n
        return chunk
    }

    private mutating func fill() throws {
        if start > 0 && start + chunker.parameters.max > buffer.count - (1 << 20) {
            buffer.withUnsafeMutableBytes { b in
                b.baseAddress!.copyMemory(from: b.baseAddress! + start, byteCount: end - start)
            }
            end -= start
            start = 0
        }
        // Wait for input in short slices so a cancellation is noticed even when the input is idle.
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while waitForInput {
            if let sig = cancellation?.requestedBy {
                throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
            }
            let r = poll(&pfd, 1, 200)
            if r > 0 || (r < 0 && errno != EINTR) { break }
        }
        if !waitForInput, let sig = cancellation?.requestedBy {
            throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
        }
        let room = buffer.count - end
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + end, room) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { return }
            throw InputReadError(code: errno)
        }
        if n == 0 { eof = true } else { end += n; bytesRead += n }
    }
}

/// A `read` of the input failed (an I/O error, or a file that became unreadable).
struct InputReadError: Error, CustomStringConvertible {
    var code: Int32
    var description: String { "reading the input failed: \(String(cString: strerror(code)))" }
}
