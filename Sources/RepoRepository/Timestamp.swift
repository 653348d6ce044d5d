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

    /// Parses RFC 3339 with or without fractional seconds, or a plain date (`2024-05-01`, taken
    /// as midnight UTC); nil for anything else. No ICU formatter: Foundation's
    /// `ISO8601DateFormatter`, used here before, read any text that starts with a date as that
    /// date, and crashed the process (SIGFPE inside ICU) on a long malformed fraction, which
    /// a snapshot, lock or pin body could hold (found by fuzzing).
    public static func parse(_ text: String) -> Date? {
        if let (s, ns) = RFC3339.parse(text) { return Date(timeIntervalSince1970: Double(s) + Double(ns) / 1e9) }
        guard text.utf8.count == 10, let (s, _) = RFC3339.parse(text + "T00:00:00Z") else { return nil }
        return Date(timeIntervalSince1970: Double(s))
    }
}
