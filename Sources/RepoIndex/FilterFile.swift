public import RepoPrimitives
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The membership filter's prefixes persisted next to the catalog, so a command does not read
/// every blob id out of SQLite and sort it on each start (with millions of blobs that costs
/// seconds). It records the highest pack row it covers; the catalog extends it with the blobs of
/// newer packs by a merge instead of a rebuild.
///
/// Layout (little-endian): magic `RMF1`, 16-byte catalog epoch, covered pack row id (i64), count
/// (i64), `count` sorted distinct u64 prefixes, XXH3-64 of everything before it. The file is a
/// local cache like the catalog (FORMAT.md §20): deleting it loses nothing, and a stale file can
/// only hold extra prefixes (packs removed since), which the catalog check after a filter hit
/// already tolerates. Any file that does not parse is ignored and rebuilt.
struct FilterFile {
    static let magic = Array("RMF1".utf8)
    static let headerSize = 4 + 16 + 8 + 8

    var epoch: [UInt8]
    var coveredPack: Int64
    var prefixes: [UInt64]

    /// What a filter file covers, from its header alone.
    struct Header: Equatable {
        var epoch: [UInt8]
        var coveredPack: Int64
        var count: Int
    }

    static func readHeader(path: String) -> Header? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readHeader(fd)
    }

    private static func readHeader(_ fd: Int32) -> Header? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let size = Int(st.st_size)
        guard size >= headerSize + 8, (size - headerSize - 8) % 8 == 0 else { return nil }
        var header = [UInt8](repeating: 0, count: headerSize)
        guard readFully(fd, into: &header, count: headerSize), Array(header[0..<4]) == magic else { return nil }
        let count = Int(header.readLE(Int64.self, at: 28))
        guard count >= 0, count == (size - headerSize - 8) / 8 else { return nil }
        return Header(epoch: Array(header[4..<20]), coveredPack: header.readLE(Int64.self, at: 20), count: count)
    }

    /// Reads and validates a filter file; nil if it is missing, damaged, or no longer has
    /// `expected` as its header. The prefix array gets room for `extraCapacity` more values, so
    /// a merge needs no second copy (the filter is 8 bytes a blob; two copies would be 16).
    static func read(path: String, expected: Header? = nil, extraCapacity: Int = 0) -> FilterFile? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let h = readHeader(fd), expected == nil || h == expected else { return nil }
        var prefixes: [UInt64] = []
        prefixes.reserveCapacity(h.count + extraCapacity)
        prefixes.append(contentsOf: repeatElement(0, count: h.count))
        let ok = prefixes.withUnsafeMutableBytes { buf in
            buf.count == 0 || readFully(fd, base: buf.baseAddress!, count: buf.count)
        }
        var trailer = [UInt8](repeating: 0, count: 8)
        guard ok, readFully(fd, into: &trailer, count: 8) else { return nil }
        var w = ByteWriter(capacity: headerSize)
        w.raw(magic); w.raw(h.epoch)
        w.u64(UInt64(bitPattern: h.coveredPack)); w.u64(UInt64(h.count))
        var hasher = XXH3Checksum()
        hasher.add(w.bytes)
        prefixes.withUnsafeBytes { hasher.add($0) }
        guard hasher.value == trailer.readLE(UInt64.self, at: 0) else { return nil }
        #if _endian(big)
        for i in prefixes.indices { prefixes[i] = UInt64(littleEndian: prefixes[i]) }
        #endif
        return FilterFile(epoch: h.epoch, coveredPack: h.coveredPack, prefixes: prefixes)
    }

    /// Writes the file atomically (temporary name, then rename). Failures are ignored: the
    /// filter is a cache and is rebuilt next time.
    func write(path: String) {
        var w = ByteWriter(capacity: Self.headerSize)
        w.raw(Self.magic); w.raw(epoch)
        w.u64(UInt64(bitPattern: coveredPack)); w.u64(UInt64(prefixes.count))
        let header = w.bytes
        var hasher = XXH3Checksum()
        hasher.add(header)
        prefixes.withUnsafeBytes { hasher.add($0) }
        var t = ByteWriter(capacity: 8)
        t.u64(hasher.value)
        let trailer = t.bytes
        let temp = path + ".tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        var ok = Self.writeFully(fd, header)
        ok = ok && prefixes.withUnsafeBytes { Self.writeFully(fd, $0) }
        ok = ok && Self.writeFully(fd, trailer)
        close(fd)
        if !ok || rename(temp, path) != 0 { unlink(temp) }
    }

    /// Merges sorted, distinct `b` into sorted, distinct `a` in place (from the back, within
    /// `a`'s spare capacity), keeping the result distinct.
    static func merge(_ a: inout [UInt64], _ b: [UInt64]) {
        guard !b.isEmpty else { return }
        let n = a.count
        a.append(contentsOf: repeatElement(0, count: b.count))
        var i = n - 1, j = b.count - 1, k = a.count - 1
        while j >= 0 {
            if i >= 0 && a[i] > b[j] { a[k] = a[i]; i -= 1 } else { a[k] = b[j]; j -= 1 }
            k -= 1
        }
        var w = 1
        for r in 1..<a.count where a[r] != a[w - 1] {
            a[w] = a[r]; w += 1
        }
        a.removeLast(a.count - w)
    }

    /// Sorts and removes duplicates.
    static func normalized(_ values: [UInt64]) -> [UInt64] {
        var v = values
        v.sort()
        var w = 0
        for r in 0..<v.count where r == 0 || v[r] != v[w - 1] {
            v[w] = v[r]; w += 1
        }
        v.removeLast(v.count - w)
        return v
    }

    private static func readFully(_ fd: Int32, into bytes: inout [UInt8], count: Int) -> Bool {
        bytes.withUnsafeMutableBytes { readFully(fd, base: $0.baseAddress!, count: count) }
    }

    private static func readFully(_ fd: Int32, base: UnsafeMutableRawPointer, count: Int) -> Bool {
        var off = 0
        while off < count {
            let n = Glibc.read(fd, base + off, count - off)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    private static func writeFully(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeFully(fd, $0) }
    }

    private static func writeFully(_ fd: Int32, _ buf: UnsafeRawBufferPointer) -> Bool {
        var off = 0
        while off < buf.count {
            let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }
}

/// XXH3-64 over several pieces, by hashing each piece and folding the results (the file is
/// written and read in the same pieces).
private struct XXH3Checksum {
    var value: UInt64 = 0x5245_504F_4D46_3100
    mutating func add(_ bytes: [UInt8]) { bytes.withUnsafeBytes { add($0) } }
    mutating func add(_ buf: UnsafeRawBufferPointer) {
        value = (value ^ XXH3.hash(buf)) &* 0x9E37_79B9_7F4A_7C15
    }
}
