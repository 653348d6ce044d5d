public import Foundation
import RepoStorage
import Synchronization

/// What a lock object (sealed kind `lock`, in `locks/`) says about its holder.
public struct LockInfo: Codable, Sendable, Equatable {
    public var host: String
    public var pid: Int32
    public var username: String
    /// RFC 3339 time of the last refresh.
    public var time: String
    public var exclusive: Bool
    public var command: String
    /// Set only in a *release marker*: the name (`locks/<id>`) of the lock object this marker
    /// releases, written instead of deleting it by a host whose storage credentials cannot
    /// delete (FORMAT.md §18). A marker never conflicts, and the lock it names is released.
    public var released: String? = nil

    /// A lock not refreshed for this long is stale (holders refresh every `refreshInterval`).
    public static let staleAfter: TimeInterval = 30 * 60
    public static let refreshInterval: TimeInterval = 5 * 60

    /// True if the holder was a process on this host that no longer exists: such a lock can
    /// never be released by its holder and is removed by the next locker (FORMAT.md §18).
    public var holderIsGone: Bool {
        host == HostInfo.hostname && kill(pid, 0) != 0 && errno == ESRCH
    }

    /// True if the holder is a process on this host that still runs.
    public var holderRunsHere: Bool {
        host == HostInfo.hostname && !holderIsGone
    }

    /// Why the lock is stale, or nil while its holder may be alive.
    public func staleReason(now: Date = Date()) -> String? {
        if holderIsGone {
            return "process \(pid) on this host no longer exists"
        }
        if let t = Timestamp.parse(time), now.timeIntervalSince(t) > Self.staleAfter {
            return "not refreshed since \(time)"
        }
        return nil
    }

    public var summary: String {
        "\(exclusive ? "exclusive" : "shared") lock held by \(username)@\(host) pid \(pid) (`\(command)`, since \(time))"
    }
}

/// A held lock. Refreshed in the background until `release()`; a lock left behind by a crash
/// becomes stale and is ignored (and removed: automatically when its process was on this host,
/// with `repo unlock` otherwise).
///
/// Every held lock is registered process-wide, so that a signal handler that must end the
/// process at once can still release them (`releaseAll`).
public final class RepositoryLock: Sendable {
    private let repository: Repository
    private let info: LockInfo
    private let current = Mutex<(name: String, info: LockInfo)>(("", LockInfo(host: "", pid: 0, username: "", time: "", exclusive: false, command: "")))
    /// Why the lock object is no longer ours (removed or replaced by someone else), once noticed.
    private let lostReason = Mutex<String?>(nil)
    private let stop = Mutex<Bool>(false)
    private let condition = NSCondition()
    /// Held while a refresh replaces the lock object, so `release` never races it (a refresh
    /// finishing after release would leave a new lock object behind).
    private let refreshing = NSLock()
    /// True if the disk was full and the repository's space reserve was given up to write this
    /// lock (an exclusive lock only); the holder should only delete, then restore the reserve.
    public let usedSpaceReserve: Bool

    private static let held = Mutex<[ObjectIdentifier: RepositoryLock]>([:])

    init(repository: Repository, info: LockInfo, name: String, usedSpaceReserve: Bool = false) {
        self.repository = repository
        self.info = info
        self.usedSpaceReserve = usedSpaceReserve
        current.withLock { $0 = (name, info) }
        let thread = Thread { [weak self] in self?.refreshLoop() }
        thread.start()
        Self.held.withLock { $0[ObjectIdentifier(self)] = self }
    }

    public var isExclusive: Bool { info.exclusive }

    private func refreshLoop() {
        while true {
            condition.lock()
            if !stop.withLock({ $0 }) {
                _ = condition.wait(until: Date().addingTimeInterval(LockInfo.refreshInterval))
            }
            condition.unlock()
            refreshing.lock()
            defer { refreshing.unlock() }
            if stop.withLock({ $0 }) || lostReason.withLock({ $0 }) != nil { return }
            // Refreshing a lock someone removed would hide that removal from `verify`: a prune
            // may have run meanwhile. Notice it instead, and stop refreshing.
            if let reason = checkCurrent() {
                lostReason.withLock { $0 = reason }
                repository.warn("the repository lock of this process was \(reason); stopped refreshing it")
                return
            }
            var fresh = info
            fresh.time = Timestamp.format((try? repository.backend.now()) ?? Date())
            guard let body = try? JSONEncoder().encode(fresh),
                  let id = try? repository.saveObject(Array(body), kind: .lock) else {
                repository.warn("could not refresh the repository lock; another process may consider it stale")
                continue
            }
            let old = current.withLock { c -> String in defer { c = ("locks/" + id.hex, fresh) }; return c.name }
            if (try? repository.backend.exists(old)) != true {
                lostReason.withLock { $0 = "removed by another process" }
            }
            repository.discardLock(old)
        }
    }

    /// Nil if the current lock object is there and says what we wrote; otherwise why not.
    private func checkCurrent() -> String? {
        let (name, expected) = current.withLock { $0 }
        do {
            let body = try repository.loadObject(name, kind: .lock)
            guard let found = try? JSONDecoder().decode(LockInfo.self, from: Data(body)), found == expected else {
                return "changed by another process"
            }
            return nil
        } catch StorageError.notFound {
            return "removed by another process"
        } catch {
            return "damaged or unreadable (\(error))"
        }
    }

    /// Throws unless this process's lock object is still in place and intact. Writers call it
    /// just before they commit (a snapshot, or prune's deletions): a lock that was removed
    /// (`repo unlock --remove-all`, or another host that took it for stale) or damaged no longer
    /// kept prune away, so data the commit depends on may be gone.
    public func verify() throws {
        refreshing.lock()
        defer { refreshing.unlock() }
        if lostReason.withLock({ $0 }) == nil, let reason = checkCurrent() {
            lostReason.withLock { $0 = reason }
        }
        if let reason = lostReason.withLock({ $0 }) {
            throw RepoError(.failure, "this process's repository lock was \(reason) while it ran, so a prune may have deleted data it needs; nothing was committed",
                            hint: "run the command again (data still in the repository is reused); use `repo unlock --remove-all` only when no repo process runs")
        }
    }

    /// Removes the lock object (or, on a host that may not delete, marks it released). Safe to
    /// call more than once, from any thread.
    public func release() {
        let already = stop.withLock { s -> Bool in defer { s = true }; return s }
        guard !already else { return }
        condition.lock(); condition.signal(); condition.unlock()
        refreshing.lock()
        defer { refreshing.unlock() }
        repository.discardLock(current.withLock { $0.name })
        _ = Self.held.withLock { $0.removeValue(forKey: ObjectIdentifier(self)) }
    }

    /// Releases every lock this process holds (for a signal handler about to exit).
    public static func releaseAll() {
        for lock in held.withLock({ Array($0.values) }) { lock.release() }
    }
}
