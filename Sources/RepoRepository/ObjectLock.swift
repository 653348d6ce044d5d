public import RepoStorage
public import Foundation

/// The `objectLock` field of `config` (FORMAT.md §6, §31): S3 Object Lock retention that
/// every writer applies to the objects it stores, chosen at `repo init --object-lock
/// MODE:PERIOD` and fixed for the repository's life.
///
/// JSON: `{"mode": "governance" | "compliance", "period": seconds}`. Readers that predate the
/// field ignore it (FORMAT.md §4) and would write unretained objects: every writer of such a
/// repository must know the field.
public struct ObjectLock: Codable, Sendable, Equatable {
    public var mode: ObjectRetention.Mode
    /// Retention of each object, in seconds from its upload (storage's clock, FORMAT.md §29.3).
    public var period: Int

    public init(mode: ObjectRetention.Mode, period: Int) { self.mode = mode; self.period = period }

    /// 1 second (tests) to 100 years.
    public static let periodRange = 1...(100 * 365 * 86400)

    /// Seconds the plan adds to `period` before it counts an object as free, for the rounding of
    /// the storage's clock (whole seconds, §29.3) and of `LastModified`; a delete that the server
    /// still refuses is handled as retained anyway.
    public static let slack = 5

    /// The objects that get retention: everything a restore or a key needs (`config`, key
    /// slots, packs, index segments, snapshots, the WAL archive). Locks, the space reserve,
    /// pins, the default policy and run records are written plainly: they are replaced or
    /// deleted as part of normal work, and losing them loses no backup.
    public static func isRetained(_ name: String) -> Bool {
        name == RepositoryConfig.objectName
            || ["keys/", "data/", "index/", "snapshots/", "wal/"].contains { name.hasPrefix($0) }
    }

    /// The retention a backend applies for this setting.
    public var retention: ObjectRetention {
        ObjectRetention(mode: mode, period: period, appliesTo: { ObjectLock.isRetained($0) })
    }

    /// When an object modified at `modified` (storage's clock) is free of its retention, plus
    /// `slack`; nil (unknown age) counts as never.
    public func expiry(ofObjectModified modified: Date?) -> Date {
        guard let modified else { return .distantFuture }
        return modified.addingTimeInterval(TimeInterval(period + Self.slack))
    }

    /// Why the value cannot be used, or nil.
    public var invalidReason: String? {
        Self.periodRange.contains(period) ? nil : "objectLock.period \(period) is outside 1...\(Self.periodRange.upperBound) seconds (1 second to 100 years)"
    }

    /// `governance:30d`, `compliance:1y`, `governance:20s`: MODE:PERIOD with PERIOD a positive
    /// count and a unit s, min, h, d, w or y (365 d).
    ///
    /// - Throws: a message for the command line.
    public static func parse(_ text: String) throws -> ObjectLock {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let mode = ObjectRetention.Mode(rawValue: parts[0].lowercased()) else {
            throw ObjectLockSyntaxError(text: text, reason: "expected MODE:PERIOD with MODE governance or compliance, e.g. governance:30d")
        }
        let period = parts[1]
        let digits = period.prefix { $0.isASCII && $0.isNumber }
        let units = ["s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400]
        guard !digits.isEmpty, let n = Int(digits), n > 0, let unit = units[String(period.dropFirst(digits.count))],
              n <= periodRange.upperBound / unit else {
            throw ObjectLockSyntaxError(text: text, reason: "the period must be a positive count with a unit s, min, h, d, w or y (365 days), at most 100y, e.g. 30d")
        }
        return ObjectLock(mode: mode, period: n * unit)
    }

    /// `governance, 30d` style: the period in its largest exact unit.
    public var summary: String { "\(mode.rawValue), \(Self.format(period))" }

    /// `30d`, `2h`, `20s`.
    public static func format(_ seconds: Int) -> String {
        for (unit, size) in [("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("min", 60)] where seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}

/// An `--object-lock` value that does not parse.
public struct ObjectLockSyntaxError: Error, CustomStringConvertible {
    public var text: String
    public var reason: String
    public var description: String { "--object-lock \"\(text)\": \(reason)" }
}
