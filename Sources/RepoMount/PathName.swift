import RepoPrimitives

/// Turns any stored name into one path component: `/` (allowed in stream names), NUL, `.`,
/// `..` and the empty name cannot appear in a directory listing, so they are percent-escaped,
/// and `%` itself too so that the mapping stays one-to-one.
///
/// A component longer than `maxBytes` (NAME_MAX) would make the kernel fail the whole
/// directory listing, so it is shortened: its first bytes (whole characters), `…~` and the
/// first 8 hex digits of the SHA-256 of the full name, 255 bytes at most. Two long names that
/// share their first 243 bytes still get different components.
public enum PathName {
    /// The longest name a Linux directory entry may have, in bytes.
    public static let maxBytes = 255

    public static func escape(_ name: String) -> String {
        if name.isEmpty { return "%" }
        if name == "." { return "%2E" }
        if name == ".." { return "%2E%2E" }
        guard name.contains(where: { $0 == "/" || $0 == "%" || $0 == "\0" }) else { return shortened(name, original: name) }
        var out = ""
        for ch in name.unicodeScalars {
            switch ch {
            case "%": out += "%25"
            case "/": out += "%2F"
            case "\0": out += "%00"
            default: out.unicodeScalars.append(ch)
            }
        }
        return shortened(out, original: name)
    }

    private static func shortened(_ component: String, original: String) -> String {
        guard component.utf8.count > maxBytes else { return component }
        let suffix = "…~" + String(SHA256Hasher.hash(Array(original.utf8)).hex.prefix(8))
        let budget = maxBytes - suffix.utf8.count
        var out = ""
        var used = 0
        for s in component.unicodeScalars {
            let n = String(s).utf8.count
            if used + n > budget { break }
            out.unicodeScalars.append(s)
            used += n
        }
        return out + suffix
    }
}
