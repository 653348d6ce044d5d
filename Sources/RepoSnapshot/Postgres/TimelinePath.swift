/// The timelines recovery follows from a base backup to the timeline it ends on
/// (`recovery_target_timeline`; PostgreSQL documentation, "Timelines" and "Recovery Target"),
/// and where that path leaves a history that went on without it.
///
/// A base backup started on timeline B at LSN `start`. Recovery toward timeline T replays B up
/// to where T's history says the next timeline branched off, then that one, and so on to T.
/// PostgreSQL refuses a T whose history does not hold B at `start` ("requested timeline is not
/// a child of this server's history", `xlogrecovery.c`).
public struct TimelinePath: Sendable, Equatable {
    /// One branch point passed on the way: replay leaves `parent` at `switchpoint` for `child`.
    public struct Branch: Sendable, Equatable {
        public var parent: UInt32
        public var child: UInt32
        public var switchpoint: LSN
        /// The history file's reason text ("before 2026-12-02 16:16:21.49+00", "no recovery
        /// target specified", …).
        public var reason: String
    }

    /// The timeline recovery ends on.
    public var target: UInt32
    /// Branch points between the backup's timeline and `target`, oldest first.
    public var branches: [Branch]

    /// The path from a backup on `timeline` that started at `start` to `target`; nil when
    /// `target` does not descend from it at that point (or its history file is missing).
    public init?(from timeline: UInt32, at start: LSN, to target: UInt32, histories: [UInt32: TimelineHistory]) {
        self.target = target
        if target == timeline { branches = []; return }
        guard let history = histories[target], history.timeline(at: start) == timeline,
              let first = history.entries.firstIndex(where: { $0.timeline == timeline }) else { return nil }
        let entries = history.entries
        branches = (first..<entries.count).map { j in
            Branch(parent: entries[j].timeline, child: j + 1 < entries.count ? entries[j + 1].timeline : target,
                   switchpoint: entries[j].switchpoint, reason: entries[j].reason)
        }
    }

    /// The timeline PostgreSQL's `recovery_target_timeline = 'latest'` picks from a backup on
    /// `timeline`: it probes for the history files of `timeline + 1`, `+ 2`, … and takes the
    /// last one found before the first missing one (`findNewestTimeLine`, `timeline.c`).
    public static func newest(from timeline: UInt32, histories: [UInt32: TimelineHistory]) -> UInt32 {
        var newest = timeline
        while newest < UInt32.max, histories[newest + 1] != nil { newest += 1 }
        return newest
    }

    /// The branches at which the parent timeline's archived WAL goes on past the switchpoint:
    /// two histories diverge there (a promoted test restore beside production that kept
    /// running, a recovery to an earlier point, a failover). `lastSegment` gives each
    /// timeline's highest archived whole segment number; a parent that holds the segment of
    /// the switchpoint or a later one was written past it by a server that did not follow
    /// the branch (a segment that ends at a WAL switch ends where the next one begins).
    public func divergences(lastSegment: [UInt32: UInt64], segmentSize: Int) -> [Branch] {
        branches.filter { b in
            guard let last = lastSegment[b.parent] else { return false }
            return last >= b.switchpoint.value / UInt64(segmentSize)
        }
    }
}
