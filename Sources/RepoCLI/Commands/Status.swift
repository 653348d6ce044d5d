import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoSnapshot
import RepoOperations
import Foundation

extension RepoCommand {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, per group and per WAL timeline, how old the newest restorable point is; exit 1 when one is older than --max-age.",
            discussion: """
                Groups are host + name (streams) and host + paths (trees); each PostgreSQL timeline of \
                the WAL archive is shown too. Per group: the newest snapshot and its age, the sizes of \
                the last snapshots, snapshots per retention tier (the policy `forget` would apply: the \
                repository's default over the built-in one), and the last restore drill. For the \
                repository: the last check, and how much of the stored data checks that read data \
                have covered. Only reads (no lock, nothing written), so it works on a read-only \
                repository.
                With --max-age D (e.g. 26h), every group whose newest snapshot, and the current WAL \
                timeline whose newest restorable WAL, is older than D is late: one line each on \
                stderr, exit 1. --prometheus prints the same as Prometheus metrics (README: Monitoring).
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: SnapshotFilterOptions

        @Option(help: ArgumentHelp("Exit 1, with one line per late group on stderr, when a group's newest snapshot (or the current WAL timeline's newest restorable WAL) is older than D: a number with s, min, h, d or w (e.g. 26h).", valueName: "D"))
        var maxAge: String?

        @Option(help: ArgumentHelp("The limit for the WAL archive's current timeline instead of --max-age (e.g. 15min).", valueName: "D"))
        var maxWalAge: String?

        @Flag(help: "Print the status as Prometheus metrics (text exposition format) instead.")
        var prometheus = false

        func validate() throws {
            if let maxAge { _ = try Self.parseAge(maxAge, flag: "--max-age") }
            if let maxWalAge { _ = try Self.parseAge(maxWalAge, flag: "--max-wal-age") }
            if prometheus && global.json { throw ValidationError("use either --json or --prometheus") }
        }

        /// `AgeLimit` seconds of a flag's value (`26h`), or a usage error naming the flag.
        static func parseAge(_ text: String, flag: String) throws -> TimeInterval {
            guard let s = AgeLimit.seconds(text) else { throw ValidationError("\(flag): \(AgeLimit.invalidReason(text) ?? text)") }
            return s
        }

        func run() throws {
            let repo = try global.open()
            // Like `snapshots` and `stats`: no lock, so a host that can only read can run it.
            var policy = RetentionPolicy()
            if let stored = try? repo.storedPolicy() { policy = stored.policy }
            let resolved = policy.resolved()
            var op = RepoOperations.Status(repository: repo, policy: resolved.invalidReason == nil ? resolved : RetentionPolicy().resolved(),
                                           now: Date())
            op.filter = filter.snapshotFilter
            // The limit: --max-age, else the repository's default policy's max-age (FORMAT.md §23).
            op.maxAge = try maxAge.map { try Self.parseAge($0, flag: "--max-age") } ?? policy.maxAge.flatMap(AgeLimit.seconds)
            op.maxWALAge = try maxWalAge.map { try Self.parseAge($0, flag: "--max-wal-age") }
            let report = try op.run()
            let metrics = Self.metrics(report)
            CommandMetrics.shared.record { $0.append(metrics) }
            if prometheus {
                print(metrics.text, terminator: "")
            } else if global.json {
                var json = StatusJSON(report)
                json.object_lock = repo.config.objectLock.map { StatusJSON.ObjectLockJSON(mode: $0.mode.rawValue, period: ObjectLock.format($0.period), period_seconds: $0.period) }
                json.key_rotation_started = repo.key.rotationStarted.map(Timestamp.format)
                try Console.printJSON(json)
            } else if !global.quiet {
                printText(report)
                if let lock = repo.config.objectLock {
                    print("object lock  \(lock.mode.rawValue) mode, \(ObjectLock.format(lock.period)): every backup object is retained for that long after it is stored (S3 Object Lock)")
                }
                if let started = repo.key.rotationStarted {
                    print("key rotation under way since \(Timestamp.format(started)): run `repo key rotate` to finish it (README, \"Keys\")")
                }
            }
            if !report.lateLines.isEmpty {
                for l in report.lateLines { Console.line("repo: " + SnapshotLabel.escapedForTable(l)) }
                throw ExitCode(1)
            }
            // A limit on a group that has no snapshot at all (a typo in --name, a job that never
            // ran) is a late group too: a monitor must not read it as fine.
            if let limit = maxAge, report.groups.isEmpty, filter.name != nil || filter.host != nil || !filter.tags.isEmpty {
                let wanted = [filter.name.map { "name " + $0 }, filter.host.map { "host " + $0 }].compactMap { $0 } + filter.tags.map { "tag " + $0 }
                Console.line("repo: late: no snapshot matches " + SnapshotLabel.escapedForTable(wanted.joined(separator: ", ")) + " (--max-age \(limit))")
                throw ExitCode(1)
            }
        }

        private func printText(_ r: RepoOperations.Status.Report) {
            let local = DateFormatter()
            local.dateFormat = "yyyy-MM-dd HH:mm:ss"
            func when(_ d: Date) -> String { "\(local.string(from: d)) (\(RepoOperations.Status.describeAge(r.now.timeIntervalSince(d))) ago)" }
            if r.groups.isEmpty { print("no snapshots" + (filter.name != nil || filter.host != nil || !filter.tags.isEmpty ? " match" : "")) }
            for g in r.groups {
                print("\(SnapshotLabel.escapedForTable(g.label)) (\(g.name != nil ? "stream" : "tree"))\(g.late ? "  LATE" : "")")
                print("  newest     \(g.latest.id.shortHex)  \(when(g.latest.date))")
                var size = "  size       \(Format.bytes(g.latest.size)), added \(Format.bytes(g.latest.newBytes))"
                if g.trend.count > 1 {
                    size += "; last \(g.trend.count): " + g.trend.map { Format.bytes($0.size) }.joined(separator: ", ")
                    if let change = StatusJSON.change(g.trend) { size += String(format: " (%+.1f%% on the one before)", change * 100) }
                }
                print(size)
                print("  snapshots  \(g.snapshots): hot \(g.tiers[.hot] ?? 0), warm \(g.tiers[.warm] ?? 0), cold \(g.tiers[.cold] ?? 0), expired \(g.tiers[.expired] ?? 0); the policy keeps \(g.policyKeeps), forgets \(g.policyForgets)")
                if let d = g.lastDrill, let t = Timestamp.parse(d.time) {
                    print("  drill      \(when(t)): \(d.ok ? "passed" : "FAILED"), \(d.kind) restore of \(d.snapshot.prefix(8)) in \(String(format: "%.1f", d.restoreSeconds)) s, \(d.checks - d.failedChecks)/\(d.checks) checks passed")
                } else {
                    print("  drill      never")
                }
            }
            for t in r.timelines {
                print("WAL timeline \(t.timeline)\(t.current ? " (current)" : "")\(t.late ? "  LATE" : ""): \(t.segments) segment\(t.segments == 1 ? "" : "s"), newest \(t.lastSegment ?? "-")")
                print("  archived   \(t.lastArchived.map(when) ?? "unknown")")
                print("  recovery   \(t.recoveryPoint.map { "to " + when($0) } ?? "no complete base backup reaches this timeline")")
            }
            for p in r.walProblems { print("WAL PROBLEM: \(p)") }
            let c = r.checks
            func describe(_ k: CheckRecord) -> String {
                let t = Timestamp.parse(k.time).map(when) ?? k.time
                let read = k.readAll ? "read all data" : k.readDataFraction > 0 ? String(format: "read %g%% of the packs", k.readDataFraction * 100) : "structure only"
                return "\(t) on \(k.host), \(read), \(k.ok ? "no errors" : "\(k.errors) ERRORS")"
            }
            print("check")
            print("  last       \(c.last.map(describe) ?? "never")")
            if let ok = c.lastOK, ok.time != c.last?.time { print("  last ok    \(describe(ok))") }
            if c.last != nil && c.lastOK == nil { print("  last ok    never") }
            print("  full read  \(c.lastFullRead.map(describe) ?? "never")")
            if c.packBytes > 0 {
                let since = c.coveredSince.map { " since " + local.string(from: $0) } ?? ""
                print(String(format: "  coverage   %.1f%% of the %@ of packs stored now was read by passing checks", 100 * Double(c.coveredBytes) / Double(c.packBytes), Format.bytes(c.packBytes)) + since)
            }
            if r.damagedSnapshots > 0 { print("\(r.damagedSnapshots) snapshot object(s) cannot be read: run `repo check`") }
        }

        /// The status as Prometheus metrics (README, "Monitoring", lists each).
        static func metrics(_ r: RepoOperations.Status.Report) -> PrometheusText {
            var m = PrometheusText()
            func ts(_ d: Date?) -> Double? { d.map { $0.timeIntervalSince1970 } }
            for g in r.groups {
                let l = CommandMetrics.groupLabels(host: g.host, name: g.name, paths: g.paths)
                m.add("repo_snapshot_last_timestamp_seconds", "Time of the group's newest snapshot (Unix time).", labels: l, ts(g.latest.date))
                m.add("repo_snapshot_last_size_bytes", "Content bytes of the group's newest snapshot.", labels: l, Double(g.latest.size))
                m.add("repo_snapshot_last_added_bytes", "Bytes the group's newest snapshot added to the repository.", labels: l, Double(g.latest.newBytes))
                m.add("repo_recovery_point_age_seconds", "Age of the newest restorable point when status ran: the group's newest snapshot, or the end of the newest recoverable WAL.",
                      labels: l + [("timeline", "")], r.now.timeIntervalSince(g.recoveryPoint))
                for tier in [RetentionDecision.Tier.hot, .warm, .cold, .expired] {
                    m.add("repo_snapshots", "Snapshots of the group per retention tier, as forget would see them now.",
                          labels: l + [("tier", tier.rawValue)], Double(g.tiers[tier] ?? 0))
                }
                if let d = g.lastDrill {
                    m.add("repo_drill_last_timestamp_seconds", "When the group's newest restore drill ended (Unix time).", labels: l, ts(Timestamp.parse(d.time)))
                    m.add("repo_drill_last_success", "1 if the group's newest restore drill passed, else 0.", labels: l, d.ok ? 1 : 0)
                    m.add("repo_drill_last_restore_seconds", "Restore time (RTO) measured by the group's newest drill.", labels: l, d.restoreSeconds)
                }
                if r.maxAge != nil { m.add("repo_group_late", "1 if the group's newest snapshot is older than --max-age, else 0.", labels: l, g.late ? 1 : 0) }
            }
            for t in r.timelines {
                let l = [("timeline", String(t.timeline))]
                m.add("repo_wal_last_archived_timestamp_seconds", "When the timeline's newest WAL segment was archived (Unix time, storage clock).", labels: l, ts(t.lastArchived))
                m.add("repo_wal_archive_lag_seconds", "Seconds since the timeline's newest WAL segment was archived, when status ran.",
                      labels: l, t.lastArchived.map { r.now.timeIntervalSince($0) })
                m.add("repo_wal_recovery_point_timestamp_seconds", "End of the newest WAL a complete base backup can be recovered to (Unix time, approximate).",
                      labels: l, ts(t.recoveryPoint))
                m.add("repo_recovery_point_age_seconds", "Age of the newest restorable point when status ran: the group's newest snapshot, or the end of the newest recoverable WAL.",
                      labels: [("host", ""), ("name", ""), ("paths", ""), ("timeline", String(t.timeline))], t.recoveryPoint.map { r.now.timeIntervalSince($0) })
                m.add("repo_wal_segments", "WAL segments archived on the timeline.", labels: l, Double(t.segments))
                m.add("repo_wal_timeline_current", "1 for the highest timeline (the one archived to now), else 0.", labels: l, t.current ? 1 : 0)
                if r.maxWALAge != nil && t.current { m.add("repo_wal_late", "1 if the current timeline's newest restorable WAL is older than the limit, else 0.", labels: l, t.late ? 1 : 0) }
            }
            if !r.timelines.isEmpty {
                m.add("repo_wal_problems", "Problems repo pg-status reports (gaps that block recovery, incomplete base backups).", Double(r.walProblems.count))
            }
            let c = r.checks
            m.add("repo_check_last_timestamp_seconds", "When the newest recorded check ended (Unix time).", ts(c.last.flatMap { Timestamp.parse($0.time) }))
            m.add("repo_check_last_errors", "Integrity errors the newest recorded check found.", c.last.map { Double($0.errors) })
            m.add("repo_check_last_success_timestamp_seconds", "When the newest check without errors ended (Unix time).", ts(c.lastOK.flatMap { Timestamp.parse($0.time) }))
            m.add("repo_check_last_full_read_timestamp_seconds", "When the newest check --read-data without errors ended (Unix time).",
                  ts(c.lastFullRead.flatMap { Timestamp.parse($0.time) }))
            m.add("repo_check_read_data_covered_bytes", "Bytes of the packs stored now that passing checks among the retained records have read.", Double(c.coveredBytes))
            m.add("repo_pack_bytes", "Bytes of packs in the repository.", Double(c.packBytes))
            m.add("repo_check_read_data_coverage_ratio", "repo_check_read_data_covered_bytes / repo_pack_bytes (1 with no packs).",
                  c.packBytes > 0 ? Double(c.coveredBytes) / Double(c.packBytes) : 1)
            m.add("repo_snapshots_damaged", "Snapshot objects that cannot be read.", Double(r.damagedSnapshots))
            m.add("repo_status_late", "Groups and WAL timelines older than their limit (0 without --max-age).", Double(r.lateLines.count))
            return m
        }
    }
}

/// `repo status --json` (README, "Monitoring"). Every key is always present; null where a
/// value does not apply.
struct StatusJSON: Encodable {
    struct Point: Encodable {
        var id: String; var short_id: String; var time: String; var age_seconds: Double; var size: Int; var new_bytes: Int
    }
    struct Drill: Encodable {
        var time: String; @JSONNullable var age_seconds: Double?; var host: String; var snapshot: String; var kind: String; var ok: Bool
        var restore_seconds: Double; var checks: Int; var failed_checks: Int; @JSONNullable var message: String?
    }
    struct Tiers: Encodable { var hot: Int; var warm: Int; var cold: Int; var expired: Int }
    struct Group: Encodable {
        var kind: String; var host: String; @JSONNullable var name: String?; @JSONNullable var paths: [String]?; var snapshots: Int
        var latest: Point; var size_trend: [Point]; @JSONNullable var size_change: Double?
        var tiers: Tiers; var policy_keeps: Int; var policy_forgets: Int
        var recovery_point: String; var recovery_point_age_seconds: Double
        @JSONNullable var last_drill: Drill?; var late: Bool
    }
    struct Timeline: Encodable {
        var timeline: UInt32; var current: Bool; var segments: Int; @JSONNullable var last_segment: String?
        @JSONNullable var last_archived: String?; @JSONNullable var archive_lag_seconds: Double?
        @JSONNullable var recovery_point: String?; @JSONNullable var recovery_point_age_seconds: Double?; var late: Bool
    }
    struct Check: Encodable {
        var time: String; @JSONNullable var age_seconds: Double?; var host: String; var ok: Bool; var errors: Int
        var read_data: String; var read_data_fraction: Double; var packs_read: Int; var bytes_read: Int; var seconds: Double
    }
    struct Checks: Encodable {
        @JSONNullable var last: Check?; @JSONNullable var last_ok: Check?; @JSONNullable var last_full_read: Check?; var records: Int; var bytes_read: Int
        var covered_bytes: Int; var pack_bytes: Int; var coverage: Double; @JSONNullable var covered_since: String?
    }
    var now: String
    @JSONNullable var max_age_seconds: Double?
    @JSONNullable var max_wal_age_seconds: Double?
    var groups: [Group]
    var wal: [Timeline]
    var wal_problems: [String]
    var check: Checks
    var damaged_snapshots: Int
    var late: [String]
    /// The repository's S3 Object Lock setting (FORMAT.md §31), null without one.
    struct ObjectLockJSON: Encodable { var mode: String; var period: String; var period_seconds: Int }
    @JSONNullable var object_lock: ObjectLockJSON? = nil
    /// When a master-key rotation still under way began (FORMAT.md §7.6), null without one.
    @JSONNullable var key_rotation_started: String? = nil

    /// The newest size against the one before, as a fraction (0.05 = 5 % larger); nil for one
    /// snapshot or a previous size of 0.
    static func change(_ trend: [RepoOperations.Status.Point]) -> Double? {
        guard trend.count > 1, trend[trend.count - 2].size > 0 else { return nil }
        return Double(trend[trend.count - 1].size) / Double(trend[trend.count - 2].size) - 1
    }

    init(_ r: RepoOperations.Status.Report) {
        func age(_ d: Date?) -> Double? { d.map { r.now.timeIntervalSince($0) } }
        func point(_ p: RepoOperations.Status.Point) -> Point {
            Point(id: p.id.hex, short_id: p.id.shortHex, time: Timestamp.format(p.date), age_seconds: r.now.timeIntervalSince(p.date),
                  size: p.size, new_bytes: p.newBytes)
        }
        func checkJSON(_ k: CheckRecord?) -> Check? {
            k.map {
                Check(time: $0.time, age_seconds: age(Timestamp.parse($0.time)), host: $0.host, ok: $0.ok, errors: $0.errors,
                      read_data: $0.readAll ? "all" : $0.readDataFraction > 0 ? "subset" : "none",
                      read_data_fraction: $0.readDataFraction, packs_read: $0.packsRead, bytes_read: $0.bytesRead, seconds: $0.seconds)
            }
        }
        now = Timestamp.format(r.now)
        max_age_seconds = r.maxAge
        max_wal_age_seconds = r.timelines.isEmpty ? nil : r.maxWALAge
        groups = r.groups.map { g in
            Group(kind: g.name != nil ? "stream" : "tree", host: g.host, name: g.name, paths: g.paths, snapshots: g.snapshots,
                  latest: point(g.latest), size_trend: g.trend.map(point), size_change: Self.change(g.trend),
                  tiers: Tiers(hot: g.tiers[.hot] ?? 0, warm: g.tiers[.warm] ?? 0, cold: g.tiers[.cold] ?? 0, expired: g.tiers[.expired] ?? 0),
                  policy_keeps: g.policyKeeps, policy_forgets: g.policyForgets,
                  recovery_point: Timestamp.format(g.recoveryPoint), recovery_point_age_seconds: r.now.timeIntervalSince(g.recoveryPoint),
                  last_drill: g.lastDrill.map {
                      Drill(time: $0.time, age_seconds: age(Timestamp.parse($0.time)), host: $0.host, snapshot: $0.snapshot, kind: $0.kind,
                            ok: $0.ok, restore_seconds: $0.restoreSeconds, checks: $0.checks, failed_checks: $0.failedChecks, message: $0.message)
                  },
                  late: g.late)
        }
        wal = r.timelines.map {
            Timeline(timeline: $0.timeline, current: $0.current, segments: $0.segments, last_segment: $0.lastSegment,
                     last_archived: $0.lastArchived.map(Timestamp.format), archive_lag_seconds: age($0.lastArchived),
                     recovery_point: $0.recoveryPoint.map(Timestamp.format), recovery_point_age_seconds: age($0.recoveryPoint), late: $0.late)
        }
        wal_problems = r.walProblems
        let c = r.checks
        self.check = Checks(last: checkJSON(c.last), last_ok: checkJSON(c.lastOK), last_full_read: checkJSON(c.lastFullRead), records: c.records,
                       bytes_read: c.bytesRead, covered_bytes: c.coveredBytes, pack_bytes: c.packBytes,
                       coverage: c.packBytes > 0 ? Double(c.coveredBytes) / Double(c.packBytes) : 1,
                       covered_since: c.coveredSince.map(Timestamp.format))
        damaged_snapshots = r.damagedSnapshots
        late = r.lateLines
    }
}

/// An optional that `Encodable` writes as `null` when absent, instead of leaving the key out
/// (README, "JSON output": every key is always present).
@propertyWrapper
struct JSONNullable<T: Encodable>: Encodable {
    var wrappedValue: T?

    init(wrappedValue: T?) { self.wrappedValue = wrappedValue }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}
