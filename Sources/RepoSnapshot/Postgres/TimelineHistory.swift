/// A timeline history file (`TTTTTTTT.history`): the ancestry of a timeline, one line per
/// earlier timeline with the LSN at which the next one branched off (PostgreSQL documentation,
/// "Timelines"; source file `timeline.c`). Lines are `parentTLI <tab> switchpoint <tab> reason`;
/// blank lines and lines starting with `#` are ignored.
public struct TimelineHistory: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// An ancestor timeline, valid up to (not including) `switchpoint`.
        public var timeline: UInt32
        public var switchpoint: LSN
        public var reason: String
    }

    /// The timeline this file describes.
    public var timeline: UInt32
    /// Ancestors, oldest first.
    public var entries: [Entry]

    /// Parses the file's text. Throws on a line that is neither blank, a comment nor an entry.
    public init(timeline: UInt32, text: String) throws {
        self.timeline = timeline
        entries = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.trimmingCharactersInSet()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(maxSplits: 2, omittingEmptySubsequences: true, whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 2, let tli = UInt32(fields[0]), let lsn = LSN(fields[1]) else {
                throw TimelineHistoryError(line: String(line))
            }
            entries.append(Entry(timeline: tli, switchpoint: lsn, reason: fields.count > 2 ? String(fields[2]) : ""))
        }
    }

    /// Parses the file's bytes as PostgreSQL reads a history file (`readTimeLineHistory` in
    /// `timeline.c`): every line blank, a comment or an entry, and the ancestors' timeline IDs
    /// increasing and below this file's own. What `wal-push` archives and `check --read-data`
    /// accepts; PostgreSQL stops recovery on a file that fails this ("invalid data in history
    /// file"). The reason text is free: a restore point's name in it is in the server's
    /// encoding, which need not be UTF-8 (such bytes are replaced in `reason`).
    ///
    /// - Throws: `TimelineHistoryError` naming the first line at fault.
    public static func strict(timeline: UInt32, bytes: [UInt8]) throws -> TimelineHistory {
        let history = try TimelineHistory(timeline: timeline, text: String(decoding: bytes, as: UTF8.self))
        var previous: UInt32? = nil
        for e in history.entries {
            if let previous, e.timeline <= previous {
                throw TimelineHistoryError(line: "\(e.timeline)\t\(e.switchpoint) (timeline IDs must increase)")
            }
            if e.timeline >= timeline {
                throw TimelineHistoryError(line: "\(e.timeline)\t\(e.switchpoint) (an ancestor of timeline \(timeline) must have a lower ID)")
            }
            previous = e.timeline
        }
        return history
    }

    /// The timeline that holds `lsn` when following this history: the first ancestor whose
    /// switchpoint lies beyond it, else this file's own timeline.
    public func timeline(at lsn: LSN) -> UInt32 {
        entries.first(where: { lsn < $0.switchpoint })?.timeline ?? timeline
    }

    /// Where `ancestor` branched off on the way to this timeline; nil if it is not an ancestor.
    public func switchpoint(leaving ancestor: UInt32) -> LSN? {
        entries.first(where: { $0.timeline == ancestor })?.switchpoint
    }
}

/// A history file line that cannot be parsed.
public struct TimelineHistoryError: Error, CustomStringConvertible {
    public var line: String
    public var description: String { "malformed timeline history line: \(line)" }
}

extension Substring {
    fileprivate func trimmingCharactersInSet() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s = s.dropLast() }
        return s
    }
}
