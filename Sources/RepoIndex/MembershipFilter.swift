public import RepoPrimitives

/// An immutable in-memory answer to "might this blob already be stored?", so the dedup check
/// on the write path does not query SQLite for every chunk.
///
/// Holds the first 8 bytes of every indexed blob id in a sorted array (8 bytes per blob). Blob
/// ids are keyed HMACs, so these prefixes are uniformly distributed: `mayContain == false` is
/// exact ("new"), and `true` is confirmed against the catalog (a false positive needs a 64-bit
/// prefix collision). Lookup is a binary search. The catalog persists the sorted array
/// (`Catalog.membershipFilter()`), so opening costs one file read, not a query per blob.
public struct MembershipFilter: Sendable {
    private let prefixes: [UInt64]

    public init(prefixes: [UInt64]) {
        self.prefixes = prefixes.sorted()
    }

    /// A filter over prefixes the caller has already sorted.
    public init(sortedPrefixes: [UInt64]) {
        self.prefixes = sortedPrefixes
    }

    public static let empty = MembershipFilter(prefixes: [])

    public var count: Int { prefixes.count }

    /// Resident bytes used by the filter.
    public var memoryBytes: Int { prefixes.capacity * 8 }

    public func mayContain(_ id: BlobID) -> Bool {
        let key = id.prefix64
        return prefixes.withUnsafeBufferPointer { p in
            var lo = 0, hi = p.count
            while lo < hi {
                let mid = (lo &+ hi) >> 1
                let v = p[mid]
                if v == key { return true }
                if v < key { lo = mid + 1 } else { hi = mid }
            }
            return false
        }
    }
}
