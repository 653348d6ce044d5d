public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
public import Foundation
import RepoStorage

/// `repo forget`: applies a resolved `RetentionPolicy` to the repository's snapshots and
/// deletes the snapshot objects it forgets (their data is freed by `Prune`). Pins are read
/// from the repository and always win. The caller holds the exclusive lock.
///
/// Object Lock (FORMAT.md §31): a snapshot (or WAL file) the policy would forget but whose
/// object is still retained (its modification time plus the period, on the storage's clock,
/// is ahead) is kept instead, with the reason "retained by S3 Object Lock until DATE"; so is
/// one whose delete the storage refuses as retained. The next `forget` after that date
/// forgets it, if the policy still says so.
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
        let keptByPolicy = Set(items.filter(\.decision.keep).map(\.entry.id.hex))
        let retention = try self.retention(prefix: "snapshots/")
        for i in items.indices where !items[i].decision.keep {
            if let until = retention.until(items[i].entry.id.hex) { Self.retain(&items[i].decision, until: until) }
        }
        items.sort { a, b in
            a.decision.group != b.decision.group ? a.decision.group < b.decision.group
                : (a.entry.date, a.entry.id) > (b.entry.date, b.entry.id)
        }
        if !dryRun {
            for i in items.indices where !items[i].decision.keep {
                do {
                    try repository.backend.delete("snapshots/" + items[i].entry.id.hex)
                } catch StorageError.retained(_, let until) {
                    Self.retain(&items[i].decision, until: until)
                }
            }
        }
        if !dryRun { renew(keptByPolicy, retention: retention) }
        return Result(items: items, wal: try walRetention(forgotten: Set(items.filter { !$0.decision.keep }.map { $0.entry.id.hex })))
    }

    /// Object Lock (FORMAT.md §31): renews the retention of every snapshot the policy keeps
    /// whose lock could end within half a period, so that what the policy keeps stays locked
    /// as long as it is kept (prune does the same for the packs they need). Snapshots kept only
    /// because they are still retained are not renewed: they go once it ends. A failure warns.
    private func renew(_ ids: Set<String>, retention: RetentionView) {
        guard let lock = retention.lock, let retaining = repository.backend as? RetainingBackend else { return }
        let soon = retention.now.addingTimeInterval(TimeInterval(lock.period) / 2)
        let names = ids.sorted().filter { id in
            guard let modified = retention.modified[id] else { return false }
            return modified.map { lock.expiry(ofObjectModified: $0) < soon } ?? true
        }.map { "snapshots/" + $0 }
        for (name, result) in zip(names, Repository.concurrentMap(names) { try retaining.extendRetention($0) }) {
            if case .failure(let error) = result {
                repository.warn("could not renew the Object Lock retention of \(name): \(error); run forget again before half the lock period has passed")
            }
        }
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
        var decisions = WALRetention.plan(files: files.map(\.name), remaining: remaining, hotHorizon: hot)
        let retention = try self.retention(prefix: nil)
        let archived = Dictionary(files.map { ($0.name, $0.archived) }, uniquingKeysWith: { a, _ in a })
        for i in decisions.indices where !decisions[i].keep {
            guard let until = retention.until(modified: archived[decisions[i].file] ?? nil) else { continue }
            decisions[i].keep = true
            decisions[i].reason = "retained by S3 Object Lock until \(Timestamp.format(until))"
        }
        if !dryRun {
            for i in decisions.indices where !decisions[i].keep {
                do {
                    try archive.delete([decisions[i].file])
                } catch StorageError.retained(_, let until) {
                    decisions[i].keep = true
                    decisions[i].reason = "retained by S3 Object Lock" + (until.map { " until " + Timestamp.format($0) } ?? "")
                }
            }
        }
        return decisions
    }

    /// When objects still under retention become free, for a repository with Object Lock on
    /// a backend that applies it (otherwise nothing is retained).
    struct RetentionView {
        var lock: ObjectLock?
        var now: Date
        var modified: [String: Date?] = [:]
        /// The retention end of the object named `hex` in the listed folder, if still ahead.
        func until(_ hex: String) -> Date? { modified[hex].flatMap { until(modified: $0) } }
        func until(modified: Date?) -> Date? {
            guard let lock else { return nil }
            let end = lock.expiry(ofObjectModified: modified)
            return end > now ? end : nil
        }
    }

    /// Lists `prefix` (when given) for the objects' modification times.
    private func retention(prefix: String?) throws -> RetentionView {
        let backend = repository.backend
        guard let lock = repository.config.objectLock, (backend as? RetainingBackend)?.retention != nil else {
            return RetentionView(lock: nil, now: now)
        }
        var view = RetentionView(lock: lock, now: try backend.now())
        if let prefix {
            for obj in try backend.list(prefix: prefix) { view.modified[String(obj.name.dropFirst(prefix.count))] = obj.modified }
        }
        return view
    }

    /// Turns a forget into a keep for retention.
    static func retain(_ decision: inout RetentionDecision, until: Date?) {
        decision.keep = true
        decision.retained = true
        decision.retainedUntil = until
        decision.reasons = ["retained by S3 Object Lock" + (until.map { " until " + Timestamp.format($0) } ?? "")
                            + " (the policy would forget it: " + decision.reasons.joined(separator: "; ") + ")"]
    }

    private static func until(_ p: Pin) -> Date { p.until.flatMap(Timestamp.parse) ?? .distantFuture }
}
