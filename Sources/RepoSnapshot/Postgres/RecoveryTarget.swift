import RepoPrimitives

/// Where point-in-time recovery stops (PostgreSQL documentation, "Recovery Target" settings):
/// at a time, a WAL position, a named restore point (`pg_create_restore_point`), or at the end
/// of the archived WAL.
public enum RecoveryTarget: Sendable, Equatable {
    /// An instant, seconds and nanoseconds since the Unix epoch.
    case time(seconds: Int64, nanoseconds: Int32)
    case lsn(LSN)
    case name(String)
    /// Replay everything archived; no `recovery_target_*` setting.
    case latest

    /// What happens once the target is reached (`recovery_target_action`).
    public enum Action: String, Sendable, CaseIterable {
        case pause, promote, shutdown
    }

    /// Parses an RFC 3339 time (`2026-11-30T10:29:59.123Z`, `…+02:00`).
    public static func time(rfc3339 text: String) -> RecoveryTarget? {
        guard let (s, ns) = RFC3339.parse(text) else { return nil }
        return .time(seconds: s, nanoseconds: ns)
    }

    /// The time as `recovery_target_time` takes it: UTC, `YYYY-MM-DD HH:MM:SS.ffffff+00`.
    /// PostgreSQL keeps microseconds; the nanoseconds are truncated, which is exact for a
    /// "stop after the last commit at or before T" comparison with microsecond commit times.
    public static func postgresTime(seconds: Int64, nanoseconds: Int32) -> String {
        let text = FileTime(seconds: seconds, nanoseconds: nanoseconds).rfc3339   // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
        let date = text.prefix(10), clock = text.dropFirst(11).prefix(8)
        let micros = text.dropFirst(20).prefix(6)
        return "\(date) \(clock).\(micros)+00"
    }

    /// The `recovery_target*` settings for this target, in the order they are written. All
    /// five kinds are set, the unused ones to `''` and before the one used, so that settings an
    /// earlier restore left in `postgresql.auto.conf` cannot add a second target: PostgreSQL
    /// refuses more than one, checking as it assigns them in file order. `timeline` is
    /// `recovery_target_timeline`: a timeline ID, or nil for `latest`.
    public func settings(action: Action?, timeline: UInt32? = nil) -> [(name: String, value: String)] {
        var chosen: (name: String, value: String)?
        switch self {
        case .time(let s, let ns): chosen = ("recovery_target_time", Self.postgresTime(seconds: s, nanoseconds: ns))
        case .lsn(let l): chosen = ("recovery_target_lsn", l.description)
        case .name(let n): chosen = ("recovery_target_name", n)
        case .latest: chosen = nil
        }
        var out: [(name: String, value: String)] = ["recovery_target", "recovery_target_lsn", "recovery_target_name", "recovery_target_time", "recovery_target_xid"]
            .filter { $0 != chosen?.name }.map { (name: $0, value: String()) }
        if let chosen {
            out.append(chosen)
            out.append(("recovery_target_action", (action ?? .pause).rawValue))
        }
        out.append(("recovery_target_timeline", timeline.map { String($0) } ?? "latest"))
        return out
    }

    /// Whether replaying WAL from `backup` can stop at this target: a time at or after the
    /// backup's stop time, a position at or after its stop position; a name or the end of the
    /// archive can be reached from any backup (the newest is the quickest).
    public func isReachable(from backup: PostgresBackup) -> Bool {
        switch self {
        case .time(let s, let ns):
            guard let stop = RFC3339.parse(backup.stopTime) else { return false }
            return (stop.seconds, stop.nanoseconds) <= (s, ns)
        case .lsn(let l): return backup.stopLSN <= l
        case .name, .latest: return true
        }
    }

    public var summary: String {
        switch self {
        case .time(let s, let ns): "time \(FileTime(seconds: s, nanoseconds: ns).rfc3339)"
        case .lsn(let l): "LSN \(l)"
        case .name(let n): "restore point \(n)"
        case .latest: "the end of the archived WAL"
        }
    }
}
