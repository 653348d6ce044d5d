public import Foundation

/// What a backend that can lock objects (S3 Object Lock) applies to the objects it writes:
/// a retention mode and a period, and which object names get them (FORMAT.md §31).
///
/// The rule for names belongs to the repository layer (`RepositoryConfig.ObjectLock`), the
/// headers and requests to the backend; a backend without locking ignores it.
public struct ObjectRetention: Sendable {
    /// Amazon S3 User Guide, "Locking objects with Object Lock", "Retention modes".
    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// Users with `s3:BypassGovernanceRetention` can still delete a retained object version
        /// (sending `x-amz-bypass-governance-retention: true`); `repo` never does.
        case governance
        /// Nobody, not even the account's root user, can delete a retained version or shorten
        /// its retention.
        case compliance

        /// The header value (`GOVERNANCE`, `COMPLIANCE`).
        public var headerValue: String { rawValue.uppercased() }
    }

    public var mode: Mode
    /// Seconds each retained object is locked for, counted from its upload (storage's clock).
    public var period: Int
    /// True for the names that get retention (the others, e.g. locks, are written plainly).
    public var appliesTo: @Sendable (String) -> Bool

    public init(mode: Mode, period: Int, appliesTo: @escaping @Sendable (String) -> Bool) {
        self.mode = mode; self.period = period; self.appliesTo = appliesTo
    }
}

/// A backend that may be told to lock what it writes (S3 with Object Lock). The repository
/// layer calls `useRetention` as soon as it has read `config` (and before `prepare` at `init`).
public protocol RetainingBackend: StorageBackend {
    /// The retention in force, or nil (objects are written and deleted plainly).
    var retention: ObjectRetention? { get }
    /// Sets the retention applied from now on.
    func useRetention(_ retention: ObjectRetention?)
    /// Moves the retain-until date of the current version of `name` to the storage's now plus
    /// the period, if `retention` applies to it (retention can only be lengthened). For objects
    /// that must outlive the period, such as key slots.
    func extendRetention(_ name: String) throws
    /// When the current version of `name` is free to delete: its retain-until date while that is
    /// ahead of the storage's clock, `.distantFuture` under a legal hold, nil when nothing holds
    /// it. Asks the storage (its date may have been extended past the upload's).
    func retainedUntil(_ name: String) throws -> Date?
}
