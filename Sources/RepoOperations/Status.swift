public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
public import Foundation

/// `repo status`: per group of snapshots (host + name for streams, host + paths for trees) and
/// per PostgreSQL timeline of the WAL archive, how fresh the newest restorable point is, how
/// sizes move, what the retention policy makes of the group, and when the repository was last
/// checked and drilled (README, "Monitoring"). Only reads: no lock, no write, so it runs from a
/// host that can only read the repository.
public struct Status {
    public var repository: Repository
    /// A resolved retention policy (`RetentionPolicy.resolved`), the one `forget` would apply.
    public var policy: RetentionPolicy
    public var now: Date
    /// Only snapshot groups with matching snapshots are shown (WAL timelines are always shown
    /// unless `includeWAL` is false).
    public var filter = SnapshotFilter()
    public var includeWAL = true
    /// A group whose newest restorable point is older than this is late (nil: none is).
    public var maxAge: TimeInterval?
    /// The same for the WAL archive's current timeline (nil: `maxAge`).
    public var maxWALAge: TimeInterval?
    /// How many of a group's newest snapshots the size trend shows.
    public static let trendLength = 5

    public init(repository: Repository, policy: RetentionPolicy, now: Date) {
        self.repository = repository; self.policy = policy; self.now = now
    }

    /// One snapshot as the trend shows it.
    public struct Point: Sendable {
        public var id: Hash256
        public var date: Date
        /// Content bytes, and bytes it added to the repository.
        public var size: Int
        public var newBytes: Int
    }

    public struct Group: Sendable {
        public var host: String
        /// Set for streams (`store`).
        public var name: String?
        /// Set for trees (`backup`, `pg-backup`).
        public var paths: [String]?
        public var snapshots: Int
        public var latest: Point
        /// The newest `trendLength` snapshots, oldest first (the last is `latest`).
        public var trend: [Point]
        /// Snapshots per tier (hot, warm, cold, expired) as `forget` would see them now, and
        /// how many it would keep and forget.
        public var tiers: [RetentionDecision.Tier: Int]
        public var policyKeeps: Int
        public var policyForgets: Int
        /// The newest drill of a snapshot of this group; nil: never drilled.
        public var lastDrill: DrillRecord?
        public var late: Bool
        /// The group's label, e.g. `db1 db.sql` or `db1 /srv/a,/srv/b`.
        public var label: String { host + " " + (name ?? (paths ?? []).joined(separator: ",")) }
        /// Its newest restorable point: the newest snapshot.
        public var recoveryPoint: Date { latest.date }
    }

    /// One timeline of the WAL archive.
    public struct Timeline: Sendable {
        public var timeline: UInt32
        public var segments: Int
        public var lastSegment: String?
        /// When the newest segment was archived (storage's clock).
        public var lastArchived: Date?
        /// The newest point a complete base backup can be recovered to on this timeline: the
        /// end of its newest reachable segment (≈ its archive time); nil: none is reachable.
        public var recoveryPoint: Date?
        /// The highest timeline: the one the cluster archives to now.
        public var current: Bool
        public var late: Bool
    }

    /// What the retained check records say (FORMAT.md §30).
    public struct Checks: Sendable {
        /// The newest check, the newest that passed, and the newest passing `--read-data`.
        public var last: CheckRecord?
        public var lastOK: CheckRecord?
        public var lastFullRead: CheckRecord?
        /// Records kept in the repository, and the bytes their checks read.
        public var records: Int
        public var bytesRead: Int
        /// Of the packs stored now: bytes read by a passing check among the retained records
        /// (a full read covers every pack older than it; a subset, the packs it lists), the
        /// total, and the start of the oldest such check.
        public var coveredBytes: Int
        public var packBytes: Int
        public var coveredSince: Date?
    }

    public struct Report: Sendable {
        public var now: Date
        public var groups: [Group]
        public var timelines: [Timeline]
        /// `pg-status` problems of the WAL archive (gaps that block recovery, …).
        public var walProblems: [String]
        public var checks: Checks
        /// Snapshot objects that could not be read (their group is unknown).
        public var damagedSnapshots: Int
        public var maxAge: TimeInterval?
        public var maxWALAge: TimeInterval?
        /// One line per late group or timeline.
        public var lateLines: [String]
    }

    public func run() throws -> Report {
        let (entries, damaged) = try repository.snapshotsAndDamage()
        let drills = (try? repository.drillRecords()) ?? []
        var groups = try snapshotGroups(entries, drills: drills.map(\.record))
        let (timelines, problems) = try includeWAL ? walTimelines() : ([], [])
        let checks = try checkSummary()

        var late: [String] = []
        func age(_ d: Date) -> String { Status.describeAge(now.timeIntervalSince(d)) }
        if let maxAge {
            for i in groups.indices where now.timeIntervalSince(groups[i].latest.date) > maxAge {
                groups[i].late = true
                late.append("late: \(groups[i].label): newest snapshot \(groups[i].latest.id.shortHex) is \(age(groups[i].latest.date)) old (max \(Status.describeAge(maxAge)))")
            }
        }
        var tls = timelines
        if let limit = maxWALAge ?? maxAge, let i = tls.firstIndex(where: \.current) {
            let point = tls[i].recoveryPoint
            if let point, now.timeIntervalSince(point) > limit {
                tls[i].late = true
                late.append("late: WAL timeline \(tls[i].timeline): newest restorable WAL is \(age(point)) old (max \(Status.describeAge(limit)))")
            } else if point == nil {
                tls[i].late = true
                late.append("late: WAL timeline \(tls[i].timeline): no archived WAL can be recovered (no complete base backup reaches it)")
            }
        }
        return Report(now: now, groups: groups, timelines: tls, walProblems: problems, checks: checks,
                      damagedSnapshots: damaged.count, maxAge: maxAge, maxWALAge: maxWALAge ?? maxAge, lateLines: late)
    }

    /// The groups of snapshots matching `filter`, ordered by host, then name or paths.
    private func snapshotGroups(_ entries: [SnapshotEntry], drills: [DrillRecord]) throws -> [Group] {
        // Tiers and decisions over every snapshot, grouped as the policy groups them: what
        // `forget` would decide (pins included; an unreadable pin makes forget refuse, and
        // here only loses the pins).
        var pinned: [String: Pin] = [:]
        for p in ((try? repository.pins()) ?? []).map(\.pin) {
            let until = p.until.flatMap(Timestamp.parse) ?? .distantFuture
            if let old = pinned[p.snapshot], (old.until.flatMap(Timestamp.parse) ?? .distantFuture) >= until { continue }
            pinned[p.snapshot] = p
        }
        let candidates = entries.map { e in
            RetentionCandidate(id: e.id.hex, time: e.date, host: e.snapshot.host, name: e.snapshot.name, paths: e.snapshot.paths,
                               tags: e.snapshot.tags, isPinned: pinned[e.id.hex] != nil,
                               pinUntil: pinned[e.id.hex]?.until.flatMap(Timestamp.parse), pinReason: pinned[e.id.hex]?.reason)
        }
        let decisions = policy.decide(candidates, now: now)

        struct Key: Hashable { var host: String; var name: String?; var paths: [String]? }
        func key(host: String, name: String?, paths: [String]?) -> Key {
            name != nil ? Key(host: host, name: name, paths: nil) : Key(host: host, name: nil, paths: paths ?? [])
        }
        var members: [Key: [(SnapshotEntry, RetentionDecision)]] = [:]
        for (e, d) in zip(entries, decisions) where filter.matches(e.snapshot) {
            members[key(host: e.snapshot.host, name: e.snapshot.name, paths: e.snapshot.paths), default: []].append((e, d))
        }
        var newestDrill: [Key: DrillRecord] = [:]
        for d in drills {   // oldest first: the last one wins
            newestDrill[key(host: d.snapshotHost, name: d.snapshotName, paths: d.snapshotPaths)] = d
        }
        var out: [Group] = []
        for (k, list) in members {
            let sorted = list.sorted { ($0.0.date, $0.0.id) < ($1.0.date, $1.0.id) }
            let points = sorted.suffix(Self.trendLength).map {
                Point(id: $0.0.id, date: $0.0.date, size: $0.0.snapshot.stats.totalBytes, newBytes: $0.0.snapshot.stats.newBytes)
            }
            var tiers: [RetentionDecision.Tier: Int] = [.hot: 0, .warm: 0, .cold: 0, .expired: 0]
            for (_, d) in list { tiers[d.tier, default: 0] += 1 }
            let keeps = list.filter { $0.1.keep }.count
            out.append(Group(host: k.host, name: k.name, paths: k.paths, snapshots: list.count, latest: points.last!,
                             trend: Array(points), tiers: tiers, policyKeeps: keeps, policyForgets: list.count - keeps,
                             lastDrill: newestDrill[k], late: false))
        }
        return out.sorted { ($0.host, $0.name ?? "", ($0.paths ?? []).joined(separator: ",")) < ($1.host, $1.name ?? "", ($1.paths ?? []).joined(separator: ",")) }
    }

    /// The WAL archive's timelines (as `pg-status` computes them) and its problems; empty
    /// when nothing is archived.
    private func walTimelines() throws -> ([Timeline], [String]) {
        let archive = WALArchive(backend: repository.backend, config: repository.config, key: repository.key)
        guard try archive.cluster() != nil else { return ([], []) }
        let status = try archive.status(backups: try repository.baseBackups())
        let highest = status.timelines.filter { $0.segments > 0 }.map(\.timeline).max()
        let timelines = status.timelines.filter { $0.segments > 0 }.map { t in
            let reach = status.windows.filter { $0.timeline == t.timeline }.compactMap(\.toArchived).max()
            return Timeline(timeline: t.timeline, segments: t.segments, lastSegment: t.last, lastArchived: t.lastArchived,
                            recoveryPoint: reach, current: t.timeline == highest, late: false)
        }
        return (timelines, status.problems)
    }

    /// Summarizes the check records against the packs stored now.
    private func checkSummary() throws -> Checks {
        let records = try repository.checkRecords().map(\.record)
        let passed = records.filter(\.ok)
        var covered = 0, total = 0
        let full = passed.filter(\.readAll).compactMap { Timestamp.parse($0.started) }.max()
        var prefixes = Set<UInt64>()
        for r in passed where r.readDataFraction > 0 && !r.readAll { prefixes.formUnion(r.readPrefixes) }
        for obj in try repository.backend.list(prefix: "data/") {
            guard let name = Hash256(hex: String(obj.name.split(separator: "/").last ?? "")) else { continue }
            total += obj.size
            let byFull = full.map { f in obj.modified.map { $0 <= f } ?? false } ?? false
            if byFull || prefixes.contains(name.prefix64) { covered += obj.size }
        }
        let reading = passed.filter { $0.readDataFraction > 0 }
        return Checks(last: records.last, lastOK: passed.last, lastFullRead: passed.last(where: \.readAll),
                      records: records.count, bytesRead: records.reduce(0) { $0 + $1.bytesRead },
                      coveredBytes: covered, packBytes: total,
                      coveredSince: reading.compactMap { Timestamp.parse($0.started) }.min())
    }

    /// An age for people: `42s`, `17m`, `5h 3m`, `3d 4h`; whole hours under a week as hours
    /// (`26h`), as limits are usually given.
    public static func describeAge(_ seconds: TimeInterval) -> String {
        let s = Int(seconds.rounded())
        if s < 0 { return "in the future" }
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s % 3600 == 0 && s < 7 * 86400 { return "\(s / 3600)h" }
        if s < 86400 { return "\(s / 3600)h \(s / 60 % 60)m" }
        return "\(s / 86400)d \(s / 3600 % 24)h"
    }
}
