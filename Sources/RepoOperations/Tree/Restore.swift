public import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
import RepoIndex
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `repo restore`: recreates a snapshot tree (or part of it) under a target directory.
///
/// Phases: (1) plan: walk the tree, apply `includes`, expand content lists; (2) create
/// directories; (3) prepare files in parallel: new files are created at their final size (holes
/// where the content is zeros, so sparse files stay sparse), existing files are compared chunk
/// by chunk (blob id of the bytes on disk) so only differing chunks are written; (4) read the
/// needed blobs pack by pack, in pack offset order, on all cores, and write each to every place
/// it belongs; (5) metadata: owner (as root), mode, xattrs, mtime, hard links, symlinks, and
/// directories deepest first; (6) with `verify`, re-read every restored file and compare each
/// chunk's blob id, and its metadata, with the snapshot.
///
/// Confinement: every path is the target joined with node names that passed
/// `Node.componentProblem` (no `..`, `/`, NUL or empty names, whatever the repository holds);
/// directories are made top-down and anything below the target that is not a real directory
/// where the snapshot has one (a symlink left by an earlier restore, say) is replaced before
/// anything is written beneath it; files are opened with `O_NOFOLLOW`. The target itself is
/// followed if it is a symlink to a directory and refused if it is anything else but a
/// directory. Another process changing the target while a restore runs is outside this model.
///
/// Damage: a blob that cannot be read or decrypted does not stop the restore. Every file that
/// needs it is removed rather than left at full size with wrong bytes, and named in
/// `Result.damagedFiles`; everything else is restored. Running the same restore again after the
/// repository is repaired writes only what is missing.
public struct Restore {
    public var repository: Repository
    public var workers: Int = defaultWorkerCount
    /// Globs: without a `/` matched against each name, with one against the path inside the
    /// snapshot (e.g. `/var/lib/*.conf`). Empty restores everything.
    public var includes: [String] = []
    public var verify = false
    public var progress: ProgressHandler?
    public var cancellation: Cancellation?
    public var warn: @Sendable (String) -> Void = { _ in }
    /// As root: the owner every restored entry gets instead of the one recorded in the
    /// snapshot (a data directory restored for the local `postgres` user). Not for `verify`,
    /// which compares with the recorded owners.
    public var owner: (uid: UInt32, gid: UInt32)?
    /// Everything restored is on disk before `run` returns: every file and directory is
    /// fsynced, and the writeback of each chunk starts as soon as it is written, so the disk
    /// works while the rest is restored (a restore is faster than most disks). For a
    /// PostgreSQL data directory (`pg-restore`), which the server then replays WAL onto: after
    /// a crash or power loss, files that were never written out would be empty, and the server
    /// would not know.
    public var durable = false

    public init(repository: Repository) { self.repository = repository }

    public struct Result: Sendable, Codable {
        public var files = 0, dirs = 0, symlinks = 0, hardlinks = 0
        /// Files whose content on disk already matched (nothing written).
        public var unchangedFiles = 0
        /// Content bytes of the restored files, and bytes actually written.
        public var bytes = 0
        public var bytesWritten = 0
        public var verifiedFiles = 0
        /// Metadata that could not be applied (reported as warnings).
        public var warnings = 0
        /// Files not restored because data they need is damaged or missing in the repository
        /// (paths in the target, escaped for display); none of them is left in the target.
        public var damagedFiles: [String] = []
        /// Entries of the snapshot refused or unreadable (unsafe names, duplicate names,
        /// unreadable directory listings or content lists), with the reason.
        public var refusedEntries: [String] = []
        /// `--include` patterns that matched nothing.
        public var unmatchedIncludes: [String] = []
        /// Entries not restored because a non-empty directory is in their way in the target
        /// (never deleted by a restore), with the path.
        public var conflicts: [String] = []
        /// Files, directories and symlinks whose metadata differed from the snapshot after the
        /// restore (only with `verify`).
        public var metadataMismatches = 0

        /// Whether the repository failed to provide something (exit 13 at the CLI).
        public var hasIntegrityProblems: Bool { !damagedFiles.isEmpty || !refusedEntries.isEmpty }
    }

    struct FilePlan {
        var path: [UInt8]
        var node: Node
        var chunks: [ChunkRef]
        /// Offset of each chunk in the file.
        var offsets: [Int]
        /// Chunks to write (nil until prepared = all).
        var needed: [Bool] = []
        var isNew = true
        /// An existing file whose size was changed while preparing (so it is no longer what it was).
        var resized = false
    }

    struct Plan {
        var dirs: [(path: [UInt8], node: Node?)] = []      // post-order
        var files: [FilePlan] = []
        var symlinks: [(path: [UInt8], node: Node)] = []
        var hardlinks: [(path: [UInt8], to: Int)] = []      // index into files
        var links: [String: Int] = [:]                      // device:inode → file index
        /// Entries refused or unreadable while planning, with the reason.
        var refused: [String] = []
        /// Indices of the include patterns that matched something.
        var matched: Set<Int> = []
    }

    /// Restores the entries of `tree` into `target`.
    ///
    /// - Throws: `RepoError(.failure)` if `target` exists and is not a directory (nor a
    ///   symlink to one), or on write errors; `.interrupted` when cancelled. Damaged data is
    ///   reported in the result, not thrown.
    public func run(tree: Tree, snapshotPath: [UInt8], target: String) throws -> Result {
        var plan = Plan()
        let dest = Array(FileSystem.normalize(target).utf8)
        try Self.prepareTarget(dest, display: target)
        _ = planTree(tree, snapPath: snapshotPath == [UInt8(ascii: "/")] ? [] : snapshotPath, dest: dest, forced: includes.isEmpty, plan: &plan)
        return try execute(plan, into: dest)
    }

    /// Restores one node (a file or symlink) as `target/<name>`.
    public func run(node: Node, snapshotPath: [UInt8], target: String) throws -> Result {
        var plan = Plan()
        let dest = Array(FileSystem.normalize(target).utf8)
        try Self.prepareTarget(dest, display: target)
        if let problem = Node.componentProblem(node.nameBytes) {
            plan.refused.append("\(PathText.display(snapshotPath)): refused: \(problem)")
        } else {
            planNode(node, snapPath: snapshotPath, dest: FileSystem.join(dest, node.nameBytes), plan: &plan)
        }
        return try execute(plan, into: dest)
    }

    /// Makes sure `dest` is a directory to restore into: created (with parents) when missing,
    /// followed when it is a symlink to a directory, refused when it is anything else, so an
    /// existing file is never replaced.
    static func prepareTarget(_ dest: [UInt8], display: String) throws {
        if let st = try? FileSystem.statFollowingLinks(dest) {
            guard st.isDirectory else {
                throw RepoError(.failure, "the target \(display) exists and is not a directory; nothing was restored",
                                hint: "choose a directory (or a path that does not exist yet) for --target")
            }
            return
        }
        if (try? FileSystem.lstat(dest))?.isSymlink == true {
            throw RepoError(.failure, "the target \(display) is a symlink to something that does not exist; nothing was restored",
                            hint: "create the directory it points to, or choose another --target")
        }
        do {
            try FileManager.default.createDirectory(atPath: String(decoding: dest, as: UTF8.self), withIntermediateDirectories: true)
        } catch {
            throw RepoError(.failure, "cannot create the target \(display): \(error.localizedDescription)",
                            hint: "check that its parent exists and is writable")
        }
    }

    // MARK: planning

    private func matches(snapPath: [UInt8], node: Node, plan: inout Plan) -> Bool {
        var hit = false
        for (i, pattern) in includePatterns.enumerated()
        where pattern.matches(path: snapPath, name: node.nameBytes, isDirectory: node.type == .dir) {
            plan.matched.insert(i)
            hit = true
        }
        return hit
    }

    private var includePatterns: [PathPattern] { includes.map(PathPattern.init) }

    /// Loads a directory's tree, or records why it cannot be read (nil).
    private func subtree(_ node: Node, snapPath: [UInt8], plan: inout Plan) -> Tree? {
        guard let id = node.subtree else { return Tree(nodes: []) }
        do { return try repository.loadTree(id) } catch {
            plan.refused.append("\(PathText.display(snapPath)): directory listing unreadable (\(error)); its contents were not restored")
            return nil
        }
    }

    /// Adds `tree`'s entries; returns whether anything was included.
    private func planTree(_ tree: Tree, snapPath: [UInt8], dest: [UInt8], forced: Bool, plan: inout Plan) -> Bool {
        var any = false
        var previous: [UInt8]? = nil
        for node in tree.nodes {
            let name = node.nameBytes
            let childSnapBytes = snapPath + [UInt8(ascii: "/")] + name
            if let problem = Node.componentProblem(name) {
                plan.refused.append("\(PathText.display(childSnapBytes)): refused: \(problem), so it cannot be restored inside the target")
                continue
            }
            if name == previous {
                plan.refused.append("\(PathText.display(childSnapBytes)): refused: the directory lists this name twice")
                continue
            }
            previous = name
            let childDest = FileSystem.join(dest, name)
            let included = matches(snapPath: childSnapBytes, node: node, plan: &plan) || forced
            if node.type == .dir {
                guard let sub = subtree(node, snapPath: childSnapBytes, plan: &plan) else { continue }
                if planTree(sub, snapPath: childSnapBytes, dest: childDest, forced: included, plan: &plan) || included {
                    plan.dirs.append((childDest, node))
                    any = true
                }
            } else if included {
                planNode(node, snapPath: childSnapBytes, dest: childDest, plan: &plan)
                any = true
            }
        }
        return any
    }

    private func planNode(_ node: Node, snapPath: [UInt8], dest: [UInt8], plan: inout Plan) {
        switch node.type {
        case .symlink:
            plan.symlinks.append((dest, node))
        case .dir:
            guard let sub = subtree(node, snapPath: snapPath, plan: &plan) else { return }
            _ = planTree(sub, snapPath: snapPath, dest: dest, forced: true, plan: &plan)
            plan.dirs.append((dest, node))
        case .file:
            if let key = node.linkKey {
                if let first = plan.links[key] {
                    plan.hardlinks.append((dest, first))
                    return
                }
                plan.links[key] = plan.files.count
            }
            var chunks: [ChunkRef] = []
            var it = ContentIterator(content: node.content ?? .chunks([]), repository: repository)
            do {
                while let c = try it.next() { chunks.append(c) }
            } catch {
                plan.refused.append("\(PathText.display(snapPath)): content list unreadable (\(error)); the file was not restored")
                if let key = node.linkKey, plan.links[key] == plan.files.count { plan.links[key] = nil }
                return
            }
            var offsets: [Int] = []
            offsets.reserveCapacity(chunks.count)
            var at = 0
            for c in chunks { offsets.append(at); at += c.size }
            if let size = node.size, size != at {
                plan.refused.append("\(PathText.display(snapPath)): content list covers \(at) bytes, the node says \(size); the file was not restored")
                if let key = node.linkKey, plan.links[key] == plan.files.count { plan.links[key] = nil }
                return
            }
            plan.files.append(FilePlan(path: dest, node: node, chunks: chunks, offsets: offsets))
        }
    }

    // MARK: execution

    /// Carries out `plan`, whose entries lie below `target`.
    private func execute(_ plan: Plan, into target: [UInt8]) throws -> Result {
        var plan = plan
        let result = Mutex(Result())
        let written = Atomic<Int>(0)
        let totalBytes = plan.files.reduce(0) { $0 + ($1.node.size ?? 0) }

        // 2. Directories, parents first (plan.dirs is post-order), below the prepared target.
        for (path, node) in plan.dirs.reversed() where node != nil { try makeDirectory(path) }
        try checkCancelled()

        // 3. Prepare files: create or compare. A non-empty directory where the snapshot has a
        // file is a conflict: it is reported and left alone, never deleted with its contents.
        let idKey = repository.key.blobID
        // Preparing creates new files at their full size (all zeros) and resizes existing ones:
        // if it stops half-way (an interruption between files, a full disk), those must not be
        // left looking complete, as `setAsideIncomplete` ensures once every file is prepared.
        let touched = Mutex<[(index: Int, isNew: Bool)]>([])
        let prepared: [Prepared]
        do {
            let files = plan.files
            prepared = try parallelMap(plan.files.indices) { i -> Prepared in
                let p = try Self.prepare(files[i], hmac: HMACSHA256(key: idKey), verifyMode: verify)
                if p.isNew || p.resized { touched.withLock { $0.append((i, p.isNew)) } }
                return p
            }
        } catch {
            for (i, isNew) in touched.withLock({ $0 }) {
                let path = plan.files[i].path
                if isNew {
                    _ = FileSystem.withCPath(path) { unlink($0) }
                } else {
                    let aside = path + Array(".repo-partial".utf8)
                    _ = FileSystem.withCPath(path) { from in FileSystem.withCPath(aside) { rename(from, $0) } }
                }
            }
            throw error
        }
        var conflicts: [String] = []
        var skipped = Set<Int>()
        for (i, p) in prepared.enumerated() {
            plan.files[i].needed = p.needed
            plan.files[i].isNew = p.isNew
            plan.files[i].resized = p.resized
            if let c = p.conflict { conflicts.append(c); skipped.insert(i) }
        }
        // Chunks still to be written per file: a file with any left is incomplete.
        let pending = Mutex(plan.files.map { f in f.needed.lazy.filter { $0 }.count })
        try checkCancelled(incomplete: { self.setAsideIncomplete(plan.files, pending: pending, skipping: skipped) })

        // 4. Blobs pack by pack.
        var targets: [BlobID: [(file: Int, chunk: Int)]] = [:]
        for (f, file) in plan.files.enumerated() where !skipped.contains(f) {
            for (c, ref) in file.chunks.enumerated() where file.needed[c] {
                targets[ref.id, default: []].append((f, c))
            }
        }
        // A blob that cannot be had is recorded against the files that need it; the rest goes on.
        let damagedBlobs = Mutex<[BlobID: String]>([:])
        var byPack: [Hash256: [(loc: BlobLocation, id: BlobID)]] = [:]
        let locations = try repository.locate(Array(targets.keys))
        for id in targets.keys {
            guard let loc = locations[id] else {
                damagedBlobs.withLock { $0[id] = "chunk \(id.shortHex) is not in the index" }
                continue
            }
            byPack[loc.pack, default: []].append((loc, id))
        }
        let packs = byPack.keys.sorted { $0.hex < $1.hex }
        let files = plan.files
        let repo = repository
        // An interruption or a write error (a full target disk) leaves no incomplete file that
        // looks complete.
        do {
        try parallelFor(packs.count) { p, reader in
            let blobs = byPack[packs[p]]!.sorted { $0.loc.entry.offset < $1.loc.entry.offset }
            try Self.readPack(blobs, repository: repo, reader: reader, failed: { id, why in
                damagedBlobs.withLock { $0[id] = why }
            }) { id, bytes in
                for t in targets[id]! {
                    let file = files[t.file]
                    let ref = file.chunks[t.chunk]
                    guard bytes.count == ref.size else {
                        damagedBlobs.withLock { $0[id] = "chunk \(id.shortHex) has \(bytes.count) bytes, the content list says \(ref.size)" }
                        return
                    }
                    let n = try Self.write(bytes, to: file.path, at: file.offsets[t.chunk], sparse: file.isNew,
                                           startWriteback: durable)
                    written.add(n, ordering: .relaxed)
                    pending.withLock { $0[t.file] -= 1 }
                }
            }
            progress?(ProgressReport(bytes: written.load(ordering: .relaxed), totalBytes: totalBytes))
        }

        // Before blaming the repository, suspect the local catalog: if it was wrong about a
        // blob, the repository's own index says where it is, and the chunk is written from there.
        for (id, _) in damagedBlobs.withLock({ $0 }) {
            guard let moved = try repository.relocate(id, after: locations[id]) else { continue }
            let reader = PackReader(master: repository.key)
            guard let bytes = try? repository.loadBlob(at: moved, reader: reader) else { continue }
            for t in targets[id] ?? [] where bytes.count == plan.files[t.file].chunks[t.chunk].size {
                let n = try Self.write(bytes, to: plan.files[t.file].path, at: plan.files[t.file].offsets[t.chunk], sparse: plan.files[t.file].isNew)
                written.add(n, ordering: .relaxed)
                pending.withLock { $0[t.file] -= 1 }
            }
            damagedBlobs.withLock { _ = $0.removeValue(forKey: id) }
        }
        } catch {
            setAsideIncomplete(files, pending: pending, skipping: skipped)
            throw error
        }

        // Files that need a damaged blob: none may look complete when it is not (see
        // `setAsideIncomplete`).
        let badBlobs = damagedBlobs.withLock { $0 }
        var damaged = skipped
        var damagedNames: [String] = []
        if !badBlobs.isEmpty {
            var hit = Set<Int>()
            for (id, _) in badBlobs { for t in targets[id] ?? [] { hit.insert(t.file) } }
            let fates = setAsideIncomplete(files, pending: pending, skipping: skipped)
            for i in hit.sorted() {
                let why = files[i].chunks.lazy.compactMap { badBlobs[$0.id] }.first ?? "damaged"
                damagedNames.append(PathText.display(files[i].path))
                warn("\(PathText.display(files[i].path)): not restored (\(fates[i] ?? "removed")): \(why)")
            }
            damaged.formUnion(hit)
        }

        // 5. Metadata.
        let isRoot = geteuid() == 0
        try parallelFor(files.count) { i, _ in
            if damaged.contains(i) { return }
            let n = self.applyMetadata(files[i].node, path: files[i].path, isRoot: isRoot)
            if n > 0 { result.withLock { $0.warnings += n } }
        }
        for (path, first) in plan.hardlinks {
            if damaged.contains(first) {
                if !skipped.contains(first) {
                    damagedNames.append(PathText.display(path))
                    warn("\(PathText.display(path)): not restored: it is a hard link to \(PathText.display(files[first].path)), which is damaged")
                }
                continue
            }
            if let c = Self.clear(path) { conflicts.append(c); continue }
            let r = FileSystem.withCPath(files[first].path) { from in FileSystem.withCPath(path) { link(from, $0) } }
            guard r == 0 else { throw RepoError(.failure, PosixError("link", path, errno).description) }
        }
        for (path, node) in plan.symlinks {
            let target = node.targetBytes ?? []
            if let existing = try? FileSystem.readLink(path), existing == target {
                // already right
            } else {
                if let c = Self.clear(path) { conflicts.append(c); continue }
                let r = FileSystem.withCPath(target) { t in FileSystem.withCPath(path) { symlink(t, $0) } }
                guard r == 0 else { throw RepoError(.failure, PosixError("symlink", path, errno).description) }
            }
            let n = applyMetadata(node, path: path, isRoot: isRoot)
            if n > 0 { result.withLock { $0.warnings += n } }
        }
        for (path, node) in plan.dirs {     // post-order: children before parents
            guard let node else { continue }
            let n = applyMetadata(node, path: path, isRoot: isRoot)
            if n > 0 { result.withLock { $0.warnings += n } }
        }

        // 6. Durable: every restored file, then every directory (their entries: files, links,
        // subdirectories), children before parents.
        if durable {
            try parallelFor(files.count) { i, _ in
                if damaged.contains(i) { return }
                do { try FileSystem.makeDurable(files[i].path, directory: false) } catch {
                    throw RepoError(.failure, "cannot make the restored files durable: \(error)",
                                    hint: "check the target's disk (`dmesg`); the restore is not complete until this succeeds")
                }
            }
            for path in plan.dirs.compactMap({ $0.node == nil ? nil : $0.path }) + [target] {
                do { try FileSystem.makeDurable(path, directory: true) } catch {
                    throw RepoError(.failure, "cannot make the restored directories durable: \(error)",
                                    hint: "check the target's disk (`dmesg`); the restore is not complete until this succeeds")
                }
            }
        }

        // 7. Verify: content of every restored file, metadata of every restored entry.
        var metadataMismatches = 0
        if verify {
            let bad = Mutex<[String]>([])
            try parallelFor(files.count) { i, _ in
                if damaged.contains(i) { return }
                if let problem = Self.verify(files[i], hmac: HMACSHA256(key: idKey)) {
                    bad.withLock { $0.append(problem) }
                }
            }
            let problems = bad.withLock { $0 }
            var entries: [(path: [UInt8], node: Node)] = files.indices.filter { !damaged.contains($0) }.map { (files[$0].path, files[$0].node) }
            entries += plan.symlinks
            entries += plan.dirs.compactMap { d in d.node.map { (d.path, $0) } }
            var metadata: [String] = []
            for e in entries {
                if let m = MetadataCheck.difference(e.node, path: e.path, isRoot: isRoot) { metadata.append(m) }
            }
            metadataMismatches = metadata.count
            for m in metadata.prefix(20) { warn(m) }
            if !problems.isEmpty {
                for p in problems.prefix(20) { warn(p) }
                throw RepoError(.integrity, "verification failed for \(problems.count) restored file\(problems.count == 1 ? "" : "s")",
                                hint: "run `repo check --read-data`, then restore again")
            }
        }

        var r = result.withLock { $0 }
        r.files = files.count
        r.dirs = plan.dirs.filter { $0.node != nil }.count
        r.symlinks = plan.symlinks.count
        r.hardlinks = plan.hardlinks.count
        r.unchangedFiles = files.filter { !$0.isNew && !$0.needed.contains(true) }.count
        r.bytes = totalBytes
        r.bytesWritten = written.load(ordering: .relaxed)
        r.verifiedFiles = verify ? files.count - damaged.count : 0
        r.damagedFiles = damagedNames
        r.refusedEntries = plan.refused
        for entry in plan.refused { warn(entry) }
        r.unmatchedIncludes = includes.indices.filter { !plan.matched.contains($0) }.map { includes[$0] }
        for pattern in r.unmatchedIncludes { warn("--include \(pattern) matched nothing in the snapshot") }
        r.metadataMismatches = metadataMismatches
        r.conflicts = conflicts
        for c in conflicts { warn(c) }
        r.warnings += metadataMismatches
        return r
    }

    private func checkCancelled(incomplete cleanup: () -> Void = {}) throws {
        if let sig = cancellation?.requestedBy {
            cleanup()
            throw RepoError(.interrupted(signal: sig), "interrupted: the restore is incomplete; files not fully written were removed (or kept as NAME.repo-partial); run the same command again to finish")
        }
    }

    /// Makes `path` a real directory. Its parent is already one (directories are made
    /// top-down below a prepared target), so one `mkdir` suffices; whatever else is there (a
    /// file, or a symlink that would lead writes outside the target) is removed first.
    private func makeDirectory(_ path: [UInt8]) throws {
        if let st = try? FileSystem.lstat(path) {
            if st.isDirectory { return }
            do { try FileSystem.remove(path) } catch {
                throw RepoError(.failure, "cannot replace \(PathText.display(path)) with a directory: \(error)")
            }
        }
        if FileSystem.withCPath(path, { mkdir($0, 0o700) }) != 0 {
            throw RepoError(.failure, "cannot create \(PathText.display(path)): \(String(cString: strerror(errno)))",
                            hint: "check that the target is writable")
        }
    }

    /// What preparing one file found.
    struct Prepared {
        var needed: [Bool]
        var isNew: Bool
        var resized = false
        /// Set when something that is not replaced (a non-empty directory) is in the way.
        var conflict: String?
    }

    /// Creates or opens the destination and decides which chunks need writing.
    static func prepare(_ file: FilePlan, hmac: HMACSHA256, verifyMode: Bool) throws -> Prepared {
        let size = file.node.size ?? 0
        let all = [Bool](repeating: true, count: file.chunks.count)
        if let st = try? FileSystem.lstat(file.path) {
            if st.isRegular && st.links == 1 {
                if !verifyMode, st.size == size, let m = file.node.mtime, st.mtime.rfc3339 == m {
                    return Prepared(needed: [Bool](repeating: false, count: file.chunks.count), isNew: false)
                }
                let fd = try openForWrite(file.path, create: false, read: true)
                defer { close(fd) }
                var needed = all
                var buf = [UInt8]()
                for (c, ref) in file.chunks.enumerated() where file.offsets[c] + ref.size <= st.size {
                    buf = [UInt8](repeating: 0, count: ref.size)
                    let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, ref.size, off_t(file.offsets[c])) }
                    if n == ref.size && hmac.mac(buf) == ref.id { needed[c] = false }
                }
                guard ftruncate(fd, off_t(size)) == 0 else {
                    throw RepoError(.failure, PosixError("truncate", file.path, errno).description)
                }
                return Prepared(needed: needed, isNew: false, resized: st.size != size)
            }
            if let conflict = clear(file.path) { return Prepared(needed: all, isNew: false, conflict: conflict) }
        }
        let fd = try openForWrite(file.path, create: true)
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            throw RepoError(.failure, PosixError("truncate", file.path, errno).description,
                            hint: errno == ENOSPC ? "the target file system is full" : nil)
        }
        if let delay = testPrepareDelay { usleep(delay) }
        return Prepared(needed: all, isNew: true)
    }

    /// Test seam: `REPO_TEST_RESTORE_PREPARE_DELAY_MS` pauses after each new file is created at
    /// its full size, so a test can interrupt a restore while files are being prepared.
    static let testPrepareDelay: UInt32? = ProcessInfo.processInfo.environment["REPO_TEST_RESTORE_PREPARE_DELAY_MS"]
        .flatMap { UInt32($0) }.map { $0 * 1000 }

    /// Makes room for an entry at `path`: a file or symlink there is removed, an empty
    /// directory too. A directory with contents is never deleted: the message says so (nil
    /// when the path is free).
    static func clear(_ path: [UInt8]) -> String? {
        guard let st = try? FileSystem.lstat(path) else { return nil }
        if st.isDirectory {
            if FileSystem.withCPath(path, { rmdir($0) }) == 0 { return nil }
            return "\(PathText.display(path)): not restored: a directory with contents is in the way (restore never deletes it; move it away and restore again)"
        }
        return FileSystem.withCPath(path, { unlink($0) }) == 0 ? nil
            : "\(PathText.display(path)): not restored: cannot remove what is there: \(String(cString: strerror(errno)))"
    }

    /// Files whose chunks were not all written (damage, an interruption, a write error) must not
    /// look complete: a file this restore created is removed; an existing file that was already
    /// changed is kept as `NAME.repo-partial`; an existing file not yet changed is left as it was.
    /// Returns what happened to each incomplete file, by index.
    @discardableResult
    private func setAsideIncomplete(_ files: [FilePlan], pending: borrowing Mutex<[Int]>, skipping: Set<Int>) -> [Int: String] {
        let left = pending.withLock { $0 }
        var fates: [Int: String] = [:]
        for (i, file) in files.enumerated() where left[i] > 0 && !skipping.contains(i) {
            let total = file.needed.lazy.filter { $0 }.count
            if file.isNew {
                _ = FileSystem.withCPath(file.path) { unlink($0) }
                fates[i] = "removed"
            } else if left[i] < total || file.resized {
                let aside = file.path + Array(".repo-partial".utf8)
                let ok = FileSystem.withCPath(file.path) { from in FileSystem.withCPath(aside) { rename(from, $0) } } == 0
                fates[i] = ok ? "the changed file was kept as \(PathText.display(aside))" : "could not be set aside"
            } else {
                fates[i] = "the existing file was left as it was"
            }
        }
        if !fates.isEmpty && cancellation?.requestedBy != nil {
            for (i, fate) in fates.sorted(by: { $0.key < $1.key }).prefix(20) { warn("\(PathText.display(files[i].path)): incomplete: \(fate)") }
        }
        return fates
    }

    static func openForWrite(_ path: [UInt8], create: Bool, read: Bool = false) throws -> Int32 {
        let flags = (read ? O_RDWR : O_WRONLY) | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0)
        var fd = FileSystem.withCPath(path) { open($0, flags, 0o600) }
        if fd < 0 && errno == EACCES && !create {
            _ = FileSystem.withCPath(path) { chmod($0, 0o600) }
            fd = FileSystem.withCPath(path) { open($0, flags, 0o600) }
        }
        guard fd >= 0 else {
            throw RepoError(.failure, PosixError("open", path, errno).description, hint: "check that the target is writable")
        }
        return fd
    }

    /// Writes `bytes` at `offset`. With `sparse` (a new file, created at its final size and so
    /// all holes), 4 KiB blocks of zeros are skipped and stay holes. With `startWriteback`, the
    /// written range starts on its way to disk (`FileSystem.startWriteback`). Returns the bytes
    /// written.
    static func write(_ bytes: [UInt8], to path: [UInt8], at offset: Int, sparse: Bool, startWriteback: Bool = false) throws -> Int {
        let block = 4096
        var runs: [Range<Int>] = []
        if sparse {
            bytes.withUnsafeBytes { buf in
                var start: Int? = nil
                var at = 0
                while at < buf.count {
                    // Align blocks to file offsets so holes line up with the file system's blocks.
                    let end = min(buf.count, at + block - (offset + at) % block)
                    var zero = true
                    var k = at
                    while k + 8 <= end { if buf.loadUnaligned(fromByteOffset: k, as: UInt64.self) != 0 { zero = false; break }; k += 8 }
                    if zero { while k < end { if buf[k] != 0 { zero = false; break }; k += 1 } }
                    if zero {
                        if let s = start { runs.append(s..<at); start = nil }
                    } else if start == nil {
                        start = at
                    }
                    at = end
                }
                if let s = start { runs.append(s..<buf.count) }
            }
        } else {
            runs = [0..<bytes.count]
        }
        guard !runs.isEmpty else { return 0 }
        let fd = try openForWrite(path, create: false)
        defer { close(fd) }
        var total = 0
        try bytes.withUnsafeBytes { buf in
            for run in runs {
                var done = run.lowerBound
                while done < run.upperBound {
                    let n = pwrite(fd, buf.baseAddress! + done, run.upperBound - done, off_t(offset + done))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw RepoError(.failure, PosixError("write", path, errno).description,
                                        hint: errno == ENOSPC ? "the target file system is full" : nil)
                    }
                    done += n
                }
                total += run.count
            }
        }
        if startWriteback, let first = runs.first, let last = runs.last {
            FileSystem.startWriteback(fd, offset: offset + first.lowerBound, length: last.upperBound - first.lowerBound)
        }
        return total
    }

    /// Reads the blobs of one pack in offset order, coalescing nearby blobs into one ranged
    /// read, and hands each decrypted blob to `body`.
    /// A blob that cannot be read or decrypted goes to `failed` with the reason, and the rest
    /// of the pack is still read.
    static func readPack(_ blobs: [(loc: BlobLocation, id: BlobID)], repository: Repository, reader: PackReader,
                         failed: (BlobID, String) -> Void, body: (BlobID, [UInt8]) throws -> Void) throws {
        var i = 0
        let name = PackDescriptor.objectName(blobs[0].loc.pack)
        while i < blobs.count {
            var j = i + 1
            let start = blobs[i].loc.entry.offset
            var end = start + blobs[i].loc.entry.length
            while j < blobs.count, blobs[j].loc.entry.offset - end < (1 << 20), blobs[j].loc.entry.offset + blobs[j].loc.entry.length - start < (32 << 20) {
                end = max(end, blobs[j].loc.entry.offset + blobs[j].loc.entry.length)
                j += 1
            }
            let span: [UInt8]
            do { span = try repository.backend.get(name, range: start..<end) } catch {
                for k in i..<j { failed(blobs[k].id, "pack \(blobs[i].loc.pack.shortHex) cannot be read: \(error)") }
                i = j
                continue
            }
            for k in i..<j {
                let e = blobs[k].loc.entry
                guard e.offset - start + e.length <= span.count else {
                    failed(blobs[k].id, "pack \(blobs[k].loc.pack.shortHex) is shorter than its index says")
                    continue
                }
                let plain: [UInt8]
                do {
                    plain = try span.withUnsafeBytes {
                        try reader.open(UnsafeRawBufferPointer(rebasing: $0[(e.offset - start)..<(e.offset - start + e.length)]),
                                        entry: e, packSalt: blobs[k].loc.packSalt, pack: blobs[k].loc.pack)
                    }
                } catch {
                    failed(blobs[k].id, "chunk \(blobs[k].id.shortHex) in pack \(blobs[k].loc.pack.shortHex) is damaged: \(error)")
                    continue
                }
                try body(blobs[k].id, plain)
            }
            i = j
        }
    }

    /// Applies owner (as root), mode, xattrs and mtime; returns how many could not be applied.
    private func applyMetadata(_ node: Node, path: [UInt8], isRoot: Bool) -> Int {
        var failures = 0
        func note(_ what: String) { failures += 1; warn("\(PathText.display(path)): \(what)") }
        if isRoot, let uid = owner?.uid ?? node.uid, let gid = owner?.gid ?? node.gid {
            if FileSystem.withCPath(path, { lchown($0, uid, gid) }) != 0 { note("cannot set owner: \(String(cString: strerror(errno)))") }
        }
        // Extended attributes (and so POSIX ACLs) converge on the snapshot's: extra ones go.
        let wanted = Set((node.xattrs ?? []).map(\.name))
        for name in FileSystem.extendedAttributeNames(path) where !wanted.contains(name) && MetadataCheck.isRestorable(name) {
            do { try FileSystem.removeExtendedAttribute(path, name: name) } catch { note("\(error)") }
        }
        for attr in node.xattrs ?? [] {
            do { try FileSystem.setExtendedAttribute(path, attr) } catch { note("\(error)") }
        }
        if node.type != .symlink, let mode = node.mode {
            if FileSystem.withCPath(path, { chmod($0, mode_t(mode)) }) != 0 { note("cannot set mode: \(String(cString: strerror(errno)))") }
        }
        if let m = node.mtime, let t = FileTime(rfc3339: m) {
            do { try FileSystem.setTimes(path, mtime: t) } catch { note("\(error)") }
        }
        return failures
    }

    /// Re-reads a restored file and compares every chunk's blob id; nil if it matches.
    static func verify(_ file: FilePlan, hmac: HMACSHA256) -> String? {
        let fd = FileSystem.withCPath(file.path) { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return "\(PathText.display(file.path)): cannot be read back: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        guard let st = try? FileSystem.fstat(fd, path: file.path), st.size == (file.node.size ?? 0) else {
            return "\(PathText.display(file.path)): size differs from the snapshot"
        }
        for (c, ref) in file.chunks.enumerated() {
            var buf = [UInt8](repeating: 0, count: ref.size)
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, ref.size, off_t(file.offsets[c])) }
            guard n == ref.size, hmac.mac(buf) == ref.id else {
                return "\(PathText.display(file.path)): bytes at offset \(file.offsets[c]) differ from the snapshot"
            }
        }
        return nil
    }

    // MARK: parallel helpers

    /// Runs `body(i, reader)` for i in 0..<count on `workers` threads; rethrows the first error.
    private func parallelFor(_ count: Int, _ body: @escaping (Int, PackReader) throws -> Void) throws {
        guard count > 0 else { return }
        let next = Atomic<Int>(0)
        let failure = Mutex<Error?>(nil)
        let threads = min(max(1, workers), count)
        let group = DispatchGroup()
        let key = repository.key
        let cancellation = self.cancellation
        nonisolated(unsafe) let body = body
        for _ in 0..<threads {
            group.enter()
            let t = Thread {
                defer { group.leave() }
                let reader = PackReader(master: key)
                while true {
                    if failure.withLock({ $0 != nil }) { return }
                    if let sig = cancellation?.requestedBy {
                        failure.withLock { if $0 == nil { $0 = RepoError(.interrupted(signal: sig), "interrupted: the restore is incomplete") } }
                        return
                    }
                    let i = next.add(1, ordering: .relaxed).oldValue
                    if i >= count { return }
                    do { try body(i, reader) } catch {
                        failure.withLock { if $0 == nil { $0 = error } }
                        return
                    }
                }
            }
            t.stackSize = 1 << 20
            t.start()
        }
        group.wait()
        if let e = failure.withLock({ $0 }) { throw e }
    }

    private func parallelMap<T>(_ indices: Range<Int>, _ body: @escaping (Int) throws -> T) throws -> [T] {
        let slots = ResultSlots<T>(indices.count)
        try parallelFor(indices.count) { i, _ in
            let v = try body(indices.lowerBound + i)
            slots.lock.lock(); slots.values[i] = v; slots.lock.unlock()
        }
        return slots.values.map { $0! }
    }
}


extension Node {
    /// `device:inode` of a file with more than one link (hard links restore as links to the
    /// first of them), nil otherwise.
    var linkKey: String? {
        guard let links, links > 1, let inode, let device else { return nil }
        return "\(device):\(inode)"
    }
}
