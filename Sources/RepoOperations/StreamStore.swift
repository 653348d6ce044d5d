public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `repo store`: reads one stream, chunks it, saves new chunks through a `WriteSession` on all
/// cores, and commits a snapshot whose single tree node records the stream's size and SHA-256.
///
/// Write ordering (FORMAT.md): packs, then the index segment, then the snapshot. When the input
/// fails, the caller's `beforeCommit` throws, or the operation is cancelled, the session's packs
/// are still indexed (so a retry reuses them) but no snapshot is written.
public struct StreamStore {
    public var repository: Repository
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

    public struct Result: Sendable {
        public var snapshotID: Hash256
        public var snapshot: Snapshot
        public var sha256: Hash256
        public var session: WriteSession.SessionStats
        /// Data chunks that were new to the repository.
        public var newChunks: Int
    }

    /// Reads `fd` to its end and stores it.
    /// - Parameter beforeCommit: called after the input ended and every chunk is durable, right
    ///   before the snapshot is written; throw to abandon the snapshot (e.g. the dump command failed).
    public func run(input fd: Int32, beforeCommit: () throws -> Void = {}) throws -> Result {
        let started = Date()
        let session = try WriteSession(repository: repository)
        let contexts = (0..<max(1, workers)).map { _ in session.makeContext() }
        let pool = OrderedWorkPool<[UInt8], (ChunkRef, Bool)>(threads: contexts.count) { chunk, i in
            let saved = try session.save(chunk, type: .data, context: contexts[i])
            return (ChunkRef(id: saved.id, size: chunk.count), saved.isNew)
        }
        defer { pool.close() }
        let metaContext = session.makeContext()
        var builder = ContentBuilder { list in
            let saved = try session.save(ContentList.encode(list), type: .tree, context: metaContext)
            return saved.id
        }
        let hasher = SHA256Hasher()
        let window = contexts.count * 3
        var total = 0
        var newChunks = 0

        func drain(until limit: Int) throws {
            while pool.inFlight > limit, let (ref, isNew) = try pool.next() {
                try builder.append(ref)
                if isNew { newChunks += 1 }
            }
        }

        var failure: Error?
        do {
            var reader = ChunkReader(fd: fd, chunker: repository.chunker, cancellation: cancellation)
            while let chunk = try reader.next() {
                chunk.withUnsafeBytes { hasher.update($0) }
                total += chunk.count
                try drain(until: window - 1)
                pool.submit(chunk)
                progress?(ProgressReport(bytes: total, newBytes: session.stats.newStoredBytes))
            }
            try drain(until: 0)
        } catch {
            failure = error
        }
        if failure != nil {
            // Let in-flight saves finish, then index what reached the repository.
            while pool.inFlight > 0 { _ = try? pool.next() }
            _ = try? session.finish()
            throw failure!
        }
        let content = try builder.finish()
        let digest = hasher.finalize()
        let node = Node(name: name, type: .file, size: total, sha256: digest, mode: 0o644,
                        mtime: Timestamp.format(time), content: content)
        let tree = try session.save(try Tree(nodes: [node]).encoded(), type: .tree, context: metaContext)
        do {
            try beforeCommit()
        } catch {
            _ = try? session.finish()
            throw error
        }
        if let sig = cancellation?.requestedBy {
            _ = try? session.finish()
            throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
        }
        try session.finish()
        let stats = session.stats
        let snapshot = Snapshot(time: Timestamp.format(time), host: host, username: HostInfo.username, name: name,
                                paths: nil, tags: tags, tree: tree.id,
                                stats: .init(totalBytes: total, chunks: builder.chunkCount, newBlobs: stats.newBlobs,
                                             newBytes: stats.newStoredBytes, seconds: Date().timeIntervalSince(started)),
                                program: "repo " + repoVersion)
        let id = try repository.saveObject(try snapshot.encoded(), kind: .snapshot)
        return Result(snapshotID: id, snapshot: snapshot, sha256: digest, session: stats, newChunks: newChunks)
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
