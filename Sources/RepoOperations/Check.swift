public import RepoPrimitives
public import RepoRepository
public import RepoIndex
public import RepoSnapshot
import Foundation

/// `repo check`: verifies the repository from the backend itself (not the catalog): every index
/// segment opens, every indexed pack exists with its recorded size, every snapshot opens and
/// every tree, content list and chunk it references is indexed. With `readData`, also reads
/// every (or a random subset of) pack: its SHA-256 must equal its name, its header must match
/// the index, and every blob must decrypt to bytes whose HMAC equals the blob id.
public struct Check {
    public var repository: Repository
    /// Fraction of packs to read in full (0 = none, 1 = all).
    public var readDataFraction: Double = 0
    public var workers: Int = defaultWorkerCount
    public var progress: ProgressHandler?

    public init(repository: Repository) { self.repository = repository }

    public struct Report: Sendable, Codable {
        public var errors: [String] = []
        public var notes: [String] = []
        public var snapshots = 0
        public var packs = 0
        public var blobs = 0
        public var packsRead = 0
        public var bytesRead = 0
        /// WAL archive (FORMAT.md §27): files stored, and files read and authenticated.
        public var walFiles = 0
        public var walFilesRead = 0
        /// The packs read in full (not part of `--json`; the check record keeps them, §30).
        public var readPackNames: [Hash256] = []
        public var ok: Bool { errors.isEmpty }

        enum CodingKeys: String, CodingKey {
            case errors, notes, snapshots, packs, blobs, packsRead, bytesRead, walFiles, walFilesRead
        }
    }

    public func run() throws -> Report {
        var report = Report()
        let backend = repository.backend

        // 1. Index segments → blob map.
        var index: [BlobID: BlobLocation] = [:]
        var packs: [Hash256: PackDescriptor] = [:]
        var superseded = Set<Hash256>()
        var segments: [(String, IndexSegment)] = []
        for obj in try backend.list(prefix: "index/") {
            let name = String(obj.name.dropFirst("index/".count))
            do {
                let bytes = try backend.get(obj.name)
                let body = try SealedObject.open(bytes, kind: .index, key: repository.key, name: obj.name)
                let seg = try IndexSegment.decode(body)
                if SHA256Hasher.hash(bytes).hex != name {
                    report.errors.append("\(obj.name): content does not match its name (corrupted)")
                }
                segments.append((name, seg))
                superseded.formUnion(seg.superseded)
            } catch {
                report.errors.append("\(obj.name): \(error)")
            }
        }
        for (name, seg) in segments where !superseded.contains(Hash256(hex: name) ?? .zero) {
            for p in seg.packs {
                packs[p.name] = p
                for b in p.blobs { index[b.id] = BlobLocation(pack: p.name, packSalt: p.salt, entry: b) }
            }
        }

        // 2. Packs present vs indexed.
        var present: [Hash256: Int] = [:]
        for obj in try backend.list(prefix: "data/") {
            guard let name = Hash256(hex: String(obj.name.split(separator: "/").last ?? "")),
                  obj.name == PackDescriptor.objectName(name) else {
                report.notes.append("\(obj.name): not a pack name, ignored")
                continue
            }
            present[name] = obj.size
        }
        for (name, p) in packs.sorted(by: { $0.key < $1.key }) {
            guard let size = present[name] else {
                report.errors.append("pack \(name.hex) is indexed but missing from the repository")
                continue
            }
            if size != p.size { report.errors.append("pack \(name.hex) has \(size) bytes, the index says \(p.size) (truncated?)") }
        }
        let reader = PackReader(master: repository.key)
        for name in present.keys.sorted() where packs[name] == nil {
            // Left by an interrupted writer: harmless; adopt its blobs so snapshots can use them.
            do {
                let p = try reader.readHeader(name: name, backend: backend)
                packs[name] = p
                for b in p.blobs where index[b.id] == nil { index[b.id] = BlobLocation(pack: name, packSalt: p.salt, entry: b) }
                report.notes.append("pack \(name.hex) is not in any index segment (left by an interrupted store; the next store indexes it)")
            } catch {
                report.errors.append("pack \(name.hex): \(error)")
            }
        }
        report.packs = packs.count
        report.blobs = index.count

        // 3. Snapshots and everything they reference.
        let finalIndex = index
        var walker = ReferenceWalker(repository: repository) { finalIndex[$0] }
        for obj in try backend.list(prefix: "snapshots/") {
            report.snapshots += 1
            do {
                let bytes = try backend.get(obj.name)
                if SHA256Hasher.hash(bytes).hex != String(obj.name.dropFirst("snapshots/".count)) {
                    report.errors.append("\(obj.name): content does not match its name (corrupted)")
                }
                let snap = try Snapshot.decode(try SealedObject.open(bytes, kind: .snapshot, key: repository.key, name: obj.name))
                walker.walk(root: snap.tree, context: obj.name) { report.errors.append($0) }
            } catch {
                report.errors.append("\(obj.name): \(error)")
            }
        }

        // 4. Pack contents.
        if readDataFraction > 0 {
            var names = packs.keys.filter { present[$0] != nil }.sorted()
            if readDataFraction < 1 {
                names.shuffle()
                names = Array(names.prefix(max(1, Int((Double(names.count) * readDataFraction).rounded(.up)))))
            }
            try readPacks(names, packs: packs, report: &report)
            report.readPackNames = names
        }

        // 5. The WAL archive: its cluster record opens; with read-data, every (or the same
        // fraction of) WAL object authenticates under its name and belongs to that cluster.
        checkWAL(&report)
        return report
    }

    private func checkWAL(_ report: inout Report) {
        let archive = WALArchive(backend: repository.backend, config: repository.config, key: repository.key)
        let entries: [WALArchive.Entry]
        let cluster: WALArchive.Cluster?
        do {
            entries = try archive.list()
            cluster = try archive.cluster()
        } catch {
            report.errors.append("WAL archive: \(error)")
            return
        }
        report.walFiles = entries.count
        if cluster == nil, entries.contains(where: { $0.name.kind == .segment }) {
            report.errors.append("WAL archive: segments are stored but \(WALArchive.clusterObjectName) is missing")
        }
        guard readDataFraction > 0 else { return }
        var chosen = entries
        if readDataFraction < 1 {
            chosen.shuffle()
            chosen = Array(chosen.prefix(Int((Double(chosen.count) * readDataFraction).rounded(.up))))
        }
        for e in chosen {
            do {
                guard let bytes = try archive.fetch(e.name) else {
                    report.errors.append("\(e.name.objectName): vanished while checked"); continue
                }
                report.walFilesRead += 1
                report.bytesRead += e.storedSize
                if e.name.kind == .segment || e.name.kind == .partial, let cluster {
                    let header = try WALSegmentHeader(Array(bytes.prefix(64)))
                    try header.check(against: e.name, fileSize: bytes.count)
                    if String(header.systemIdentifier) != cluster.systemIdentifier {
                        report.errors.append("\(e.name.objectName): from cluster \(header.systemIdentifier), not the archived cluster \(cluster.systemIdentifier)")
                    }
                } else if e.name.kind == .history {
                    _ = try TimelineHistory.strict(timeline: e.name.timeline, bytes: bytes)
                }
            } catch {
                report.errors.append("\(e.name.objectName): \(error)")
            }
        }
    }

    private func readPacks(_ names: [Hash256], packs: [Hash256: PackDescriptor], report: inout Report) throws {
        let repo = repository
        let contexts = (0..<max(1, workers)).map { _ in (PackReader(master: repo.key), HMACSHA256(key: repo.key.blobID)) }
        let pool = OrderedWorkPool<Hash256, (errors: [String], bytes: Int)>(threads: contexts.count) { name, i in
            let (reader, hmac) = contexts[i]
            let label = "pack \(name.hex)"
            let bytes: [UInt8]
            do { bytes = try repo.backend.get(PackDescriptor.objectName(name)) } catch {
                return (["\(label): cannot be read: \(error)"], 0)
            }
            var errors: [String] = []
            if SHA256Hasher.hash(bytes) != name { errors.append("\(label): SHA-256 of its bytes does not match its name (corrupted)") }
            let header: PackDescriptor
            do { header = try reader.header(name: name, tail: bytes, packSize: bytes.count) } catch {
                return (errors + ["\(label): \(error)"], bytes.count)
            }
            if let indexed = packs[name], indexed.blobs != header.blobs || indexed.salt != header.salt {
                errors.append("\(label): header does not match the index")
            }
            for e in header.blobs {
                do {
                    let plain = try bytes.withUnsafeBytes {
                        try reader.open(UnsafeRawBufferPointer(rebasing: $0[e.offset..<(e.offset + e.length)]),
                                        entry: e, packSalt: header.salt, pack: name)
                    }
                    if hmac.mac(plain) != e.id { errors.append("\(label): blob \(e.id.hex) decrypts to content with another id") }
                } catch let err as RepoError {
                    errors.append(err.message)
                } catch {
                    errors.append("\(label): blob \(e.id.hex): \(error)")
                }
            }
            return (errors, bytes.count)
        }
        defer { pool.close() }
        var done = 0
        func take() throws {
            guard let r = try pool.next() else { return }
            report.errors += r.errors
            report.bytesRead += r.bytes
            report.packsRead += 1
            done += 1
            progress?(ProgressReport(bytes: report.bytesRead, items: "\(done)/\(names.count) packs"))
        }
        for n in names {
            while pool.inFlight >= contexts.count * 2 { try take() }
            pool.submit(n)
        }
        while pool.inFlight > 0 { try take() }
    }
}
