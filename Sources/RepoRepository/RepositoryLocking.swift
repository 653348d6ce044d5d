public import Foundation
public import RepoStorage
import RepoPrimitives

/// Taking, listing and removing locks (FORMAT.md §18), and the space reserve that lets an
/// exclusive locker start on a full disk.
extension Repository {
    /// The space reserve: an object of zeros written at `init`, given up by an exclusive locker
    /// (prune, forget) when the disk is too full to write its lock, and restored afterwards.
    public static let reserveObject = "reserve"
    public static let reserveSize = 1 << 20

    /// Every lock object with its decoded info (nil if unreadable) and stale reason, leaving
    /// out release markers and the locks they release (`lockLeftovers`).
    public func listLocks() throws -> [(name: String, info: LockInfo?, stale: String?)] {
        let (locks, _) = try readLocks()
        return locks
    }

    /// Release markers (FORMAT.md §18) and the lock objects they release, in the order to
    /// delete them: every released lock before any marker, so an interrupted cleanup never
    /// leaves a released lock without its marker.
    public func lockLeftovers() throws -> [String] {
        try readLocks().leftovers
    }

    private func readLocks() throws -> (locks: [(name: String, info: LockInfo?, stale: String?)], leftovers: [String]) {
        let now = try backend.now()
        let all = try backend.list(prefix: "locks/").map { obj -> (name: String, info: LockInfo?) in
            guard let body = try? loadObject(obj.name, kind: .lock),
                  let info = try? JSONDecoder().decode(LockInfo.self, from: Data(body)) else {
                return (obj.name, nil)
            }
            return (obj.name, info)
        }
        let markers = all.filter { $0.info?.released != nil }
        let released = Set(markers.compactMap { $0.info?.released })
        let locks = all.filter { $0.info?.released == nil && !released.contains($0.name) }
            .map { (name: $0.name, info: $0.info, stale: $0.info?.staleReason(now: now)) }
        let releasedPresent = all.filter { $0.info?.released == nil && released.contains($0.name) }.map(\.name)
        return (locks, releasedPresent + markers.map(\.name))
    }

    /// Gives up the lock object `name`: deletes it, or, where this host may not delete (storage
    /// credentials without a delete permission: README, "Append-only hosts"), writes a release
    /// marker naming it, so that other lockers need not wait for it to go stale. Best effort:
    /// a lock that stays behind becomes stale.
    func discardLock(_ name: String) {
        do {
            try backend.delete(name)
            return
        } catch {}
        var marker = LockInfo(host: HostInfo.hostname, pid: getpid(), username: HostInfo.username,
                              time: Timestamp.format((try? backend.now()) ?? Date()), exclusive: false, command: "release")
        marker.released = name
        if let body = try? JSONEncoder().encode(marker) { _ = try? saveObject(Array(body), kind: .lock) }
    }

    /// Throws unless this host's storage credentials may delete objects: deletes a name that
    /// does not exist (S3 answers 204 when `s3:DeleteObject` is allowed, 403 when not). Run
    /// before anything that deletes (forget, prune), so an append-only host is refused before
    /// it writes or deletes anything.
    ///
    /// - Throws: `RepoError` `.failure` naming the storage's answer.
    public func checkDeletePermission() throws {
        let probe = "locks/delete-probe-" + SecureRandom.hash().hex
        do {
            try backend.delete(probe)
        } catch StorageError.notFound {
        } catch {
            throw RepoError(.failure, "this host may not delete objects in \(backend.location): \(error)",
                            hint: "forget and prune delete; run them from a host whose storage credentials allow deleting. Hosts without that permission can still store, back up, push WAL and read (README, \"Append-only hosts\")")
        }
    }

    /// Takes a shared (`exclusive == false`) or exclusive lock.
    ///
    /// Shared locks conflict only with live exclusive locks; an exclusive lock conflicts with
    /// every live lock. The lock is written first and conflicts checked afterwards, so two
    /// racing lockers cannot both win. Stale locks of processes that no longer exist on this
    /// host are removed (and reported once); other stale locks are reported once and ignored.
    ///
    /// On a full disk an exclusive locker with no live lock in its way gives up the space
    /// reserve (`reserveObject`) to write its lock; `RepositoryLock.usedSpaceReserve` tells.
    /// - Throws: `RepoError(.locked)` naming the holder; `StorageError` when the lock cannot be
    ///   written (`.readOnly`, `.noSpace`).
    ///
    /// The catalog is brought up to date again once the lock is held: it was synchronized when
    /// the repository was opened, and a prune that ran between that and this lock may have
    /// deleted packs the catalog still lists. A writer that deduplicated against them would
    /// commit a snapshot naming data that no longer exists.
    public func lock(exclusive: Bool, command: String) throws -> RepositoryLock {
        if let delay = testLockDelay { usleep(delay) }
        // An exclusive locker deletes (prune, forget): refuse on an append-only host before
        // anything is written.
        if exclusive { try checkDeletePermission() }
        let info = LockInfo(host: HostInfo.hostname, pid: getpid(), username: HostInfo.username,
                            time: Timestamp.format(try backend.now()), exclusive: exclusive, command: command)
        let body = Array(try JSONEncoder().encode(info))
        var usedReserve = false
        let id: Hash256
        do {
            id = try saveObject(body, kind: .lock)
        } catch StorageError.noSpace(let name) where exclusive {
            // Only worth the reserve if nothing live stands in the way (checked again below).
            if let live = try listLocks().first(where: { $0.info != nil && $0.stale == nil }), let o = live.info {
                throw Self.lockedError(o)
            }
            guard try backend.exists(Self.reserveObject) else { throw StorageError.noSpace(name: name) }
            try backend.delete(Self.reserveObject)
            warn("the disk is full: gave up the repository's \(Self.reserveSize >> 20) MiB space reserve to write the lock")
            id = try saveObject(body, kind: .lock)
            usedReserve = true
        }
        let mine = "locks/" + id.hex
        var removed: [String] = []
        var ignored: [String] = []
        for other in try listLocks() where other.name != mine {
            guard let o = other.info else { continue }
            if o.holderIsGone {
                discardLock(other.name)
                removed.append("pid \(o.pid) `\(o.command)`")
                continue
            }
            if let reason = o.staleReason(now: try backend.now()) {
                ignored.append("\(o.summary): \(reason)")
                continue
            }
            if exclusive || o.exclusive {
                discardLock(mine)
                throw Self.lockedError(o)
            }
        }
        // An exclusive holder may delete: clear away what append-only hosts left behind.
        if exclusive {
            for name in (try? lockLeftovers()) ?? [] { try? backend.delete(name) }
        }
        if !removed.isEmpty {
            warn("removed \(removed.count) stale lock\(removed.count == 1 ? "" : "s") of processes that no longer run on this host (\(removed.prefix(3).joined(separator: "; "))\(removed.count > 3 ? "; …" : ""))")
        }
        if !ignored.isEmpty {
            warn("ignoring \(ignored.count) stale lock\(ignored.count == 1 ? "" : "s") (\(ignored.prefix(3).joined(separator: "; "))\(ignored.count > 3 ? "; …" : "")); remove with `repo unlock` once the holder is surely gone")
        }
        let lock = RepositoryLock(repository: self, info: info, name: mine, usedSpaceReserve: usedReserve)
        lockCheck.withLock { $0 = { [weak lock] in try lock?.verify() } }
        do { try synchronizeCatalog() } catch {
            lock.release()
            throw error
        }
        return lock
    }

    private static func lockedError(_ o: LockInfo) -> RepoError {
        RepoError(.locked, "the repository is locked: \(o.summary)",
                  hint: "wait for it to finish; if that process is gone, remove the lock with `repo unlock`")
    }

    /// What `removeLocks` did: locks removed, and live locks of processes on this host that
    /// were kept because `force` was not given.
    public struct LockRemoval: Sendable {
        public var removed: [String] = []
        public var keptLive: [String] = []
    }

    /// Removes stale locks, or with `all` every lock except those of processes still running on
    /// this host (which only `force` removes: a running store whose lock vanishes can no longer
    /// keep prune away and must then refuse to commit).
    public func removeLocks(all: Bool, force: Bool = false) throws -> LockRemoval {
        var result = LockRemoval()
        for l in try listLocks() where all || l.stale != nil {
            if let info = l.info, l.stale == nil, info.holderRunsHere, !force {
                result.keptLive.append(info.summary)
                continue
            }
            try backend.delete(l.name)
            result.removed.append(l.info?.summary ?? l.name)
        }
        // Released locks and their release markers hold nothing; they go too.
        for name in try lockLeftovers() { try backend.delete(name) }
        return result
    }

    /// Writes the space reserve if it is missing; false if there is no room for it yet.
    @discardableResult
    public func restoreSpaceReserve() -> Bool {
        if (try? backend.exists(Self.reserveObject)) == true { return true }
        do {
            try backend.put(Self.reserveObject, data: [UInt8](repeating: 0, count: Self.reserveSize))
            return true
        } catch {
            return false
        }
    }
}

/// Test seam: `REPO_TEST_LOCK_DELAY_MS` delays taking a lock, so integration tests can run a
/// prune between a command's open and its lock. Not for production use.
private let testLockDelay: UInt32? = ProcessInfo.processInfo.environment["REPO_TEST_LOCK_DELAY_MS"]
    .flatMap { UInt32($0) }.map { $0 * 1000 }
