public import RepoSnapshot
import RepoPrimitives
import RepoRepository

/// The archive's timeline history files, fetched one at a time as recovery planning asks for
/// them and kept (`pg-restore`): PostgreSQL itself reads only the history files of the timelines
/// it probes and follows, so the archive is not listed for them.
public final class TimelineHistories {
    public let archive: WALArchive
    /// The history files fetched so far, by timeline.
    public private(set) var known: [UInt32: TimelineHistory] = [:]
    private var missing: Set<UInt32> = []

    public init(archive: WALArchive) { self.archive = archive }

    /// Timeline `timeline`'s history; nil when it has none in the archive (timeline 1 never has).
    ///
    /// - Throws: `RepoError(.integrity)` for a history file that does not parse
    ///   (`TimelineHistory.strict`); storage and authentication errors as `WALArchive.fetch`.
    public func history(_ timeline: UInt32) throws -> TimelineHistory? {
        if let h = known[timeline] { return h }
        if missing.contains(timeline) { return nil }
        let name = WALFileName(WALFileName.hex8(timeline) + ".history")!
        guard let bytes = try archive.fetch(name) else { missing.insert(timeline); return nil }
        do {
            let h = try TimelineHistory.strict(timeline: timeline, bytes: bytes)
            known[timeline] = h
            return h
        } catch {
            throw RepoError(.integrity, "\(name): \(error)", hint: "run `repo check --read-data`")
        }
    }

    /// `TimelinePath.newest(from:histories:)` over the archive: the timeline PostgreSQL's
    /// `recovery_target_timeline = 'latest'` picks from a backup on `timeline`.
    public func newest(from timeline: UInt32) throws -> UInt32 {
        var t = timeline
        while t < UInt32.max, try history(t + 1) != nil { t += 1 }
        return t
    }
}
