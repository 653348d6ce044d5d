public import RepoPrimitives
public import RepoStorage
public import RepoIndex
import Foundation
import Synchronization

/// An open repository: the config, the unwrapped master key, and the local catalog brought up
/// to date with the backend. Loads and saves blobs and sealed objects; knows nothing of
/// snapshots' meaning. Thread-safe.
public final class Repository: Sendable {
    public let backend: StorageBackend
    public let config: RepositoryConfig
    public let key: MasterKey
    public let catalog: Catalog
    public let chunker: FastCDC
    /// Receives warnings (damaged segments, stale locks…); the CLI prints them on stderr.
    public let warn: @Sendable (String) -> Void
    /// Whether `relocate` has rebuilt the catalog in this process.
    private let catalogRebuild = Mutex(false)
    /// Whether `reconcilePacks` has compared `data/` with the catalog in this process.
    private let packsReconciled = Mutex(false)
    /// Checks that the lock this process took (if any) is still in place; see `verifyLock`.
    let lockCheck = Mutex<(@Sendable () throws -> Void)?>(nil)

    init(backend: StorageBackend, config: RepositoryConfig, key: MasterKey, catalog: Catalog,
         warn: @escaping @Sendable (String) -> Void) {
        self.backend = backend; self.config = config; self.key = key; self.catalog = catalog; self.warn = warn
        chunker = FastCDC(key: key.chunker, parameters: config.chunker)
    }

    // MARK: create and open

    /// Creates a new repository in an empty location, with one key slot that `credential` opens
    /// (`kdfN`: its scrypt cost when it is a password), and returns its config.
    ///
    /// - Parameter sharingIDsWith: another repository's master key whose blob-id and chunker
    ///   keys the new one takes (its encryption key is new): `repo init
    ///   --copy-chunker-params-from`, so copies keep deduplicating (FORMAT.md §7.1).
    ///   - objectLock: S3 Object Lock retention for everything written from the key slot on
    ///     (FORMAT.md §31); the backend must be a `RetainingBackend` (S3), which `prepare`
    ///     checks or creates the bucket with Object Lock. Throws `.usage` on another backend.
    public static func create(backend: StorageBackend, credential: Credential, chunker: ChunkerParameters,
                              compression: String, kdfN: UInt64 = KeySlot.defaultN,
                              sharingIDsWith other: MasterKey? = nil, objectLock: ObjectLock? = nil) throws -> RepositoryConfig {
        if let objectLock {
            guard let retaining = backend as? RetainingBackend else {
                throw RepoError(.usage, "Object Lock needs an S3 repository; \(backend.location) is a local directory",
                                hint: "use an s3: location, or leave out --object-lock")
            }
            retaining.useRetention(objectLock.retention)
        }
        if let existing = try? backend.get(RepositoryConfig.objectName) {
            guard RepositoryProbe.looksLikeOurs(existing) else {
                throw RepoError(.failure, "cannot create a repository at \(backend.location): \(RepositoryProbe.describe(backend, config: existing))",
                                hint: "choose an empty or new directory")
            }
            throw RepoError(.failure, "a repository already exists at \(backend.location)",
                            hint: "use it as it is, or choose another --repo path")
        }
        do { try backend.prepare() } catch {
            throw RepoError(.failure, "cannot create a repository at \(backend.location): \(error)",
                            hint: backend is LocalBackend ? "choose an empty or new directory you can write to"
                                : "see README \"S3\" for the bucket, and \"Object Lock\" with --object-lock; or choose a prefix nothing is stored under yet")
        }
        let config = RepositoryConfig(id: SecureRandom.hash(), chunker: chunker, compression: compression, objectLock: objectLock)
        var master = MasterKey.generate()
        if let other { master.blobID = other.blobID; master.chunker = other.chunker }
        let slot = try KeySlot.make(master: master, credential: credential, repositoryID: config.id, n: kdfN,
                                    host: HostInfo.hostname, username: HostInfo.username)
        let slotBytes = try slot.encoded()
        // Key slot first, config last: a location with a config always has a usable key.
        try backend.put("keys/" + SHA256Hasher.hash(slotBytes).hex, data: slotBytes)
        try backend.put(RepositoryConfig.objectName, data: try config.encoded())
        // The space reserve (FORMAT.md §18): lets prune start on a full disk. Best effort.
        try? backend.put(reserveObject, data: [UInt8](repeating: 0, count: reserveSize))
        return config
    }

    /// `create(credential: .password(password), …)`.
    public static func create(backend: StorageBackend, password: [UInt8], chunker: ChunkerParameters,
                              compression: String, kdfN: UInt64 = KeySlot.defaultN) throws -> RepositoryConfig {
        try create(backend: backend, credential: .password(password), chunker: chunker, compression: compression, kdfN: kdfN)
    }

    /// Reads and validates the config and unwraps the master key, without a catalog: for
    /// commands that touch only objects of their own, such as the WAL archive (FORMAT.md §27).
    ///
    /// - Throws: `RepoError` `.noRepository` if there is no config, `.wrongPassword` if no key
    ///   slot opens, `.integrity` for a malformed config.
    public static func unlock(backend: StorageBackend, credential: Credential) throws -> (config: RepositoryConfig, key: MasterKey) {
        let ring = try keyRing(backend: backend, credential: credential)
        return (ring.config, ring.key)
    }

    /// `unlock(credential: .password(password))`.
    public static func unlock(backend: StorageBackend, password: [UInt8]) throws -> (config: RepositoryConfig, key: MasterKey) {
        try unlock(backend: backend, credential: .password(password))
    }

    /// Reads and validates the config and opens the key slots with `credential`, without a
    /// catalog: for `repo key`, which also needs to know which slot opened the repository.
    ///
    /// - Throws: as `unlock`.
    public static func keyRing(backend: StorageBackend, credential: Credential) throws -> KeyRing {
        try KeyRing.open(backend: backend, config: try readConfig(backend: backend), credential: credential)
    }

    /// Reads and validates the public config (FORMAT.md §6), without a key.
    ///
    /// - Throws: `RepoError` `.noRepository` if there is none, `.integrity` if it is malformed.
    public static func readConfig(backend: StorageBackend) throws -> RepositoryConfig {
        let configBytes: [UInt8]
        do {
            configBytes = try backend.get(RepositoryConfig.objectName)
        } catch StorageError.notFound {
            throw RepoError(.noRepository, "no repository at \(backend.location): \(RepositoryProbe.describe(backend, config: nil))",
                            hint: "check --repo / REPO_REPOSITORY, or create one with `repo init --repo \(backend.location)`")
        } catch let error as StorageError where "\(error)".contains("NoSuchBucket") {
            throw RepoError(.noRepository, "no repository at \(backend.location): \(error)",
                            hint: "check --repo / REPO_REPOSITORY, or create one with `repo init --repo \(backend.location)`")
        } catch {
            // Not "no repository" (exit 10): the repository may well be there, behind expired
            // credentials, a refused permission or a network that failed (exit 1).
            throw RepoError(.failure, "cannot read the repository at \(backend.location): \(error)")
        }
        // A `config` that is not ours (restic's is encrypted, borg's is INI) means another
        // tool's repository, not a damaged one of ours.
        guard RepositoryProbe.looksLikeOurs(configBytes) else {
            // Our key slots beside it: this is our repository with a damaged config.
            if RepositoryProbe.hasOurKeySlots(backend) {
                throw RepoError(.integrity, "the repository config at \(backend.location) is damaged (\(configBytes.count) bytes that are not a repo config), but the key slots are repo's",
                                hint: "the config is not secret: put back a copy of it (from another copy of this repository); FORMAT.md §6 describes it")
            }
            throw RepoError(.noRepository, "no repository at \(backend.location): \(RepositoryProbe.describe(backend, config: configBytes))",
                            hint: "check --repo / REPO_REPOSITORY; repo cannot read other tools' repositories")
        }
        let config: RepositoryConfig
        do { config = try RepositoryConfig.decode(configBytes) } catch {
            throw RepoError(.integrity, "the repository config at \(backend.location) is malformed: \(error)")
        }
        guard config.version == RepositoryConfig.currentVersion else {
            throw RepoError(.failure, "repository format version \(config.version) is not supported (this repo reads version 1)",
                            hint: "upgrade repo")
        }
        if let reason = config.invalidReason {
            throw RepoError(.integrity, "the repository config at \(backend.location) is invalid: \(reason)",
                            hint: "FORMAT.md §6 lists the legal values; the config is not authenticated, so restore it from a copy")
        }
        // Every writer locks what it stores (FORMAT.md §31); a local copy of such a repository
        // has nothing to lock with and is written plainly.
        (backend as? RetainingBackend)?.useRetention(config.objectLock?.retention)
        return config
    }

    /// Opens the repository at `backend` with `credential`, and brings the catalog under
    /// `cacheDirectory` up to date.
    ///
    /// - Throws: `RepoError` `.noRepository` if there is no config, `.wrongPassword` if no key
    ///   slot opens, `.integrity` for a malformed config.
    public static func open(backend: StorageBackend, credential: Credential, cacheDirectory: String,
                            warn: @escaping @Sendable (String) -> Void = { _ in }) throws -> Repository {
        let ring = try keyRing(backend: backend, credential: credential)
        let (config, key) = (ring.config, ring.key)
        if let notice = ring.retiredKeyNotice { warn(notice) }
        let dir = cacheDirectory + "/" + config.id.hex
        // The catalog is a cache (FORMAT.md §20): one that is damaged is rebuilt, and one that
        // cannot be written is replaced by a temporary one for this process. Either way the
        // answers come from the repository, never from a stale or broken cache.
        do {
            return try openCatalog(in: dir, backend: backend, config: config, key: key, warn: warn)
        } catch let error where Catalog.isDamage(error) {
            warn("the local cache \(dir) was damaged (\(error)); rebuilding it from the repository")
            do {
                try Catalog(path: dir + "/catalog.sqlite").recreate()
                return try openCatalog(in: dir, backend: backend, config: config, key: key, warn: warn)
            } catch let error where isCacheProblem(error) {
                return try openTemporaryCatalog(backend: backend, config: config, key: key, warn: warn, dir: dir, error: error)
            }
        } catch let error where isCacheProblem(error) {
            return try openTemporaryCatalog(backend: backend, config: config, key: key, warn: warn, dir: dir, error: error)
        }
    }

    /// The same repository, catalog and backend with another master key: for a rotation, which
    /// takes the key with the retired root in it once the slots carry it (FORMAT.md §7.6). It
    /// holds no lock.
    public func withKey(_ key: MasterKey) -> Repository {
        Repository(backend: backend, config: config, key: key, catalog: catalog, warn: warn)
    }

    /// `open(credential: .password(password), …)`.
    public static func open(backend: StorageBackend, password: [UInt8], cacheDirectory: String,
                            warn: @escaping @Sendable (String) -> Void = { _ in }) throws -> Repository {
        try open(backend: backend, credential: .password(password), cacheDirectory: cacheDirectory, warn: warn)
    }

    /// Errors of the local cache (SQLite, its files), as opposed to the repository's.
    static func isCacheProblem(_ error: Error) -> Bool {
        Catalog.isCacheError(error) || error is CocoaError || error is LocalCacheError
    }

    struct LocalCacheError: Error, CustomStringConvertible { var description: String }

    private static func openCatalog(in dir: String, backend: StorageBackend, config: RepositoryConfig, key: MasterKey,
                                    warn: @escaping @Sendable (String) -> Void) throws -> Repository {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        guard access(dir, W_OK) == 0 else {
            throw LocalCacheError(description: "the directory is not writable: \(String(cString: strerror(errno)))")
        }
        let catalog = try Catalog(path: dir + "/catalog.sqlite")
        let repo = Repository(backend: backend, config: config, key: key, catalog: catalog, warn: warn)
        try repo.synchronizeCatalog()
        return repo
    }

    /// A catalog in a fresh temporary directory, removed when the process exits.
    private static func openTemporaryCatalog(backend: StorageBackend, config: RepositoryConfig, key: MasterKey,
                                             warn: @escaping @Sendable (String) -> Void, dir: String, error: Error) throws -> Repository {
        warn("the local cache \(dir) cannot be used (\(error)); this command uses a temporary cache and may be slower "
             + "(make the directory writable, or pass --cache-dir / REPO_CACHE_DIR)")
        let tmp = TemporaryDirectories.make(prefix: "repo-cache-")
        let catalog = try Catalog(path: tmp + "/catalog.sqlite")
        let repo = Repository(backend: backend, config: config, key: key, catalog: catalog, warn: warn)
        try repo.synchronizeCatalog()
        return repo
    }

    // MARK: catalog

    /// Brings the catalog up to date with `index/` (FORMAT.md §20): reads only the segments it
    /// has not read before, drops the listings of segments they supersede and of segments no
    /// longer stored, and removes packs no remaining segment lists. After a prune this reads the
    /// segments the prune wrote, not the whole index again. `data/` is not listed here: readers
    /// never need unindexed packs (§19), and writers compare it with the index once per session
    /// (`reconcilePacks`).
    public func synchronizeCatalog() throws {
        let remote = Set(try backend.list(prefix: "index/").map { String($0.name.dropFirst("index/".count)) })
        let known = try catalog.segmentNames()
        let fresh = remote.subtracting(known).sorted()
        let gone = known.subtracting(remote)
        guard !fresh.isEmpty || !gone.isEmpty else { return }
        var read: [Catalog.SegmentListing] = []
        for (name, loaded) in zip(fresh, Self.concurrentMap(fresh) { try self.loadSegment($0) }) {
            switch loaded {
            case .success(let seg):
                read.append(Catalog.SegmentListing(name: name, packs: seg.packs, superseded: seg.superseded.map(\.hex)))
            case .failure(let error):
                // Not recorded, so the next open tries it again.
                warn("index segment \(name) is unreadable and was skipped: \(error); `repo check` will report it")
            }
        }
        _ = try catalog.applySegments(read, gone: gone)
    }

    /// Compares `data/` with the catalog, once per process (writers call it when a write
    /// session starts): drops indexed packs that are no longer stored, with a warning, so
    /// their blobs are stored again rather than deduplicated against data that is gone; drops
    /// adopted unindexed packs that a prune has deleted since; and adopts packs no segment
    /// lists (left by an interrupted writer) from their headers, so the session reuses their
    /// blobs and its segment lists them (FORMAT.md §19, §20).
    ///
    /// One listing request per 1,000 packs on S3, which is why readers do this only when a
    /// blob they need is not in the index (`relocate`, with `force`: an index segment may be
    /// lost while its packs are intact, FORMAT.md §20).
    public func reconcilePacks(force: Bool = false) throws {
        let first = packsReconciled.withLock { done in
            defer { done = true }
            return !done
        }
        guard first || force else { return }
        // With none adopted before and exactly as many objects under data/ as indexed packs,
        // the two sets are equal unless an indexed pack vanished while an orphan appeared;
        // missing that orphan only loses a chance to reuse its blobs (FORMAT.md §20). This
        // keeps a repository of 300,000 packs from parsing and hashing every name.
        let packObjects = try backend.listPackNames()
        let adopted = try catalog.unindexedPacks()
        if adopted.isEmpty, packObjects.count == (try catalog.packCount()) { return }
        var presentPacks = Set<Hash256>()
        for var name in packObjects {
            // data/<hh>/<64 hex digits>; anything else under data/ is ignored (FORMAT.md §3).
            let h = name.withUTF8 { u -> Hash256? in
                guard u.count >= 65, u[u.count - 65] == UInt8(ascii: "/") else { return nil }
                return Hash256(hexUTF8: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(u)[(u.count - 64)...]))
            }
            if let h { presentPacks.insert(h) }
        }
        // Adopted packs that a prune deleted: no later segment may list them.
        let deletedAdopted = adopted.map(\.name).filter { !presentPacks.contains($0) }
        if !deletedAdopted.isEmpty { try catalog.removePacks(deletedAdopted) }
        let knownPacks = try catalog.packNames()
        // Indexed packs that are gone (deleted or lost by the storage): their blobs must be
        // stored again by the next writer, or every new snapshot would name data that does not
        // exist. `check` reports them; the index segments keep listing them until a repair.
        let vanished = knownPacks.subtracting(presentPacks)
        if !vanished.isEmpty {
            try catalog.removePacks(Array(vanished))
            warn("\(vanished.count) indexed pack\(vanished.count == 1 ? " is" : "s are") missing from the repository (\(vanished.prefix(3).map(\.shortHex).joined(separator: ", "))\(vanished.count > 3 ? ", …" : "")); new backups store their data again; run `repo check` to see which snapshots are affected")
        }
        let reader = PackReader(master: key)
        for name in presentPacks where !knownPacks.contains(name) {
            do {
                try catalog.addUnindexedPack(try reader.readHeader(name: name, backend: backend))
            } catch {
                warn("pack \(name.hex) is not indexed and its header is unreadable: \(error)")
            }
        }
    }

    func loadSegment(_ name: String) throws -> IndexSegment {
        let bytes = try backend.get("index/" + name)
        let body = try SealedObject.open(bytes, kind: .index, key: key, name: "index/" + name)
        do { return try IndexSegment.decode(body) } catch {
            throw RepoError(.integrity, "index/\(name): malformed segment: \(error)")
        }
    }

    /// A membership filter over every blob the catalog knows.
    public func membershipFilter() throws -> MembershipFilter {
        try catalog.membershipFilter()
    }

    // MARK: sealed objects

    /// Seals and stores an object; returns its id (the SHA-256 of the stored bytes).
    ///
    /// A snapshot is only written while this process's lock is intact (`verifyLock`): a
    /// snapshot committed after the lock vanished could reference packs a prune deleted.
    @discardableResult
    public func saveObject(_ body: [UInt8], kind: SealedObject.Kind) throws -> Hash256 {
        if kind == .snapshot { try verifyLock() }
        let sealed = try SealedObject.seal(body, kind: kind, key: key)
        let (name, id) = SealedObject.objectName(kind: kind, bytes: sealed)
        try backend.put(name, data: sealed)
        return id
    }

    /// Throws unless the lock this process holds on the repository is still there and intact
    /// (no-op without a lock). Called before a snapshot is written and before prune deletes.
    public func verifyLock() throws {
        try lockCheck.withLock { $0 }?()
    }

    /// Loads and opens an object by backend name.
    public func loadObject(_ name: String, kind: SealedObject.Kind) throws -> [UInt8] {
        try SealedObject.open(try backend.get(name), kind: kind, key: key, name: name)
    }

    /// `transform` of every item, up to `maximum` (16) at a time (objects fetched over a network are
    /// latency-bound: a cold open of 2,000 index segments on S3 took 19 s one by one), in order.
    public static func concurrentMap<T>(_ items: [String], threads maximum: Int = 16,
                                        _ transform: @escaping @Sendable (String) throws -> T) -> [Result<T, Error>] {
        guard items.count > 1, maximum > 1 else { return items.map { name in Result { try transform(name) } } }
        let results = UnsafeMutablePointer<Result<T, Error>?>.allocate(capacity: items.count)
        results.initialize(repeating: nil, count: items.count)
        defer { results.deinitialize(count: items.count); results.deallocate() }
        nonisolated(unsafe) let slots = results
        let threads = min(maximum, items.count)
        // Real threads: the transforms wait on storage, and concurrentPerform would run only
        // as many at once as there are cores.
        BlockingThreads.run(count: threads) { t in
            // Each thread writes only its own slots.
            for i in stride(from: t, to: items.count, by: threads) { slots[i] = Result { try transform(items[i]) } }
        }
        return (0..<items.count).map { results[$0]! }
    }

    /// Every snapshot's id and decrypted body. Bodies are cached in the catalog.
    public func snapshotBodies() throws -> [(id: Hash256, body: [UInt8])] {
        try snapshotBodiesAndDamage().bodies
    }

    /// Every snapshot's id and decrypted body, and the ids of snapshot objects that cannot be
    /// read or authenticated (each reported through `warn`).
    public func snapshotBodiesAndDamage() throws -> (bodies: [(id: Hash256, body: [UInt8])], unreadable: [Hash256]) {
        var unreadable: [Hash256] = []
        let listed = try backend.list(prefix: "snapshots/")
        let cached = try catalog.cachedSnapshots()
        var out: [(Hash256, [UInt8])] = []
        var seen = Set<String>()
        let uncached = listed.map(\.name).filter { cached[String($0.dropFirst("snapshots/".count))] == nil && Hash256(hex: String($0.dropFirst("snapshots/".count))) != nil }
        var loaded: [String: Result<[UInt8], Error>] = [:]
        for (name, r) in zip(uncached, Self.concurrentMap(uncached) { try self.loadObject($0, kind: .snapshot) }) { loaded[name] = r }
        for info in listed {
            let hex = String(info.name.dropFirst("snapshots/".count))
            guard let id = Hash256(hex: hex) else { continue }
            seen.insert(hex)
            if let body = cached[hex] { out.append((id, body)); continue }
            let body: [UInt8]
            do { body = try loaded[info.name]!.get() } catch {
                warn("snapshot \(hex) is unreadable and was skipped: \(error)")
                unreadable.append(id)
                continue
            }
            out.append((id, body))
            // Caching is an optimisation: a cache that cannot take it changes no answer.
            try? catalog.cacheSnapshot(name: hex, body: body)
        }
        let gone = cached.keys.filter { !seen.contains($0) }
        if !gone.isEmpty { try? catalog.uncacheSnapshots(gone) }
        return (out, unreadable)
    }

    // MARK: blobs

    /// Where a blob is stored; nil if the index has no such blob.
    public func locate(_ id: BlobID) throws -> BlobLocation? { try catalog.lookup(id) }

    /// Where many blobs are stored (ids the index lacks are left out). A catalog that fails
    /// to answer is rebuilt from the repository once and asked again.
    public func locate(_ ids: [BlobID]) throws -> [BlobID: BlobLocation] {
        do { return try catalog.lookup(ids) } catch where Self.isCacheProblem(error) {
            if let first = ids.first { _ = try relocate(first, after: nil) }
            return try catalog.lookup(ids)
        }
    }

    /// Reads and decrypts one blob. `reader` is the calling thread's `PackReader`.
    ///
    /// When the blob cannot be found or read, the local catalog is suspected first: it is
    /// rebuilt from the repository once per process (`relocate`), and the read is retried if
    /// the blob's location changed. Only then is the failure reported as repository damage.
    public func loadBlob(_ id: BlobID, reader: PackReader) throws -> [UInt8] {
        let loc: BlobLocation?
        do { loc = try locate(id) } catch where Self.isCacheProblem(error) {
            loc = nil
        }
        do {
            guard let loc else {
                throw RepoError(.integrity, "blob \(id.hex) is referenced but not in the index",
                                hint: "run `repo check` for the full picture")
            }
            return try loadBlob(at: loc, reader: reader)
        } catch let error as RepoError where error.kind == .integrity {
            guard let moved = try relocate(id, after: loc) else { throw error }
            return try loadBlob(at: moved, reader: reader)
        }
    }

    /// After reading blob `id` from `failed` went wrong: rebuilds the catalog from the
    /// repository (once per process; later calls only look up again) and returns the blob's
    /// location if it differs from `failed`, i.e. if the cache was wrong. Nil means the cache
    /// agrees with the repository, so the damage is real.
    public func relocate(_ id: BlobID, after failed: BlobLocation?) throws -> BlobLocation? {
        try catalogRebuild.withLock { rebuilt in
            guard !rebuilt else { return }
            rebuilt = true
            do {
                try catalog.recreate()
                try synchronizeCatalog()
                // Packs no segment lists too: the blob may be in one whose segment was lost.
                try reconcilePacks(force: true)
            } catch where Self.isCacheProblem(error) {
                throw RepoError(.failure, "the local cache \(catalog.path) could not be rebuilt: \(error)",
                                hint: "delete it, or pass --cache-dir / REPO_CACHE_DIR pointing elsewhere")
            }
        }
        let now: BlobLocation?
        do { now = try catalog.lookup(id) } catch where Self.isCacheProblem(error) { return nil }
        guard let now, now != failed else { return nil }
        warn("the local cache disagreed with the repository about blob \(id.shortHex); it was rebuilt from the repository")
        return now
    }

    /// Reads blobs of one pack with a single ranged read, from the first one's start to the
    /// last one's end, and decrypts each: on object storage one request instead of one per blob.
    /// The bytes between them (other streams' blobs, say) are read and discarded, so the caller
    /// chooses blobs that fill most of that span (`PackRegionPlan` in RepoOperations does).
    ///
    /// Each blob is checked as `loadBlob` checks it (AES-GCM with the blob's id, type and offset
    /// authenticated, then the decompressed length). Touches neither the catalog nor anything
    /// but `reader`, so threads can call it while another rebuilds the catalog.
    ///
    /// - Parameter locations: blobs of one pack in ascending offset order, none overlapping.
    /// - Returns: one entry per location, in order: the blob's plaintext, or nil where this read
    ///   could not provide it (the request failed, the object is shorter than the catalog says,
    ///   or the blob did not authenticate). Read such a blob with `loadBlob(_:reader:)`, which
    ///   suspects a stale catalog first (`relocate`) and reports real damage.
    public func loadBlobs(inOnePack locations: [BlobLocation], reader: PackReader) -> [[UInt8]?] {
        guard let first = locations.first, let last = locations.last else { return [] }
        precondition(locations.allSatisfy { $0.pack == first.pack }, "loadBlobs(inOnePack:) needs blobs of one pack")
        let base = first.entry.offset
        let end = last.entry.offset + last.entry.length
        guard base < end, let span = try? backend.get(PackDescriptor.objectName(first.pack), range: base..<end) else {
            return locations.map { _ in nil }
        }
        return span.withUnsafeBytes { buf in
            locations.map { loc -> [UInt8]? in
                let e = loc.entry
                guard e.offset >= base, e.offset - base <= buf.count, e.length <= buf.count - (e.offset - base) else { return nil }
                return try? reader.open(UnsafeRawBufferPointer(rebasing: buf[(e.offset - base)..<(e.offset - base + e.length)]),
                                        entry: e, packSalt: loc.packSalt, pack: loc.pack)
            }
        }
    }

    public func loadBlob(at loc: BlobLocation, reader: PackReader) throws -> [UInt8] {
        let e = loc.entry
        let sealed: [UInt8]
        do {
            sealed = try backend.get(PackDescriptor.objectName(loc.pack), range: e.offset..<(e.offset + e.length))
        } catch StorageError.notFound {
            throw RepoError(.integrity, "pack \(loc.pack.hex) holding blob \(e.id.shortHex) is missing")
        } catch let err as StorageError {
            if case .badRange = err { throw RepoError(.integrity, "pack \(loc.pack.hex) is truncated: \(err)") }
            throw RepoError(.failure, "reading pack \(loc.pack.hex): \(err)")
        }
        return try sealed.withUnsafeBytes { try reader.open($0, entry: e, packSalt: loc.packSalt, pack: loc.pack) }
    }

    /// Convenience for occasional loads (trees): a fresh reader per call.
    public func loadBlob(_ id: BlobID) throws -> [UInt8] { try loadBlob(id, reader: PackReader(master: key)) }

    /// Computes a blob id with a fresh HMAC context (for occasional use; hot paths keep one).
    public func blobID(of data: [UInt8]) -> BlobID { HMACSHA256(key: key.blobID).mac(data) }
}

/// Who and where we are, for key slots, locks and snapshots.
public enum HostInfo {
    public static var hostname: String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        return String(cString: buf)
    }

    public static var username: String {
        ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.environment["LOGNAME"] ?? "uid\(getuid())"
    }
}
