public import RepoSnapshot
public import RepoRepository
import Foundation

/// Random access into a file's content (FORMAT.md §15): byte offset → chunk in O(log n) by
/// binary search over prefix sums, in two levels for content lists. List blobs are loaded on
/// first use and kept in a small LRU, so a 1 TB file costs a few hundred KB of memory.
///
/// Thread-safe.
public final class ContentMap: @unchecked Sendable {
    /// A chunk's place: which list (0 for inline content) and which entry in it.
    public struct Position: Equatable, Sendable {
        public var list: Int
        public var index: Int
        public init(list: Int, index: Int) { self.list = list; self.index = index }
    }

    /// A located chunk: its reference and the file offset where it starts.
    public struct Located: Equatable, Sendable {
        public var position: Position
        public var chunk: ChunkRef
        public var start: Int
        public var end: Int { start + chunk.size }
    }

    /// One level: entries' sizes and their prefix sums (`starts[i]` = bytes before entry i).
    struct Level {
        var starts: [Int]
        var total: Int

        init(sizes: [Int]) {
            var s: [Int] = []
            s.reserveCapacity(sizes.count)
            var t = 0
            for n in sizes { s.append(t); t += n }
            starts = s; total = t
        }

        /// The last entry starting at or before `offset` (which must be < total): with
        /// zero-length entries this is the one that actually holds the byte.
        func index(containing offset: Int) -> Int {
            var lo = 0, hi = starts.count   // invariant: starts[lo] <= offset, answer in [lo, hi)
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if starts[mid] <= offset { lo = mid } else { hi = mid }
            }
            return lo
        }
    }

    private let inline: [ChunkRef]?
    private let lists: [ListRef]
    private let top: Level
    private let loadList: (ListRef) throws -> [ChunkRef]
    private let lock = NSLock()
    private var loaded = LRUCache<Int, ([ChunkRef], Level)>(capacity: 8)

    /// File size: the sum of the content's sizes.
    public var size: Int { top.total }

    /// - Parameter loadList: loads a content-list blob (already checked against `count`).
    public init(content: Content, loadList: @escaping (ListRef) throws -> [ChunkRef]) {
        switch content {
        case .chunks(let c):
            inline = c; lists = []
            top = Level(sizes: c.map(\.size))
        case .lists(let l):
            inline = nil; lists = l
            top = Level(sizes: l.map(\.size))
        }
        self.loadList = loadList
    }

    /// The chunk holding byte `offset`; nil at or past the end of the file.
    public func locate(_ offset: Int) throws -> Located? {
        guard offset >= 0, offset < top.total else { return nil }
        let i = top.index(containing: offset)
        if let inline { return Located(position: Position(list: 0, index: i), chunk: inline[i], start: top.starts[i]) }
        let (chunks, level) = try list(i)
        let j = level.index(containing: offset - top.starts[i])
        return Located(position: Position(list: i, index: j), chunk: chunks[j], start: top.starts[i] + level.starts[j])
    }

    /// The chunk after `located`; nil at the end of the file. Skips empty lists and chunks.
    public func next(after located: Located) throws -> Located? {
        var p = located.position
        var start = located.end
        if let inline {
            p.index += 1
            while p.index < inline.count && inline[p.index].size == 0 { p.index += 1 }
            guard p.index < inline.count else { return nil }
            return Located(position: p, chunk: inline[p.index], start: start)
        }
        p.index += 1
        while p.list < lists.count {
            let (chunks, _) = try list(p.list)
            while p.index < chunks.count {
                if chunks[p.index].size > 0 { return Located(position: p, chunk: chunks[p.index], start: start) }
                p.index += 1
            }
            p.list += 1
            p.index = 0
            if p.list < lists.count { start = top.starts[p.list] }
        }
        return nil
    }

    private func list(_ i: Int) throws -> ([ChunkRef], Level) {
        lock.lock()
        if let hit = loaded.value(for: i) { lock.unlock(); return hit }
        lock.unlock()
        let ref = lists[i]
        let chunks = try loadList(ref)
        guard chunks.count == ref.count else {
            throw RepoError(.integrity, "content list \(ref.id.hex) has \(chunks.count) chunks, expected \(ref.count)")
        }
        let level = Level(sizes: chunks.map(\.size))
        guard level.total == ref.size else {
            throw RepoError(.integrity, "content list \(ref.id.hex) covers \(level.total) bytes, the node says \(ref.size)")
        }
        lock.lock()
        loaded.insert((chunks, level), for: i, cost: 1)
        lock.unlock()
        return (chunks, level)
    }
}
