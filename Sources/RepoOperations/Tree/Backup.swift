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
        let parent = try repository.snapshots().last { $0.snapshot.host == host && $0.snapshot.paths == targets }
        let parentTree = try parent.map { try repository.loadTree($0.snapshot.tree) }

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
        let walker = Walker(backup: self, session: session, shared: shared)
        let root: Tree
        do {
            root = try walker.walk(targets: targets, parentTree: parentTree)
        } catch {
            _ = try? session.finish()
            throw error
        }
        if let sig = cancellation?.requestedBy {
            _ = try? session.finish()
            throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
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
                                stats: snapStats, program: "repo " + repoVersion)
        let id = try repository.saveObject(try snapshot.encoded(), kind: .snapshot)
        return Result(snapshotID: id, snapshot: snapshot, parent: parent?.id, partial: partial,
                      changedWhileRead: counts.changed, session: stats)
    }

    /// Counters shared by the walker and the file workers.
    final class Shared: Sendable {
        struct Counts {
            var bytes = 0, chunks = 0, files = 0, dirs = 0, unchanged = 0, unreadable = 0, changed = 0, excluded = 0
        }
        let counts = Mutex(Counts())
        let bytesDone = Atomic<Int>(0)
    }
}

/// Test seam: `REPO_TEST_OPEN_DELAY_MS` delays each file's open so integration tests can make a
/// file vanish between the walk and the read. Not for production use.
private let testOpenDelay: UInt32? = ProcessInfo.processInfo.environment["REPO_TEST_OPEN_DELAY_MS"]
    .flatMap { UInt32($0) }.map { $0 * 1000 }

/// One unit of the backup walk, in depth-first order.
enum BackupItem {
    /// A directory starts; its node (without `subtree`) is completed at the matching `leave`.
    /// `previous` is the same directory in the parent snapshot: if the new entries equal it,
    /// its blob is reused without encoding the tree again.
    case enter(Node, previous: (id: BlobID, tree: Tree)?)
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
    private var frames: [(node: Node?, previous: (id: BlobID, tree: Tree)?, children: [Node])] = [(nil, nil, [])]
    private let window: Int
    private let excludePatterns: [PathPattern]
    /// Targets named with a trailing slash that are symlinks to directories.
    private let followed: Set<String>

    init(backup: Backup, session: WriteSession, shared: Backup.Shared) {
        self.backup = backup; self.session = session; self.shared = shared
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
                try submit(.enter(metadataNode(name: name, status: st, path: full), previous: prev))
                shared.counts.withLock { $0.dirs += 1 }
                try walkTrie(child, path: full, parent: prev?.tree)
                try submit(.leave)
            }
        }
    }

    private func walkDirectory(path: [UInt8], names: [[UInt8]], parent: Tree?) throws {
        for name in names.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let full = FileSystem.join(path, name)
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

    private func visit(path: [UInt8], name: [UInt8], status st: FileStatus, previous: Node?) throws {
        if let sig = backup.cancellation?.requestedBy {
            throw RepoError(.interrupted(signal: sig), "interrupted: no snapshot was saved")
        }
        var node = metadataNode(name: name, status: st, path: path)
        if st.isDirectory {
            guard let names = listing(of: path) else { return }
            shared.counts.withLock { $0.dirs += 1 }
            let prev = try subtree(of: previous)
            try submit(.enter(node, previous: prev))
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
        case .enter(let node, let previous):
            frames.append((node, previous, []))
        case .leave:
            let frame = frames.removeLast()
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

    // MARK: reading files (workers)

    final class ReaderBox: @unchecked Sendable {
        var reader: ChunkReader
        init(_ reader: ChunkReader) { self.reader = reader }
    }

    /// Reads and stores one file; returns its finished node, or `.skipped` if it could not be read.
    static func readFile(path: [UInt8], node template: Node, session: WriteSession, context: WriteSession.Context,
                         reader box: ReaderBox, shared: Backup.Shared, backup: Backup) throws -> BackupItem {
        func skip(_ what: String) -> BackupItem {
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
            return skip(errno == ENOENT ? "vanished during the backup" : String(cString: strerror(errno)))
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
            backup.warn("\(PathText.display(path)): changed while it was being read; the stored copy may be inconsistent")
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
