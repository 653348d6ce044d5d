public import RepoPrimitives
public import RepoRepository
public import RepoIndex
public import RepoSnapshot
public import RepoStorage
public import Foundation

/// The re-encryption pass of a master-key rotation (FORMAT.md §7.6): every object still sealed
/// under a retired encryption root is written again under the current one, then the rotation's
/// transition slots are dropped and the retired root opens nothing.
///
/// - Packs are re-encrypted whole, one new pack per old one with the same blobs (ids, types,
///   flags and stored bytes unchanged; fresh salt), in rounds of at most `roundBytes` of old
///   packs. Each round follows prune's crash order (FORMAT.md §26): new packs durable → new
///   index segments, the last superseding every segment read → old segments deleted → old
///   packs deleted. No blob ever leaves the index, so every snapshot stays restorable at every
///   point, and a run killed anywhere is finished by the next.
/// - Snapshots are sealed again under new ids (an id is the hash of the sealed bytes); the
///   body gains `original` = the old id when it has none, so `repo copy` still recognizes it.
///   Pins follow their snapshot. Policies and run records are sealed again unchanged. WAL
///   objects are sealed again in place (their names are PostgreSQL's). Lock objects under a
///   retired root are stale by construction (the pass holds the exclusive lock) and deleted.
/// - Before it drops the transition slots it waits until `settleTime` has passed since the
///   rotation began (the storage's clock), then sweeps again: a process that opened the
///   repository just before the slots changed (`wal-push` takes no lock) may still have
///   written under the old root.
///
/// The caller opened the repository with the rotation's transition key and holds the exclusive
/// lock; the pass checks the lock before it supersedes or deletes anything.
public struct KeyRotation {
    public var repository: Repository
    /// Old pack bytes re-encrypted per round: the most extra space the pass needs.
    public var roundBytes = 4 << 30
    /// How long after the rotation began the retired root may still be in use by a process that
    /// opened before (FORMAT.md §7.6).
    public var settleTime: TimeInterval = KeyRotation.defaultSettleTime
    public static let defaultSettleTime: TimeInterval = 5 * 60
    /// Threads that re-encrypt packs and WAL objects.
    public var workers = max(2, ProcessInfo.processInfo.activeProcessorCount)
    public var progress: ProgressHandler?
    /// Called after every durable step with a label; tests kill the process there.
    public var afterStep: (@Sendable (String) -> Void)?
    /// Called with the seconds left while the pass waits for `settleTime`.
    public var waiting: ((TimeInterval) -> Void)?
    /// Called before the wait for `settleTime` and after it: the CLI gives up the exclusive
    /// lock for the wait (nothing needs it then, and restores and backups should not wait with
    /// it) and takes it again for the last sweep; a failure to take it ends the run (exit 11),
    /// and the next run finishes.
    public var releaseLock: (() -> Void)?
    public var retakeLock: (() throws -> Void)?

    public init(repository: Repository) { self.repository = repository }

    public struct Report: Sendable, Encodable {
        public var packs = 0, packBytes = 0
        public var segmentsWritten = 0, segmentsDeleted = 0
        public var snapshots = 0, pins = 0, objects = 0, walObjects = 0, locks = 0
        public var transitionSlotsDeleted = 0
        /// Objects no root opens (damaged), left as they are.
        public var unreadable: [String] = []
        public var waitedSeconds = 0.0
        public var seconds = 0.0

        public init() {}

        /// Records an object no root opens; false when an earlier sweep already did.
        mutating func noteUnreadable(_ name: String) -> Bool {
            guard !unreadable.contains(name) else { return false }
            unreadable.append(name)
            return true
        }

        enum CodingKeys: String, CodingKey {
            case packs, packBytes = "pack_bytes", segmentsWritten = "segments_written", segmentsDeleted = "segments_deleted"
            case snapshots, pins, objects, walObjects = "wal_objects", locks
            case transitionSlotsDeleted = "transition_slots_deleted", unreadable, waitedSeconds = "waited_seconds", seconds
        }
    }

    /// Runs the pass and finishes the rotation.
    ///
    /// - Throws: `RepoError` `.failure` when the repository's key carries no rotation;
    ///   `.integrity` when an index segment cannot be read or an indexed pack is missing
    ///   (nothing is deleted then); `.locked` when the lock was lost; storage errors. Whatever
    ///   was done stays done: running it again goes on from there.
    public func run() throws -> Report {
        let started = Date()
        let key = repository.key
        guard key.isRotating, let began = key.rotationStarted else {
            throw RepoError(.failure, "no master-key rotation is under way in \(repository.backend.location)")
        }
        var report = Report()
        let state = SweepState()
        _ = try sweep(&report, state: state)
        // Wait out processes that opened with the old slots before they were replaced.
        let until = began.addingTimeInterval(settleTime)
        if until > (try repository.backend.now()) {
            releaseLock?()
            while true {
                let left = until.timeIntervalSince(try repository.backend.now())
                guard left > 0 else { break }
                waiting?(left)
                let step = min(left, 5)
                Thread.sleep(forTimeInterval: step)
                report.waitedSeconds += step
            }
            try retakeLock?()
        }
        var rounds = 0
        while try sweep(&report, state: state) > 0 {
            rounds += 1
            guard rounds < 5 else {
                throw RepoError(.failure, "objects under the retired master key keep appearing in \(repository.backend.location): a host still writes with it",
                                hint: "find the process that opened the repository before the rotation began (`repo unlock` lists locks), stop it, and run `repo key rotate` again")
            }
        }
        try repository.verifyLock()
        let afterStep = afterStep
        report.transitionSlotsDeleted = try RotationSlots.finish(backend: repository.backend, key: key) { afterStep?("transition slot deleted") }
        try repository.synchronizeCatalog()
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// What earlier sweeps of this run found under the current root already.
    final class SweepState: @unchecked Sendable {
        var currentPacks = Set<Hash256>()
    }

    /// One sweep over every folder; returns how many objects it re-encrypted or removed.
    func sweep(_ report: inout Report, state: SweepState) throws -> Int {
        var changed = try reencryptPacks(&report, state: state)
        changed += try resealSnapshotsAndPins(&report)
        for kind in [SealedObject.Kind.policy, .check, .drill] { changed += try resealHashNamed(kind, &report) }
        changed += try resealWAL(&report)
        changed += try removeOldLocks(&report)
        return changed
    }

    // MARK: packs and the index

    func reencryptPacks(_ report: inout Report, state: SweepState) throws -> Int {
        let backend = repository.backend
        var segmentNames: [String] = []
        var superseded = Set<String>()
        var segments: [(name: String, segment: IndexSegment, current: Bool)] = []
        for obj in try backend.list(prefix: "index/") {
            let name = String(obj.name.dropFirst("index/".count))
            let opened = try SealedObject.openReportingRoot(try backend.get(obj.name), kind: .index, key: repository.key, name: obj.name)
            let segment: IndexSegment
            do { segment = try IndexSegment.decode(opened.body) } catch {
                throw RepoError(.integrity, "\(obj.name): malformed index segment: \(error); the rotation changes nothing until it is repaired",
                                hint: "run `repo check` for the full picture")
            }
            segmentNames.append(name)
            segments.append((name, segment, opened.current))
            for s in segment.superseded { superseded.insert(s.hex) }
        }
        var packs: [Hash256: PackDescriptor] = [:]
        for s in segments where !superseded.contains(s.name) { for p in s.segment.packs { packs[p.name] = p } }
        var present: [Hash256: Int] = [:]
        for obj in try backend.list(prefix: "data/") {
            guard let name = Hash256(hex: String(obj.name.split(separator: "/").last ?? "")),
                  obj.name == PackDescriptor.objectName(name) else { continue }
            present[name] = obj.size
        }
        for name in packs.keys.sorted() where present[name] == nil {
            throw RepoError(.integrity, "pack \(name.hex) is indexed but missing; the rotation changes nothing until it is repaired",
                            hint: "run `repo check` to see which snapshots are affected")
        }
        // Which packs are under a retired root: their headers say (one ranged read each).
        let unknown = present.keys.filter { !state.currentPacks.contains($0) }.sorted().map(\.hex)
        let key = repository.key
        let probes = Repository.concurrentMap(unknown) { hex -> (PackDescriptor, Bool) in
            let reader = PackReader(master: key)
            let d = try reader.readHeader(name: Hash256(hex: hex)!, backend: backend)
            return (d, reader.isUnderCurrentRoot(salt: d.salt))
        }
        var old: [PackDescriptor] = []
        var copies: [Hash256: PackDescriptor] = [:]
        for (hex, probe) in zip(unknown, probes) {
            let name = Hash256(hex: hex)!
            switch probe {
            case .success(let (d, current)):
                if current { state.currentPacks.insert(name) } else { old.append(d) }
                if packs[name] == nil { packs[name] = d }   // unindexed: adopted into the new index
                if current { copies[Self.contents(d)] = d }
            case .failure(let error):
                if packs[name] != nil { throw error }
                // Probed again by each sweep: warned about and counted once.
                if report.noteUnreadable(PackDescriptor.objectName(name)) {
                    repository.warn("pack \(hex) is not indexed and its header is unreadable (\(error)); the rotation leaves it alone")
                }
            }
        }
        let indexIsCurrent = segments.allSatisfy { $0.current } && !segmentNames.contains(where: superseded.contains)
            && Set(packs.keys) == Set(segments.filter { !superseded.contains($0.name) }.flatMap { $0.segment.packs.map(\.name) })
        guard !old.isEmpty || !indexIsCurrent else { return 0 }

        // Rounds of at most `roundBytes` of old packs (at least one pack each).
        var rounds: [[PackDescriptor]] = [[]]
        var roundSize = 0
        for p in old.sorted(by: { $0.name < $1.name }) {
            if roundSize + p.size > roundBytes && !rounds[rounds.count - 1].isEmpty { rounds.append([]); roundSize = 0 }
            rounds[rounds.count - 1].append(p); roundSize += p.size
        }
        // A run killed after writing a round's new packs (or its index, but before deleting the
        // old packs) left their copies: same blobs in the same order under the current root.
        // Those old packs need no second copy.
        var copied: [Hash256: PackDescriptor] = [:]
        for p in old { if let copy = copies[Self.contents(p)] { copied[p.name] = copy } }
        let totalBytes = old.reduce(0) { $0 + $1.size }
        var doneBytes = 0
        var changed = 0
        var liveSegments = segmentNames
        for round in rounds {
            // New packs first.
            let repository = repository, afterStep = afterStep
            let done = copied
            let results = Repository.concurrentMap(round.map(\.name.hex), threads: workers) { hex -> PackDescriptor in
                let p = round.first { $0.name.hex == hex }!
                return try done[p.name] ?? Self.reencrypt(p, repository: repository, afterStep: afterStep)
            }
            var replaced: [Hash256: PackDescriptor] = [:]
            for (p, result) in zip(round, results) {
                let d = try result.get()
                replaced[p.name] = d
                state.currentPacks.insert(d.name)
                doneBytes += p.size
                report.packs += 1; report.packBytes += p.size
                progress?(ProgressReport(bytes: doneBytes, totalBytes: totalBytes, items: "re-encrypted \(report.packs) packs"))
            }
            for (oldName, d) in replaced { packs[oldName] = nil; packs[d.name] = d }
            // Then the index naming them, superseding every segment read.
            try repository.verifyLock()
            let written = try repository.writeIndex(of: packs.values.sorted { $0.name < $1.name }, superseding: liveSegments.compactMap { Hash256(hex: $0) }) {
                report.segmentsWritten += 1
                afterStep?("index segment written")
            }.map(\.hex)
            for name in liveSegments.sorted() {
                try backend.delete("index/" + name)
                report.segmentsDeleted += 1
                afterStep?("index segment deleted")
            }
            liveSegments = written
            // Then the old packs.
            try repository.verifyLock()
            for p in round {
                try backend.delete(p.objectName)
                changed += 1
                afterStep?("pack deleted")
            }
            changed += 1
        }
        return changed
    }

    /// The hash of what a pack holds, in order (id, type, flags, raw length of each blob): equal
    /// for a pack and its re-encrypted copy, whatever the keys and salts.
    static func contents(_ p: PackDescriptor) -> Hash256 {
        var bytes: [UInt8] = [p.kind.rawValue]
        for e in p.blobs.sorted(by: { $0.offset < $1.offset }) {
            bytes += e.id.bytes
            bytes += [e.type.rawValue, e.flags]
            withUnsafeBytes(of: UInt32(e.rawLength).littleEndian) { bytes += $0 }
        }
        return SHA256Hasher.hash(bytes)
    }

    /// Writes a copy of pack `p` under the current root (every blob, in order) and returns it.
    static func reencrypt(_ p: PackDescriptor, repository: Repository, afterStep: (@Sendable (String) -> Void)?) throws -> PackDescriptor {
        let backend = repository.backend
        let bytes = try backend.get(p.objectName)
        guard SHA256Hasher.hash(bytes) == p.name else {
            throw RepoError(.integrity, "pack \(p.name.hex) does not match its name (corrupted); the rotation cannot re-encrypt it",
                            hint: "run `repo check --read-data`; a damaged pack must be repaired or removed before the rotation can finish")
        }
        let copier = BlobCopier(master: repository.key)
        let writer = PackWriter(kind: p.kind, master: repository.key, output: try backend.stage())
        for e in p.blobs.sorted(by: { $0.offset < $1.offset }) {
            try bytes.withUnsafeBytes {
                try copier.copy(UnsafeRawBufferPointer(rebasing: $0[e.offset..<(e.offset + e.length)]), entry: e,
                                packSalt: p.salt, pack: p.name, into: writer)
            }
        }
        let d = try writer.finish()
        try writer.output.commit(as: d.objectName)
        afterStep?("pack written")
        return d
    }

    // MARK: snapshots, pins and other named objects

    func resealSnapshotsAndPins(_ report: inout Report) throws -> Int {
        let backend = repository.backend, key = repository.key
        var current: [(id: String, snapshot: Snapshot)] = []
        var old: [(id: String, snapshot: Snapshot)] = []
        for obj in try backend.list(prefix: "snapshots/") {
            let id = String(obj.name.dropFirst("snapshots/".count))
            do {
                let opened = try SealedObject.openReportingRoot(try backend.get(obj.name), kind: .snapshot, key: key, name: obj.name)
                let snapshot = try Snapshot.decode(opened.body)
                if opened.current { current.append((id, snapshot)) } else { old.append((id, snapshot)) }
            } catch let error as RepoError where error.kind == .integrity {
                if report.noteUnreadable(obj.name) { repository.warn("\(obj.name) cannot be read (\(error.message)); the rotation leaves it as it is") }
            } catch is DecodingError {
                if report.noteUnreadable(obj.name) { repository.warn("\(obj.name) is not a valid snapshot; the rotation leaves it as it is") }
            }
        }
        // Old id → new id: from this run, and from an earlier run cut short (its re-sealed
        // snapshot names the old one in `original`).
        var renamed: [String: String] = [:]
        for c in current { if let o = c.snapshot.original { renamed[o] = c.id } }
        let byOrigin = Dictionary(grouping: current) { $0.snapshot.original ?? $0.id }
        var changed = 0
        for (id, snapshot) in old {
            let origin = snapshot.original ?? id
            if let twin = byOrigin[origin]?.first(where: { $0.snapshot.time == snapshot.time && $0.snapshot.tree == snapshot.tree }) {
                renamed[id] = twin.id
            } else {
                var copy = snapshot
                copy.original = origin
                renamed[id] = try repository.saveObject(try copy.encoded(), kind: .snapshot).hex
                afterStep?("snapshot written")
            }
            try backend.delete("snapshots/" + id)
            report.snapshots += 1; changed += 1
            afterStep?("snapshot deleted")
        }
        let existing = Set(current.map(\.id) + renamed.values)
        for obj in try backend.list(prefix: "pins/") {
            let opened: (body: [UInt8], current: Bool)
            var pin: Pin
            do {
                opened = try SealedObject.openReportingRoot(try backend.get(obj.name), kind: .pin, key: key, name: obj.name)
                pin = try JSONDecoder().decode(Pin.self, from: Data(opened.body))
            } catch {
                if report.noteUnreadable(obj.name) { repository.warn("\(obj.name) cannot be read (\(error)); the rotation leaves it as it is") }
                continue
            }
            var moved = false
            if !existing.contains(pin.snapshot), let to = renamed[pin.snapshot] { pin.snapshot = to; moved = true }
            guard moved || !opened.current else { continue }
            let id = try repository.saveObject(Array(try JSONEncoder().encode(pin)), kind: .pin)
            if "pins/" + id.hex != obj.name { try backend.delete(obj.name) }
            report.pins += 1; changed += 1
            afterStep?("pin rewritten")
        }
        return changed
    }

    /// Re-seals objects named by the hash of their bytes whose bodies do not change.
    func resealHashNamed(_ kind: SealedObject.Kind, _ report: inout Report) throws -> Int {
        let backend = repository.backend
        var changed = 0
        for obj in try backend.list(prefix: kind.folder + "/") {
            let sealed: [UInt8]
            do {
                guard let s = try SealedObject.resealed(try backend.get(obj.name), kind: kind, key: repository.key, name: obj.name) else { continue }
                sealed = s
            } catch let error as RepoError where error.kind == .integrity {
                _ = report.noteUnreadable(obj.name)
                continue
            }
            try backend.put(SealedObject.objectName(kind: kind, bytes: sealed).name, data: sealed)
            try backend.delete(obj.name)
            report.objects += 1; changed += 1
            afterStep?("object resealed")
        }
        return changed
    }

    /// Re-seals the WAL archive's objects in place (FORMAT.md §27.1: the name binds the object).
    func resealWAL(_ report: inout Report) throws -> Int {
        let backend = repository.backend, key = repository.key
        let names = try backend.listNames(prefix: "wal/").filter { !($0.split(separator: "/").last ?? "").hasPrefix(".tmp-") }
        let results = Repository.concurrentMap(names, threads: workers) { name -> Bool in
            let isCluster = name == "wal/cluster"
            let file = String(name.split(separator: "/").last ?? "")
            guard let sealed = try SealedObject.resealed(try backend.get(name), kind: isCluster ? .walCluster : .wal, key: key,
                                                         name: name, context: isCluster ? [] : Array(file.utf8)) else { return false }
            try backend.put(name, data: sealed)
            return true
        }
        var changed = 0
        for (name, result) in zip(names, results) {
            switch result {
            case .success(let done):
                if done { report.walObjects += 1; changed += 1; afterStep?("WAL object resealed") }
            case .failure(let error as RepoError) where error.kind == .integrity:
                _ = report.noteUnreadable(name)
            case .failure(let error):
                throw error
            }
        }
        return changed
    }

    /// Deletes lock objects sealed under a retired root: stale, since this pass holds the
    /// exclusive lock and conflicting holders would have stopped it.
    func removeOldLocks(_ report: inout Report) throws -> Int {
        let backend = repository.backend
        var changed = 0
        for name in try backend.listNames(prefix: "locks/") {
            guard let object = try? backend.get(name),
                  let opened = try? SealedObject.openReportingRoot(object, kind: .lock, key: repository.key, name: name),
                  !opened.current else { continue }
            try backend.delete(name)
            report.locks += 1; changed += 1
        }
        return changed
    }
}
