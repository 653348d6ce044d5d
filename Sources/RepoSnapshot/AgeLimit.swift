public import Foundation

/// How old a group's newest restorable point may get before `repo status` calls it late:
/// a positive number and a unit, `s`, `min`, `h`, `d` or `w` (`90s`, `15min`, `26h`, `2d`).
/// `m` alone is refused: retention durations read it as 30 days, a monitor would mean minutes.
public enum AgeLimit {
    static let units: [String: Double] = ["s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400]

    /// The limit in seconds; nil when `text` is not one.
    public static func seconds(_ text: String) -> TimeInterval? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = t.prefix { $0.isNumber }
        guard !digits.isEmpty, let n = Double(digits), n > 0, let unit = units[String(t.dropFirst(digits.count))] else { return nil }
        return n * unit
    }

    /// Why `text` is not a limit, or nil when it is one.
    public static func invalidReason(_ text: String) -> String? {
        guard seconds(text) == nil else { return nil }
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t.hasSuffix("m"), let n = Int(t.dropLast()) {
            return "\"\(text)\" is ambiguous: write minutes as \(n)min, months as days (\(n * 30)d)"
        }
        return "\"\(text)\" is not a duration like 90s, 15min, 26h, 2d, 1w"
    }
}
