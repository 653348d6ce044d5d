public import Foundation

/// Metadata of one stored object.
public struct ObjectInfo: Sendable, Equatable {
    /// Full object name, e.g. `data/3f/3f9c…`.
    public var name: String
    public var size: Int
    /// When the object was last written, where the backend knows it (a local directory: the
    /// file's mtime); prune never deletes objects younger than its safety margin.
    public var modified: Date?

    public init(name: String, size: Int, modified: Date? = nil) {
        self.name = name; self.size = size; self.modified = modified
    }

    /// Two infos describe the same object when name and size agree; `modified` is advisory
    /// (not every backend reports it).
    public static func == (a: ObjectInfo, b: ObjectInfo) -> Bool { a.name == b.name && a.size == b.size }

    /// `2024-05-01T02:00:00Z` (UTC, whole seconds), for messages.
    public static func timestamp(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }
}

/// Errors every backend reports in the same shape, so callers can tell "not there" apart from
/// "could not reach it".
public enum StorageError: Error, Equatable, CustomStringConvertible {
    /// The named object does not exist.
    case notFound(String)
    /// The operation failed at the operating-system or network level.
    case io(operation: String, name: String, reason: String)
    /// The requested byte range lies outside the object.
    case badRange(name: String, size: Int, requested: Range<Int>)
    /// The device or quota is full.
    case noSpace(name: String)
    /// The location cannot be written: a read-only file system, or no write permission.
    case readOnly(operation: String, name: String, reason: String)
    /// The storage refused to delete or overwrite the object because it is locked (S3 Object
    /// Lock retention, or a legal hold): `until` is the retain-until date when the storage told
    /// it. Nothing was changed; the object can be deleted once the date has passed.
    case retained(name: String, until: Date?)

    public var description: String {
        switch self {
        case .notFound(let n): return "object \(n) not found"
        case .io(let op, let n, let r): return "\(op) \(n): \(r)"
        case .badRange(let n, let s, let r): return "object \(n) has \(s) bytes; bytes \(r.lowerBound)..<\(r.upperBound) requested (truncated object?)"
        case .noSpace(let n): return "no space left on device while writing \(n); free some space and retry"
        case .readOnly(let op, let n, let r): return "\(op) \(n): \(r)"
        case .retained(let n, let until):
            let when = until.map { " until \(ObjectInfo.timestamp($0))" } ?? " (retention or legal hold)"
            return "\(n) is locked by S3 Object Lock\(when): it cannot be deleted before then (FORMAT.md §31)"
        }
    }
}

/// A store of named, immutable objects: the only thing the repository layer asks of the place
/// where bytes live (a local directory now; object storage later).
///
/// Names are `/`-separated relative paths of ASCII letters, digits, `-`, `_` and `.`; the
/// backend attaches no meaning to them. Every implementation must pass
/// `StorageBackendConformance` in the tests.
public protocol StorageBackend: Sendable {
    /// Human-readable location, for messages.
    var location: String { get }

    /// Prepares an empty location for a new repository (creates directories, buckets, …).
    /// Succeeds if the location exists and is empty or does not exist yet.
    func prepare() throws

    /// Stores `data` under `name` atomically: no reader ever observes a partial object, and
    /// once `put` returns the object is durable. Writing an existing name replaces it
    /// atomically (callers only do that with identical bytes or names they own).
    func put(_ name: String, data: [UInt8]) throws

    /// Stores `data` under `name` unless an object of that name exists, atomically and durably
    /// like `put`. Returns false, writing nothing, if the name is taken. Of two concurrent
    /// `create`s of one name exactly one returns true. Used where overwriting would lose data
    /// (WAL files, FORMAT.md §27).
    func create(_ name: String, data: [UInt8]) throws -> Bool

    /// Returns the object's bytes, or `range` of them. Throws `.notFound` if absent and
    /// `.badRange` if the range exceeds the object.
    func get(_ name: String, range: Range<Int>?) throws -> [UInt8]

    /// Size of the named object; throws `.notFound` if absent.
    func stat(_ name: String) throws -> ObjectInfo

    /// Every complete object whose name starts with `prefix` (which usually ends in `/`), in no
    /// particular order. Objects still being written are never listed.
    func list(prefix: String) throws -> [ObjectInfo]

    /// Names of every complete object whose name starts with `prefix`, like `list` without the
    /// sizes (which a local directory can list without a `stat` per object).
    func listNames(prefix: String) throws -> [String]

    /// Names of the objects under `data/` that can be packs (default: filtered `listNames`).
    func listPackNames() throws -> [String]

    /// Removes the object. Removing an absent object succeeds (idempotent).
    func delete(_ name: String) throws

    /// Starts an object whose name is given when it is complete (`StagedObject.commit`).
    func stage() throws -> StagedObject

    /// The time on the storage's clock: what lock ages and prune's safety margin are measured
    /// against, so that hosts whose clocks differ agree (FORMAT.md §14). A local directory
    /// answers this host's clock; a server answers its own (its `Date` header).
    func now() throws -> Date
}

extension StorageBackend {
    public func listNames(prefix: String) throws -> [String] { try list(prefix: prefix).map(\.name) }

    /// Names of the objects that can be packs: those under `data/` whose next character is a
    /// hex digit (FORMAT.md §3: anything else under `data/` is ignored), in no particular
    /// order. Object storage lists the 16 shards side by side (`S3Backend`).
    public func listPackNames() throws -> [String] {
        try listNames(prefix: "data/").filter(PackObjectName.mayBePack)
    }

    /// Stages in memory and publishes with `put`.
    public func stage() throws -> StagedObject { BufferedStagedObject(backend: self) }

    public func get(_ name: String) throws -> [UInt8] { try get(name, range: nil) }

    /// This host's clock: right for storage on this host's file systems.
    public func now() throws -> Date { Date() }

    /// True if the object exists.
    public func exists(_ name: String) throws -> Bool {
        do { _ = try stat(name); return true } catch StorageError.notFound { return false }
    }
}

/// Object names under `data/` (FORMAT.md §3).
public enum PackObjectName {
    /// Whether `name` (`data/…`) can be a pack's: the character after `data/` is a hex digit
    /// (packs live in `data/<hh>/`); anything else under `data/` is ignored.
    public static func mayBePack(_ name: String) -> Bool {
        guard let c = name.utf8.dropFirst(5).first else { return false }
        return (0x30...0x39).contains(c) || (0x61...0x66).contains(c)
    }
}
