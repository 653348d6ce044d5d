public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
public import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `repo backup`: stores directory trees and files as one snapshot (FORMAT.md §Trees).
///
/// The calling thread walks the paths depth-first in name order and submits one work item per
/// entry to an ordered pool; worker threads read, chunk, hash, compress and encrypt whole files
/// (one file per worker, so many small files use every core), and the calling thread folds the
/// results, in walk order, into tree blobs bottom-up. A file whose size, mtime, ctime and inode
/// equal those of the same path in the parent snapshot (the newest one of this host and these
/// paths) is not read again: its content list is reused.
///
/// Entries that vanish or cannot be read are reported through `warn`, left out, and make the
/// snapshot partial. A file that changes while it is read is reported (`changedWhileRead`).
public struct Backup {
    public var repository: Repository
    public var paths: [String]
    public var tags: [String]
    public var host: String
    public var time: Date
    /// Globs: without a `/` matched against each name, with one against the whole path.
    public var excludes: [String] = []
    public var workers: Int = defaultWorkerCount
    public var progress: ProgressHandler?
    public var cancellation: Cancellation?
    public var warn: @Sendable (String) -> Void = { _ in }
    /// Per directory, entries to leave out or to keep as empty directories (see `EntryRule`),
    /// by name; names not in the answer are walked as usual. Called with the directory's path
    /// and the names in it, before `excludes` apply. Nil: every entry is walked.
    public var entryRules: ((_ directory: [UInt8], _ names: [[UInt8]]) -> [[UInt8]: EntryRule])?
    /// Which snapshots of this host and these paths may be the parent (default: any); the
    /// newest that passes is used.
    public var parentFilter: ((SnapshotEntry) -> Bool)?
    /// For the chosen parent, the instant from which a file's status is too recent to trust:
    /// a file whose mtime or ctime is at or after it is read again even when size, mtime,
    /// ctime and inode equal the parent's (a write in the same clock tick as the parent's read
    /// changes neither time). Nil: status equality suffices.
    public var trustStatusBefore: ((SnapshotEntry) -> FileTime?)?
    /// Entries that vanish between listing and reading are expected (a database dropping
    /// relation files): counted in `Result.vanished`, not warned about, not partial.
    public var vanishedIsExpected = false
    /// Whether a file that changed while it was read is warned about (it is counted either way).
    public var warnChangedWhileRead = true
    /// Runs once the walk has finished, before the root tree and the snapshot are written:
    /// it may add files to the tree and a PostgreSQL record to the snapshot. Throwing aborts
    /// the backup: the blobs already saved are indexed, no snapshot is written (FORMAT.md §19).
    public var completion: ((Walked) throws -> Completion)?

    /// What to do with one directory entry (`entryRules`).
    public enum EntryRule: Sendable, Equatable {
        /// Left out of the snapshot.
        case exclude
        /// Stored as a directory with no entries. A symlink to a directory is stored as that
        /// directory (with its metadata); anything else is left out.
        case emptyDirectory
    }

    /// What the walk saw, for `completion`.
    public struct Walked: Sendable {
        public var files: Int
        /// Entries that could not be read (left out; the snapshot would be partial).
        public var unreadable: Int
        /// Entries that vanished during the walk (with `vanishedIsExpected`).
        public var vanished: Int
        public var changedWhileRead: Int
    }

    /// What `completion` adds.
    public struct Completion: Sendable {
        public var files: [AddedFile]
        public var postgres: PostgresBackup?
        public init(files: [AddedFile] = [], postgres: PostgresBackup? = nil) { self.files = files; self.postgres = postgres }
    }

    /// A file that is not on disk but is stored in the snapshot, directly inside one of the
    /// backed-up directories (`paths`), replacing an entry of the same name.
    public struct AddedFile: Sendable {
        /// One of the backed-up directories, as given in `paths`.
        public var directory: String
        public var name: String
        public var bytes: [UInt8]
        /// Permission bits, owner, and modification time recorded for it.
        public var mode: UInt32
        public var uid: UInt32
        public var gid: UInt32
        public var mtime: FileTime
        public init(directory: String, name: String, bytes: [UInt8], mode: UInt32, uid: UInt32, gid: UInt32, mtime: FileTime) {
            self.directory = directory; self.name = name; self.bytes = bytes; self.mode = mode
            self.uid = uid; self.gid = gid; self.mtime = mtime
        }
    }

    public init(repository: Repository, paths: [String], tags: [String], host: String, time: Date) {
        self.repository = repository; self.paths = paths; self.tags = tags; self.host = host; self.time = time
    }

    public struct Result: Sendable {
        public var snapshotID: Hash256
        public var snapshot: Snapshot
        /// The snapshot whose unchanged files were reused, if any.
        public var parent: Hash256?
        public var partial: Bool
        public var changedWhileRead: Int
        /// Entries that vanished during the walk (counted only with `vanishedIsExpected`).
        public var vanished: Int
        public var session: WriteSession.SessionStats
    }

    /// The first symlink on the way from `outer` (included, unless it is followed) down to
    /// `inner` (excluded).
    static func symlink(between outer: String, and inner: String, followed: Set<String>) -> String? {
        if outer != "/", !followed.contains(outer), (try? FileSystem.lstat(Array(outer.utf8)))?.isSymlink == true { return outer }
        var at = outer == "/" ? "" : outer
        let rest = inner.dropFirst(at.count).split(separator: "/")
        for part in rest.dropLast() {
            at += "/" + part
            if (try? FileSystem.lstat(Array(at.utf8)))?.isSymlink == true { return at }
        }
        return nil
    }

    /// Paths given with a trailing slash that name a symlink to a directory: as in POSIX path
    /// resolution (`ls link/`), the directory is backed up, under the path as given.
    static func followedTargets(_ paths: [String]) -> Set<String> {
        Set(paths.filter { $0.count > 1 && $0.hasSuffix("/") }.map(FileSystem.normalize).filter { p in
            let bytes = Array(p.utf8)
            return (try? FileSystem.lstat(bytes))?.isSymlink == true && (try? FileSystem.statFollowingLinks(bytes))?.isDirectory == true
        })
    }

    /// Normalized, de-duplicated paths: absolute, sorted, none inside another.
    public static func normalizedPaths(_ paths: [String]) -> [String] {
        let all = Set(paths.map(FileSystem.normalize)).sorted()
        return all.filter { p in !all.contains { q in q != p && (q == "/" || p.hasPrefix(q + "/")) } }
    }

    public func run() throws -> Result {
        let started = Date()
        let targets = Self.normalizedPaths(paths)
        guard !targets.isEmpty else { throw RepoError(.usage, "no paths to back up") }
        for t in targets {
            do { _ = try FileSystem.lstat(Array(t.utf8)) } catch {
                throw RepoError(.failure, "cannot back up \(t): \(String(cString: strerror(error.code)))",
                                hint: "check the path; nothing was saved")
            }
        }
        let parent = try repository.snapshots().last {
            $0.snapshot.host == host && $0.snapshot.paths == targets && (parentFilter?($0) ?? true)
        }
        let parentTree = try parent.map { try repository.loadTree($0.snapshot.tree) }
        let trustBefore = parent.flatMap { trustStatusBefore?($0) }

        let session = try WriteSession(repository: repository)
        let shared = Shared()
        // A named path inside another target but reached through a symlink that the outer
        // target stores as a symlink cannot be in the same tree: say so, and mark it partial.
        for named in Set(paths.map(FileSystem.normalize)) where !targets.contains(named) {
            guard let outer = targets.first(where: { $0 == "/" || named.hasPrefix($0 + "/") }),
                  let link = Self.symlink(between: outer, and: named, followed: Self.followedTargets(paths)) else { continue }
            warn("\(named): not backed up: it is reached through the symlink \(link), which \(outer) stores as a symlink; back it up in a snapshot of its own")
            shared.counts.withLock { $0.unreadable += 1 }
        }
        let walker = Walker(backup: self, session: session, shared: shared, trustBefore: trustBefore)
        var root: Tree
        var postgres: PostgresBackup?
        do {
            root = try walker.walk(targets: targets, parentTree: parentTree)
            if let sig = cancellation?.requestedBy {
                throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
            }
            if let completion {
                let c = shared.counts.withLock { $0 }
                let done = try completion(Walked(files: c.files, unreadable: c.unreadable, vanished: c.vanished,
                                                 changedWhileRead: c.changed))
                root = try walker.graft(done.files, into: root)
                postgres = done.postgres
            }
        } catch {
            _ = try? session.finish()
            throw error
        }
        let rootID = try session.save(try root.encoded(), type: .tree, context: walker.metaContext).id
        try session.finish()
        let counts = shared.counts.withLock { $0 }
        let stats = session.stats
        var snapStats = Snapshot.Stats(totalBytes: counts.bytes, chunks: counts.chunks, newBlobs: stats.newBlobs,
                                       newBytes: stats.newStoredBytes, seconds: Date().timeIntervalSince(started))
        snapStats.files = counts.files
        snapStats.dirs = counts.dirs
        snapStats.unchangedFiles = counts.unchanged
        snapStats.unreadable = counts.unreadable
        let partial = counts.unreadable > 0
        let snapshot = Snapshot(time: Timestamp.format(time), host: host, username: HostInfo.username, name: nil,
                                paths: targets, tags: tags, tree: rootID, partial: partial ? true : nil,
                                stats: snapStats, program: "repo " + repoVersion, postgres: postgres)
        let id = try repository.saveObject(try snapshot.encoded(), kind: .snapshot)
        return Result(snapshotID: id, snapshot: snapshot, parent: parent?.id, partial: partial,
                      changedWhileRead: counts.changed, vanished: counts.vanished, session: stats)
    }

    /// Counters shared by the walker and the file workers.
    final class Shared: Sendable {
        struct Counts {
            var bytes = 0, chunks = 0, files = 0, dirs = 0, unchanged = 0, unreadable = 0, changed = 0, excluded = 0
            var vanished = 0
        }
        let counts = Mutex(Counts())
        let bytesDone = Atomic<Int>(0)
    }
}

/// Test seam: `REPO_TEST_OPEN_DELAY_MS` delays each file's open so integration tests can make a
/// file vanish between the walk and the read. Not for production use.
private let testOpenDelay: UInt32? = ProcessInfo.processInfo.environment["REPO_TEST_OPEN_DELAY_MS"]
    .flatMap { UInt32($0) }.map { $0 * 1000 }

private let vanishedText = "vanished during the backup"

/// One unit of the backup walk, in depth-first order.
enum BackupItem {
    /// A directory starts; its node (without `subtree`) is completed at the matching `leave`.
    /// `previous` is the same directory in the parent snapshot: if the new entries equal it,
    /// its blob is reused without encoding the tree again. `keep`: the directory's path, when
    /// its entries are kept for `Walker.graft` (targets and the directories above them).
    case enter(Node, previous: (id: BlobID, tree: Tree)?, keep: [UInt8]?)
    case leave
    /// A finished node: symlink, or file reused from the parent snapshot.
    case ready(Node)
    /// A file to read.
    case file(path: [UInt8], node: Node)
    /// An entry that was left out (already reported).
    case skipped
}

/// The walk and fold of one backup (see `Backup`).
final class Walker {
    let backup: Backup
    let session: WriteSession
    let shared: Backup.Shared
    let metaContext: WriteSession.Context
    private var pool: OrderedWorkPool<BackupItem, BackupItem>!
    private var frames: [(node: Node?, previous: (id: BlobID, tree: Tree)?, keep: [UInt8]?, children: [Node])] = [(nil, nil, nil, [])]
    /// Final entries of the targets and of the directories above them, by path.
    private var kept: [[UInt8]: [Node]] = [:]
    private var targetPaths: Set<[UInt8]> = []
    /// See `Backup.trustStatusBefore`.
    private let trustBefore: FileTime?
    private let window: Int
    private let excludePatterns: [PathPattern]
    /// Targets named with a trailing slash that are symlinks to directories.
    private let followed: Set<String>

    init(backup: Backup, session: WriteSession, shared: Backup.Shared, trustBefore: FileTime?) {
        self.backup = backup; self.session = session; self.shared = shared; self.trustBefore = trustBefore
        metaContext = session.makeContext()
        window = max(1, backup.workers) * 64
        excludePatterns = backup.excludes.map(PathPattern.init)
        followed = Backup.followedTargets(backup.paths)
    }

    /// A path tree of the targets: intermediate directories lead to the targets.
    final class PathTrie {
        var children: [[UInt8]: PathTrie] = [:]
        var isTarget = false
    }

    func walk(targets: [String], parentTree: Tree?) throws -> Tree {
        let session = self.session, shared = self.shared, backup = self.backup
        let workers = max(1, backup.workers)
        let contexts = (0..<workers).map { _ in session.makeContext() }
        let readers = (0..<workers).map { _ in ReaderBox(ChunkReader(chunker: backup.repository.chunker, cancellation: backup.cancellation)) }
        pool = OrderedWorkPool(threads: workers) { item, i in
            guard case .file(let path, let node) = item else { return item }
            return try Self.readFile(path: path, node: node, session: session, context: contexts[i],
                                     reader: readers[i], shared: shared, backup: backup)
        }
        defer { pool.close() }

        let trie = PathTrie()
        targetPaths = Set(targets.map { Array($0.utf8) })
        for t in targets {
            var at = trie
            for part in t.split(separator: "/") {
                let key = Array(part.utf8)
                if at.children[key] == nil { at.children[key] = PathTrie() }
                at = at.children[key]!
            }
            at.isTarget = true
        }
        if trie.isTarget {
            try walkDirectory(path: [UInt8(ascii: "/")], names: try listing(of: [UInt8(ascii: "/")]) ?? [], parent: parentTree)
        } else {
            try walkTrie(trie, path: [], parent: parentTree)
        }
        try drain(until: 0)
        precondition(frames.count == 1, "unbalanced directory walk")
        return Tree(nodes: frames[0].children)
    }

    // MARK: walking (producer)

    private func walkTrie(_ trie: PathTrie, path: [UInt8], parent: Tree?) throws {
        for (name, child) in trie.children.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let full = path + [UInt8(ascii: "/")] + name
            var st: FileStatus
            do { st = try FileSystem.lstat(full) } catch { skip(error); continue }
            if !child.isTarget && st.isSymlink {
                // A symlink on the way to a path the user named (`/srv/current/db.sql` with
                // `current -> releases/42`): follow it, so what was named is what is stored,
                // recorded under the path as given, with the directory's own metadata.
                do { st = try FileSystem.statFollowingLinks(full) } catch { skip(error); continue }
                guard st.isDirectory else {
                    skip(PosixError("stat", full, ENOTDIR))
                    continue
                }
            }
            if child.isTarget && st.isSymlink && followed.contains(String(decoding: full, as: UTF8.self)),
               let target = try? FileSystem.statFollowingLinks(full) {
                st = target
            }
            let previous = parent?.node(nameBytes: name)
            if child.isTarget || !st.isDirectory {
                try visit(path: full, name: name, status: st, previous: previous)
            } else {
                let prev = try subtree(of: previous)
                try submit(.enter(metadataNode(name: name, status: st, path: full), previous: prev, keep: full))
                shared.counts.withLock { $0.dirs += 1 }
                try walkTrie(child, path: full, parent: prev?.tree)
                try submit(.leave)
            }
        }
    }

    private func walkDirectory(path: [UInt8], names: [[UInt8]], parent: Tree?) throws {
        let rules = backup.entryRules?(path, names) ?? [:]
        for name in names.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let full = FileSystem.join(path, name)
            if let rule = rules[name] {
                try apply(rule, path: full, name: name, previous: parent?.node(nameBytes: name))
                continue
            }
            if isExcluded(path: full, name: name, isDirectory: nil) {
                shared.counts.withLock { $0.excluded += 1 }
                continue
            }
            let st: FileStatus
            do { st = try FileSystem.lstat(full) } catch { skip(error); continue }
            if isExcluded(path: full, name: name, isDirectory: st.isDirectory) {
                shared.counts.withLock { $0.excluded += 1 }
                continue
            }
            try visit(path: full, name: name, status: st, previous: parent?.node(nameBytes: name))
        }
    }

    /// An entry with an `EntryRule`.
    private func apply(_ rule: Backup.EntryRule, path: [UInt8], name: [UInt8], previous: Node?) throws {
        switch rule {
        case .exclude:
            shared.counts.withLock { $0.excluded += 1 }
        case .emptyDirectory:
            var st: FileStatus
            do { st = try FileSystem.lstat(path) } catch { skip(error); return }
            if st.isSymlink, let target = try? FileSystem.statFollowingLinks(path) { st = target }
            guard st.isDirectory else {
                shared.counts.withLock { $0.excluded += 1 }
                return
            }
            shared.counts.withLock { $0.dirs += 1 }
            try submit(.enter(metadataNode(name: name, status: st, path: path), previous: try subtree(of: previous), keep: nil))
            try submit(.leave)
        }
    }

    private func visit(path: [UInt8], name: [UInt8], status st: FileStatus, previous: Node?) throws {
        if let sig = backup.cancellation?.requestedBy {
            throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
        }
        var node = metadataNode(name: name, status: st, path: path)
        if st.isDirectory {
            guard let names = listing(of: path) else { return }
            shared.counts.withLock { $0.dirs += 1 }
            let prev = try subtree(of: previous)
            try submit(.enter(node, previous: prev, keep: targetPaths.contains(path) ? path : nil))
            try walkDirectory(path: path, names: names, parent: prev?.tree)
            try submit(.leave)
        } else if st.isSymlink {
            do { node.targetBytes = try FileSystem.readLink(path) } catch { skip(error); return }
            try submit(.ready(node))
        } else if st.isRegular {
            shared.counts.withLock { $0.files += 1 }
            if let previous, isUnchanged(previous, st), let content = previous.content, isPresent(content) {
                node.size = previous.size
                node.content = content
                let chunks = Self.chunkCount(content)
                shared.counts.withLock { $0.unchanged += 1; $0.bytes += st.size; $0.chunks += chunks }
                shared.bytesDone.add(st.size, ordering: .relaxed)
                try submit(.ready(node))
            } else {
                try submit(.file(path: path, node: node))
            }
        } else {
            backup.warn("\(PathText.display(path)): skipped (not a regular file, directory or symlink)")
        }
    }

    private func listing(of path: [UInt8]) -> [[UInt8]]? {
        do { return try FileSystem.list(path) } catch { skip(error); return nil }
    }

    private func skip(_ error: PosixError) {
        if error.code == ENOENT && backup.vanishedIsExpected {
            shared.counts.withLock { $0.vanished += 1 }
            return
        }
        let what = error.code == ENOENT ? "vanished during the backup" : String(cString: strerror(error.code))
        backup.warn("\(PathText.display(error.path)): \(what); left out of the snapshot")
        shared.counts.withLock { $0.unreadable += 1 }
    }

    private func subtree(of node: Node?) throws -> (id: BlobID, tree: Tree)? {
        guard let node, node.type == .dir, let id = node.subtree, session.mayContain(id) else { return nil }
        return (id, try backup.repository.loadTree(id))
    }

    private func isUnchanged(_ prev: Node, _ st: FileStatus) -> Bool {
        prev.type == .file && prev.size == st.size && prev.inode == st.inode
            && prev.mtime == st.mtime.rfc3339 && prev.ctime == st.ctime.rfc3339
            && trustBefore.map { st.mtime < $0 && st.ctime < $0 } ?? true
    }

    /// Whether every blob `content` names is (very probably) still in the repository.
    private func isPresent(_ content: Content) -> Bool {
        switch content {
        case .chunks(let c): return c.allSatisfy { session.mayContain($0.id) }
        case .lists(let l): return l.allSatisfy { session.mayContain($0.id) }
        }
    }

    static func chunkCount(_ content: Content) -> Int {
        switch content {
        case .chunks(let c): return c.count
        case .lists(let l): return l.reduce(0) { $0 + $1.count }
        }
    }

    /// Whether an exclude pattern matches. Called before `lstat` with `isDirectory` nil (only
    /// patterns that do not depend on the type answer, so an excluded entry is not even
    /// stat'ed) and again after it with the type.
    private func isExcluded(path: [UInt8], name: [UInt8], isDirectory: Bool?) -> Bool {
        for pattern in excludePatterns where pattern.directoriesOnly == (isDirectory != nil) {
            if pattern.matches(path: path, name: name, isDirectory: isDirectory ?? true) { return true }
        }
        return false
    }

    private func metadataNode(name: [UInt8], status st: FileStatus, path: [UInt8]) -> Node {
        var node = Node(nameBytes: name, type: st.isDirectory ? .dir : st.isSymlink ? .symlink : .file)
        node.mode = st.permissions
        node.mtime = st.mtime.rfc3339
        node.ctime = st.ctime.rfc3339
        node.uid = st.uid
        node.gid = st.gid
        if !st.isDirectory {
            node.inode = st.inode
            node.device = st.device
            node.links = st.links
        }
        let xattrs = FileSystem.extendedAttributes(path)
        if !xattrs.isEmpty { node.xattrs = xattrs }
        return node
    }

    // MARK: folding (consumer)

    private func submit(_ item: BackupItem) throws {
        try drain(until: window - 1)
        pool.submit(item)
    }

    private func drain(until limit: Int) throws {
        while pool.inFlight > limit, let item = try pool.next() {
            try fold(item)
        }
        backup.progress?(ProgressReport(bytes: shared.bytesDone.load(ordering: .relaxed),
                                        newBytes: session.stats.newStoredBytes))
    }

    private func fold(_ item: BackupItem) throws {
        switch item {
        case .enter(let node, let previous, let keep):
            frames.append((node, previous, keep, []))
        case .leave:
            let frame = frames.removeLast()
            if let path = frame.keep { kept[path] = frame.children }
            var node = frame.node!
            if let previous = frame.previous, previous.tree.nodes == frame.children {
                node.subtree = previous.id      // unchanged directory: same bytes, same blob
            } else {
                node.subtree = try session.save(try Tree(nodes: frame.children).encoded(), type: .tree, context: metaContext).id
            }
            frames[frames.count - 1].children.append(node)
        case .ready(let node):
            frames[frames.count - 1].children.append(node)
        case .file:
            preconditionFailure("unread file in the fold")
        case .skipped:
            break
        }
    }

    // MARK: files added after the walk

    /// `root` with `files` added to the targets they name; the changed directories, and the
    /// ones above them, are saved again.
    /// - Throws: `RepoError(.failure)` for a directory that is not one of the targets.
    func graft(_ files: [Backup.AddedFile], into root: Tree) throws -> Tree {
        guard !files.isEmpty else { return root }
        var added: [[UInt8]: [Node]] = [:]
        for f in files {
            let dir = Array(FileSystem.normalize(f.directory).utf8)
            guard targetPaths.contains(dir), dir == [UInt8(ascii: "/")] || kept[dir] != nil else {
                throw RepoError(.failure, "cannot add \(f.name) to \(f.directory): it is not a backed-up directory")
            }
            added[dir, default: []].append(try fileNode(f))
        }
        let slash = UInt8(ascii: "/")
        func leadsToAddition(_ path: [UInt8]) -> Bool {
            added.keys.contains { $0 == path || ($0.count > path.count && $0.starts(with: path) && $0[path.count] == slash) }
        }
        func rebuild(_ path: [UInt8], _ children: [Node]) throws -> [Node] {
            var nodes = children
            if let new = added[path] {
                let names = Set(new.map(\.nameBytes))
                nodes.removeAll { names.contains($0.nameBytes) }
                nodes += new
                nodes.sort { $0.nameBytes.lexicographicallyPrecedes($1.nameBytes) }
            }
            for i in nodes.indices where nodes[i].type == .dir {
                let child = FileSystem.join(path, nodes[i].nameBytes)
                guard let entries = kept[child], leadsToAddition(child) else { continue }
                nodes[i].subtree = try session.save(try Tree(nodes: rebuild(child, entries)).encoded(), type: .tree,
                                                    context: metaContext).id
            }
            return nodes
        }
        return Tree(nodes: try rebuild([slash], root.nodes))
    }

    /// A file node for `file`, its bytes chunked and saved like any file's.
    private func fileNode(_ file: Backup.AddedFile) throws -> Node {
        var node = Node(name: file.name, type: .file)
        if let problem = Node.componentProblem(node.nameBytes) {
            throw RepoError(.failure, "cannot add a file named \(file.name): \(problem)")
        }
        node.mode = file.mode
        node.uid = file.uid
        node.gid = file.gid
        node.mtime = file.mtime.rfc3339
        var builder = ContentBuilder { list in
            try self.session.save(ContentList.encode(list), type: .tree, context: self.metaContext).id
        }
        var offset = 0
        for length in backup.repository.chunker.chunkLengths(file.bytes) {
            let chunk = Array(file.bytes[offset..<offset + length])
            offset += length
            try builder.append(ChunkRef(id: try session.save(chunk, type: .data, context: metaContext).id, size: length))
        }
        node.size = file.bytes.count
        node.content = try builder.finish()
        let chunks = builder.chunkCount
        shared.counts.withLock { $0.files += 1; $0.bytes += file.bytes.count; $0.chunks += chunks }
        return node
    }

    // MARK: reading files (workers)

    final class ReaderBox: @unchecked Sendable {
        var reader: ChunkReader
        init(_ reader: ChunkReader) { self.reader = reader }
    }

    /// Reads and stores one file; returns its finished node, or `.skipped` if it could not be read.
    static func readFile(path: [UInt8], node template: Node, session: WriteSession, context: WriteSession.Context,
                         reader box: ReaderBox, shared: Backup.Shared, backup: Backup) throws -> BackupItem {
        func skip(_ what: String) -> BackupItem {
            if what == vanishedText && backup.vanishedIsExpected {
                shared.counts.withLock { $0.vanished += 1 }
                return .skipped
            }
            backup.warn("\(PathText.display(path)): \(what); left out of the snapshot")
            shared.counts.withLock { $0.unreadable += 1 }
            return .skipped
        }
        if let delay = testOpenDelay { usleep(delay) }
        var fd = FileSystem.withCPath(path) { open($0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | FileSystem.noAccessTimeFlag) }
        if fd < 0 && errno == EPERM {
            fd = FileSystem.withCPath(path) { open($0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        }
        guard fd >= 0 else {
            return skip(errno == ENOENT ? vanishedText : String(cString: strerror(errno)))
        }
        defer { close(fd) }
        guard let before = try? FileSystem.fstat(fd, path: path), before.isRegular else {
            return skip("changed type during the backup")
        }
        box.reader.reset(fd: fd, waitForInput: false)
        var builder = ContentBuilder { list in
            try session.save(ContentList.encode(list), type: .tree, context: context).id
        }
        // Chunks are saved in batches so their blob ids are computed together (sixteen lanes;
        // see HMACBatch); a batch is small enough (16 chunks, 4 MiB) to keep memory flat.
        var batch: [[UInt8]] = []
        var batchBytes = 0
        func flush() throws {
            let ids = session.blobIDs(of: batch, context: context)
            for (chunk, id) in zip(batch, ids) {
                let saved = try session.save(chunk, id: id, type: .data, context: context)
                try builder.append(ChunkRef(id: saved.id, size: chunk.count))
                shared.bytesDone.add(chunk.count, ordering: .relaxed)
            }
            batch = []
            batchBytes = 0
        }
        do {
            while let chunk = try box.reader.next() {
                batch.append(chunk)
                batchBytes += chunk.count
                if batch.count == 16 || batchBytes >= 4 << 20 { try flush() }
            }
            try flush()
        } catch let e as InputReadError {
            return skip(String(cString: strerror(e.code)))
        }
        let size = box.reader.bytesRead
        if let after = try? FileSystem.fstat(fd, path: path),
           after.size != before.size || after.mtime != before.mtime || after.ctime != before.ctime || size != before.size {
            if backup.warnChangedWhileRead {
                backup.warn("\(PathText.display(path)): changed while it was being read; the stored copy may be inconsistent")
            }
            shared.counts.withLock { $0.changed += 1 }
        }
        var node = template
        // Record the status seen before reading, so a file that changed during the read is read
        // again by the next backup.
        node.mtime = before.mtime.rfc3339
        node.ctime = before.ctime.rfc3339
        node.size = size
        node.content = try builder.finish()
        let chunks = builder.chunkCount
        shared.counts.withLock { $0.bytes += size; $0.chunks += chunks }
        return .ready(node)
    }
}
