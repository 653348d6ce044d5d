#if canImport(Glibc)
import Glibc
#endif

/// The few S3 response documents `repo` reads — ListObjectsV2 results, error documents,
/// CreateMultipartUpload results — taken apart by element name. Their shapes are fixed by the
/// Amazon S3 API Reference ("ListObjectsV2", "Error responses"); a general XML parser would add
/// a shared library (libxml2, with ICU) to every process's start-up for these.
///
/// Works on the bytes and ranges of one document, each search starting where the last ended,
/// so a 1000-key listing page is read in one pass (an earlier version on `String` copied the
/// rest of the text at every element: quadratic, 75% of opening a repository of 10,000 packs). Handles what those documents contain: elements without attributes that
/// matter, text with the five predefined entities and numeric character references. Not a
/// general XML parser.
struct S3XML {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var all: Range<Int> { 0..<bytes.count }

    /// Where `needle` starts in `range`, or nil: `memchr` for its first byte, then a compare
    /// (needles are short tag names, so this stays linear in the document).
    private func find(_ needle: [UInt8], in range: Range<Int>) -> Int? {
        guard range.count >= needle.count, let first = needle.first else { return nil }
        return bytes.withUnsafeBytes { b -> Int? in
            var at = range.lowerBound
            let last = range.upperBound - needle.count
            while at <= last {
                guard let p = memchr(b.baseAddress! + at, Int32(first), last - at + 1) else { return nil }
                let i = UnsafeRawPointer(p) - b.baseAddress!
                if memcmp(b.baseAddress! + i, needle, needle.count) == 0 { return i }
                at = i + 1
            }
            return nil
        }
    }

    /// The inner ranges of every `<name>…</name>` (or `<name attr…>…</name>`) in `range`, in order.
    func elements(_ name: String, in range: Range<Int>? = nil) -> [Range<Int>] {
        let range = range ?? all
        let open = Array("<\(name)".utf8), close = Array("</\(name)>".utf8)
        var out: [Range<Int>] = []
        var at = range.lowerBound
        while let start = find(open, in: at..<range.upperBound) {
            let after = start + open.count
            guard after < range.upperBound else { break }
            // `<Key>` or `<Key attr="…">`, not `<KeyMarker>`.
            guard bytes[after] == UInt8(ascii: ">") || bytes[after] == UInt8(ascii: " ") else { at = after; continue }
            guard let gt = bytes[after..<range.upperBound].firstIndex(of: UInt8(ascii: ">")),
                  let end = find(close, in: (gt + 1)..<range.upperBound) else { break }
            out.append((gt + 1)..<end)
            at = end + close.count
        }
        return out
    }

    /// The decoded text of every `<name>…</name>` in `range`.
    func values(_ name: String, in range: Range<Int>? = nil) -> [String] {
        elements(name, in: range).map { Self.decode(bytes[$0]) }
    }

    func value(_ name: String, in range: Range<Int>? = nil) -> String? {
        guard let r = elements(name, in: range).first else { return nil }
        return Self.decode(bytes[r])
    }

    /// UTF-8 text with `&amp; &lt; &gt; &quot; &apos;` and `&#N;`/`&#xH;` replaced.
    static func decode(_ text: ArraySlice<UInt8>) -> String {
        let s = String(decoding: text, as: UTF8.self)
        guard text.contains(UInt8(ascii: "&")) else { return s }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].firstIndex(of: ";") {
                let entity = s[s.index(after: i)..<semi]
                var scalar: Unicode.Scalar?
                switch entity {
                case "amp": scalar = "&"
                case "lt": scalar = "<"
                case "gt": scalar = ">"
                case "quot": scalar = "\""
                case "apos": scalar = "'"
                default:
                    if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16) { scalar = Unicode.Scalar(v) }
                    else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst(1)) { scalar = Unicode.Scalar(v) }
                }
                if let scalar {
                    out.unicodeScalars.append(scalar)
                    i = s.index(after: semi)
                    continue
                }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }
}
