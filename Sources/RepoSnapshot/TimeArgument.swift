public import Foundation

/// The one parser for times given on the command line (`--time`, `--now`, `pin --until`).
///
/// It matches the whole text against exactly this grammar and rejects everything else:
///
///     DATE                          2024-05-10             midnight at the start of that day, in `zone`
///     DATE SEP HH:MM[:SS[.F]]       2024-05-10 18:00       a wall-clock time in `zone`
///     DATE SEP HH:MM[:SS[.F]] OFF   2024-05-10T18:00:00Z   an absolute time (RFC 3339)
///
///     DATE = YYYY-MM-DD  (year 0001-9999, a day that exists in that month: leap years count)
///     SEP  = T, t or one space
///     HH 00-23, MM 00-59, SS 00-59 (no leap seconds), F = 1 or more digits (nanoseconds kept)
///     OFF  = Z, z, or +HH:MM / -HH:MM with HH 00-23 and MM 00-59
///
/// A wall-clock time that does not exist in `zone` (skipped by a daylight-saving change) is
/// rejected; one that exists twice (the hour repeated in autumn) is the earlier instant.
public enum TimeArgument {
    /// The grammar in one line, for messages and `--help`.
    public static let grammar = "YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS[.frac]] (in the time zone), or RFC 3339 with Z or ±HH:MM"

    /// Why a text is not a time.
    public struct Invalid: Error, CustomStringConvertible, Sendable, Equatable {
        public var value: String
        public var reason: String
        public var description: String { "\"\(value)\" is not a valid time: \(reason) (expected \(TimeArgument.grammar))" }
    }

    /// Parses `text` (see the type's grammar); times without an offset are read in `zone`.
    public static func parse(_ text: String, zone: TimeZone) throws(Invalid) -> Date {
        let b = Array(text.utf8)
        func fail(_ reason: String) -> Invalid { Invalid(value: text, reason: reason) }
        func digits(_ at: Int, _ count: Int, _ what: String) throws(Invalid) -> Int {
            guard at + count <= b.count else { throw fail("\(what) is missing or too short") }
            var v = 0
            for c in b[at..<(at + count)] {
                guard c >= 0x30 && c <= 0x39 else { throw fail("\(what) must be \(count) digits") }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        func expect(_ at: Int, _ ch: Character, _ context: String) throws(Invalid) {
            guard at < b.count, b[at] == ch.asciiValue! else { throw fail("expected \"\(ch)\" \(context)") }
        }

        let year = try digits(0, 4, "the year")
        try expect(4, "-", "after the year")
        let month = try digits(5, 2, "the month")
        try expect(7, "-", "after the month")
        let day = try digits(8, 2, "the day")
        guard year >= 1 else { throw fail("year 0000 does not exist") }
        guard (1...12).contains(month) else { throw fail("month \(month) is not 01-12") }
        let monthDays = daysIn(month: month, year: year)
        guard (1...monthDays).contains(day) else {
            throw fail("day \(day) does not exist in \(year)-\(pad(month)) (it has \(monthDays) days)")
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        if b.count == 10 { return try local(Int64(days) * 86400, nanos: 0, zone: zone, fail) }

        guard b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " ") else {
            throw fail("the date must be followed by T or a space and a time, or nothing")
        }
        let hour = try digits(11, 2, "the hour")
        try expect(13, ":", "between hour and minute")
        let minute = try digits(14, 2, "the minute")
        guard hour <= 23 else { throw fail("hour \(hour) is not 00-23") }
        guard minute <= 59 else { throw fail("minute \(minute) is not 00-59") }
        var i = 16
        var second = 0
        var nanos = 0
        if i < b.count && b[i] == UInt8(ascii: ":") {
            second = try digits(i + 1, 2, "the second")
            guard second <= 59 else { throw fail("second \(second) is not 00-59") }
            i += 3
            if i < b.count && b[i] == UInt8(ascii: ".") {
                i += 1
                var count = 0
                while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                    if count < 9 { nanos = nanos * 10 + Int(b[i] - 0x30) }
                    count += 1
                    i += 1
                }
                guard count > 0 else { throw fail("a fraction of a second needs digits after \".\"") }
                for _ in min(count, 9)..<9 { nanos *= 10 }
            }
        }
        let wall = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + second)
        if i == b.count { return try local(wall, nanos: nanos, zone: zone, fail) }

        let offset: Int
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            offset = 0
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let oh = try digits(i + 1, 2, "the offset's hours")
            try expect(i + 3, ":", "in the offset (±HH:MM)")
            let om = try digits(i + 4, 2, "the offset's minutes")
            guard oh <= 23 else { throw fail("offset hours \(oh) are not 00-23") }
            guard om <= 59 else { throw fail("offset minutes \(om) are not 00-59") }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            i += 6
        } else {
            throw fail("unexpected text after the time (an offset is Z or ±HH:MM)")
        }
        guard i == b.count else { throw fail("unexpected text after the offset") }
        return date(wall - Int64(offset), nanos: nanos)
    }

    /// Parses a time argument when it is valid; nil otherwise.
    public static func date(_ text: String, zone: TimeZone) -> Date? { try? parse(text, zone: zone) }

    // MARK: calendar arithmetic (proleptic Gregorian)

    static func isLeap(_ y: Int) -> Bool { y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    private static func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    private static func date(_ seconds: Int64, nanos: Int) -> Date {
        Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1e9)
    }

    /// The instant whose wall-clock time in `zone` is `wall` (seconds as if UTC): the earlier of
    /// two when the hour repeats; an error when the time is skipped.
    private static func local(_ wall: Int64, nanos: Int, zone: TimeZone,
                              _ fail: (String) -> Invalid) throws(Invalid) -> Date {
        // Every offset the zone uses within a day of `wall` is a candidate; keep those that
        // map back to it.
        var offsets = Set<Int>()
        for probe in stride(from: wall - 2 * 86400, through: wall + 2 * 86400, by: 3 * 3600) {
            offsets.insert(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(probe))))
        }
        let instants = offsets.map { wall - Int64($0) }
            .filter { zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double($0))) == Int(wall - $0) }
        guard let first = instants.min() else {
            throw fail("this local time does not exist in \(zone.identifier) (skipped by a daylight-saving change)")
        }
        return date(first, nanos: nanos)
    }
}
