public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `repo pg-restore`: a base backup restored into a new data directory, set up to recover to a
/// target from the WAL archive (FORMAT.md §28.4; PostgreSQL documentation, "Recovering Using a
/// Continuous Archive Backup").
///
/// Steps: choose the newest base backup that can reach the target (`choose`); refuse a
/// non-empty directory, or create it (mode 0700); restore the backup's data directory into it
/// (`Restore`), owned by `owner`; recreate the directories the backup left empty or out
/// (`DataDirectoryExclusions.directoriesToRecreate`); write `RecoverySettings`. The server is
/// not started here (`RecoveryStart` does that).
public struct PointInTimeRestore {
    public var repository: Repository
    /// Where to restore (`--pgdata`): missing, or an empty directory.
    public var dataDirectory: String
    public var target: RecoveryTarget
    public var action: RecoveryTarget.Action?
    /// The timeline to recover along (`--target-timeline`, `recovery_target_timeline`); nil:
    /// PostgreSQL's `latest`, refused where two histories diverge after the base backup and
    /// the target may lie past the branch (`TimelinePath.divergences`).
    public var timeline: UInt32?
    /// Refuse a recovery along 'latest' where two histories diverge (see `timeline`); false
    /// once the user said `--target-timeline latest`.
    public var checkDivergence = true
    /// `--archive-mode off` (`RecoverySettings.archiveOff`).
    public var archiveOff = false
    /// `restore_command` for the restored server (see `RecoverySettings.walFetchCommand`).
    public var restoreCommand: String
    /// The base backup to restore; nil chooses one (`choose`).
    public var snapshot: SnapshotEntry?
    /// As root, the owner of everything restored (`--owner`); nil: the owner of the directory
    /// (or of its parent, for a new one) unless that is root, else the owner recorded in the
    /// backup. Ignored when not root: files belong to whoever restores them.
    public var owner: (uid: UInt32, gid: UInt32)?
    public var workers: Int = defaultWorkerCount
    public var progress: ProgressHandler?
    public var cancellation: Cancellation?
    public var warn: @Sendable (String) -> Void = { _ in }

    public init(repository: Repository, dataDirectory: String, target: RecoveryTarget, restoreCommand: String) {
        self.repository = repository; self.dataDirectory = dataDirectory; self.target = target
        self.restoreCommand = restoreCommand
    }

    public struct Result: Sendable {
        public var snapshotID: Hash256
        public var postgres: PostgresBackup
        /// The data directory, absolute.
        public var dataDirectory: String
        public var restore: Restore.Result
        /// The owner given to the restored files (root only).
        public var owner: (uid: UInt32, gid: UInt32)?
        public var settings: RecoverySettings
        /// The timelines recovery follows from the base backup.
        public var path: TimelinePath
        public var seconds: Double
    }

    /// The newest base backup in `entries` (oldest first, as `Repository.snapshots` lists them)
    /// from which `target` is reachable (`RecoveryTarget.isReachable`) and that `follows`
    /// accepts; nil when none is.
    public static func choose(_ target: RecoveryTarget, among entries: [SnapshotEntry],
                              where follows: (PostgresBackup) -> Bool = { _ in true }) -> SnapshotEntry? {
        entries.last { entry in
            guard let pg = entry.snapshot.postgres, entry.snapshot.partial != true else { return false }
            return target.isReachable(from: pg) && follows(pg)
        }
    }

    /// - Throws: `RepoError(.failure)` when no base backup reaches the target, the given one
    ///   cannot, or the directory is not empty or cannot be made; `.integrity` when the
    ///   backup's data is damaged or a damaged snapshot could be the one to choose;
    ///   `.interrupted` on a signal.
    public func run() throws -> Result {
        let started = Date()
        let dir = FileSystem.normalize(dataDirectory)
        _ = try Self.existingDirectory(dir)   // refuse a non-empty one before anything else
        let (entry, path) = try chosen()
        let pg = entry.snapshot.postgres!
        let location = try repository.locate(path: pg.dataDirectory, in: entry)
        guard let tree = location.tree, location.node?.type == .dir else {
            throw RepoError(.integrity, "snapshot \(entry.id.shortHex) has no directory \(pg.dataDirectory)")
        }
        let effectiveOwner = try prepareDirectory(dir, recorded: location.node)

        var op = Restore(repository: repository)
        op.workers = workers
        op.progress = progress
        op.cancellation = cancellation
        op.warn = warn
        op.owner = effectiveOwner
        op.durable = true   // the server replays WAL onto these files (see `Restore.durable`)
        let restored = try op.run(tree: tree, snapshotPath: location.path, target: dir)
        if !restored.damagedFiles.isEmpty || !restored.refusedEntries.isEmpty {
            let n = restored.damagedFiles.count + restored.refusedEntries.count
            throw RepoError(.integrity, "\(n) entr\(n == 1 ? "y" : "ies") of base backup \(entry.id.shortHex) could not be restored (named above); \(dir) is incomplete and must not be started",
                            hint: "run `repo check --read-data`; restore an older base backup (name it as SNAPSHOT) into an empty directory")
        }
        if restored.warnings > 0 {
            throw RepoError(.failure, "\(restored.warnings) metadata item(s) could not be applied in \(dir) (see the warnings above)")
        }
        for sub in DataDirectoryExclusions.directoriesToRecreate {
            let path = dir + "/" + sub
            if mkdir(path, 0o700) == 0 {
                if let o = effectiveOwner, geteuid() == 0 { _ = chown(path, o.uid, o.gid) }
            } else if errno != EEXIST {
                throw RepoError(.failure, "cannot create \(path): \(String(cString: strerror(errno)))")
            }
        }
        var settings = RecoverySettings(restoreCommand: restoreCommand, target: target, action: action, timeline: timeline,
                                        comment: "repo pg-restore \(Timestamp.format(Date())): base backup \(entry.id.hex) (\(pg.label)), recovery to \(target.summary)")
        settings.archiveOff = archiveOff
        try settings.write(into: dir, owner: effectiveOwner)
        // What was made after the restore (the recreated directories, their entries and
        // recovery.signal's) and the data directory's own entry in its parent, on disk too.
        var directories = Set([dir])
        for sub in DataDirectoryExclusions.directoriesToRecreate {
            directories.insert(dir + "/" + sub)
            if let slash = sub.lastIndex(of: "/") { directories.insert(dir + "/" + sub[..<slash]) }
        }
        for path in directories.sorted(by: >) + [(dir as NSString).deletingLastPathComponent] {
            do { try FileSystem.makeDurable(Array(path.utf8), directory: true) } catch {
                throw RepoError(.failure, "cannot make \(dir) durable: \(error)",
                                hint: "check the disk (`dmesg`); restore again into an empty directory")
            }
        }
        return Result(snapshotID: entry.id, postgres: pg, dataDirectory: dir, restore: restored, owner: effectiveOwner,
                      settings: settings, path: path, seconds: Date().timeIntervalSince(started))
    }

    /// The snapshot to restore — the given one, checked, or the newest that reaches the target
    /// along the timeline asked for — and the timelines recovery follows from it.
    private func chosen() throws -> (SnapshotEntry, TimelinePath) {
        let archive = WALArchive(backend: repository.backend, config: repository.config, key: repository.key)
        let timelines = TimelineHistories(archive: archive)
        /// The path from `pg` to the timeline asked for, or to PostgreSQL's 'latest' from it.
        func path(_ pg: PostgresBackup) throws -> TimelinePath? {
            let end = try timeline ?? timelines.newest(from: pg.timeline)
            if end != pg.timeline { _ = try timelines.history(end) }
            return TimelinePath(from: pg.timeline, at: pg.startLSN, to: end, histories: timelines.known)
        }
        let entry: SnapshotEntry
        if let snapshot {
            guard let pg = snapshot.snapshot.postgres else {
                throw RepoError(.failure, "snapshot \(snapshot.id.shortHex) is not a base backup (it was not made by `repo pg-backup`)",
                                hint: "list base backups with `repo snapshots --tag pg-backup`")
            }
            guard target.isReachable(from: pg) else {
                throw RepoError(.failure, "base backup \(snapshot.id.shortHex) ended at \(pg.stopTime) (LSN \(pg.stopLSN)), after the target \(target.summary): recovery cannot go back in time",
                                hint: "name an older base backup, or leave SNAPSHOT out to choose one")
            }
            guard try path(pg) != nil else { throw try offPath(pg, snapshot.id, timelines) }
            entry = snapshot
        } else {
            let (entries, damaged) = try repository.snapshotsAndDamage()
            if !damaged.isEmpty {
                throw RepoError(.integrity, "\(damaged.count) snapshot(s) cannot be read (\(damaged.prefix(3).map(\.shortHex).joined(separator: ", "))); one of them could be the base backup to choose",
                                hint: "name the base backup as SNAPSHOT (`repo snapshots --tag pg-backup`); run `repo check` to see the damage")
            }
            let cluster = try archive.cluster()
            let candidates = entries.filter { e in cluster.map { e.snapshot.postgres?.systemIdentifier == $0.systemIdentifier } ?? true }
            guard let reaching = Self.choose(target, among: candidates) else {
                let count = candidates.filter { $0.snapshot.postgres != nil }.count
                throw RepoError(.failure, count == 0 ? "the repository holds no base backup" + (cluster.map { " of the cluster \($0.systemIdentifier) whose WAL it archives" } ?? "")
                                                     : "none of the \(count) base backups ended before the target \(target.summary)",
                                hint: count == 0 ? "make one with `repo pg-backup --pgdata DIR`" : "list them with `repo snapshots --tag pg-backup`; a target must lie after a backup's stop time")
            }
            var pathError: Error?
            let following = Self.choose(target, among: candidates) { pg in
                do { return try path(pg) != nil } catch { pathError = error; return false }
            }
            if let pathError { throw pathError }
            guard let following else { throw try offPath(reaching.snapshot.postgres!, reaching.id, timelines) }
            entry = following
        }
        let pg = entry.snapshot.postgres!
        let chosenPath = try path(pg)!
        if timeline == nil && checkDivergence {
            var lastSegment: [UInt32: UInt64] = [:]
            for parent in Set(chosenPath.branches.map(\.parent)) {
                lastSegment[parent] = try archive.list(timeline: parent).filter { $0.name.kind == .segment }
                    .map { $0.name.segmentNumber(segmentSize: pg.walSegmentSize) }.max()
            }
            let ambiguous = chosenPath.divergences(lastSegment: lastSegment, segmentSize: pg.walSegmentSize).filter { b in
                if case .lsn(let l) = target { return l > b.switchpoint }
                return true   // a time or a name cannot be placed against the switchpoint
            }
            if let b = ambiguous.first {
                let why = b.reason.isEmpty ? "" : " (its history file says: \(b.reason))"
                throw RepoError(.failure, "base backup \(entry.id.shortHex) can recover along two histories: timeline \(b.parent) goes on past \(b.switchpoint), where timeline \(b.child) branched off it\(why); \(target.summary) may lie past that point, and PostgreSQL's recovery_target_timeline 'latest' would follow timeline \(chosenPath.target)",
                                hint: "say which with --target-timeline \(chosenPath.target) (the newest) or --target-timeline \(b.parent) (the history that went on past \(b.switchpoint), such as production's after a restored copy was promoted); a target before \(b.switchpoint) gives the same result along either; `repo pg-status` lists the timelines")
            }
        }
        return (entry, chosenPath)
    }

    /// The error for a base backup from which no recovery reaches the timeline asked for (or
    /// PostgreSQL's 'latest' from it).
    private func offPath(_ pg: PostgresBackup, _ id: Hash256, _ timelines: TimelineHistories) throws -> RepoError {
        let end = try timeline ?? timelines.newest(from: pg.timeline)
        if end != pg.timeline, try timelines.history(end) == nil {
            return RepoError(.failure, "timeline \(end) has no history file (\(WALFileName.hex8(end)).history) in the archive, so recovery cannot follow it",
                             hint: "`repo pg-status` lists the archived timelines")
        }
        return RepoError(.failure, "base backup \(id.shortHex) (timeline \(pg.timeline), from \(pg.startLSN)) is not on the history of timeline \(end): recovery from it cannot follow timeline \(end)",
                         hint: timeline == nil ? "give --target-timeline, or name an older base backup as SNAPSHOT; `repo pg-status` lists the timelines"
                                               : "choose another --target-timeline, or name a base backup on its history as SNAPSHOT; `repo pg-status` lists the timelines")
    }

    /// The status of `dir` when it is an empty directory, nil when it is missing (and its
    /// parent is a directory).
    /// - Throws: `RepoError(.failure)` when it is not empty, not a directory, or cannot be made.
    static func existingDirectory(_ dir: String) throws -> FileStatus? {
        let bytes = Array(dir.utf8)
        let parent = (dir as NSString).deletingLastPathComponent
        if let st = try? FileSystem.statFollowingLinks(bytes) {
            guard st.isDirectory else {
                throw RepoError(.failure, "--pgdata \(dir) exists and is not a directory")
            }
            let names = (try? FileSystem.list(bytes)) ?? []
            guard names.isEmpty else {
                throw RepoError(.failure, "--pgdata \(dir) is not empty (\(names.count) entr\(names.count == 1 ? "y" : "ies")); pg-restore restores only into an empty or new directory",
                                hint: "choose a new directory, or stop the server that uses it and move it away first")
            }
            return st
        }
        guard let p = try? FileSystem.statFollowingLinks(Array(parent.utf8)), p.isDirectory else {
            throw RepoError(.failure, "cannot create --pgdata \(dir): its parent \(parent) is not a directory")
        }
        return nil
    }

    /// Refuses a non-empty directory, creates a missing one (mode 0700), and returns the owner
    /// to give the restored files (see `owner`).
    private func prepareDirectory(_ dir: String, recorded: Node?) throws -> (uid: UInt32, gid: UInt32)? {
        let parent = (dir as NSString).deletingLastPathComponent
        let existing = try Self.existingDirectory(dir)
        let isRoot = geteuid() == 0
        var owner: (uid: UInt32, gid: UInt32)? = nil
        if isRoot {
            if let given = self.owner {
                owner = given
            } else if let st = existing ?? (try? FileSystem.statFollowingLinks(Array(parent.utf8))), st.uid != 0 {
                owner = (st.uid, st.gid)
            } else if let uid = recorded?.uid, let gid = recorded?.gid {
                owner = (uid, gid)
            }
        }
        if existing == nil && mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw RepoError(.failure, "cannot create --pgdata \(dir): \(String(cString: strerror(errno)))")
        }
        // PostgreSQL refuses a data directory others can read or write (0700, or 0750).
        guard chmod(dir, 0o700) == 0 else {
            throw RepoError(.failure, "cannot set the mode of \(dir): \(String(cString: strerror(errno)))")
        }
        if let owner, isRoot, chown(dir, owner.uid, owner.gid) != 0 {
            throw RepoError(.failure, "cannot give \(dir) to uid \(owner.uid): \(String(cString: strerror(errno)))")
        }
        return owner
    }
}
