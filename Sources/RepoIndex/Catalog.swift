public import RepoPrimitives
import GRDB
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Errors of the local catalog.
public struct CatalogError: Error, CustomStringConvertible {
    public var description: String
    /// The catalog's contents are damaged (as opposed to, say, a newer schema).
    public var isDamage = false
}

/// The local SQLite catalog: a materialized, rebuildable view of the repository's index
/// segments (pack → blobs) and decrypted snapshots, kept in the cache directory.
///
/// Deleting the file loses nothing: the repository layer refills it from index segments (and
/// from pack headers for packs no segment lists). Several processes may use one catalog at once
/// (WAL mode, busy timeout). Thread-safe.
public final class Catalog: Sendable {
    private let current: Mutex<DatabasePool>
    /// Held shared by every use of the pool and exclusively by `recreate`, which closes it.
    private let gate = ReadWriteLock()
    /// The current pool, used under `gate`.
    private var pool: GatedPool { GatedPool(catalog: self) }

    /// `read`, `write` and `unsafeRead` of the current pool, each under `gate` held shared.
    private struct GatedPool {
        let catalog: Catalog
        func read<T>(_ body: (Database) throws -> T) throws -> T {
            try catalog.gate.shared { try catalog.current.withLock { $0 }.read(body) }
        }
        func write<T>(_ body: (Database) throws -> T) throws -> T {
            try catalog.gate.shared { try catalog.current.withLock { $0 }.write(body) }
        }
        func unsafeRead<T>(_ body: (Database) throws -> T) throws -> T {
            try catalog.gate.shared { try catalog.current.withLock { $0 }.unsafeRead(body) }
        }
    }
    public let path: String
    /// The persisted membership filter (see `FilterFile`).
    var filterPath: String { path + "-filter" }

    /// Opens (creating if needed) the catalog at `path`. A file that cannot be opened as a
    /// catalog of this schema version is deleted and recreated: it is only a cache.
    public init(path: String) throws {
        self.path = path
        let pool: DatabasePool
        do {
            pool = try Self.openPool(path)
        } catch {
            Self.removeFiles(path)
            pool = try Self.openPool(path)
        }
        current = Mutex(pool)
    }

    private static func removeFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-filter"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// Deletes the catalog's files and starts an empty one at the same path (after damage was
    /// found: the repository layer then refills it). Connections of other processes keep the
    /// old, unlinked file until they close. Threads of this process finish their current use
    /// of the old pool first (`gate`): closing it under a reading thread crashed a dump whose
    /// catalog was rebuilt meanwhile, and leaving it open would let its last close delete the
    /// new catalog's `-wal` file, which has the same name.
    public func recreate() throws {
        try gate.exclusive {
            try current.withLock { pool in
                try? pool.close()
                Self.removeFiles(path)
                pool = try Self.openPool(path)
            }
        }
    }

    /// Whether `error` came from the cache itself (SQLite, or the catalog's own checks) rather
    /// than from the repository: such errors must never be reported as repository damage.
    public static func isCacheError(_ error: Error) -> Bool {
        error is DatabaseError || error is CatalogError
    }

    /// Whether `error` says the catalog file is damaged (not merely unwritable).
    public static func isDamage(_ error: Error) -> Bool {
        if let e = error as? DatabaseError { return e.resultCode == .SQLITE_CORRUPT || e.resultCode == .SQLITE_NOTADB }
        if let e = error as? CatalogError { return e.isDamage }
        return false
    }

    /// 2: pack row ids never repeat (AUTOINCREMENT) and a `meta` table holds the catalog's epoch,
    /// so the persisted membership filter can be extended by pack row id.
    /// 3: cached snapshot bodies carry an XXH3-64 checksum, checked on every read.
    /// 4: `listings` records every segment that lists a pack and `superseded` every segment
    /// name a segment read supersedes, so the segments a prune writes replace exactly the ones
    /// they supersede instead of forcing a rebuild from the whole index.
    static let schemaVersion = 4

    private static func openPool(_ path: String) throws -> DatabasePool {
        var config = Configuration()
        config.busyMode = .timeout(60)
        let pool = try DatabasePool(path: path, configuration: config)
        try pool.write { db in
            let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
            if version != 0 && version != schemaVersion {
                throw CatalogError(description: "catalog schema \(version) is not \(schemaVersion)")
            }
            if version == 0 {
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY);
                    CREATE TABLE IF NOT EXISTS packs (
                        pid INTEGER PRIMARY KEY AUTOINCREMENT,
                        name BLOB NOT NULL UNIQUE,
                        salt BLOB NOT NULL,
                        kind INTEGER NOT NULL,
                        location INTEGER NOT NULL,
                        size INTEGER NOT NULL,
                        segment TEXT
                    );
                    CREATE TABLE IF NOT EXISTS blobs (
                        id BLOB NOT NULL,
                        pid INTEGER NOT NULL,
                        type INTEGER NOT NULL,
                        flags INTEGER NOT NULL,
                        offset INTEGER NOT NULL,
                        length INTEGER NOT NULL,
                        raw INTEGER NOT NULL,
                        PRIMARY KEY (id, pid)
                    ) WITHOUT ROWID;
                    CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs(pid);
                    CREATE INDEX IF NOT EXISTS packs_unindexed ON packs(pid) WHERE segment IS NULL;
                    CREATE TABLE IF NOT EXISTS snapshots (name TEXT PRIMARY KEY, body BLOB NOT NULL, sum INTEGER NOT NULL);
                    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
                    CREATE TABLE IF NOT EXISTS listings (segment TEXT NOT NULL, pid INTEGER NOT NULL, PRIMARY KEY (segment, pid)) WITHOUT ROWID;
                    CREATE INDEX IF NOT EXISTS listings_by_pack ON listings(pid);
                    CREATE TABLE IF NOT EXISTS superseded (name TEXT PRIMARY KEY) WITHOUT ROWID;
                    PRAGMA user_version = \(schemaVersion);
                    """)
                try newEpoch(db)
            }
        }
        return pool
    }

    // MARK: segments and packs

    /// Names of the index segments already read: active ones, and superseded ones still
    /// stored (recorded so they are not fetched again).
    public func segmentNames() throws -> Set<String> {
        try pool.read { db in Set(try String.fetchAll(db, sql: "SELECT name FROM segments")) }
    }

    /// Names of every known pack.
    public func packNames() throws -> Set<Hash256> {
        try pool.read { db in
            var names = Set<Hash256>(minimumCapacity: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM packs") ?? 0)
            let rows = try Row.fetchCursor(db, sql: "SELECT name FROM packs")
            while let row = try rows.next() {
                if let d = row.dataNoCopy(atIndex: 0), d.count == 32 { names.insert(Hash256(bytes: d)) }
            }
            return names
        }
    }

    /// Number of known packs.
    public func packCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM packs") ?? 0 }
    }

    /// Packs known from pack headers only (no index segment lists them yet).
    public func unindexedPacks() throws -> [PackDescriptor] {
        try pool.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM packs WHERE segment IS NULL")
            return try rows.map { try Self.descriptor(db, $0) }
        }
    }

    /// Every pack with its blobs (used by check and stats).
    public func allPacks() throws -> [PackDescriptor] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM packs").map { try Self.descriptor(db, $0) }
        }
    }

    private static func descriptor(_ db: Database, _ row: Row) throws -> PackDescriptor {
        let pid: Int64 = row["pid"]
        let blobs = try Row.fetchAll(db, sql: "SELECT * FROM blobs WHERE pid = ? ORDER BY offset", arguments: [pid])
            .map(entry)
        return PackDescriptor(name: Hash256(bytes: row["name"] as Data), salt: [UInt8](row["salt"] as Data),
                              kind: BlobType(rawValue: UInt8(row["kind"] as Int)) ?? .data,
                              location: UInt8(row["location"] as Int), size: row["size"], blobs: blobs)
    }

    private static func entry(_ row: Row) -> PackBlobEntry {
        PackBlobEntry(id: Hash256(bytes: row["id"] as Data),
                      type: BlobType(rawValue: UInt8(row["type"] as Int)) ?? .data,
                      flags: UInt8(row["flags"] as Int), offset: row["offset"],
                      length: row["length"], rawLength: row["raw"])
    }

    /// One index segment as read from the repository (FORMAT.md §12).
    public struct SegmentListing: Sendable {
        public var name: String
        public var packs: [PackDescriptor]
        /// Names of the segments it supersedes.
        public var superseded: [String]
        public init(name: String, packs: [PackDescriptor], superseded: [String] = []) {
            self.name = name; self.packs = packs; self.superseded = superseded
        }
    }

    /// What `applySegments` changed.
    public struct SegmentChange: Sendable, Equatable {
        /// Segments whose listings were dropped: superseded by a segment read, or gone.
        public var segmentsDropped = 0
        /// Indexed packs that no remaining segment lists (removed with their blobs).
        public var packsRemoved = 0
        public init(segmentsDropped: Int = 0, packsRemoved: Int = 0) {
            self.segmentsDropped = segmentsDropped; self.packsRemoved = packsRemoved
        }
    }

    /// Records an index segment and its packs in one transaction (`applySegments`).
    public func addSegment(_ name: String, packs: [PackDescriptor]) throws {
        _ = try applySegments([SegmentListing(name: name, packs: packs)], gone: [])
    }

    /// Brings the catalog to a new state of `index/` in one transaction: records `added`
    /// (their superseded lists first, so a segment that any segment read supersedes contributes
    /// no packs), drops the listings of every segment now superseded and of every segment in
    /// `gone` (no longer stored), and removes the indexed packs that no remaining segment lists,
    /// with their blobs. Packs known only from their headers are untouched.
    ///
    /// One transaction, because the catalog must never record a new segment while still
    /// holding packs that a segment it supersedes listed: after a crash in between, the new
    /// segment would count as read and never be read again, and the entries of packs a prune
    /// deleted would stay.
    public func applySegments(_ added: [SegmentListing], gone: Set<String>) throws -> SegmentChange {
        try pool.write { db in
            var change = SegmentChange()
            for seg in added {
                for name in seg.superseded {
                    try db.execute(sql: "INSERT OR IGNORE INTO superseded(name) VALUES (?)", arguments: [name])
                }
            }
            for seg in added {
                try db.execute(sql: "INSERT OR IGNORE INTO segments(name) VALUES (?)", arguments: [seg.name])
                guard try !Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM superseded WHERE name = ?)", arguments: [seg.name])! else { continue }
                for p in seg.packs { try Self.insert(db, p, segment: seg.name) }
            }
            // Listings that go: those of superseded segments, and of segments no longer stored.
            var dropped = Set(try String.fetchAll(db, sql: """
                SELECT name FROM superseded s WHERE EXISTS (SELECT 1 FROM listings l WHERE l.segment = s.name)
                """))
            dropped.formUnion(gone)
            for name in dropped {
                try db.execute(sql: "DELETE FROM listings WHERE segment = ?", arguments: [name])
            }
            // Superseded names stay recorded after the segment is gone: segment names are hashes
            // of sealed bytes and never recur, so one seen again is a lagging listing.
            for name in gone {
                try db.execute(sql: "DELETE FROM segments WHERE name = ?", arguments: [name])
            }
            change.segmentsDropped = dropped.count
            guard !dropped.isEmpty else { return change }
            let orphaned = try Int64.fetchAll(db, sql: """
                SELECT pid FROM packs
                WHERE segment IS NOT NULL AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.pid = packs.pid)
                """)
            var removedBlobs = 0
            for pid in orphaned {
                try db.execute(sql: "DELETE FROM blobs WHERE pid = ?", arguments: [pid])
                removedBlobs += db.changesCount
                try db.execute(sql: "DELETE FROM packs WHERE pid = ?", arguments: [pid])
            }
            change.packsRemoved = orphaned.count
            // A pack still listed by another segment names a segment that still lists it.
            try db.execute(sql: """
                UPDATE packs SET segment = (SELECT l.segment FROM listings l WHERE l.pid = packs.pid LIMIT 1)
                WHERE segment IS NOT NULL AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.pid = packs.pid AND l.segment = packs.segment)
                """)
            // The persisted filter keeps the removed ids (each costs a confirming query); when
            // they are many, a new epoch has it rebuilt from what remains.
            let remaining = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM blobs") ?? 0
            if removedBlobs * 4 > remaining { try Self.newEpoch(db) }
            return change
        }
    }

    /// Records a pack known only from its header.
    public func addUnindexedPack(_ pack: PackDescriptor) throws {
        try pool.write { db in try Self.insert(db, pack, segment: nil) }
    }

    private static func insert(_ db: Database, _ p: PackDescriptor, segment: String?) throws {
        let name = Data(p.name.bytes)
        if let pid = try Int64.fetchOne(db, sql: "SELECT pid FROM packs WHERE name = ?", arguments: [name]) {
            if let segment {
                try db.execute(sql: "UPDATE packs SET segment = ? WHERE pid = ? AND segment IS NULL",
                               arguments: [segment, pid])
                try db.execute(sql: "INSERT OR IGNORE INTO listings(segment, pid) VALUES (?, ?)", arguments: [segment, pid])
            }
            return
        }
        try db.execute(sql: "INSERT INTO packs(name, salt, kind, location, size, segment) VALUES (?,?,?,?,?,?)",
                       arguments: [name, Data(p.salt), Int(p.kind.rawValue), Int(p.location), p.size, segment])
        let pid = db.lastInsertedRowID
        if let segment {
            try db.execute(sql: "INSERT INTO listings(segment, pid) VALUES (?, ?)", arguments: [segment, pid])
        }
        let stmt = try db.cachedStatement(sql: "INSERT OR IGNORE INTO blobs(id, pid, type, flags, offset, length, raw) VALUES (?,?,?,?,?,?,?)")
        for b in p.blobs {
            try stmt.execute(arguments: [Data(b.id.bytes), pid, Int(b.type.rawValue), Int(b.flags), b.offset, b.length, b.rawLength])
        }
    }

    /// Forgets packs (and their blobs) that an index segment lists but the repository no longer
    /// holds, so writers store those blobs again instead of deduplicating against them.
    public func removePacks(_ names: [Hash256]) throws {
        try pool.write { db in
            for name in names {
                guard let pid = try Int64.fetchOne(db, sql: "SELECT pid FROM packs WHERE name = ?", arguments: [Data(name.bytes)]) else { continue }
                try db.execute(sql: "DELETE FROM blobs WHERE pid = ?", arguments: [pid])
                try db.execute(sql: "DELETE FROM listings WHERE pid = ?", arguments: [pid])
                try db.execute(sql: "DELETE FROM packs WHERE pid = ?", arguments: [pid])
            }
        }
    }

    /// Forgets everything (before a full rebuild).
    public func clear() throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM blobs; DELETE FROM packs; DELETE FROM segments; DELETE FROM snapshots; DELETE FROM listings; DELETE FROM superseded;")
            try Self.newEpoch(db)
        }
        unlink(filterPath)
    }

    /// A new random epoch: filter files written for the old contents no longer match.
    private static func newEpoch(_ db: Database) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES ('epoch', ?)",
                       arguments: [Data(SecureRandom.bytes(16))])
    }

    // MARK: blobs

    /// Where a blob can be read, or nil if no indexed pack holds it.
    public func lookup(_ id: BlobID) throws -> BlobLocation? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT b.*, p.name AS pname, p.salt AS psalt FROM blobs b JOIN packs p ON p.pid = b.pid
                WHERE b.id = ? LIMIT 1
                """, arguments: [Data(id.bytes)]) else { return nil }
            return BlobLocation(pack: Hash256(bytes: row["pname"] as Data), packSalt: [UInt8](row["psalt"] as Data),
                                entry: Self.entry(row))
        }
    }

    /// Locations of many blobs in one read transaction with one prepared statement (restore
    /// looks up every chunk it needs; a transaction per lookup would dominate). Blobs the
    /// index lacks are absent from the result.
    public func lookup(_ ids: [BlobID]) throws -> [BlobID: BlobLocation] {
        try pool.read { db in
            let statement = try db.cachedStatement(sql: """
                SELECT b.*, p.name AS pname, p.salt AS psalt FROM blobs b JOIN packs p ON p.pid = b.pid
                WHERE b.id = ? LIMIT 1
                """)
            var out: [BlobID: BlobLocation] = [:]
            out.reserveCapacity(ids.count)
            for id in ids {
                guard let row = try Row.fetchOne(statement, arguments: [Data(id.bytes)]) else { continue }
                out[id] = BlobLocation(pack: Hash256(bytes: row["pname"] as Data), packSalt: [UInt8](row["psalt"] as Data),
                                       entry: Self.entry(row))
            }
            return out
        }
    }

    /// True if a blob with this id and type is indexed (the dedup check: a data chunk is never
    /// satisfied by a tree blob with equal bytes, so data and metadata stay in separate packs).
    ///
    /// This runs for every chunk the membership filter cannot rule out (every chunk of an
    /// unchanged re-store), so it is one cached statement outside an explicit transaction: a
    /// single SELECT is consistent by itself, and `read`'s BEGIN/COMMIT pair tripled its cost.
    public func contains(_ id: BlobID, type: BlobType) throws -> Bool {
        try pool.unsafeRead { db in
            let statement = try db.cachedStatement(sql: "SELECT EXISTS(SELECT 1 FROM blobs WHERE id = ? AND type = ?)")
            return try Bool.fetchOne(statement, arguments: [Data(id.bytes), Int(type.rawValue)]) ?? false
        }
    }

    /// The 8-byte prefixes of all indexed blob ids (to build a `MembershipFilter`).
    public func blobPrefixes() throws -> [UInt64] {
        try pool.read { db in try Self.prefixes(db, packsAfter: 0, through: Int64.max) }
    }

    /// A membership filter over every indexed blob. It comes from the persisted filter file when
    /// that is current, is extended by a merge when packs were added since (the usual case: one
    /// segment per store), and is rebuilt from the blobs table only when the file is missing,
    /// damaged or from before a `clear`. Reading millions of ids out of SQLite on every start
    /// would cost seconds; the file costs one sequential read (8 bytes a blob).
    public func membershipFilter() throws -> MembershipFilter {
        let header = FilterFile.readHeader(path: filterPath)
        let (epoch, last, fresh): ([UInt8], Int64, [UInt64]?) = try pool.read { db in
            let epoch = [UInt8](try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'epoch'") ?? Data())
            let last = try Int64.fetchOne(db, sql: "SELECT MAX(pid) FROM packs") ?? 0
            guard let header, header.epoch == epoch, header.coveredPack <= last else { return (epoch, last, nil) }
            return (epoch, last, try Self.prefixes(db, packsAfter: header.coveredPack, through: last))
        }
        if let header, let fresh,
           var file = FilterFile.read(path: filterPath, expected: header, extraCapacity: fresh.count) {
            if fresh.isEmpty { return MembershipFilter(sortedPrefixes: file.prefixes) }
            FilterFile.merge(&file.prefixes, FilterFile.normalized(fresh))
            file.coveredPack = last
            file.write(path: filterPath)
            return MembershipFilter(sortedPrefixes: file.prefixes)
        }
        let prefixes = FilterFile.normalized(try pool.read { db in try Self.prefixes(db, packsAfter: 0, through: last) })
        FilterFile(epoch: epoch, coveredPack: last, prefixes: prefixes).write(path: filterPath)
        return MembershipFilter(sortedPrefixes: prefixes)
    }

    private static func prefixes(_ db: Database, packsAfter low: Int64, through high: Int64) throws -> [UInt64] {
        var out: [UInt64] = []
        let cursor = try Row.fetchCursor(db, sql: "SELECT id FROM blobs WHERE pid > ? AND pid <= ?", arguments: [low, high])
        while let row = try cursor.next() {
            let d = row.dataNoCopy(atIndex: 0) ?? Data()
            out.append(d.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
        return out
    }

    /// Counts and sizes for `repo stats`.
    public struct Totals: Sendable {
        public var packs = 0, packBytes = 0, blobs = 0, dataBlobs = 0, treeBlobs = 0, rawBytes = 0, storedBytes = 0
    }

    public func totals() throws -> Totals {
        try pool.read { db in
            var t = Totals()
            if let r = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, COALESCE(SUM(size),0) AS s FROM packs") {
                t.packs = r["n"]; t.packBytes = r["s"]
            }
            // Distinct blob ids: a blob stored twice by concurrent writers counts once.
            if let r = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS n, COALESCE(SUM(raw),0) AS raw, COALESCE(SUM(length),0) AS len,
                       COALESCE(SUM(type = 0),0) AS d, COALESCE(SUM(type = 1),0) AS t
                FROM (SELECT type, raw, length FROM blobs GROUP BY id)
                """) {
                t.blobs = r["n"]; t.rawBytes = r["raw"]; t.storedBytes = r["len"]
                t.dataBlobs = r["d"]; t.treeBlobs = r["t"]
            }
            return t
        }
    }

    // MARK: snapshots

    /// Cached decrypted snapshot bodies by object name. A body whose checksum does not match
    /// (a damaged cache) is left out, so the caller reads it from the repository again.
    public func cachedSnapshots() throws -> [String: [UInt8]] {
        try pool.read { db in
            var out: [String: [UInt8]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, body, sum FROM snapshots") {
                let body = [UInt8](row["body"] as Data)
                let sum: Int64 = row["sum"]
                if UInt64(bitPattern: sum) == XXH3.hash(body) { out[row["name"]] = body }
            }
            return out
        }
    }

    public func cacheSnapshot(name: String, body: [UInt8]) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO snapshots(name, body, sum) VALUES (?, ?, ?)",
                           arguments: [name, Data(body), Int64(bitPattern: XXH3.hash(body))])
        }
    }

    public func uncacheSnapshots(_ names: [String]) throws {
        try pool.write { db in
            for n in names { try db.execute(sql: "DELETE FROM snapshots WHERE name = ?", arguments: [n]) }
        }
    }
}
