/// A snapshot of a long operation's progress, for the CLI's progress line.
public struct ProgressReport: Sendable {
    /// Bytes read (store) or written (dump) or checked so far.
    public var bytes: Int
    /// Bytes expected in total, when known.
    public var totalBytes: Int?
    /// Bytes that were new to the repository (store).
    public var newBytes: Int
    /// Free-form counters, e.g. "12/40 packs".
    public var items: String?

    public init(bytes: Int, totalBytes: Int? = nil, newBytes: Int = 0, items: String? = nil) {
        self.bytes = bytes; self.totalBytes = totalBytes; self.newBytes = newBytes; self.items = items
    }
}

/// Receives progress; called often from one thread, so implementations throttle themselves.
public typealias ProgressHandler = @Sendable (ProgressReport) -> Void
