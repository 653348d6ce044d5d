public import RepoPrimitives
import Foundation

/// The public, unencrypted repository header stored as the object `config` (JSON).
public struct RepositoryConfig: Codable, Sendable, Equatable {
    /// Format version; this code reads and writes 1.
    public var version: Int
    /// Random repository id (64 hex digits); names the cache directory and is bound into key slots.
    public var id: Hash256
    public var chunker: ChunkerParameters
    /// `zstd:N` (N in 1...19) or `none`.
    public var compression: String
    /// Target pack size in bytes.
    public var packSize: Int
    /// S3 Object Lock retention for what writers store (FORMAT.md §31); absent: none.
    public var objectLock: ObjectLock?

    public static let currentVersion = 1
    public static let objectName = "config"

    public init(id: Hash256, chunker: ChunkerParameters, compression: String, packSize: Int = 16 << 20,
                objectLock: ObjectLock? = nil) {
        self.version = Self.currentVersion
        self.id = id; self.chunker = chunker; self.compression = compression; self.packSize = packSize
        self.objectLock = objectLock
    }

    /// The legal `packSize` range: packs are read whole by `check --read-data` and `prune`, so
    /// 1 GiB bounds their memory; below 1 MiB the index and the directory fill with tiny packs.
    public static let packSizeRange = (1 << 20)...(1 << 30)

    /// Why this config cannot be used (a value out of its range), or nil. The version is
    /// checked separately (an unsupported version is not damage).
    public var invalidReason: String? {
        if let reason = chunker.invalidReason {
            return "chunker {min \(chunker.min), avg \(chunker.avg), max \(chunker.max)}: \(reason)"
        }
        if Self.parseCompression(compression) == nil {
            return "compression \"\(compression)\" is not none, zstd or zstd:N with N from 1 to 19"
        }
        if !Self.packSizeRange.contains(packSize) {
            return "packSize \(packSize) is outside \(Self.packSizeRange.lowerBound)...\(Self.packSizeRange.upperBound) (1 MiB to 1 GiB)"
        }
        if let reason = objectLock?.invalidReason { return reason }
        return nil
    }

    /// The zstd level, or nil for `none`.
    public var zstdLevel: Int32? { Self.parseCompression(compression) ?? nil }

    /// Parses `zstd:N` / `zstd` / `none`; returns nil (outer) when the text is invalid.
    public static func parseCompression(_ text: String) -> Int32?? {
        if text == "none" { return .some(nil) }
        if text == "zstd" { return .some(3) }
        guard text.hasPrefix("zstd:"), let n = Int32(text.dropFirst(5)), (1...19).contains(n) else { return nil }
        return .some(n)
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try enc.encode(self)) + [0x0A]
    }

    public static func decode(_ bytes: [UInt8]) throws -> RepositoryConfig {
        try JSONDecoder().decode(RepositoryConfig.self, from: Data(bytes))
    }
}
