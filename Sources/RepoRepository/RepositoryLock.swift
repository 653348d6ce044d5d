public import Foundation
import Synchronization

/// What a lock object (sealed kind `lock`, in `locks/`) says about its holder.
public struct LockInfo: Codable, Sendable {
    public var host: String
    public var pid: Int32
    public var username: String
    /// RFC 3339 time of the last refresh.
    public var time: String
    public var exclusive: Bool
    public var command: String

    /// A lock not refreshed for this long is stale (holders refresh every `refreshInterval`).
    public static let staleAfter: TimeInterval = 30 * 60
    public static let refreshInterval: TimeInterval = 5 * 60

    /// Why the lock is stale, or nil while its holder may be alive.
    public func staleReason(now: Date = Date()) -> String? {
        if host == HostInfo.hostname && kill(pid, 0) != 0 && errno == ESRCH {
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
/// becomes stale and is ignored (and removable with `repo unlock`).
public final class RepositoryLock: Sendable {
    private let repository: Repository
    private let info: LockInfo
    private let current = Mutex<String>("")
    private let stop = Mutex<Bool>(false)
    private let condition = NSCondition()
    /// Held while a refresh replaces the lock object, so `release` never races it (a refresh
    /// finishing after release would leave a new lock object behind).
    private let refreshing = NSLock()

    init(repository: Repository, info: LockInfo, name: String) {
        self.repository = repository
        self.info = info
        current.withLock { $0 = name }
        let thread = Thread { [weak self] in self?.refreshLoop() }
        thread.start()
    }

    private func refreshLoop() {
        while true {
            condition.lock()
            if !stop.withLock({ $0 }) {
                _ = condition.wait(until: Date().addingTimeInterval(LockInfo.refreshInterval))
            }
            condition.unlock()
            refreshing.lock()
            defer { refreshing.unlock() }
            if stop.withLock({ $0 }) { return }
            var fresh = info
            fresh.time = Timestamp.format(Date())
            guard let body = try? JSONEncoder().encode(fresh),
                  let id = try? repository.saveObject(Array(body), kind: .lock) else {
                repository.warn("could not refresh the repository lock; another process may consider it stale")
                continue
            }
            let old = current.withLock { c -> String in defer { c = "locks/" + id.hex }; return c }
            try? repository.backend.delete(old)
        }
    }

    /// Removes the lock object. Safe to call more than once.
    public func release() {
        let already = stop.withLock { s -> Bool in defer { s = true }; return s }
        guard !already else { return }
        condition.lock(); condition.signal(); condition.unlock()
        refreshing.lock()
        defer { refreshing.unlock() }
        try? repository.backend.delete(current.withLock { $0 })
    }
}

extension Repository {
    /// Every lock object with its decoded info (nil if unreadable) and stale reason.
    public func listLocks() throws -> [(name: String, info: LockInfo?, stale: String?)] {
        try backend.list(prefix: "locks/").map { obj in
            guard let body = try? loadObject(obj.name, kind: .lock),
                  let info = try? JSONDecoder().decode(LockInfo.self, from: Data(body)) else {
                return (obj.name, nil, nil)
            }
            return (obj.name, info, info.staleReason())
        }
    }

    /// Takes a shared (`exclusive == false`) or exclusive lock.
    ///
    /// Shared locks conflict only with live exclusive locks; an exclusive lock conflicts with
    /// every live lock. The lock is written first and conflicts checked afterwards, so two
    /// racing lockers cannot both win. Stale locks are reported through `warn` and ignored.
    /// - Throws: `RepoError(.locked)` naming the holder.
    public func lock(exclusive: Bool, command: String) throws -> RepositoryLock {
        let info = LockInfo(host: HostInfo.hostname, pid: getpid(), username: HostInfo.username,
                            time: Timestamp.format(Date()), exclusive: exclusive, command: command)
        let id = try saveObject(Array(try JSONEncoder().encode(info)), kind: .lock)
        let mine = "locks/" + id.hex
        for other in try listLocks() where other.name != mine {
            guard let o = other.info else { continue }
            if let reason = o.staleReason() {
                warn("ignoring stale \(o.summary): \(reason); remove it with `repo unlock`")
                continue
            }
            if exclusive || o.exclusive {
                try? backend.delete(mine)
                throw RepoError(.locked, "the repository is locked: \(o.summary)",
                                hint: "wait for it to finish; if that process is gone, remove the lock with `repo unlock`")
            }
        }
        return RepositoryLock(repository: self, info: info, name: mine)
    }

    /// Removes stale locks (or every lock with `all`); returns how many were removed.
    public func removeLocks(all: Bool) throws -> [String] {
        var removed: [String] = []
        for l in try listLocks() where all || l.stale != nil {
            try backend.delete(l.name)
            removed.append(l.info?.summary ?? l.name)
        }
        return removed
    }
}
