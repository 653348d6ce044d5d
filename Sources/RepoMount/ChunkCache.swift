public import RepoPrimitives
public import RepoSnapshot
import Foundation

/// Decoded chunks shared by every open file: an LRU bounded in bytes, plus a pool of threads
/// that decode chunks ahead of sequential readers.
///
/// A chunk is decoded once even when several readers (or a reader and the read-ahead) want it
/// at the same time: the first claims it, the others wait. A read that needs a chunk still only
/// queued for read-ahead decodes it itself rather than waiting behind the queue. Failures are
/// not cached (a later read tries again and reports again).
public final class ChunkCache: @unchecked Sendable {
    private enum State { case queued, loading }
    private final class Pending {
        var state: State
        var result: Result<[UInt8], Error>?
        init(_ s: State) { state = s }
    }

    private let condition = NSCondition()
    private var lru: LRUCache<BlobID, [UInt8]>
    private var pending: [BlobID: Pending] = [:]
    private var queue: [ChunkRef] = []
    private var queueHead = 0
    private var closed = false
    private let load: (ChunkRef) throws -> [UInt8]
    private var threads = 0

    /// Statistics (for tests and `-v`).
    public private(set) var hits = 0
    public private(set) var misses = 0
    public private(set) var prefetched = 0

    /// - Parameters:
    ///   - capacity: bytes of decoded chunks to keep.
    ///   - threads: read-ahead decoder threads (0 disables read-ahead).
    ///   - load: decodes one chunk; called concurrently.
    public init(capacity: Int, threads: Int, load: @escaping (ChunkRef) throws -> [UInt8]) {
        lru = LRUCache(capacity: capacity)
        self.load = load
        for _ in 0..<threads {
            let t = Thread { [self] in self.worker() }
            t.stackSize = 1 << 20
            t.name = "repo-readahead"
            t.start()
            self.threads += 1
        }
    }

    /// Bytes currently cached.
    public var cachedBytes: Int {
        condition.lock(); defer { condition.unlock() }
        return lru.totalCost
    }

    public var capacity: Int { lru.capacity }

    /// The decoded chunk, from the cache, from a decode already under way, or decoded now on
    /// the calling thread.
    public func get(_ ref: ChunkRef) throws -> [UInt8] {
        condition.lock()
        if let bytes = lru.value(for: ref.id) { hits += 1; condition.unlock(); return bytes }
        misses += 1
        if let p = pending[ref.id] {
            if p.state == .loading {
                while p.result == nil { condition.wait() }
                condition.unlock()
                return try p.result!.get()
            }
            p.state = .loading   // queued for read-ahead: claim it
            condition.unlock()
            return try finish(ref, p)
        }
        let p = Pending(.loading)
        pending[ref.id] = p
        condition.unlock()
        return try finish(ref, p)
    }

    /// Whether the chunk is cached or being decoded (for read-ahead bookkeeping and tests).
    public func isPresent(_ id: BlobID) -> Bool {
        condition.lock(); defer { condition.unlock() }
        return lru.contains(id) || pending[id] != nil
    }

    /// Queues chunks for decoding by the read-ahead threads, skipping those already cached or
    /// under way.
    public func prefetch(_ refs: [ChunkRef]) {
        guard threads > 0 else { return }
        condition.lock()
        for r in refs where !lru.contains(r.id) && pending[r.id] == nil {
            pending[r.id] = Pending(.queued)
            queue.append(r)
        }
        condition.broadcast()
        condition.unlock()
    }

    /// Stops the read-ahead threads (after the chunks they are decoding).
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    private func finish(_ ref: ChunkRef, _ p: Pending) throws -> [UInt8] {
        let r = Result { try load(ref) }
        condition.lock()
        p.result = r
        if pending[ref.id] === p { pending.removeValue(forKey: ref.id) }
        if case .success(let bytes) = r { lru.insert(bytes, for: ref.id, cost: max(1, bytes.count)) }
        condition.broadcast()
        condition.unlock()
        return try r.get()
    }

    private func worker() {
        while true {
            condition.lock()
            while queueHead == queue.count && !closed { condition.wait() }
            if closed { condition.unlock(); return }
            let ref = queue[queueHead]
            queueHead += 1
            if queueHead == queue.count { queue.removeAll(keepingCapacity: true); queueHead = 0 }
            guard let p = pending[ref.id], p.state == .queued else { condition.unlock(); continue }
            p.state = .loading
            prefetched += 1
            condition.unlock()
            _ = try? finish(ref, p)
        }
    }
}
