public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
import RepoIndex
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `repo dump`: writes one file's content to a file descriptor, decoding chunks on all cores
/// (in order, with a bounded read-ahead window) and verifying as it goes: every chunk by its
/// GCM tag, the whole stream by its recorded size and SHA-256.
public struct Dump {
    public var repository: Repository
    public var workers: Int = defaultWorkerCount
    public var progress: ProgressHandler?
    public var cancellation: Cancellation?

    public init(repository: Repository) { self.repository = repository }

    /// Writes `node`'s content to `fd`. Returns the number of bytes written.
    /// - Throws: `RepoError(.integrity)` for any damaged chunk or a whole-stream mismatch
    ///   (bytes already written were verified chunk by chunk, but the output is incomplete).
    @discardableResult
    public func run(node: Node, output fd: Int32) throws -> Int {
        let readers = (0..<max(1, workers)).map { _ in PackReader(master: repository.key) }
        let repo = repository
        // A work item is a run of chunks stored back to back in one pack, read with one ranged
        // read (`Repository.loadAdjacentBlobs`): a stream stored in one go lies in pack order,
        // and on S3 one request per chunk cost a request per 256 KiB.
        let pool = OrderedWorkPool<[(ChunkRef, BlobLocation?)], [[UInt8]]>(threads: readers.count) { run, i in
            let blobs: [[UInt8]]
            if run.count > 1, run.allSatisfy({ $0.1 != nil }) {
                blobs = try repo.loadAdjacentBlobs(run.map { $0.1! }, reader: readers[i])
            } else {
                blobs = try run.map { try repo.loadBlob($0.0.id, reader: readers[i]) }
            }
            for (bytes, (ref, _)) in zip(blobs, run) where bytes.count != ref.size {
                throw RepoError(.integrity, "chunk \(ref.id.shortHex) has \(bytes.count) bytes, the content list says \(ref.size)")
            }
            return blobs
        }
        defer { pool.close() }
        let digest = StreamDigest()
        var finalized = false
        defer { if !finalized { digest.cancel() } }
        var written = 0
        let window = readers.count * 4
        let total = node.size

        func emit(_ bytes: [UInt8]) throws {
            digest.update(bytes)
            try Self.writeAll(fd, bytes)
            written += bytes.count
            progress?(ProgressReport(bytes: written, totalBytes: total))
        }

        var iterator = ContentIterator(content: node.content ?? .chunks([]), repository: repository)
        var run: [(ChunkRef, BlobLocation?)] = []
        var runBytes = 0
        func submit() throws {
            guard !run.isEmpty else { return }
            while pool.inFlight >= window, let blobs = try pool.next() { for b in blobs { try emit(b) } }
            pool.submit(run)
            run = []
            runBytes = 0
        }
        while let ref = try iterator.next() {
            if let sig = cancellation?.requestedBy {
                throw RepoError(.interrupted(signal: sig), "interrupted")
            }
            // A chunk the cache cannot place goes alone (`loadBlob` then rebuilds the cache).
            let loc = try? repository.locate(ref.id)
            if let loc, let previous = run.last?.1,
               previous.pack == loc.pack, previous.entry.offset + previous.entry.length == loc.entry.offset,
               runBytes + loc.entry.length <= Self.runBytes {
                run.append((ref, loc))
                runBytes += loc.entry.length
                continue
            }
            try submit()
            run = [(ref, loc)]
            runBytes = loc?.entry.length ?? 0
        }
        try submit()
        while let blobs = try pool.next() { for b in blobs { try emit(b) } }

        let actual = digest.finalize()
        finalized = true
        if let size = node.size, size != written {
            throw RepoError(.integrity, "\(node.name): wrote \(written) bytes but the snapshot records \(size)")
        }
        if let expected = node.sha256 {
            guard actual == expected else {
                throw RepoError(.integrity, "\(node.name): SHA-256 of the dumped bytes \(actual.hex) differs from the recorded \(expected.hex)",
                                hint: "run `repo check --read-data`")
            }
        }
        return written
    }

    /// Most bytes one read fetches for a run of adjacent chunks: 4 MiB keeps every reader busy
    /// on a 16 MiB pack and the read-ahead window (4 runs per reader) bounded.
    static let runBytes = 4 << 20

    /// Writes all of `bytes`; a closed pipe (EPIPE, with SIGPIPE ignored) is `.outputClosed`.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    let e = errno
                    if e == EPIPE { throw RepoError(.outputClosed, "the reading side closed the pipe") }
                    throw RepoError(.failure, "writing the output failed: \(String(cString: strerror(e)))")
                }
                off += n
            }
        }
    }
}

/// Walks a node's content in order, loading content-list blobs one at a time.
public struct ContentIterator {
    private let repository: Repository
    private var inline: [ChunkRef] = []
    private var lists: [ListRef] = []
    private var listIndex = 0
    private var position = 0

    public init(content: Content, repository: Repository) {
        self.repository = repository
        switch content {
        case .chunks(let c): inline = c
        case .lists(let l): lists = l
        }
    }

    public mutating func next() throws -> ChunkRef? {
        while position == inline.count {
            guard listIndex < lists.count else { return nil }
            let ref = lists[listIndex]
            listIndex += 1
            let bytes = try repository.loadBlob(ref.id)
            do { inline = try ContentList.decode(bytes) } catch {
                throw RepoError(.integrity, "content list \(ref.id.hex) is malformed")
            }
            guard inline.count == ref.count else {
                throw RepoError(.integrity, "content list \(ref.id.hex) has \(inline.count) chunks, expected \(ref.count)")
            }
            position = 0
        }
        defer { position += 1 }
        return inline[position]
    }
}
