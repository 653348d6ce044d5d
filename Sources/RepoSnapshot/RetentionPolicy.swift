public import Foundation

/// A length of time in a retention policy: `h` hours, `d` days, `w` weeks, `m` months of 30
/// days, `y` years of 365 days (FORMAT.md §Retention policy objects). Fixed lengths, so a
/// tier's horizon does not move with the calendar or with DST.
public struct RetentionDuration: Codable, Sendable, Equatable, CustomStringConvertible {
    public var count: Int
    public var unit: Unit

    public enum Unit: String, Codable, Sendable, CaseIterable {
        case h, d, w, m, y
        public var seconds: Int {
            switch self { case .h: 3600; case .d: 86400; case .w: 7 * 86400; case .m: 30 * 86400; case .y: 365 * 86400 }
        }
    }

    public init(_ count: Int, _ unit: Unit) { self.count = count; self.unit = unit }

    /// Parses `7d`, `12h`, `2w`, `18m`, `7y` (or `0` for a disabled tier).
    public init?(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "0" { self.init(0, .d); return }
        guard let last = t.last, let unit = Unit(rawValue: String(last)),
              let n = Int(t.dropLast()), n >= 0, n <= 1_000_000 else { return nil }
        self.init(n, unit)
    }

    public var seconds: TimeInterval { TimeInterval(count) * TimeInterval(unit.seconds) }
    public var description: String { "\(count)\(unit.rawValue)" }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let d = RetentionDuration(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "\"\(text)\" is not a duration like 7d, 12h, 2w, 6m, 7y"))
        }
        self = d
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// The snapshot fields a group can be formed from.
public enum GroupField: String, Codable, Sendable, CaseIterable {
    case host, name, paths, tags
}

/// The tiered retention policy (FORMAT.md §24): a plain value, with `decide` a pure function.
///
/// Every field is optional so policies can be layered (flags over a policy file over the
/// repository's default); `resolved` fills the built-in defaults.
public struct RetentionPolicy: Codable, Sendable, Equatable {
    /// Keep every snapshot younger than this (default 7d).
    public var hot: RetentionDuration?
    /// Among snapshots younger than this, keep the newest of each calendar day (default 30d).
    public var warm: RetentionDuration?
    /// Among snapshots younger than this, keep the newest of each calendar month (default 7y).
    public var cold: RetentionDuration?
    /// Keep the newest N of each group (default 1, minimum 1).
    public var keepLast: Int?
    /// Keep every snapshot carrying one of these tags.
    public var keepTags: [String]?
    /// Fields that form a group (default host + name + paths).
    public var groupBy: [GroupField]?
    /// IANA time zone for calendar days and months (default: the local zone).
    public var timeZone: String?
    /// Not a retention rule: the age past which `repo status` calls a group late when no
    /// `--max-age` is given, as `AgeLimit` text (`26h`); forget ignores it (FORMAT.md §23).
    public var maxAge: String?

    public init(hot: RetentionDuration? = nil, warm: RetentionDuration? = nil, cold: RetentionDuration? = nil,
                keepLast: Int? = nil, keepTags: [String]? = nil, groupBy: [GroupField]? = nil, timeZone: String? = nil,
                maxAge: String? = nil) {
        self.hot = hot; self.warm = warm; self.cold = cold; self.keepLast = keepLast
        self.keepTags = keepTags; self.groupBy = groupBy; self.timeZone = timeZone; self.maxAge = maxAge
    }

    enum CodingKeys: String, CodingKey {
        case hot = "keep-hot", warm = "keep-warm", cold = "keep-cold", keepLast = "keep-last"
        case keepTags = "keep-tag", groupBy = "group-by", timeZone = "tz", maxAge = "max-age"
    }

    public static let defaultHot = RetentionDuration(7, .d)
    public static let defaultWarm = RetentionDuration(30, .d)
    public static let defaultCold = RetentionDuration(7, .y)
    public static let defaultGroupBy: [GroupField] = [.host, .name, .paths]

    /// `self` with every field `self` leaves unset taken from `base`.
    public func over(_ base: RetentionPolicy) -> RetentionPolicy {
        RetentionPolicy(hot: hot ?? base.hot, warm: warm ?? base.warm, cold: cold ?? base.cold,
                        keepLast: keepLast ?? base.keepLast, keepTags: keepTags ?? base.keepTags,
                        groupBy: groupBy ?? base.groupBy, timeZone: timeZone ?? base.timeZone, maxAge: maxAge ?? base.maxAge)
    }

    /// Every field set: unset ones take the built-in defaults (time zone: `localZone`).
    public func resolved(localZone: String = TimeZone.current.identifier) -> RetentionPolicy {
        over(RetentionPolicy(hot: Self.defaultHot, warm: Self.defaultWarm, cold: Self.defaultCold, keepLast: 1,
                             keepTags: [], groupBy: Self.defaultGroupBy, timeZone: localZone))
    }

    /// Why the policy cannot be applied, or nil.
    public var invalidReason: String? {
        if let k = keepLast, k < 1 {
            return "keep-last must be at least 1: a group's newest snapshot is never forgotten"
        }
        if let tz = timeZone, TimeZone(identifier: tz) == nil { return "unknown time zone \"\(tz)\" (use an IANA name like Europe/Berlin or UTC)" }
        if let g = groupBy, g.isEmpty { return "group-by needs at least one of host, name, paths, tags" }
        if let m = maxAge, let reason = AgeLimit.invalidReason(m) { return "max-age: \(reason)" }
        return nil
    }

    /// One line for humans, e.g. `hot 7d, warm 30d, cold 7y, keep-last 1, group by host,name,paths, tz UTC`.
    public var summary: String {
        var parts: [String] = []
        if let hot { parts.append("hot \(hot)") }
        if let warm { parts.append("warm \(warm)") }
        if let cold { parts.append("cold \(cold)") }
        if let keepLast { parts.append("keep-last \(keepLast)") }
        if let t = keepTags, !t.isEmpty { parts.append("keep-tag \(t.joined(separator: ","))") }
        if let g = groupBy { parts.append("group by \(g.map(\.rawValue).joined(separator: ","))") }
        if let timeZone { parts.append("tz \(timeZone)") }
        if let maxAge { parts.append("status max-age \(maxAge)") }
        return parts.joined(separator: ", ")
    }
}

/// A pin (legal hold): the snapshot is never forgotten while the pin is active.
public struct Pin: Codable, Sendable, Equatable {
    /// Full hex id of the pinned snapshot.
    public var snapshot: String
    /// RFC 3339 time after which the pin no longer holds (nil: until unpinned).
    public var until: String?
    public var reason: String?
    /// RFC 3339 time the pin was set, and by whom.
    public var created: String
    public var host: String
    public var username: String

    public init(snapshot: String, until: String?, reason: String?, created: String, host: String, username: String) {
        self.snapshot = snapshot; self.until = until; self.reason = reason
        self.created = created; self.host = host; self.username = username
    }
}

/// What the policy engine needs to know about one snapshot.
public struct RetentionCandidate: Sendable, Equatable {
    public var id: String
    public var time: Date
    public var host: String
    public var name: String?
    public var paths: [String]?
    public var tags: [String]
    /// Active-or-expired pin; `decide` checks `until` against `now`.
    public var pinUntil: Date?
    public var isPinned: Bool
    public var pinReason: String?

    public init(id: String, time: Date, host: String, name: String?, paths: [String]?, tags: [String],
                isPinned: Bool = false, pinUntil: Date? = nil, pinReason: String? = nil) {
        self.id = id; self.time = time; self.host = host; self.name = name; self.paths = paths; self.tags = tags
        self.isPinned = isPinned; self.pinUntil = pinUntil; self.pinReason = pinReason
    }
}

/// The engine's verdict on one snapshot.
public struct RetentionDecision: Sendable, Equatable {
    public enum Tier: String, Sendable, Codable { case hot, warm, cold, expired }

    public var id: String
    /// The group key, e.g. `host=db1 name=main.sql`.
    public var group: String
    /// Which age bracket the snapshot falls in.
    public var tier: Tier
    public var keep: Bool
    /// Why it is kept (every rule that keeps it), or why it goes (one line each).
    public var reasons: [String]
    /// Kept because S3 Object Lock still retains it (FORMAT.md §31.4), until then (nil when
    /// the storage did not say until when, or when retention did not decide).
    public var retainedUntil: Date? = nil
    /// Whether S3 Object Lock retention kept it against the policy.
    public var retained = false
}

extension RetentionPolicy {
    /// Applies the policy: a pure function of its arguments. The result has one decision per
    /// candidate, in the candidates' order.
    ///
    /// Rules, per group (snapshots sharing the `groupBy` fields), where age = now − time:
    /// hot keeps age < hot; warm keeps, among snapshots with age < warm, the newest of each
    /// calendar day; cold keeps, among snapshots with age < cold, the newest of each calendar
    /// month; keep-last keeps the newest N; keep-tag keeps tagged ones; an active pin keeps
    /// the snapshot regardless of everything else. Days and months are taken in `timeZone`.
    /// Ties in time are broken by id (the larger id is "newer"), so the result is deterministic.
    ///
    /// Invariants (tested): a group's newest snapshot is kept; every kept snapshot has at least
    /// one reason; applying the policy to the kept set keeps all of it (idempotence); active
    /// pins always win.
    /// - Precondition: `invalidReason == nil`.
    public func decide(_ candidates: [RetentionCandidate], now: Date) -> [RetentionDecision] {
        let p = resolved(localZone: "UTC")
        let hot = p.hot!.seconds, warm = p.warm!.seconds, cold = p.cold!.seconds
        let keepLast = max(1, p.keepLast!)
        let keepTags = Set(p.keepTags!)
        let fields = p.groupBy!
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: p.timeZone!) ?? TimeZone(identifier: "UTC")!

        var groups: [String: [Int]] = [:]
        var groupOrder: [String] = []
        for (i, c) in candidates.enumerated() {
            let key = Self.groupKey(c, fields: fields)
            if groups[key] == nil { groupOrder.append(key) }
            groups[key, default: []].append(i)
        }

        var out = [RetentionDecision?](repeating: nil, count: candidates.count)
        for key in groupOrder {
            // Newest first; ties broken by id so the result does not depend on input order.
            let members = groups[key]!.sorted {
                let a = candidates[$0], b = candidates[$1]
                return a.time != b.time ? a.time > b.time : a.id > b.id
            }
            var dayWinner: [String: String] = [:]    // day label → id of the newest snapshot that day
            var monthWinner: [String: String] = [:]
            for (rank, i) in members.enumerated() {
                let c = candidates[i]
                let age = now.timeIntervalSince(c.time)
                let parts = calendar.dateComponents([.year, .month, .day], from: c.time)
                let month = String(format: "%04d-%02d", parts.year!, parts.month!)
                let day = month + String(format: "-%02d", parts.day!)
                let tier: RetentionDecision.Tier = age < hot ? .hot : age < warm ? .warm : age < cold ? .cold : .expired
                var keepReasons: [String] = []
                var goReasons: [String] = []

                if c.isPinned {
                    if let until = c.pinUntil, until <= now {
                        goReasons.append("pin expired \(Self.format(until))")
                    } else {
                        keepReasons.append("pinned" + (c.pinUntil.map { " until \(Self.format($0))" } ?? "")
                                           + (c.pinReason.map { ": \($0)" } ?? ""))
                    }
                }
                if rank < keepLast {
                    keepReasons.append(rank == 0 ? "newest of its group (keep-last \(keepLast))" : "keep-last \(keepLast) (#\(rank + 1))")
                }
                if let tag = c.tags.first(where: keepTags.contains) { keepReasons.append("keep-tag \(tag)") }
                if age < hot { keepReasons.append("hot: younger than \(p.hot!)") }
                if age < warm {
                    if let winner = dayWinner[day] {
                        if age >= hot { goReasons.append("warm: not the newest of \(day) (\(String(winner.prefix(8))) is)") }
                    } else {
                        dayWinner[day] = c.id
                        keepReasons.append("warm: newest of \(day)")
                    }
                }
                if age < cold {
                    if let winner = monthWinner[month] {
                        if age >= warm { goReasons.append("cold: not the newest of \(month) (\(String(winner.prefix(8))) is)") }
                    } else {
                        monthWinner[month] = c.id
                        keepReasons.append("cold: newest of \(month)")
                    }
                } else {
                    goReasons.append("older than the cold horizon \(p.cold!)")
                }
                let keep = !keepReasons.isEmpty
                out[i] = RetentionDecision(id: c.id, group: key, tier: tier, keep: keep,
                                           reasons: keep ? keepReasons : goReasons.isEmpty ? ["no rule keeps it"] : goReasons)
            }
        }
        return out.map { $0! }
    }

    /// A group's key: the selected fields, e.g. `host=db1 name=main.sql`.
    public static func groupKey(_ c: RetentionCandidate, fields: [GroupField]) -> String {
        fields.compactMap { f -> String? in
            switch f {
            case .host: "host=\(c.host)"
            case .name: c.name.map { "name=\($0)" }
            case .paths: c.paths.map { "paths=\($0.joined(separator: ","))" }
            case .tags: "tags=\(c.tags.sorted().joined(separator: ","))"
            }
        }.joined(separator: " ")
    }

    static func format(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }
}
