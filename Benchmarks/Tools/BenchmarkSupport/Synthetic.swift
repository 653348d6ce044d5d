public import RepoPrimitives
public import RepoIndex

/// Deterministic synthetic data shared by the micro benchmarks and `index-scale`.

/// SplitMix64's output function: a stateless 64-bit mix, so the i-th value of a family is
/// random-access.
@inline(__always)
public func mix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// SplitMix64 as a generator, for sequences.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        defer { state &+= 0x9E37_79B9_7F4A_7C15 }
        return mix64(state)
    }
}

public enum Synthetic {
    /// The i-th of a family of uniformly distributed 32-byte values. Blob ids are keyed HMACs,
    /// so random ids are what the index sees; different seeds give disjoint families.
    public static func hash(_ i: Int, seed: UInt64) -> Hash256 {
        let base = mix64(seed) &+ UInt64(i) &* 4
        return Hash256(w0: mix64(base), w1: mix64(base &+ 1), w2: mix64(base &+ 2), w3: mix64(base &+ 3))
    }

    /// Index entries for blobs `first..<first+count` of the family `seed`, packed the way a
    /// write session leaves them: data blobs of 512 KiB–1.5 MiB (1 MiB on average, stored
    /// uncompressed: plaintext + 16-byte tag) appended to a pack until it reaches `packSize`.
    /// Pack names and salts are drawn from related families; the packs do not exist anywhere.
    public static func packs(blobs count: Int, first: Int = 0, seed: UInt64, packSize: Int = 16 << 20) -> [PackDescriptor] {
        var packs: [PackDescriptor] = []
        var entries: [PackBlobEntry] = []
        var offset = 0
        var packStart = first
        func close() {
            // Header: version, kind, count, entries, GCM tag; then the 40-byte trailer.
            let header = 6 + entries.count * PackBlobEntry.encodedSize + 16
            packs.append(PackDescriptor(name: hash(packStart, seed: seed &+ 1), salt: hash(packStart, seed: seed &+ 2).bytes,
                                        kind: .data, size: offset + header + 40, blobs: entries))
            entries.removeAll(keepingCapacity: true)
            offset = 0
        }
        for i in first..<(first + count) {
            let id = hash(i, seed: seed)
            let raw = (512 << 10) + Int(id.w3 % (1 << 20))
            entries.append(PackBlobEntry(id: id, type: .data, flags: 0, offset: offset, length: raw + 16, rawLength: raw))
            offset += raw + 16
            if offset >= packSize {
                close()
                packStart = i + 1
            }
        }
        if !entries.isEmpty { close() }
        return packs
    }
}
