public import RepoPrimitives

/// A reference to one data chunk: its blob id and plaintext length.
public struct ChunkRef: Codable, Sendable, Equatable {
    public var id: BlobID
    public var size: Int

    public init(id: BlobID, size: Int) { self.id = id; self.size = size }
}

/// A reference to one content-list blob and what it covers.
public struct ListRef: Codable, Sendable, Equatable {
    public var id: BlobID
    /// Total plaintext bytes of the chunks the list names.
    public var size: Int
    /// Number of chunks in the list.
    public var count: Int

    public init(id: BlobID, size: Int, count: Int) { self.id = id; self.size = size; self.count = count }
}

/// A file's content (FORMAT.md §Content lists). Small files list their chunks inline; large
/// files list content-list blobs of up to `ContentList.capacity` chunks each, so a node stays
/// small and a read at any offset costs two binary searches (O(log n)).
public enum Content: Codable, Sendable, Equatable {
    case chunks([ChunkRef])
    case lists([ListRef])

    private enum Keys: String, CodingKey { case chunks, lists }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        if let chunks = try c.decodeIfPresent([ChunkRef].self, forKey: .chunks) {
            self = .chunks(chunks)
        } else {
            self = .lists(try c.decode([ListRef].self, forKey: .lists))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .chunks(let v): try c.encode(v, forKey: .chunks)
        case .lists(let v): try c.encode(v, forKey: .lists)
        }
    }
}

/// The body of a content-list blob (a tree-type blob):
///
///     list = "RCL1" || u32le count || (id[32] || u32le size) × count
public enum ContentList {
    /// Chunks per list blob (at 1 MiB average chunks, one list covers ~4 GiB).
    public static let capacity = 4096
    /// Content with at most this many chunks is stored inline in the node.
    public static let inlineLimit = 64
    static let magic = Array("RCL1".utf8)

    public static func encode(_ chunks: [ChunkRef]) -> [UInt8] {
        var w = ByteWriter(capacity: 8 + chunks.count * 36)
        w.raw(magic)
        w.u32(UInt32(chunks.count))
        for c in chunks { w.hash(c.id); w.u32(UInt32(c.size)) }
        return w.bytes
    }

    public struct Malformed: Error, CustomStringConvertible {
        public var description: String { "malformed content list blob" }
    }

    public static func decode(_ bytes: [UInt8]) throws -> [ChunkRef] {
        var r = ByteReader(bytes)
        guard try r.raw(4) == magic else { throw Malformed() }
        let n = Int(try r.u32())
        guard r.remaining == n * 36 else { throw Malformed() }
        var out: [ChunkRef] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(ChunkRef(id: try r.hash(), size: Int(try r.u32()))) }
        return out
    }
}
