public import RepoPrimitives
public import RepoRepository
public import RepoIndex
import RepoStorage
import RepoSnapshot
import RepoOperations
import RepoMount
import Foundation

/// Entry points for coverage-guided fuzzing of every parser that reads repository bytes
/// (Fuzz/README.md). Each harness takes arbitrary bytes and returns normally whatever they
/// hold: thrown errors are the expected answer to malformed input. A crash (a trap on an
/// out-of-range index, an overflow, a failed precondition, or a violated round-trip property
/// checked here) is a bug in the parser.
///
/// The same functions run under libFuzzer (the `Fuzz/` package) and in the unit test that
/// replays the committed corpus (`FuzzCorpusTests`), so a corpus file that once crashed keeps
/// being checked by `swift test`.
public enum FuzzHarness: String, CaseIterable, Sendable {
    /// `config` (FORMAT §6): JSON decoding, then the checks `Repository.open` makes.
    case config
    /// A key slot (§7.2, §7.4): JSON decoding, then `open` with a key file and with a password
    /// (the checks on scrypt parameters).
    case keyslot
    /// A whole pack object (§10) read through `PackReader.readHeader` from a backend under the
    /// fixed fuzz key: trailer, lengths, ranged reads; authentication rejects almost everything.
    case packHeader = "pack-header"
    /// Pack header plaintext (§10.1 `header`) sealed under the fixed key with a valid trailer,
    /// so the decoder behind authentication (version, kind, count, entries, bounds) is reached.
    /// Input: u32le data-area length || header plaintext.
    case packHeaderSealed = "pack-header-sealed"
    /// One blob (§9) sealed under the fixed key and opened with a fuzzer-chosen entry.
    /// Input: u8 type || u8 flags || u32le rawLength || stored bytes (raw or a zstd frame).
    case blob
    /// A whole sealed object (§11) under the fixed key, of the kind its magic names (index
    /// when none), then its body parser: authentication rejects almost everything.
    case sealed
    /// The plaintext inside a sealed object (§11 `inner` = codec || length || body') for a kind
    /// chosen by the first byte; sealed under the fixed key and opened, then the body parser.
    case sealedInner = "sealed-inner"
    /// An index segment body (§12), and its re-encoding.
    case indexSegment = "index-segment"
    /// A snapshot body (§13, JSON).
    case snapshot
    /// A tree blob (§14, JSON): nodes, names, targets, attributes, times, lookups.
    case tree
    /// A content-list blob (§15, binary `RCL1`), and its re-encoding.
    case contentList = "content-list"
    /// A lock body (§18, JSON) and the stale check `lock` makes on it.
    case lock
    /// Pin and default-policy bodies (§23, JSON).
    case retention
    /// A tree blob as the mount decodes it (`TreeDirectory.decode`), then seeks into each
    /// file's inline content (`ContentMap`).
    case mountTree = "mount-tree"
    /// WAL archive bytes (§27): file names, a segment's long page header checked against a
    /// name, timeline history files and the `wal/cluster` record.
    case walArchive = "wal-archive"

    /// Runs the harness on one input.
    public func run(_ data: [UInt8]) {
        switch self {
        case .config: Self.config(data)
        case .keyslot: Self.keyslot(data)
        case .packHeader: Self.packHeader(data)
        case .packHeaderSealed: Self.packHeaderSealed(data)
        case .blob: Self.blob(data)
        case .sealed: Self.sealed(data)
        case .sealedInner: Self.sealedInner(data)
        case .indexSegment: Self.indexSegment(data)
        case .snapshot: Self.snapshot(data)
        case .tree: Self.tree(data)
        case .contentList: Self.contentList(data)
        case .lock: Self.lock(data)
        case .retention: Self.retention(data)
        case .mountTree: Self.mountTree(data)
        case .walArchive: Self.walArchive(data)
        }
    }

    // MARK: fixed keys and sealing helpers (also used by the seed generator)

    /// The fixed master key every encrypted harness uses: bytes 0…95.
    public static let key = MasterKey(encryption: Array(0..<32), blobID: Array(32..<64), chunker: Array(64..<96))
    /// The repository id bound into key slots, and the password tried on them.
    public static let repositoryID = Hash256(bytes: [UInt8](repeating: 0x5A, count: 32))
    public static let password = Array("fuzz".utf8)
    /// The key file tried on key-file slots.
    public static let keyFile = KeyFile(secret: [UInt8](repeating: 0x4B, count: KeyFile.secretSize), path: "fuzz.key")
    /// Salt of the packs the harnesses build.
    public static let packSalt = [UInt8](repeating: 0xA5, count: 32)
    static let packLabel = Array("repo/v1/pack".utf8)
    static let objectLabel = Array("repo/v1/object".utf8)

    // One reader and cipher for the whole run (each makes zstd and OpenSSL contexts, which would
    // otherwise dominate the cost of an execution). Harnesses run on one thread.
    nonisolated(unsafe) static let reader = PackReader(master: key)
    nonisolated(unsafe) static let aes = AESGCM()
    static let packKey = key.subkey(label: packLabel, salt: packSalt)
    static let objectKeys = sealedKinds.map { key.subkey(label: objectLabel + $0.magic, salt: packSalt) }

    /// `sealed || salt || u32le len(sealed) || "RPK1"`: a pack's header and trailer for
    /// `plaintext`, under `key` (FORMAT §10.1 B and C).
    public static func sealPackHeader(_ plaintext: [UInt8], salt: [UInt8] = packSalt, key: MasterKey = key) -> [UInt8] {
        let k = salt == packSalt && key == Self.key ? packKey : key.subkey(label: packLabel, salt: salt)
        let b = try! aes.seal(key: k, nonce: PackWriter.headerNonce, associatedData: PackWriter.magic + salt,
                                   plaintext: plaintext)
        var w = ByteWriter(capacity: b.count + 40)
        w.raw(b); w.raw(salt); w.u32(UInt32(b.count)); w.raw(PackWriter.magic)
        return w.bytes
    }

    /// Opens a pack header sealed under `key` (for the seed generator): the plaintext, or nil.
    public static func openPackHeader(tail: [UInt8], key: MasterKey) -> [UInt8]? {
        let t = tail.count
        guard t >= 56 else { return nil }
        let salt = Array(tail[(t - 40)..<(t - 8)])
        let hlen = Int(tail.readLE(UInt32.self, at: t - 8))
        guard hlen + 40 <= t else { return nil }
        let k = key.subkey(label: packLabel, salt: salt)
        return try? AESGCM().open(key: k, nonce: PackWriter.headerNonce, associatedData: PackWriter.magic + salt,
                                  sealed: Array(tail[(t - 40 - hlen)..<(t - 40)]))
    }

    static func blobNonce(offset: Int) -> [UInt8] {
        var n = [UInt8](repeating: 0, count: 4)
        for i in (0..<8).reversed() { n.append(UInt8(truncatingIfNeeded: UInt64(offset) >> (8 * UInt64(i)))) }
        return n
    }

    static func blobAD(type: UInt8, flags: UInt8, id: BlobID) -> [UInt8] { [type, flags] + id.bytes }

    /// The stored form (before decompression) of a blob sealed under `key` in a pack with `salt`.
    public static func openBlob(_ sealed: [UInt8], entry: PackBlobEntry, salt: [UInt8], key: MasterKey) -> [UInt8]? {
        let k = key.subkey(label: packLabel, salt: salt)
        return try? AESGCM().open(key: k, nonce: blobNonce(offset: entry.offset),
                                  associatedData: blobAD(type: entry.type.rawValue, flags: entry.flags, id: entry.id),
                                  sealed: sealed)
    }

    /// `magic || salt || AES-GCM(objectKey, 0^12, magic || salt, inner)` (FORMAT §11), with the
    /// inner record given as is (codec and length unchecked), under `key`.
    public static func sealInner(_ inner: [UInt8], kind: SealedObject.Kind, salt: [UInt8] = packSalt,
                                 key: MasterKey = key) -> [UInt8] {
        let fixed = salt == packSalt && key == Self.key
        let k = fixed ? objectKeys[sealedKinds.firstIndex(of: kind)!] : key.subkey(label: objectLabel + kind.magic, salt: salt)
        let sealed = try! aes.seal(key: k, nonce: [UInt8](repeating: 0, count: 12), associatedData: kind.magic + salt,
                                        plaintext: inner)
        return kind.magic + salt + sealed
    }

    /// The inner record of a sealed object under `key` (for the seed generator), or nil.
    public static func openInner(_ object: [UInt8], kind: SealedObject.Kind, key: MasterKey) -> [UInt8]? {
        guard object.count >= 52, Array(object[0..<4]) == kind.magic else { return nil }
        let salt = Array(object[4..<36])
        let k = key.subkey(label: objectLabel + kind.magic, salt: salt)
        return try? AESGCM().open(key: k, nonce: [UInt8](repeating: 0, count: 12), associatedData: kind.magic + salt,
                                  sealed: Array(object[36...]))
    }

    /// The kinds in the order `sealed-inner`'s first byte selects them.
    public static let sealedKinds: [SealedObject.Kind] = [.index, .snapshot, .lock, .pin, .policy, .check, .drill]

    // MARK: harnesses

    static func config(_ data: [UInt8]) {
        guard let c = try? RepositoryConfig.decode(data) else { return }
        _ = c.version == RepositoryConfig.currentVersion
        _ = RepositoryConfig.parseCompression(c.compression)
        _ = c.zstdLevel
        _ = c.id.hex
        if c.chunker.invalidReason == nil {
            // What Repository.open builds from a config that passes its checks.
            let cdc = FastCDC(key: key.chunker, parameters: c.chunker)
            let buf = [UInt8](repeating: 0x61, count: 256)
            _ = buf.withUnsafeBytes { cdc.cut($0, final: true) }
        }
        _ = try? c.encoded()
    }

    static func keyslot(_ data: [UInt8]) {
        guard let slot = try? KeySlot.decode(data) else { return }
        _ = try? slot.encoded()
        // Key-file slots cost one HMAC: always tried.
        _ = try? slot.open(.keyFile(keyFile), repositoryID: repositoryID)
        // Parameters `open` accepts make it run scrypt; keep those cheap (at most 1 MiB of
        // scrypt memory) so the fuzzer spends its time in parsing, not in key derivation.
        if let n = slot.n, let r = slot.r, let p = slot.p,
           n >= 2 && n & (n &- 1) == 0 && (1...32).contains(r) && (1...16).contains(p),
           n > 1024 || r > 8 || p > 2 { return }
        _ = try? slot.open(.password(password), repositoryID: repositoryID)
    }

    static func packHeader(_ data: [UInt8]) {
        let backend = MemoryBackend()
        let name = Hash256.zero
        try! backend.put(PackDescriptor.objectName(name), data: data)
        guard let pack = try? reader.readHeader(name: name, backend: backend) else { return }
        checkPack(pack, size: data.count)
    }

    static func packHeaderSealed(_ data: [UInt8]) {
        guard data.count >= 4 else { return }
        let area = Int(data.readLE(UInt32.self, at: 0))
        let tail = sealPackHeader(Array(data[4...]))
        guard let pack = try? reader.header(name: .zero, tail: tail, packSize: area + tail.count) else { return }
        checkPack(pack, size: area + tail.count)
    }

    /// What every accepted header guarantees (FORMAT §10.3 step 4).
    static func checkPack(_ pack: PackDescriptor, size: Int) {
        let area = size - 40 - ((pack.blobs.count * PackBlobEntry.encodedSize) + 6 + 16)
        for b in pack.blobs {
            precondition(b.offset >= 0 && b.length >= 0 && b.offset <= area && b.length <= area - b.offset,
                         "accepted a pack entry outside the data area")
        }
    }

    static func blob(_ data: [UInt8]) {
        guard data.count >= 6, let type = BlobType(rawValue: data[0] & 1) else { return }
        let flags = data[1]
        let raw = Int(data.readLE(UInt32.self, at: 2))
        let stored = Array(data[6...])
        let id = Hash256.zero
        let sealed = try! aes.seal(key: packKey, nonce: blobNonce(offset: 0), associatedData: blobAD(type: type.rawValue, flags: flags, id: id),
                                        plaintext: stored)
        let entry = PackBlobEntry(id: id, type: type, flags: flags, offset: 0, length: sealed.count, rawLength: raw)
        guard let plain = try? sealed.withUnsafeBytes({
            try reader.open($0, entry: entry, packSalt: packSalt, pack: .zero)
        }) else { return }
        precondition(plain.count == raw, "a blob opened to \(plain.count) bytes, its entry says \(raw)")
    }

    static func sealed(_ data: [UInt8]) {
        let kind = sealedKinds.first { data.count >= 4 && Array(data[0..<4]) == $0.magic } ?? .index
        guard let body = try? SealedObject.open(data, kind: kind, key: key, name: "fuzz") else { return }
        parseBody(body, kind: kind)
    }

    static func sealedInner(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let kind = sealedKinds[Int(first) % sealedKinds.count]
        let object = sealInner(Array(data[1...]), kind: kind)
        guard let body = try? SealedObject.open(object, kind: kind, key: key, name: "fuzz") else { return }
        parseBody(body, kind: kind)
    }

    /// The parser each kind of sealed object's body goes to.
    static func parseBody(_ body: [UInt8], kind: SealedObject.Kind) {
        switch kind {
        case .index: indexSegment(body)
        case .snapshot: snapshot(body)
        case .lock: lock(body)
        case .pin, .policy: retention(body)
        case .wal, .walCluster: walArchive(body)
        case .check, .drill: retention(body)
        }
    }

    static func indexSegment(_ data: [UInt8]) {
        guard let seg = try? IndexSegment.decode(data) else { return }
        precondition(seg.encoded() == data, "an index segment does not re-encode to its bytes")
    }

    static func snapshot(_ data: [UInt8]) {
        guard let s = try? Snapshot.decode(data) else { return }
        _ = Timestamp.parse(s.time)
        _ = s.tree.hex
        if let again = try? Snapshot.decode(try s.encoded()) {
            precondition(again == s, "a snapshot does not survive encoding and decoding")
        }
    }

    static func tree(_ data: [UInt8]) {
        guard let t = try? Tree.decode(data) else { return }
        for n in t.nodes {
            let name = n.nameBytes
            _ = Node.componentProblem(name)
            _ = t.node(nameBytes: name)
            _ = n.targetBytes
            if let m = n.mtime { _ = FileTime(rfc3339: m) }
            if let c = n.ctime { _ = FileTime(rfc3339: c) }
            for x in n.xattrs ?? [] { _ = x.valueBytes }
        }
        if let again = try? Tree.decode(try t.encoded()) {
            precondition(again == t, "a tree does not survive encoding and decoding")
        }
    }

    static func contentList(_ data: [UInt8]) {
        guard let chunks = try? ContentList.decode(data) else { return }
        precondition(ContentList.encode(chunks) == data, "a content list does not re-encode to its bytes")
    }

    static func lock(_ data: [UInt8]) {
        guard let info = try? JSONDecoder().decode(LockInfo.self, from: Data(data)) else { return }
        _ = info.staleReason(now: Date(timeIntervalSince1970: 1_800_000_000))
        _ = info.summary
    }

    static func retention(_ data: [UInt8]) {
        if let pin = try? JSONDecoder().decode(Pin.self, from: Data(data)) {
            _ = Timestamp.parse(pin.created)
            if let u = pin.until { _ = Timestamp.parse(u) }
        }
        if let p = try? JSONDecoder().decode(StoredPolicy.self, from: Data(data)) {
            _ = Timestamp.parse(p.time)
            let r = p.policy.resolved(localZone: "UTC")
            _ = r.hot?.seconds; _ = r.warm?.seconds; _ = r.cold?.seconds
        }
        // Run records (FORMAT.md §30), which `repo status` reads.
        if let c = try? CheckRecord.decode(data) {
            _ = Timestamp.parse(c.time); _ = Timestamp.parse(c.started)
            _ = c.readPrefixes
            if let again = try? CheckRecord.decode(try c.encoded()) { precondition(again == c, "a check record does not survive encoding") }
        }
        if let d = try? DrillRecord.decode(data) {
            _ = Timestamp.parse(d.time)
            if let again = try? DrillRecord.decode(try d.encoded()) { precondition(again == d, "a drill record does not survive encoding") }
        }
    }

    static func walArchive(_ data: [UInt8]) {
        let text = String(decoding: data.prefix(64), as: UTF8.self)
        if let name = WALFileName(text) {
            precondition(name.text == text, "a WAL file name does not keep its text")
            if name.kind == .segment {
                let again = WALFileName(timeline: name.timeline, segment: name.segmentNumber(segmentSize: 16 << 20), segmentSize: 16 << 20)
                precondition(again.text == text || name.seg > 0xFF, "a segment name does not survive its number")
            }
        }
        if let header = try? WALSegmentHeader(data), let name = WALFileName("000000010000000000000001") {
            _ = try? header.check(against: name, fileSize: data.count)
        }
        if let history = try? TimelineHistory(timeline: 2, text: String(decoding: data, as: UTF8.self)) {
            for e in history.entries { _ = history.timeline(at: e.switchpoint); _ = e.switchpoint.description }
        }
        if let lsn = LSN(text) { precondition(LSN(lsn.description) == lsn, "an LSN does not survive its text") }
        _ = try? JSONDecoder().decode(WALArchive.Cluster.self, from: Data(data))
    }

    static func mountTree(_ data: [UInt8]) {
        guard let dir = try? TreeDirectory.decode(data, fallbackTime: .zero) else { return }
        for e in dir.entries {
            _ = dir.entry(named: e.name)
            guard let content = e.content else { continue }
            let map = ContentMap(content: content, loadList: { _ in throw ByteReader.Truncated() })
            for offset in [0, map.size / 2, map.size - 1] {
                if let loc = try? map.locate(offset) { _ = try? map.next(after: loc) }
            }
        }
    }
}
