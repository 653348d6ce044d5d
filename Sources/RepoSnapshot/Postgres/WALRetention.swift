public import Foundation

/// Which archived WAL files retention keeps (FORMAT.md §27.5): a pure function of the archive's
/// file names, the base backups that remain after `forget`, and the hot tier's horizon.
public enum WALRetention {
    /// A base backup that remains.
    public struct Backup: Sendable {
        public var id: String
        public var date: Date
        public var info: PostgresBackup

        public init(id: String, date: Date, info: PostgresBackup) { self.id = id; self.date = date; self.info = info }
    }

    /// One decision, with the reason `forget --dry-run` prints.
    public struct Decision: Sendable, Equatable {
        public var file: WALFileName
        public var keep: Bool
        public var reason: String
    }

    /// Decides every file of `files`. `hotHorizon`: snapshots after it are in the hot tier
    /// (nil when the policy has no hot tier).
    public static func plan(files: [WALFileName], remaining: [Backup], hotHorizon: Date?) -> [Decision] {
        guard let segmentSize = remaining.first?.info.walSegmentSize else {
            return files.map { Decision(file: $0, keep: true, reason: "no base backup remains: WAL is kept until one needs it") }
        }
        let oldestFirst = remaining.sorted { ($0.info.startLSN, $0.date) < ($1.info.startLSN, $1.date) }
        let hot = hotHorizon.flatMap { h in oldestFirst.first { $0.date > h } }
        let anchor = hot ?? oldestFirst.last!
        let windowStart = anchor.info.startLSN.segment(size: segmentSize)
        let windowReason = "in the point-in-time recovery window, from base backup \(anchor.id.prefix(8)) "
            + (hot != nil ? "(the oldest in the hot tier)" : "(the newest; none is in the hot tier)")
        var needs: [(backup: Backup, timeline: UInt32, range: ClosedRange<UInt64>, backupFile: String)] = []
        for b in remaining {
            guard let start = WALFileName(b.info.startWAL), let stop = WALFileName(b.info.stopWAL) else { continue }
            let first = start.segmentNumber(segmentSize: segmentSize), last = stop.segmentNumber(segmentSize: segmentSize)
            guard first <= last else { continue }
            let offset = b.info.startLSN.value % UInt64(segmentSize)
            needs.append((b, b.info.timeline, first...last, start.text + "." + WALFileName.hex8(UInt32(offset)) + ".backup"))
        }
        return files.map { file in
            if file.kind == .history { return Decision(file: file, keep: true, reason: "timeline history") }
            let number = file.segmentNumber(segmentSize: segmentSize)
            for n in needs where n.timeline == file.timeline && n.range.contains(number) {
                if file.kind == .segment || file.text == n.backupFile {
                    return Decision(file: file, keep: true, reason: "needed by base backup \(n.backup.id.prefix(8)) to be consistent")
                }
            }
            if number >= windowStart { return Decision(file: file, keep: true, reason: windowReason) }
            return Decision(file: file, keep: false,
                            reason: "before the recovery window (it starts at \(anchor.info.startWAL)) and needed by no remaining base backup")
        }
    }
}
