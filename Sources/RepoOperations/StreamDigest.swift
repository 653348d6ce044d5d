public import RepoPrimitives
import Foundation

/// The SHA-256 of a whole stream, computed on a thread of its own.
///
/// A stream's digest is inherently sequential: on a CPU without SHA extensions it runs at about
/// the speed of one core (≈ 300 MB/s), which caps `store` and `dump`. Hashing on its own thread
/// takes it off the thread that reads and chunks (or writes), so the two sequential stages
/// overlap and the workers fill the rest of the machine.
///
/// Single producer: one thread calls `update` (in stream order) and then `finalize`, or `cancel`.
/// Chunks are shared, not copied; at most `maxQueuedBytes` wait to be hashed.
final class StreamDigest: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [[UInt8]?] = []   // hashed slots are nil'ed so chunks are freed at once
    private var head = 0
    private var queuedBytes = 0
    private var ended = false
    private var result: Hash256?
    private let maxQueuedBytes: Int

    init(maxQueuedBytes: Int = 8 << 20) {
        self.maxQueuedBytes = maxQueuedBytes
        let t = Thread { self.run() }
        t.stackSize = 1 << 20
        t.start()
    }

    func update(_ chunk: [UInt8]) {
        condition.lock()
        while queuedBytes > 0 && queuedBytes + chunk.count > maxQueuedBytes { condition.wait() }
        queue.append(chunk)
        queuedBytes += chunk.count
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for every queued chunk to be hashed and returns the digest.
    func finalize() -> Hash256 {
        condition.lock()
        ended = true
        condition.broadcast()
        while result == nil { condition.wait() }
        let r = result!
        condition.unlock()
        return r
    }

    /// Stops the thread without a meaningful result (the stream failed).
    func cancel() {
        condition.lock()
        for i in head..<queue.count { queuedBytes -= queue[i]?.count ?? 0 }
        queue.removeAll(); head = 0
        condition.unlock()
        _ = finalize()
    }

    private func run() {
        let hasher = SHA256Hasher()
        while true {
            condition.lock()
            while head == queue.count && !ended { condition.wait() }
            if head == queue.count {
                result = hasher.finalize()
                condition.broadcast()
                condition.unlock()
                return
            }
            let chunk = queue[head]!
            queue[head] = nil
            head += 1
            if head > 64 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
            condition.unlock()
            chunk.withUnsafeBytes { hasher.update($0) }
            condition.lock()
            queuedBytes -= chunk.count
            condition.broadcast()
            condition.unlock()
        }
    }
}
