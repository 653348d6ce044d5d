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
