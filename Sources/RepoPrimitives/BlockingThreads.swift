import Foundation
import Dispatch

/// Threads for blocking I/O (requests to object storage, file reads): `run(count:)` starts
/// `count` threads and waits for all of them. GCD's `concurrentPerform` runs only as many
/// iterations at once as there are cores (2 on a small machine), which is right for
/// compression but leaves requests that wait on the network queued behind each other.
public enum BlockingThreads {
    /// Calls `body(t)` for `t` in `0..<count`, each on its own thread (the caller's for a
    /// single one), and returns when all have returned.
    public static func run(count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 1 else {
            if count == 1 { body(0) }
            return
        }
        let group = DispatchGroup()
        for t in 1..<count {
            group.enter()
            let thread = Thread {
                body(t)
                group.leave()
            }
            thread.start()
        }
        body(0)
        group.wait()
    }
}
