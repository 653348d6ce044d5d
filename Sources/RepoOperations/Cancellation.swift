import Synchronization

/// Set (by the CLI's signal handling) when the user asks the operation to stop; operations
/// poll it between units of work and then stop cleanly: no snapshot is committed.
public final class Cancellation: Sendable {
    private let signal = Atomic<Int32>(0)

    public init() {}

    /// Requests cancellation on behalf of `signal` (e.g. SIGINT).
    public func cancel(signal number: Int32) { signal.store(number, ordering: .sequentiallyConsistent) }

    /// The signal that requested cancellation, or nil.
    public var requestedBy: Int32? {
        let s = signal.load(ordering: .sequentiallyConsistent)
        return s == 0 ? nil : s
    }
}
