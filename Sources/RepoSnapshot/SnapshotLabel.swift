/// The rules for the words users give snapshots: stream names, snapshot names, tags, hosts.
///
/// Stream names become file names at restore and in the mount, and every label is printed in
/// one cell of a one-line-per-snapshot table, so the rules are those of a file name plus no
/// control characters; a tag also must not contain a comma (tags are listed comma-separated).
/// Every command that accepts such a value checks it here, before touching the repository.
public enum SnapshotLabel {
    public enum Kind: String, Sendable {
        /// A stream's name (`store --name` for one stream, the NAME of `--stream NAME=CMD`).
        case streamName = "stream name"
        /// The name of a multi-stream snapshot (`store --name` with `--stream`).
        case snapshotName = "snapshot name"
        case tag
        case host
    }

    /// The longest label in bytes of UTF-8: a file name's limit on Linux (NAME_MAX).
    public static let maxBytes = 255

    /// Why `text` is not a valid label of `kind`, or nil when it is.
    public static func invalidReason(_ text: String, kind: Kind) -> String? {
        if text.isEmpty { return "it must not be empty" }
        let bytes = text.utf8.count
        if bytes > maxBytes { return "it is \(bytes) bytes long; at most \(maxBytes) bytes are allowed" }
        if let c = text.unicodeScalars.first(where: isControl) {
            return c == "\0" ? "it must not contain NUL" : "it must not contain control characters (found U+\(hex(c.value)))"
        }
        switch kind {
        case .streamName:
            if text == "." || text == ".." { return "\"\(text)\" cannot be a file name" }
            if text.contains("/") { return "it must not contain \"/\" (it becomes a file name)" }
        case .tag:
            if text.contains(",") { return "it must not contain \",\" (tags are listed comma-separated)" }
        case .snapshotName, .host:
            break
        }
        return nil
    }

    /// Throws a message naming the value and the rule it breaks: `tag "a,b": it must not contain ","…`.
    public static func validate(_ text: String, kind: Kind) throws(Invalid) {
        if let reason = invalidReason(text, kind: kind) { throw Invalid(kind: kind, value: text, reason: reason) }
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var kind: Kind
        public var value: String
        public var reason: String
        public var description: String { "\(kind.rawValue) \(SnapshotLabel.quoted(value)): \(reason)" }
    }

    /// C0 and C1 control characters and DEL.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x20 || (0x7F...0x9F).contains(s.value)
    }

    /// `text` in double quotes with control characters, `"` and `\` escaped (`\n`, `\t`, `\xNN`),
    /// and cut after 80 characters: safe to print on one line.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        var count = 0
        for s in text.unicodeScalars {
            if count == 80 { out += "…"; break }
            out += escaped(s, extra: ["\""])
            count += 1
        }
        return out + "\""
    }

    /// `text` with control characters, `\` and every scalar in `extra` escaped (`\n`, `\t`,
    /// `\\`, `\xNN`, `\u{NNNN}`), as `ls` escapes names: one line, escapes told apart.
    public static func escapedForTable(_ text: String, extra: Set<Unicode.Scalar> = []) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0) || $0 == "\\" || extra.contains($0) }) else { return text }
        var out = ""
        for s in text.unicodeScalars { out += escaped(s, extra: extra) }
        return out
    }

    private static func escaped(_ s: Unicode.Scalar, extra: Set<Unicode.Scalar>) -> String {
        switch s {
        case "\n": return "\\n"
        case "\t": return "\\t"
        case "\\": return "\\\\"
        default:
            // As `ls` prints names (`\xNN`, lower-case hex); C1 controls, which are valid
            // UTF-8 there, as `\u{NNNN}` so they are not mistaken for a raw byte.
            if (isControl(s) && s.value < 0x80) || (extra.contains(s) && s.value < 0x80) {
                return "\\x" + hex(s.value, width: 2).lowercased()
            }
            if isControl(s) || extra.contains(s) { return "\\u{\(hex(s.value))}" }
            return String(s)
        }
    }

    private static func hex(_ v: UInt32, width: Int = 4) -> String {
        let h = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }
}
