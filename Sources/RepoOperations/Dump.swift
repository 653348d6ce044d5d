public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
import RepoIndex
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `repo dump`: writes one file's content to a file descriptor, reading ahead pack by pack and
/// decoding on all cores, and verifying as it goes: every chunk by its GCM tag, the whole stream
/// by its recorded size and SHA-256.
///
/// Read-ahead: the chunk list is cut into windows of `windowBytes` (16 MiB) of chunk bytes, or
/// `windowChunks` chunks. The blobs of a window are grouped per pack into regions
/// (`PackRegionPlan`), each fetched with one ranged read and decoded by a pool of reader
/// threads, several packs at a time; then the window's chunks are written in stream order,
/// while the next `windowsAhead` (1) window is being read. A stream stored by two workers lies
/// in two or three packs per window: a request per pack and window, where reading runs of
/// adjacent chunks took one per few hundred KiB (58 GETs for 308 MB of SQL in
/// Benchmarks/s3_compare.py, from 688).
///
/// Memory stays bounded: the window being written and the one being read, 2 × 16 MiB of
/// decoded chunks, plus the regions in flight (each at most twice its needed bytes,
/// `PackRegionPlan.minimumFill`), some 64 MiB at worst (84 MB peak RSS for the whole process in
/// that dump).
public struct Dump {
    public var repository: Repository
    public var workers: Int = defaultWorkerCount
    public var progress: ProgressHandler?
    public var cancellation: Cancellation?

    public init(repository: Repository) { self.repository = repository }

    /// Writes `node`'s content to `fd`. Returns the number of bytes written.
    /// - Throws: `RepoError(.integrity)` for any damaged chunk or a whole-stream mismatch
    ///   (bytes already written were verified chunk by chunk, but the output is incomplete);
    ///   `.interrupted` when cancelled; `.outputClosed` when the reader closed the pipe.
    @discardableResult
    public func run(node: Node, output fd: Int32) throws -> Int {
        // Requests wait on the network, not the CPU: at least four readers even on fewer cores.
        let readers = (0..<max(Self.minimumReaders, workers)).map { _ in PackReader(master: repository.key) }
        let repo = repository
        // The readers never touch the catalog: a blob a region could not provide, or one the
        // catalog cannot place, is read on this thread with `loadBlob`, which may rebuild the
        // catalog (`relocate`), and so never while another thread reads it.
        let pool = OrderedWorkPool<PackRegionPlan.Region, [(BlobID, [UInt8]?)]>(threads: readers.count) { region, i in
            Array(zip(region.blobs.map(\.entry.id), repo.loadBlobs(inOnePack: region.blobs, reader: readers[i])))
        }
        defer { pool.close() }
        let reader = PackReader(master: repository.key)
        let digest = StreamDigest()
        var finalized = false
        defer { if !finalized { digest.cancel() } }
        var written = 0
        let total = node.size

        func emit(_ bytes: [UInt8]) throws {
            digest.update(bytes)
            try Self.writeAll(fd, bytes)
            written += bytes.count
            progress?(ProgressReport(bytes: written, totalBytes: total))
        }

        // Windows submitted to the pool and not yet written: their chunks and how many reads.
        var inFlight: [(chunks: [ChunkRef], reads: Int)] = []
        func writeOldestWindow() throws {
            let (chunks, reads) = inFlight.removeFirst()
            var blobs: [BlobID: [UInt8]] = [:]
            blobs.reserveCapacity(chunks.count)
            for _ in 0..<reads {
                guard let results = try pool.next() else { break }
                for case (let id, let bytes?) in results { blobs[id] = bytes }
            }
            for ref in chunks {
                let bytes: [UInt8]
                if let read = blobs[ref.id] {
                    bytes = read
                } else {
                    bytes = try repository.loadBlob(ref.id, reader: reader)
                    blobs[ref.id] = bytes
                }
                guard bytes.count == ref.size else {
                    throw RepoError(.integrity, "chunk \(ref.id.shortHex) has \(bytes.count) bytes, the content list says \(ref.size)")
                }
                try emit(bytes)
            }
        }
        var window: [ChunkRef] = []
        var windowBytes = 0
        func submitWindow() throws {
            guard !window.isEmpty else { return }
            let ids = window.map(\.id)
            // A chunk the catalog cannot place is left out: `writeOldestWindow` reads it alone.
            let locations = (try? repository.locate(ids)) ?? [:]
            let regions = PackRegionPlan(ids.compactMap { locations[$0] }).regions
            for region in regions { pool.submit(region) }
            inFlight.append((window, regions.count))
            window = []
            windowBytes = 0
            while inFlight.count > Self.windowsAhead { try writeOldestWindow() }
        }

        var iterator = ContentIterator(content: node.content ?? .chunks([]), repository: repository)
        while let ref = try iterator.next() {
            if let sig = cancellation?.requestedBy {
                throw RepoError(.interrupted(signal: sig), "interrupted")
            }
            window.append(ref)
            windowBytes += ref.size
            if windowBytes >= Self.windowBytes || window.count >= Self.windowChunks { try submitWindow() }
        }
        try submitWindow()
        while !inFlight.isEmpty { try writeOldestWindow() }

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

    /// Chunk bytes in one read-ahead window: at the default 256 KiB average chunk, 64 chunks;
    /// a stream stored by two workers then costs about two requests per window.
    static let windowBytes = 16 << 20
    /// Most chunks in one window (a repository with small chunks).
    static let windowChunks = 4096
    /// Windows read ahead of the one being written: 2 was no faster on loopback S3 (0.88 s for
    /// 308 MB either way) and took 13 MB more RSS.
    static let windowsAhead = 1
    /// Fewest reader threads.
    static let minimumReaders = 4

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
