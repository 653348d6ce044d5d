import XCTest
import Foundation
@testable import RepoSnapshot

/// The retention engine is a pure function: property tests over random histories and time
/// zones (fixed seeds), and table tests at day, month and DST boundaries.
final class RetentionPolicyTests: XCTestCase {
    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Rng {
        var s: UInt64
        init(_ seed: UInt64) { s = seed &* 0x9E3779B97F4A7C15 | 1 }
        mutating func next() -> UInt64 { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s &* 2685821657736338717 }
        mutating func int(_ r: Range<Int>) -> Int { r.lowerBound + Int(next() % UInt64(r.count)) }
        mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) / 1_000_000 < p }
    }

    static let zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham"]
    static let now = date("2026-03-29T12:00:00Z")

    static func date(_ s: String) -> Date {
        let f = ISO8601DateFormatter()
        return f.date(from: s)!
    }

    static func randomHistory(_ rng: inout Rng, now: Date) -> [RetentionCandidate] {
        let hosts = ["db1", "db2"], names = ["main.sql", "users.sql", "logs.bin"]
        let count = rng.int(0..<160)
        var out: [RetentionCandidate] = []
        for i in 0..<count {
            // Mostly the last few years, some bursts within a day, a few in the future.
            let span: Int
            switch rng.int(0..<10) {
            case 0: span = 6 * 3600
            case 1...3: span = 40 * 86400
            case 4...7: span = 3 * 365 * 86400
            default: span = 9 * 365 * 86400
            }
            var t = now.addingTimeInterval(-Double(rng.int(0..<span)))
            if rng.chance(0.02) { t = now.addingTimeInterval(Double(rng.int(1..<7200))) }
            if rng.chance(0.05), let prev = out.last { t = prev.time }   // equal times: ties broken by id
            let tree = rng.chance(0.2)
            let tags = rng.chance(0.1) ? ["release"] : rng.chance(0.1) ? ["adhoc"] : []
            let pinned = rng.chance(0.05)
            let until: Date? = pinned && rng.chance(0.5) ? now.addingTimeInterval(Double(rng.int(-86400 * 30..<86400 * 30))) : nil
            out.append(RetentionCandidate(id: String(format: "%064x", rng.next() ^ UInt64(i)), time: t,
                                          host: hosts[rng.int(0..<2)], name: tree ? nil : names[rng.int(0..<3)],
                                          paths: tree ? ["/srv/data"] : nil, tags: tags,
                                          isPinned: pinned, pinUntil: until, pinReason: pinned ? "hold" : nil))
        }
        return out
    }

    static func randomPolicy(_ rng: inout Rng) -> RetentionPolicy {
        let units = RetentionDuration.Unit.allCases
        func d() -> RetentionDuration? {
            rng.chance(0.3) ? nil : RetentionDuration(rng.int(0..<40), units[rng.int(0..<units.count)])
        }
        let groupings: [[GroupField]?] = [nil, [.host], [.host, .name], [.tags], [.host, .name, .paths, .tags]]
        return RetentionPolicy(hot: d(), warm: d(), cold: d(), keepLast: rng.chance(0.5) ? nil : rng.int(1..<5),
                               keepTags: rng.chance(0.5) ? ["release"] : nil, groupBy: groupings[rng.int(0..<groupings.count)],
                               timeZone: zones[rng.int(0..<zones.count)])
    }

    /// Newest per group kept, every kept snapshot has a reason, idempotent, pins win, and the
    /// result does not depend on input order — 2000 random histories across 6 time zones.
    func testPropertiesOverRandomHistories() {
        var rng = Rng(20261121)
        for round in 0..<2000 {
            let policy = Self.randomPolicy(&rng)
            let now = Self.now.addingTimeInterval(Double(rng.int(0..<(400 * 86400))))
            let history = Self.randomHistory(&rng, now: now)
            let decisions = policy.decide(history, now: now)
            XCTAssertEqual(decisions.map(\.id), history.map(\.id), "round \(round)")
            let fields = policy.resolved(localZone: "UTC").groupBy!

            // Newest of each group kept (ties: larger id is newer).
            var newest: [String: RetentionCandidate] = [:]
            for c in history {
                let k = RetentionPolicy.groupKey(c, fields: fields)
                if let n = newest[k], (n.time, n.id) > (c.time, c.id) { continue }
                newest[k] = c
            }
            let byID = Dictionary(uniqueKeysWithValues: decisions.map { ($0.id, $0) })
            for (k, c) in newest { XCTAssertTrue(byID[c.id]!.keep, "round \(round): newest of \(k) forgotten") }

            for (c, d) in zip(history, decisions) {
                XCTAssertFalse(d.reasons.isEmpty, "round \(round): \(c.id) has no reason")
                if c.isPinned && (c.pinUntil == nil || c.pinUntil! > now) {
                    XCTAssertTrue(d.keep, "round \(round): active pin lost")
                    XCTAssertTrue(d.reasons.contains { $0.hasPrefix("pinned") })
                }
                if let tags = policy.keepTags, c.tags.contains(where: tags.contains) { XCTAssertTrue(d.keep) }
                if now.timeIntervalSince(c.time) < policy.resolved(localZone: "UTC").hot!.seconds { XCTAssertTrue(d.keep) }
            }

            // Idempotence: the kept set is a fixed point.
            let kept = zip(history, decisions).filter { $0.1.keep }.map(\.0)
            let again = policy.decide(kept, now: now)
            XCTAssertTrue(again.allSatisfy(\.keep), "round \(round): forgetting is not idempotent")

            // Order independence.
            var shuffled = history
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, rng.int(0..<(i + 1))) }
            let reordered = Dictionary(uniqueKeysWithValues: policy.decide(shuffled, now: now).map { ($0.id, $0.keep) })
            for d in decisions { XCTAssertEqual(reordered[d.id], d.keep, "round \(round): depends on input order") }
        }
    }

    /// The engine against a slow, literal reading of the rules (one day at a time).
    func testAgainstReferenceImplementation() {
        var rng = Rng(7)
        for round in 0..<500 {
            let zone = Self.zones[rng.int(0..<Self.zones.count)]
            let policy = RetentionPolicy(hot: RetentionDuration(rng.int(0..<10), .d), warm: RetentionDuration(rng.int(0..<60), .d),
                                         cold: RetentionDuration(rng.int(0..<5), .y), keepLast: rng.int(1..<3), timeZone: zone)
            let history = Self.randomHistory(&rng, now: Self.now).map {
                var c = $0; c.isPinned = false; c.tags = []; c.host = "h"; c.name = "n"; c.paths = nil; return c
            }
            var cal = Calendar(identifier: .gregorian)
            cal.timeZone = TimeZone(identifier: zone)!
            let sorted = history.sorted { ($0.time, $0.id) > ($1.time, $1.id) }
            var expected = Set<String>(sorted.prefix(policy.keepLast!).map(\.id))
            let age = { (c: RetentionCandidate) in Self.now.timeIntervalSince(c.time) }
            for c in sorted where age(c) < policy.hot!.seconds { expected.insert(c.id) }
            let warm = sorted.filter { age($0) < policy.warm!.seconds }
            for c in warm where !warm.contains(where: { cal.isDate($0.time, inSameDayAs: c.time) && ($0.time, $0.id) > (c.time, c.id) }) {
                expected.insert(c.id)
            }
            let cold = sorted.filter { age($0) < policy.cold!.seconds }
            for c in cold where !cold.contains(where: {
                cal.isDate($0.time, equalTo: c.time, toGranularity: .month) && ($0.time, $0.id) > (c.time, c.id)
            }) {
                expected.insert(c.id)
            }
            let got = Set(policy.decide(history, now: Self.now).filter(\.keep).map(\.id))
            XCTAssertEqual(got, expected, "round \(round) in \(zone)")
        }
    }

    private func keptTimes(_ times: [String], policy: RetentionPolicy, now: String) -> [String] {
        let candidates = times.enumerated().map {
            RetentionCandidate(id: String(format: "%064d", $0.offset), time: Self.date($0.element), host: "h", name: "n", paths: nil, tags: [])
        }
        let decisions = policy.decide(candidates, now: Self.date(now))
        return zip(times, decisions).filter { $0.1.keep }.map(\.0)
    }

    /// Calendar days are those of the policy's time zone, across DST changes.
    func testDayBoundariesAcrossDST() {
        // Europe/Berlin springs forward on 2026-03-29 (02:00 → 03:00 local, 01:00 UTC).
        let times = ["2026-03-28T22:30:00Z",   // 23:30 CET, 28 March
                     "2026-03-28T23:30:00Z",   // 00:30 CET, 29 March
                     "2026-03-29T00:59:00Z",   // 01:59 CET, 29 March
                     "2026-03-29T01:00:00Z",   // 03:00 CEST, 29 March
                     "2026-03-29T21:59:00Z",   // 23:59 CEST, 29 March
                     "2026-03-29T22:00:00Z"]   // 00:00 CEST, 30 March
        let policy = { (tz: String) in
            RetentionPolicy(hot: RetentionDuration(0, .d), warm: RetentionDuration(30, .d), cold: RetentionDuration(0, .d),
                            keepLast: 1, timeZone: tz)
        }
        XCTAssertEqual(keptTimes(times, policy: policy("Europe/Berlin"), now: "2026-04-10T00:00:00Z"),
                       ["2026-03-28T22:30:00Z", "2026-03-29T21:59:00Z", "2026-03-29T22:00:00Z"])
        // In UTC the days split differently.
        XCTAssertEqual(keptTimes(times, policy: policy("UTC"), now: "2026-04-10T00:00:00Z"),
                       ["2026-03-28T23:30:00Z", "2026-03-29T22:00:00Z"])
        // America/New_York falls back on 2025-11-02 (02:00 EDT → 01:00 EST): the repeated hour is one day.
        let fall = ["2025-11-02T05:30:00Z",   // 01:30 EDT
                    "2025-11-02T06:30:00Z",   // 01:30 EST
                    "2025-11-03T04:59:00Z",   // 23:59 EST, 2 November
                    "2025-11-03T05:00:00Z"]   // 00:00 EST, 3 November
        XCTAssertEqual(keptTimes(fall, policy: policy("America/New_York"), now: "2025-11-20T00:00:00Z"),
                       ["2025-11-03T04:59:00Z", "2025-11-03T05:00:00Z"])
    }

    func testMonthBoundariesAndHorizons() {
        let policy = RetentionPolicy(hot: RetentionDuration(1, .d), warm: RetentionDuration(3, .d), cold: RetentionDuration(1, .y),
                                     keepLast: 1, timeZone: "America/New_York")
        let times = ["2024-12-31T23:00:00Z",   // 18:00 EST 31 Dec: December in New York
                     "2025-01-01T04:59:00Z",   // 23:59 EST 31 Dec: still December, newer → December's keeper
                     "2025-01-01T05:00:00Z",   // 00:00 EST 1 Jan
                     "2025-01-31T12:00:00Z",
                     "2025-02-15T12:00:00Z",
                     "2024-01-15T12:00:00Z"]   // beyond the 1y cold horizon
        XCTAssertEqual(keptTimes(times, policy: policy, now: "2025-03-01T00:00:00Z"),
                       ["2025-01-01T04:59:00Z", "2025-01-31T12:00:00Z", "2025-02-15T12:00:00Z"])
        let d = policy.decide([RetentionCandidate(id: "a", time: Self.date("2024-01-15T12:00:00Z"), host: "h", name: "n", paths: nil, tags: []),
                               RetentionCandidate(id: "b", time: Self.date("2025-02-15T12:00:00Z"), host: "h", name: "n", paths: nil, tags: [])],
                              now: Self.date("2025-03-01T00:00:00Z"))
        XCTAssertEqual(d[0].tier, .expired)
        XCTAssertFalse(d[0].keep)
        XCTAssertEqual(d[0].reasons, ["older than the cold horizon 1y"])
        XCTAssertEqual(d[1].tier, .cold)
        XCTAssertTrue(d[1].reasons.contains("cold: newest of 2025-02"))
    }

    func testGroupsPinsTagsAndReasons() {
        let now = Self.date("2026-01-01T00:00:00Z")
        let old = Self.date("2010-01-01T00:00:00Z")
        let c = [RetentionCandidate(id: "1", time: old, host: "a", name: "x", paths: nil, tags: []),
                 RetentionCandidate(id: "2", time: old.addingTimeInterval(60), host: "a", name: "x", paths: nil, tags: []),
                 RetentionCandidate(id: "3", time: old, host: "a", name: "x", paths: nil, tags: [], isPinned: true, pinReason: "legal"),
                 RetentionCandidate(id: "4", time: old, host: "a", name: "x", paths: nil, tags: ["keep"]),
                 RetentionCandidate(id: "5", time: old, host: "a", name: "x", paths: nil, tags: [], isPinned: true,
                                    pinUntil: Self.date("2025-01-01T00:00:00Z")),
                 RetentionCandidate(id: "6", time: old, host: "a", name: nil, paths: ["/srv"], tags: []),
                 RetentionCandidate(id: "7", time: old, host: "b", name: "x", paths: nil, tags: [])]
        let d = RetentionPolicy(keepTags: ["keep"], timeZone: "UTC").decide(c, now: now)
        XCTAssertEqual(d.map(\.keep), [false, true, true, true, false, true, true])
        XCTAssertEqual(d[1].reasons, ["newest of its group (keep-last 1)"])
        XCTAssertEqual(d[2].reasons, ["pinned: legal"])
        XCTAssertEqual(d[3].reasons, ["keep-tag keep"])
        XCTAssertTrue(d[4].reasons.contains { $0.hasPrefix("pin expired") })
        XCTAssertEqual(d[5].group, "host=a paths=/srv")
        XCTAssertEqual(d[6].group, "host=b name=x")
        // Grouping by host only merges streams and trees of one host.
        let byHost = RetentionPolicy(groupBy: [.host], timeZone: "UTC").decide(c, now: now)
        XCTAssertEqual(byHost.map(\.keep), [false, true, true, false, false, false, true])
    }

    func testDurationsAndValidation() {
        XCTAssertEqual(RetentionDuration(parsing: "7d")?.seconds, 7 * 86400)
        XCTAssertEqual(RetentionDuration(parsing: "12h")?.seconds, 12 * 3600)
        XCTAssertEqual(RetentionDuration(parsing: "2w")?.seconds, 14 * 86400)
        XCTAssertEqual(RetentionDuration(parsing: "6m")?.seconds, 180 * 86400)
        XCTAssertEqual(RetentionDuration(parsing: "7y")?.seconds, 7 * 365 * 86400)
        XCTAssertEqual(RetentionDuration(parsing: "0")?.seconds, 0)
        for bad in ["", "d", "7", "7x", "-1d", "1.5d"] { XCTAssertNil(RetentionDuration(parsing: bad), bad) }
        XCTAssertNotNil(RetentionPolicy(keepLast: 0).invalidReason)
        XCTAssertNotNil(RetentionPolicy(timeZone: "Mars/Olympus").invalidReason)
        XCTAssertNil(RetentionPolicy(keepLast: 2, timeZone: "Europe/Berlin").invalidReason)
        // Layering: flags over file over repository default over built-ins.
        let layered = RetentionPolicy(hot: RetentionDuration(1, .d)).over(RetentionPolicy(hot: RetentionDuration(2, .d), keepLast: 4)).resolved(localZone: "UTC")
        XCTAssertEqual(layered.hot, RetentionDuration(1, .d))
        XCTAssertEqual(layered.keepLast, 4)
        XCTAssertEqual(layered.warm, RetentionPolicy.defaultWarm)
    }
}
