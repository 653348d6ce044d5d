public import Foundation

/// What the WAL archive and the base backups allow to recover (`repo pg-status`): timelines
/// with the segments stored, gaps, each base backup's WAL, and the recoverable windows. A
/// pure function of names, archive times, histories and backup records.
public struct WALStatus: Sendable {
    public struct Timeline: Sendable, Equatable {
        public var timeline: UInt32
        /// The timeline it branched from, and where (from its history file).
        public var parent: UInt32?
        public var switchpoint: LSN?
        public var first: String?
        public var last: String?
        public var segments: Int
        public var lastArchived: Date?
    }

    /// Segments missing between two stored ones of a timeline.
    public struct Gap: Sendable, Equatable {
        public var timeline: UInt32
        public var from: String
        public var to: String
        public var count: Int
        /// True when it lies where recovery from the newest base backup must pass.
        public var harmsRecovery: Bool
    }

    public struct Backup: Sendable {
        public var id: String
        public var date: Date
        public var info: PostgresBackup
        /// Segments from startWAL to stopWAL that are not stored.
        public var missing: [String]
    }

    /// A stretch of WAL positions on one timeline that some base backup can be recovered to.
    public struct Window: Sendable, Equatable {
        public var timeline: UInt32
        /// From the end of the backup (or the branch point), to the end of the last
        /// contiguous segment stored.
        public var from: LSN
        public var to: LSN
        /// The backup's stop time, for windows that begin at one.
        public var fromTime: String?
        /// When the last segment of the window was archived (≈ the latest reachable time).
        public var toArchived: Date?
        public var backup: String
    }

    public var segmentSize: Int?
    public var timelines: [Timeline] = []
    public var gaps: [Gap] = []
    public var backups: [Backup] = []
    public var windows: [Window] = []
    /// Everything that makes `pg-status` exit 1, one line each.
    public var problems: [String] = []

    public init(files: [(name: WALFileName, archived: Date?)], histories: [UInt32: TimelineHistory],
                backups input: [WALRetention.Backup], segmentSize clusterSegmentSize: Int?) {
        segmentSize = clusterSegmentSize ?? input.first?.info.walSegmentSize
        guard let size = segmentSize else {
            if !input.isEmpty || !files.isEmpty { problems.append("the WAL segment size is unknown: nothing was archived by wal-push") }
            return
        }
        var numbers: [UInt32: [UInt64]] = [:]
        var archived: [UInt32: [UInt64: Date]] = [:]
        for f in files where f.name.kind == .segment {
            let n = f.name.segmentNumber(segmentSize: size)
            numbers[f.name.timeline, default: []].append(n)
            if let d = f.archived { archived[f.name.timeline, default: [:]][n] = d }
        }
        for key in numbers.keys { numbers[key]!.sort() }
        let allTimelines = Set(numbers.keys).union(histories.keys).sorted()
        for tli in allTimelines {
            let list = numbers[tli] ?? []
            let parent = histories[tli]?.entries.last
            timelines.append(Timeline(timeline: tli, parent: parent?.timeline, switchpoint: parent?.switchpoint,
                                      first: list.first.map { WALFileName(timeline: tli, segment: $0, segmentSize: size).text },
                                      last: list.last.map { WALFileName(timeline: tli, segment: $0, segmentSize: size).text },
                                      segments: list.count, lastArchived: list.last.flatMap { archived[tli]?[$0] }))
        }
        let present = numbers.mapValues(Set.init)

        // Base backups and the WAL each needs.
        for b in input.sorted(by: { $0.date < $1.date }) {
            var missing: [String] = []
            if let start = WALFileName(b.info.startWAL), let stop = WALFileName(b.info.stopWAL) {
                let first = start.segmentNumber(segmentSize: size), last = stop.segmentNumber(segmentSize: size)
                if first <= last {
                    for n in first...last where present[b.info.timeline]?.contains(n) != true {
                        missing.append(WALFileName(timeline: b.info.timeline, segment: n, segmentSize: size).text)
                    }
                }
            }
            backups.append(Backup(id: b.id, date: b.date, info: b.info, missing: missing))
            if !missing.isEmpty {
                problems.append("base backup \(b.id.prefix(8)) (\(b.info.stopTime)) cannot be made consistent: \(missing.count) of its WAL segments are not archived (\(missing.first!)\(missing.count > 1 ? " … " + missing.last! : ""))")
            }
        }
        if backups.isEmpty && !files.isEmpty {
            problems.append("no base backup: nothing can be recovered from the archived WAL (run `repo pg-backup`)")
        }

        // Where recovery can go from each complete backup: along its timeline while segments
        // are contiguous, and into every child timeline that branches off within that stretch.
        func runEnd(_ tli: UInt32, from n: UInt64) -> UInt64? {
            guard present[tli]?.contains(n) == true else { return nil }
            var end = n
            while present[tli]!.contains(end + 1) { end += 1 }
            return end
        }
        func walk(_ tli: UInt32, from: LSN, fromTime: String?, backup: String) {
            guard let end = runEnd(tli, from: from.segment(size: size)) else { return }
            let endLSN = LSN((end + 1) * UInt64(size))
            windows.append(Window(timeline: tli, from: from, to: endLSN, fromTime: fromTime,
                                  toArchived: archived[tli]?[end], backup: backup))
            for (child, history) in histories where history.entries.last?.timeline == tli {
                // A switchpoint at the very end of the stretch (a segment boundary) is reachable.
                guard let p = history.entries.last?.switchpoint, p >= from, p <= endLSN else { continue }
                walk(child, from: p, fromTime: nil, backup: backup)
            }
        }
        for b in backups where b.missing.isEmpty {
            walk(b.info.timeline, from: b.info.stopLSN, fromTime: b.info.stopTime, backup: b.id)
        }

        // Gaps: a hole between two stored segments of a timeline. Retention leaves such holes
        // between old base backups on purpose; one after the newest backup's start blocks
        // recovery to the latest point.
        let newest = backups.last
        for (tli, list) in numbers.sorted(by: { $0.key < $1.key }) {
            for (a, b) in zip(list, list.dropFirst()) where b > a + 1 {
                let harms = newest.map { n in
                    tli >= n.info.timeline && b > (WALFileName(n.info.startWAL)?.segmentNumber(segmentSize: size) ?? 0)
                } ?? false
                let gap = Gap(timeline: tli, from: WALFileName(timeline: tli, segment: a + 1, segmentSize: size).text,
                              to: WALFileName(timeline: tli, segment: b - 1, segmentSize: size).text, count: Int(b - a - 1),
                              harmsRecovery: harms)
                gaps.append(gap)
                if harms {
                    problems.append("timeline \(tli): \(gap.count) segment\(gap.count == 1 ? "" : "s") missing (\(gap.from)\(gap.count > 1 ? " … " + gap.to : "")) after the newest base backup: recovery cannot pass \(gap.from)")
                }
            }
        }
    }
}
