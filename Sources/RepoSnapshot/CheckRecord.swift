public import Foundation

/// The outcome of one `repo check`, kept in the repository so that `repo status` can say when
/// the repository was last verified and how much of its data has been read (FORMAT.md §30).
/// Serialized as JSON with sorted keys and sealed as kind `check` (`RCK1`, folder `checks/`).
public struct CheckRecord: Codable, Sendable, Equatable {
    public var version: Int = 1
    /// RFC 3339 times on the storage's clock (FORMAT.md §29.3) when the check started (before it
    /// listed anything) and when it finished.
    public var started: String
    public var time: String
    public var host: String
    public var username: String
    /// Program that wrote it, e.g. `repo 0.1.0`.
    public var program: String
    /// Wall time of the check in seconds.
    public var seconds: Double
    /// Integrity errors found (0: the check passed).
    public var errors: Int
    public var snapshots: Int
    public var packs: Int
    /// Fraction of the packs read in full: 0 (structure only), 1 (`--read-data`), or the
    /// `--read-data-subset` fraction.
    public var readDataFraction: Double
    public var packsRead: Int
    /// Bytes read and verified (packs and WAL files).
    public var bytesRead: Int
    public var walFilesRead: Int
    /// For a subset read only: the first 8 bytes of each pack read, concatenated, base64.
    /// Absent when nothing or everything was read (a full read covers every pack older than
    /// `started`).
    public var packsReadPrefixes: String?

    public var ok: Bool { errors == 0 }
    /// True for `--read-data`: every pack that existed when the check started was read.
    public var readAll: Bool { readDataFraction >= 1 }

    public init(started: String, time: String, host: String, username: String, program: String, seconds: Double,
                errors: Int, snapshots: Int, packs: Int, readDataFraction: Double, packsRead: Int, bytesRead: Int,
                walFilesRead: Int, packsReadPrefixes: String? = nil) {
        self.started = started; self.time = time; self.host = host; self.username = username; self.program = program
        self.seconds = seconds; self.errors = errors; self.snapshots = snapshots; self.packs = packs
        self.readDataFraction = readDataFraction; self.packsRead = packsRead; self.bytesRead = bytesRead
        self.walFilesRead = walFilesRead; self.packsReadPrefixes = packsReadPrefixes
    }

    /// Pack name prefixes (8 bytes each) of `packsReadPrefixes`; empty when absent or malformed.
    public var readPrefixes: Set<UInt64> {
        guard let text = packsReadPrefixes, let data = Data(base64Encoded: text), data.count % 8 == 0 else { return [] }
        var out = Set<UInt64>()
        let bytes = [UInt8](data)
        for i in stride(from: 0, to: bytes.count, by: 8) { out.insert(Self.prefix(bytes[i..<(i + 8)])) }
        return out
    }

    /// The first 8 bytes of a pack name as one number (big-endian, so it sorts like the name).
    public static func prefix<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// `packsReadPrefixes` for these pack names (32-byte hashes as byte arrays).
    public static func encodePrefixes(_ names: [[UInt8]]) -> String {
        Data(names.map { Array($0.prefix(8)) }.sorted { $0.lexicographicallyPrecedes($1) }.joined()).base64EncodedString()
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return Array(try enc.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> CheckRecord {
        try JSONDecoder().decode(CheckRecord.self, from: Data(bytes))
    }
}
