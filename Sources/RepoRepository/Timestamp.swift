import RepoPrimitives
public import Foundation

/// RFC 3339 timestamps as stored in the repository (UTC, fractional seconds).
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        // The formatter rounds to the millisecond, which can carry 23:59:59.9996 into the next
        // day (or 9999-12-31 into year 10000): truncate instead, so a time never moves forward.
        return f.string(from: Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded(.down) / 1000))
    }

    /// Parses RFC 3339 / ISO 8601 with or without fractional seconds, or a plain date
    /// (`2024-05-01`, taken as midnight UTC).
    public static func parse(_ text: String) -> Date? {
        if let (s, ns) = RFC3339.parse(text) { return Date(timeIntervalSince1970: Double(s) + Double(ns) / 1e9) }
        let f = ISO8601DateFormatter()
        for opts: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime],
                                                   [.withFullDate]] {
            f.formatOptions = opts
            if let d = f.date(from: text) { return d }
        }
        return nil
    }
}
