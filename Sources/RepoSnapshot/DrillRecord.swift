public import Foundation

/// The outcome of one restore drill: a snapshot restored somewhere scratch and checked
/// (FORMAT.md §30). `repo status` shows each group's newest; `repo drill` (`RestoreDrill`)
/// writes them. Serialized as JSON with sorted keys and sealed as kind `drill` (`RDR1`,
/// folder `drills/`).
///
/// The drilled snapshot's group fields are copied in, so the record still belongs to its group
/// after retention has forgotten the snapshot itself.
public struct DrillRecord: Codable, Sendable, Equatable {
    public var version: Int = 1
    /// RFC 3339 time the drill finished (storage's clock), and who ran it.
    public var time: String
    public var host: String
    public var username: String
    public var program: String
    /// Full hex id of the snapshot restored, and its group fields (§13).
    public var snapshot: String
    public var snapshotTime: String
    public var snapshotHost: String
    public var snapshotName: String?
    public var snapshotPaths: [String]?
    /// What was drilled: `postgres` (a pg_dump restored into PostgreSQL), `tree` (restored into a
    /// directory) or `stream` (read back and checked against its SHA-256).
    public var kind: String
    /// True when the restore finished and every check passed.
    public var ok: Bool
    /// Seconds the restore took: the measured recovery time (RTO).
    public var restoreSeconds: Double
    /// Checks run and checks failed (row counts, user queries, file hashes).
    public var checks: Int
    public var failedChecks: Int
    /// One line on what failed, when something did.
    public var message: String?

    public init(time: String, host: String, username: String, program: String, snapshot: String, snapshotTime: String,
                snapshotHost: String, snapshotName: String?, snapshotPaths: [String]?, kind: String, ok: Bool,
                restoreSeconds: Double, checks: Int, failedChecks: Int, message: String? = nil) {
        self.time = time; self.host = host; self.username = username; self.program = program
        self.snapshot = snapshot; self.snapshotTime = snapshotTime; self.snapshotHost = snapshotHost
        self.snapshotName = snapshotName; self.snapshotPaths = snapshotPaths; self.kind = kind; self.ok = ok
        self.restoreSeconds = restoreSeconds; self.checks = checks; self.failedChecks = failedChecks; self.message = message
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return Array(try enc.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> DrillRecord {
        try JSONDecoder().decode(DrillRecord.self, from: Data(bytes))
    }
}
