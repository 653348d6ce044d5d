/// What a blob holds. Data and tree blobs are written to separate packs.
public enum BlobType: UInt8, Sendable, Codable, CustomStringConvertible {
    /// Chunks of stored streams and file contents.
    case data = 0
    /// Metadata: trees and content lists.
    case tree = 1

    public var description: String { self == .data ? "data" : "tree" }
}
