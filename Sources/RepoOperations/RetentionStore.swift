import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
import Foundation

/// The repository's default retention policy as stored (sealed kind `policy`, in `policy/`).
public struct StoredPolicy: Codable, Sendable {
    public var policy: RetentionPolicy
    /// RFC 3339 time it was set, and by whom.
    public var time: String
    public var host: String
    public var username: String

    public init(policy: RetentionPolicy, time: String, host: String, username: String) {
        self.policy = policy; self.time = time; self.host = host; self.username = username
    }
}

/// Pins and the default policy: small sealed JSON objects (FORMAT.md §Pins and the default
/// policy). Objects are immutable; "changing" one writes the new object first and deletes the
/// old ones afterwards, so a crash in between leaves both and readers take the newest.
extension Repository {
    /// Every pin object. Throws `RepoError(.integrity)` if one cannot be read: a pin nobody can
    /// read might be the one protecting a snapshot, so `forget` must not guess.
    public func pins() throws -> [(name: String, pin: Pin)] {
        try backend.list(prefix: "pins/").map { obj in
            let body = try loadObject(obj.name, kind: .pin)
            do { return (obj.name, try JSONDecoder().decode(Pin.self, from: Data(body))) } catch {
                throw RepoError(.integrity, "\(obj.name): malformed pin: \(error)")
            }
        }
    }

    /// Pins `pin.snapshot`, replacing any earlier pin of the same snapshot.
    public func setPin(_ pin: Pin) throws {
        let old = try pins().filter { $0.pin.snapshot == pin.snapshot }
        let id = try saveObject(Array(try JSONEncoder().encode(pin)), kind: .pin)
        for o in old where o.name != "pins/" + id.hex { try backend.delete(o.name) }
    }

    /// Removes every pin of `snapshot` (full hex id); returns the removed pins.
    @discardableResult
    public func removePins(snapshot: String) throws -> [Pin] {
        let hits = try pins().filter { $0.pin.snapshot == snapshot }
        for h in hits { try backend.delete(h.name) }
        return hits.map(\.pin)
    }

    /// The default policy: the newest `policy/` object, or nil when none is set.
    public func storedPolicy() throws -> StoredPolicy? {
        var newest: (Date, String, StoredPolicy)?
        for obj in try backend.list(prefix: "policy/") {
            let body = try loadObject(obj.name, kind: .policy)
            let p: StoredPolicy
            do { p = try JSONDecoder().decode(StoredPolicy.self, from: Data(body)) } catch {
                throw RepoError(.integrity, "\(obj.name): malformed policy: \(error)")
            }
            let t = Timestamp.parse(p.time) ?? .distantPast
            if newest == nil || (t, obj.name) > (newest!.0, newest!.1) { newest = (t, obj.name, p) }
        }
        return newest?.2
    }

    /// Stores `policy` as the repository's default, replacing the previous one.
    public func setStoredPolicy(_ policy: RetentionPolicy) throws {
        let old = try backend.list(prefix: "policy/").map(\.name)
        let stored = StoredPolicy(policy: policy, time: Timestamp.format(Date()), host: HostInfo.hostname,
                                  username: HostInfo.username)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let id = try saveObject(Array(try enc.encode(stored)), kind: .policy)
        for name in old where name != "policy/" + id.hex { try backend.delete(name) }
    }

    /// Removes the default policy; returns true if one was set.
    @discardableResult
    public func removeStoredPolicy() throws -> Bool {
        let old = try backend.list(prefix: "policy/")
        for o in old { try backend.delete(o.name) }
        return !old.isEmpty
    }
}
