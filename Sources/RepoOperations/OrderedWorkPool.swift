import Foundation

/// A fixed set of threads that apply `work` to submitted inputs and hand results back in
/// submission order. CPU-heavy stages (hashing, compression, encryption, decoding) run here,
/// never on Swift's cooperative pool.
///
/// Single producer/consumer: one thread calls `submit` and `next`; it bounds memory by calling
/// `next` whenever `inFlight` reaches the window it wants. Results that throw are rethrown by
/// `next` in order.
final class OrderedWorkPool<Input, Output>: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [(Int, Input)?] = []   // taken slots are nil'ed so inputs are freed at once
    private var queueHead = 0
    private var results: [Int: Result<Output, Error>] = [:]
    private var submitted = 0
    private var consumed = 0
    private var closed = false
    private var running = 0
    private var threads: [Thread] = []
    private let work: (Input, Int) throws -> Output

    /// - Parameters:
    ///   - threads: worker count (each gets a stable index `0..<threads` for per-thread state).
    ///   - work: the function applied to each input; called concurrently.
    init(threads: Int, work: @escaping (Input, Int) throws -> Output) {
        self.work = work
        running = max(1, threads)
        for i in 0..<max(1, threads) {
            // Each thread keeps the pool alive until it has seen `close()` and exited.
            let t = Thread { self.run(index: i) }
            t.stackSize = 1 << 20
            appendThread(t)
            t.start()
        }
    }

    private func appendThread(_ t: Thread) { threads.append(t) }

    var inFlight: Int {
        condition.lock(); defer { condition.unlock() }
        return submitted - consumed
    }

    func submit(_ input: Input) {
        condition.lock()
        queue.append((submitted, input))
        submitted += 1
        condition.signal()
        condition.unlock()
    }

    /// The next result in submission order; nil when nothing is in flight.
    func next() throws -> Output? {
        condition.lock()
        guard consumed < submitted else { condition.unlock(); return nil }
        while results[consumed] == nil { condition.wait() }
        let r = results.removeValue(forKey: consumed)!
        consumed += 1
        condition.unlock()
        return try r.get()
    }

    /// Stops the threads after the queued work is done and waits until they have exited, so
    /// no worker outlives its owner (or runs while the process is exiting). Every owner must
    /// call this (the threads hold the pool until then).
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    private func run(index: Int) {
        while true {
            condition.lock()
            while queueHead == queue.count && !closed { condition.wait() }
            if queueHead == queue.count && closed {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let (seq, input) = queue[queueHead]!
            queue[queueHead] = nil
            queueHead += 1
            if queueHead > 64 && queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            condition.unlock()
            let r = Result { try work(input, index) }
            condition.lock()
            results[seq] = r
            condition.broadcast()
            condition.unlock()
        }
    }
}

/// Number of worker threads to use: the machine's active cores.
public var defaultWorkerCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

/// Results of parallel work, one slot per index, filled under a lock.
final class ResultSlots<T>: @unchecked Sendable {
    var values: [T?]
    let lock = NSLock()
    init(_ n: Int) { values = [T?](repeating: nil, count: n) }
}
