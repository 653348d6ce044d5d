/// An object being written whose name is known only when its last byte is (a pack is named by
/// the SHA-256 of its bytes). Bytes are appended, then `commit` publishes them under a name with
/// the guarantees of `StorageBackend.put`: atomic and durable when it returns. Until then, no
/// reader can see the object, and `discard` (or dropping the last reference) removes it.
///
/// A writer that stages its packs keeps none of a pack's bytes in memory (a local directory
/// stages into a temporary file), so memory stays flat whatever the pack size.
public protocol StagedObject: AnyObject {
    /// Bytes appended so far.
    var size: Int { get }
    func append(_ bytes: UnsafeRawBufferPointer) throws
    /// Publishes the bytes as `name` (atomically, durably). The object cannot be used after.
    func commit(as name: String) throws
    /// Drops the bytes; nothing is published.
    func discard()
}

extension StagedObject {
    public func append(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try append($0) } }
}

/// A staged object held in memory and published with `put`: the fallback for backends that
/// cannot stage (and for tests that want the bytes).
public final class BufferedStagedObject: StagedObject {
    private let backend: StorageBackend?
    public private(set) var bytes: [UInt8] = []

    /// - Parameter backend: where `commit` puts the bytes; nil keeps them here only.
    public init(backend: StorageBackend?) { self.backend = backend }

    public var size: Int { bytes.count }
    public func append(_ buf: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: buf) }
    public func commit(as name: String) throws { try backend?.put(name, data: bytes) }
    public func discard() { bytes = [] }
}
