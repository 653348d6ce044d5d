public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
public import Foundation

/// `repo forget`: applies a resolved `RetentionPolicy` to the repository's snapshots and
/// deletes the snapshot objects it forgets (their data is freed by `Prune`). Pins are read
/// from the repository and always win. The caller holds the exclusive lock.
public struct Forget {
    public var repository: Repository
    /// A fully resolved policy (`RetentionPolicy.resolved`).
    public var policy: RetentionPolicy
    public var now: Date
    /// Only snapshots matching this are considered (the others are neither kept nor forgotten).
    public var filter = SnapshotFilter()
    public var dryRun = false

    public init(repository: Repository, policy: RetentionPolicy, now: Date) {
        self.repository = repository; self.policy = policy; self.now = now
    }

    public struct Item: Sendable {
        public var entry: SnapshotEntry
        public var decision: RetentionDecision
    }

    public struct Result: Sendable {
        /// Every considered snapshot with its decision, grouped, newest first within a group.
        public var items: [Item]
        public var kept: Int { items.filter(\.decision.keep).count }
        public var forgotten: Int { items.count - kept }
        /// The WAL archive's files with their decisions (FORMAT.md §27.5); empty without one.
        public var wal: [WALRetention.Decision] = []
    }

    public func run() throws -> Result {
        let entries = try repository.snapshots(matching: filter)
        let pins = try repository.pins()
        var pinByID: [String: Pin] = [:]
        for p in pins.map(\.pin) {
            // Several pins of one snapshot (a crash while replacing one): the longest holds.
            if let old = pinByID[p.snapshot], Self.until(old) >= Self.until(p) { continue }
            pinByID[p.snapshot] = p
        }
        let candidates = entries.map { e -> RetentionCandidate in
            let s = e.snapshot
            let pin = pinByID[e.id.hex]
            return RetentionCandidate(id: e.id.hex, time: e.date, host: s.host, name: s.name, paths: s.paths, tags: s.tags,
                                      isPinned: pin != nil, pinUntil: pin?.until.flatMap(Timestamp.parse),
                                      pinReason: pin?.reason)
        }
        let decisions = policy.decide(candidates, now: now)
        var items = zip(entries, decisions).map { Item(entry: $0, decision: $1) }
        items.sort { a, b in
            a.decision.group != b.decision.group ? a.decision.group < b.decision.group
                : (a.entry.date, a.entry.id) > (b.entry.date, b.entry.id)
        }
        if !dryRun {
            for item in items where !item.decision.keep {
                try repository.backend.delete("snapshots/" + item.entry.id.hex)
            }
        }
        return Result(items: items, wal: try walRetention(forgotten: Set(items.filter { !$0.decision.keep }.map { $0.entry.id.hex })))
    }

    /// Applies §27.5 to the WAL archive: every remaining base backup (whatever `filter`
    /// selected) keeps its WAL, the hot tier's oldest base backup opens the recovery window,
    /// and the rest goes, after the snapshots (a crash in between only leaves WAL to delete).
    private func walRetention(forgotten: Set<String>) throws -> [WALRetention.Decision] {
        let archive = WALArchive(backend: repository.backend, config: repository.config, key: repository.key)
        let files = try archive.list()
        guard !files.isEmpty else { return [] }
        let remaining = try repository.baseBackups().filter { !forgotten.contains($0.id) }
        let hot = policy.resolved(localZone: "UTC").hot.map { now.addingTimeInterval(-$0.seconds) }
        let decisions = WALRetention.plan(files: files.map(\.name), remaining: remaining, hotHorizon: hot)
        if !dryRun { try archive.delete(decisions.filter { !$0.keep }.map(\.file)) }
        return decisions
    }

    private static func until(_ p: Pin) -> Date { p.until.flatMap(Timestamp.parse) ?? .distantFuture }
}
