import Synchronization
import Foundation

/// An in-memory backend for tests: same contract as `LocalBackend`, nothing on disk.
public final class MemoryBackend: StorageBackend {
    private let objects = Mutex<[String: [UInt8]]>([:])
    private let written = Mutex<[String: Date]>([:])
    public let location = "memory:"

    public init() {}

    public func prepare() throws {}

    public func put(_ name: String, data: [UInt8]) throws {
        objects.withLock { $0[name] = data }
        written.withLock { $0[name] = Date() }
    }

    public func create(_ name: String, data: [UInt8]) throws -> Bool {
        let created = objects.withLock { objects in
            guard objects[name] == nil else { return false }
            objects[name] = data
            return true
        }
        if created { written.withLock { $0[name] = Date() } }
        return created
    }

    public func get(_ name: String, range: Range<Int>?) throws -> [UInt8] {
        guard let data = objects.withLock({ $0[name] }) else { throw StorageError.notFound(name) }
        let r = range ?? 0..<data.count
        guard r.lowerBound >= 0, r.upperBound <= data.count else {
            throw StorageError.badRange(name: name, size: data.count, requested: r)
        }
        return Array(data[r])
    }

    public func stat(_ name: String) throws -> ObjectInfo {
        guard let data = objects.withLock({ $0[name] }) else { throw StorageError.notFound(name) }
        return ObjectInfo(name: name, size: data.count, modified: written.withLock { $0[name] })
    }

    public func list(prefix: String) throws -> [ObjectInfo] {
        let times = written.withLock { $0 }
        return objects.withLock { objs in
            objs.filter { $0.key.hasPrefix(prefix) }.map { ObjectInfo(name: $0.key, size: $0.value.count, modified: times[$0.key]) }
        }
    }

    public func delete(_ name: String) throws {
        _ = objects.withLock { $0.removeValue(forKey: name) }
        _ = written.withLock { $0.removeValue(forKey: name) }
    }

    /// Test hook: replace an object's bytes in place (to simulate corruption).
    public func corrupt(_ name: String, _ change: ([UInt8]) -> [UInt8]) {
        objects.withLock { if let d = $0[name] { $0[name] = change(d) } }
    }
}
