import ArgumentParser
import RepoRepository
import RepoSnapshot
import RepoOperations
import Foundation

extension RepoCommand {
    struct PgStatus: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pg-status",
            abstract: "Show the PostgreSQL WAL archive: timelines, gaps, base backups and recoverable windows.",
            discussion: """
                Exits 1, naming each problem, when a base backup's WAL is incomplete, when a gap lies \
                after the newest base backup (recovery cannot reach the latest point), or when WAL \
                is archived but no base backup exists. Gaps between older base backups are what \
                retention leaves and are listed without failing. Window ends are the archive times \
                of their last segments, so "to" is approximate (FORMAT.md §27).
                """)

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, command: "pg-status", readOnly: true)
            defer { lock?.release() }
            let archive = WALArchive(backend: repo.backend, config: repo.config, key: repo.key)
            let cluster = try archive.cluster()
            let status = try archive.status(backups: try repo.baseBackups())
            if global.json {
                try Console.printJSON(PgStatusJSON(cluster: cluster, status: status))
            } else {
                printText(cluster: cluster, status: status)
            }
            if !status.problems.isEmpty {
                if global.json { for p in status.problems { Console.line("repo: problem: \(p)") } }
                throw ExitCode(1)
            }
        }

        private func printText(cluster: WALArchive.Cluster?, status: WALStatus) {
            let local = DateFormatter()
            local.dateFormat = "yyyy-MM-dd HH:mm:ss"
            func when(_ d: Date?) -> String { d.map { local.string(from: $0) } ?? "?" }
            guard let cluster else {
                print("no WAL archived yet (set archive_command = 'repo wal-push %p'; see README, \"PostgreSQL point-in-time recovery\")")
                for p in status.problems { print("PROBLEM: \(p)") }
                return
            }
            print("cluster \(cluster.systemIdentifier), \(cluster.walSegmentSize >> 20) MiB segments, archived here since \(cluster.created) (first from \(cluster.host))")
            print("\ntimelines:")
            for t in status.timelines {
                let origin = t.parent.map { " (from \($0) at \(t.switchpoint!))" } ?? ""
                if let first = t.first, let last = t.last {
                    let span = first == last ? first : "\(first) … \(last)"
                    print("  \(t.timeline)\(origin): \(span), \(t.segments) segment\(t.segments == 1 ? "" : "s"), last archived \(when(t.lastArchived))")
                } else {
                    print("  \(t.timeline)\(origin): no segments")
                }
            }
            if !status.gaps.isEmpty {
                print("\ngaps:")
                for g in status.gaps {
                    print("  timeline \(g.timeline): \(g.from)\(g.count > 1 ? " … " + g.to : "") (\(g.count) segment\(g.count == 1 ? "" : "s"))\(g.harmsRecovery ? "  <- blocks recovery to the latest point" : "  (between older base backups; retention)")")
                }
            }
            print("\nbase backups:")
            if status.backups.isEmpty { print("  none") }
            for b in status.backups {
                let state = b.missing.isEmpty ? "WAL complete" : "WAL INCOMPLETE: \(b.missing.count) segments missing"
                let span = b.info.startWAL == b.info.stopWAL ? b.info.startWAL : "\(b.info.startWAL) … \(b.info.stopWAL)"
                print("  \(b.id.prefix(8))  \(when(b.date))  timeline \(b.info.timeline)  \(span)  \(state)")
            }
            print("\nrecoverable windows:")
            if status.windows.isEmpty { print("  none") }
            for w in Self.merged(status.windows) {
                print("  timeline \(w.timeline): \(w.from) (\(w.fromTime ?? "branch point")) → \(w.to) (≈ \(when(w.toArchived)))")
            }
            for p in status.problems { print("\nPROBLEM: \(p)") }
        }

        /// Windows of one timeline that overlap or touch, merged into one.
        static func merged(_ windows: [WALStatus.Window]) -> [WALStatus.Window] {
            var out: [WALStatus.Window] = []
            for w in windows.sorted(by: { ($0.timeline, $0.from) < ($1.timeline, $1.from) }) {
                if let last = out.last, last.timeline == w.timeline, w.from <= last.to {
                    if w.to > last.to { out[out.count - 1].to = w.to; out[out.count - 1].toArchived = w.toArchived }
                } else {
                    out.append(w)
                }
            }
            return out
        }
    }
}

/// `repo pg-status --json` (README, "PostgreSQL point-in-time recovery").
struct PgStatusJSON: Encodable {
    struct Cluster: Encodable { var system_identifier: String; var wal_segment_size: Int; var created: String; var host: String }
    struct Timeline: Encodable {
        var timeline: UInt32; var parent: UInt32?; var switchpoint: String?
        var first: String?; var last: String?; var segments: Int; var last_archived: String?
    }
    struct Gap: Encodable { var timeline: UInt32; var from: String; var to: String; var segments: Int; var blocks_recovery: Bool }
    struct Backup: Encodable {
        var id: String; var time: String; var timeline: UInt32; var start_lsn: String; var stop_lsn: String
        var start_wal: String; var stop_wal: String; var stop_time: String; var missing_wal: [String]
    }
    struct Window: Encodable { var timeline: UInt32; var backup: String; var from_lsn: String; var from_time: String?; var to_lsn: String; var to_archived: String? }
    var cluster: Cluster?
    var timelines: [Timeline]
    var gaps: [Gap]
    var backups: [Backup]
    var windows: [Window]
    var problems: [String]

    init(cluster c: WALArchive.Cluster?, status s: WALStatus) {
        cluster = c.map { Cluster(system_identifier: $0.systemIdentifier, wal_segment_size: $0.walSegmentSize, created: $0.created, host: $0.host) }
        timelines = s.timelines.map {
            Timeline(timeline: $0.timeline, parent: $0.parent, switchpoint: $0.switchpoint?.description, first: $0.first, last: $0.last,
                     segments: $0.segments, last_archived: $0.lastArchived.map(Timestamp.format))
        }
        gaps = s.gaps.map { Gap(timeline: $0.timeline, from: $0.from, to: $0.to, segments: $0.count, blocks_recovery: $0.harmsRecovery) }
        backups = s.backups.map {
            Backup(id: $0.id, time: Timestamp.format($0.date), timeline: $0.info.timeline, start_lsn: $0.info.startLSN.description,
                   stop_lsn: $0.info.stopLSN.description, start_wal: $0.info.startWAL, stop_wal: $0.info.stopWAL,
                   stop_time: $0.info.stopTime, missing_wal: $0.missing)
        }
        windows = s.windows.map {
            Window(timeline: $0.timeline, backup: $0.backup, from_lsn: $0.from.description, from_time: $0.fromTime,
                   to_lsn: $0.to.description, to_archived: $0.toArchived.map(Timestamp.format))
        }
        problems = s.problems
    }
}
