public import RepoPrimitives
public import RepoIndex

/// The body of an index segment object (sealed as kind `index`; FORMAT.md §Index segments):
///
///     body = u8 version(1) || u32 nSuperseded || name[32] × nSuperseded || u32 nPacks || pack × nPacks
///     pack = name[32] || salt[32] || u8 kind || u8 location || u64 size || u32 nBlobs || entry × nBlobs
///
/// `superseded` lists segments whose content this one replaces (written by prune; a reader
/// ignores a superseded segment once this one exists).
public struct IndexSegment: Sendable, Equatable {
    public var packs: [PackDescriptor]
    public var superseded: [Hash256]

    public init(packs: [PackDescriptor], superseded: [Hash256] = []) {
        self.packs = packs; self.superseded = superseded
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 16 + packs.reduce(0) { $0 + 78 + $1.blobs.count * PackBlobEntry.encodedSize })
        w.u8(1)
        w.u32(UInt32(superseded.count))
        for s in superseded { w.hash(s) }
        w.u32(UInt32(packs.count))
        for p in packs {
            w.hash(p.name)
            w.raw(p.salt)
            w.u8(p.kind.rawValue)
            w.u8(p.location)
            w.u64(UInt64(p.size))
            w.u32(UInt32(p.blobs.count))
            for b in p.blobs { b.encode(into: &w) }
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> IndexSegment {
        var r = ByteReader(bytes)
        guard try r.u8() == 1 else { throw RepoError(.integrity, "index segment has an unknown version") }
        let ns = Int(try r.u32())
        guard ns <= r.remaining / 32 else { throw ByteReader.Truncated() }
        var superseded: [Hash256] = []
        for _ in 0..<ns { superseded.append(try r.hash()) }
        let np = Int(try r.u32())
        guard np <= r.remaining / 78 else { throw ByteReader.Truncated() }
        var packs: [PackDescriptor] = []
        packs.reserveCapacity(np)
        for _ in 0..<np {
            let name = try r.hash()
            let salt = try r.raw(32)
            guard let kind = BlobType(rawValue: try r.u8()) else { throw ByteReader.Truncated() }
            let location = try r.u8()
            guard let size = Int(exactly: try r.u64()) else { throw ByteReader.Truncated() }
            let nb = Int(try r.u32())
            guard nb <= r.remaining / PackBlobEntry.encodedSize else { throw ByteReader.Truncated() }
            var blobs: [PackBlobEntry] = []
            blobs.reserveCapacity(nb)
            for _ in 0..<nb { blobs.append(try PackBlobEntry.decode(from: &r)) }
            packs.append(PackDescriptor(name: name, salt: salt, kind: kind, location: location, size: size, blobs: blobs))
        }
        guard r.remaining == 0 else { throw RepoError(.integrity, "index segment has trailing bytes") }
        return IndexSegment(packs: packs, superseded: superseded)
    }
}
