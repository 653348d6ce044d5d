/// The few S3 response documents `repo` reads — ListObjectsV2 results and error documents —
/// taken apart by element name. Their shapes are fixed by the Amazon S3 API Reference
/// ("ListObjectsV2", "Error responses"); a general XML parser would add a shared library
/// (libxml2, with ICU) to every process's start-up for these two.
///
/// Handles what those documents contain: elements without attributes that matter, text with
/// the five predefined entities and numeric character references. Not a general XML parser.
enum S3XML {
    /// The text of every `<name>…</name>` in `xml`, in order (entities decoded).
    static func values(_ name: String, in xml: Substring) -> [String] {
        var out: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(name)>") ?? rest.range(of: "<\(name) ") {
            guard let close = rest.range(of: "</\(name)>", range: open.upperBound..<rest.endIndex) else { break }
            var start = open.upperBound
            if rest[open].hasSuffix(" "), let gt = rest[start...].firstIndex(of: ">") { start = rest.index(after: gt) }
            out.append(decode(rest[start..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return out
    }

    static func value(_ name: String, in xml: Substring) -> String? { values(name, in: xml).first }

    /// Every `<name>…</name>` element's inner text, undecoded, for nested reads.
    static func elements(_ name: String, in xml: Substring) -> [Substring] {
        var out: [Substring] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(name)>") {
            guard let close = rest.range(of: "</\(name)>", range: open.upperBound..<rest.endIndex) else { break }
            out.append(rest[open.upperBound..<close.lowerBound])
            rest = rest[close.upperBound...]
        }
        return out
    }

    /// Replaces `&amp; &lt; &gt; &quot; &apos;` and `&#N;`/`&#xH;`.
    static func decode(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        var out = ""
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == "&", let semi = text[i...].firstIndex(of: ";") {
                let entity = text[text.index(after: i)..<semi]
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
                    i = text.index(after: semi)
                    continue
                }
            }
            out.append(text[i])
            i = text.index(after: i)
        }
        return out
    }
}
