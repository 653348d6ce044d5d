public import RepoPrimitives

/// One blob inside a pack, as listed by the pack header and by index segments
/// (FORMAT.md §Pack header entry; 50 bytes on disk).
public struct PackBlobEntry: Sendable, Equatable {
    public var id: BlobID
    public var type: BlobType
    /// Bit 0: the stored bytes are a zstd frame.
    public var flags: UInt8
    /// Offset of the encrypted blob in the pack.
    public var offset: Int
    /// Length of the encrypted blob including its 16-byte tag.
    public var length: Int
    /// Length of the plaintext.
    public var rawLength: Int

    public static let flagCompressed: UInt8 = 1
    public static let encodedSize = 50

    public init(id: BlobID, type: BlobType, flags: UInt8, offset: Int, length: Int, rawLength: Int) {
        self.id = id; self.type = type; self.flags = flags
        self.offset = offset; self.length = length; self.rawLength = rawLength
    }

    public var isCompressed: Bool { flags & Self.flagCompressed != 0 }

    public func encode(into w: inout ByteWriter) {
        w.u8(type.rawValue)
        w.u8(flags)
        w.u64(UInt64(offset))
        w.u32(UInt32(length))
        w.u32(UInt32(rawLength))
        w.hash(id)
    }

    public static func decode(from r: inout ByteReader) throws -> PackBlobEntry {
        let t = try r.u8()
        guard let type = BlobType(rawValue: t) else { throw ByteReader.Truncated() }
        let flags = try r.u8()
        // A u64 that does not fit an Int is no offset in any pack (and would trap).
        guard let offset = Int(exactly: try r.u64()) else { throw ByteReader.Truncated() }
        let length = Int(try r.u32())
        let raw = Int(try r.u32())
        let id = try r.hash()
        return PackBlobEntry(id: id, type: type, flags: flags, offset: offset, length: length, rawLength: raw)
    }
}

/// Everything the index knows about one pack.
public struct PackDescriptor: Sendable, Equatable {
    /// SHA-256 of the pack's bytes; also its object name.
    public var name: Hash256
    /// The pack's random 32-byte salt, from which its key is derived.
    public var salt: [UInt8]
    /// Which blob type the pack holds.
    public var kind: BlobType
    /// Storage placement (0 = the repository's primary backend); reserved for tiering.
    public var location: UInt8
    /// Total size of the pack object in bytes.
    public var size: Int
    public var blobs: [PackBlobEntry]

    public init(name: Hash256, salt: [UInt8], kind: BlobType, location: UInt8 = 0, size: Int, blobs: [PackBlobEntry]) {
        self.name = name; self.salt = salt; self.kind = kind
        self.location = location; self.size = size; self.blobs = blobs
    }

    /// The backend object name of a pack: `data/<first two hex digits>/<hex>`.
    public static func objectName(_ name: Hash256) -> String {
        let h = name.hex
        return "data/" + h.prefix(2) + "/" + h
    }

    public var objectName: String { Self.objectName(name) }
}

/// Where one blob can be read.
public struct BlobLocation: Sendable, Equatable {
    public var pack: Hash256
    public var packSalt: [UInt8]
    public var entry: PackBlobEntry

    public init(pack: Hash256, packSalt: [UInt8], entry: PackBlobEntry) {
        self.pack = pack; self.packSalt = packSalt; self.entry = entry
    }
}
