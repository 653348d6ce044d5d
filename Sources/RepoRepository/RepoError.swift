/// The one rich error type at the edge of the repository and operations layers: what failed,
/// why, and what the user can do about it. The command line maps `kind` to an exit code.
public struct RepoError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Generic failure (exit 1).
        case failure
        /// Bad arguments (exit 2).
        case usage
        /// Finished, but some input could not be read (exit 3).
        case partial
        /// No repository at the location (exit 10).
        case noRepository
        /// Another process holds a conflicting lock (exit 11).
        case locked
        /// No key slot opens with the password (exit 12).
        case wrongPassword
        /// A key management service could not unwrap (or wrap) a slot's secret: unreachable,
        /// access denied, key disabled or deleted (exit 12, as no key opened; the message gives
        /// the service's reason).
        case keyService
        /// Stored data failed verification (exit 13).
        case integrity
        /// Interrupted by a signal (exit 128 + signal).
        case interrupted(signal: Int32)
        /// Whoever read the output closed it (`repo ls latest | head`): a quiet end, exit 0.
        case outputClosed
    }

    public var kind: Kind
    public var message: String
    /// What to do next, printed on its own line.
    public var hint: String?

    public init(_ kind: Kind, _ message: String, hint: String? = nil) {
        self.kind = kind; self.message = message; self.hint = hint
    }

    public var description: String {
        hint.map { "\(message)\n\($0)" } ?? message
    }
}
