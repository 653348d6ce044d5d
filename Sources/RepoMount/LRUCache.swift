/// A least-recently-used map bounded by total cost (bytes, node counts…). Not thread-safe;
/// owners lock around it.
///
/// Invariants: `totalCost <= capacity` after every `insert`; a value whose cost alone exceeds
/// the capacity is not stored; `value(for:)` marks the entry as most recently used.
public struct LRUCache<Key: Hashable, Value> {
    private struct Entry {
        var key: Key
        var value: Value?   // nil once removed, so a free slot holds no memory
        var cost: Int
        var prev: Int   // towards most recent; -1 = none
        var next: Int   // towards least recent; -1 = none
    }

    public let capacity: Int
    public private(set) var totalCost = 0
    private var entries: [Entry] = []
    private var free: [Int] = []
    private var slots: [Key: Int] = [:]
    private var head = -1   // most recently used
    private var tail = -1   // least recently used

    public init(capacity: Int) { self.capacity = max(0, capacity) }

    public var count: Int { slots.count }

    /// The value for `key`, marking it most recently used.
    public mutating func value(for key: Key) -> Value? {
        guard let i = slots[key] else { return nil }
        unlink(i)
        pushFront(i)
        return entries[i].value!
    }

    public func contains(_ key: Key) -> Bool { slots[key] != nil }

    /// Inserts or replaces `key`, then evicts least recently used entries until the total cost
    /// fits. Returns the evicted keys (for tests and statistics).
    @discardableResult
    public mutating func insert(_ value: Value, for key: Key, cost: Int) -> [Key] {
        remove(key)
        guard cost <= capacity else { return [] }
        let e = Entry(key: key, value: value, cost: cost, prev: -1, next: -1)
        let i: Int
        if let f = free.popLast() { entries[f] = e; i = f } else { entries.append(e); i = entries.count - 1 }
        slots[key] = i
        pushFront(i)
        totalCost += cost
        var evicted: [Key] = []
        while totalCost > capacity, tail != -1 {
            let k = entries[tail].key
            remove(k)
            evicted.append(k)
        }
        return evicted
    }

    public mutating func remove(_ key: Key) {
        guard let i = slots.removeValue(forKey: key) else { return }
        unlink(i)
        totalCost -= entries[i].cost
        entries[i].value = nil
        free.append(i)
    }

    /// Keys from most to least recently used.
    public var keysByRecency: [Key] {
        var out: [Key] = []
        var i = head
        while i != -1 { out.append(entries[i].key); i = entries[i].next }
        return out
    }

    private mutating func unlink(_ i: Int) {
        let p = entries[i].prev, n = entries[i].next
        if p != -1 { entries[p].next = n } else { head = n }
        if n != -1 { entries[n].prev = p } else { tail = p }
        entries[i].prev = -1
        entries[i].next = -1
    }

    private mutating func pushFront(_ i: Int) {
        entries[i].next = head
        entries[i].prev = -1
        if head != -1 { entries[head].prev = i }
        head = i
        if tail == -1 { tail = i }
    }
}
