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
        public var seconds: Double
    }

    /// The newest base backup in `entries` (oldest first, as `Repository.snapshots` lists them)
    /// from which `target` is reachable (`RecoveryTarget.isReachable`); nil when none is.
    public static func choose(_ target: RecoveryTarget, among entries: [SnapshotEntry]) -> SnapshotEntry? {
        entries.last { entry in
            guard let pg = entry.snapshot.postgres, entry.snapshot.partial != true else { return false }
            return target.isReachable(from: pg)
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
        let entry = try chosen()
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
        let settings = RecoverySettings(restoreCommand: restoreCommand, target: target, action: action,
                                        comment: "repo pg-restore \(Timestamp.format(Date())): base backup \(entry.id.hex) (\(pg.label)), recovery to \(target.summary)")
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
                      settings: settings, seconds: Date().timeIntervalSince(started))
    }

    /// The snapshot to restore: the given one, checked, or the newest that reaches the target.
    private func chosen() throws -> SnapshotEntry {
        if let snapshot {
            guard let pg = snapshot.snapshot.postgres else {
                throw RepoError(.failure, "snapshot \(snapshot.id.shortHex) is not a base backup (it was not made by `repo pg-backup`)",
                                hint: "list base backups with `repo snapshots --tag pg-backup`")
            }
            guard target.isReachable(from: pg) else {
                throw RepoError(.failure, "base backup \(snapshot.id.shortHex) ended at \(pg.stopTime) (LSN \(pg.stopLSN)), after the target \(target.summary): recovery cannot go back in time",
                                hint: "name an older base backup, or leave SNAPSHOT out to choose one")
            }
            return snapshot
        }
        let (entries, damaged) = try repository.snapshotsAndDamage()
        if !damaged.isEmpty {
            throw RepoError(.integrity, "\(damaged.count) snapshot(s) cannot be read (\(damaged.prefix(3).map(\.shortHex).joined(separator: ", "))); one of them could be the base backup to choose",
                            hint: "name the base backup as SNAPSHOT (`repo snapshots --tag pg-backup`); run `repo check` to see the damage")
        }
        let archive = WALArchive(backend: repository.backend, config: repository.config, key: repository.key)
        let cluster = try archive.cluster()
        let candidates = entries.filter { e in cluster.map { e.snapshot.postgres?.systemIdentifier == $0.systemIdentifier } ?? true }
        guard let entry = Self.choose(target, among: candidates) else {
            let count = candidates.filter { $0.snapshot.postgres != nil }.count
            throw RepoError(.failure, count == 0 ? "the repository holds no base backup" + (cluster.map { " of the cluster \($0.systemIdentifier) whose WAL it archives" } ?? "")
                                                 : "none of the \(count) base backups ended before the target \(target.summary)",
                            hint: count == 0 ? "make one with `repo pg-backup --pgdata DIR`" : "list them with `repo snapshots --tag pg-backup`; a target must lie after a backup's stop time")
        }
        return entry
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
