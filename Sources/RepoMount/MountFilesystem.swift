public import RepoPrimitives
public import RepoSnapshot
public import RepoRepository
public import Foundation
import Synchronization

/// Why an operation on the mount failed, as the kernel will see it.
public enum MountError: Error, Equatable {
    case notFound
    case notDirectory
    case isDirectory
    case notSymlink
    case badHandle
    /// Data could not be read or failed verification (EIO); the message was logged.
    case io(String)
}

/// The read-only filesystem the mount serves, independent of FUSE: paths → entries, directory
/// listings, open files and reads. Thread-safe; the FUSE adapter calls it from many threads.
public final class MountFilesystem: @unchecked Sendable {
    public struct Options: Sendable {
        /// Bytes of decoded chunks kept in memory.
        public var cacheBytes: Int = 256 << 20
        /// How far ahead of a sequential reader chunks are decoded.
        public var readAheadBytes: Int = 32 << 20
        /// Read-ahead decoder threads.
        public var threads: Int = max(2, ProcessInfo.processInfo.activeProcessorCount)
        /// How long a snapshot list is trusted before the repository is asked again.
        public var refreshInterval: TimeInterval = 1
        public init() {}
    }

    /// One entry as `getattr` sees it.
    public struct Entry: Sendable {
        public var attributes: Attributes
        /// For symlinks.
        public var target: String?
    }

    private let source: MountSource
    public let options: Options
    public let chunks: ChunkCache
    private let log: @Sendable (String) -> Void

    // Snapshot layout, refreshed when the repository's snapshot set changes.
    private let state = Mutex<(layout: VirtualDirectory, generation: String?, checked: Date)>((.empty, nil, .distantPast))
    private let refreshLock = NSLock()
    // Decoded trees, bounded by their entry count.
    private let trees = Mutex(LRUCache<BlobID, TreeDirectory>(capacity: 1 << 20))
    // Open files.
    private let handles = Mutex<(next: UInt64, open: [UInt64: OpenFile])>((1, [:]))

    /// - Parameter log: receives one line per damaged chunk or failed load (the CLI prints it).
    public init(source: MountSource, options: Options = Options(), log: @escaping @Sendable (String) -> Void) {
        self.source = source
        self.options = options
        self.log = log
        chunks = ChunkCache(capacity: options.cacheBytes, threads: options.threads) { try source.chunk($0) }
    }

    deinit { chunks.close() }

    /// Loads the snapshot list now (so a mount fails early if it cannot).
    public func refresh() throws { _ = try layout(force: true) }

    // MARK: snapshot layout

    /// The current layout; asks the repository again when the last check is older than the
    /// refresh interval (or `force`), and rebuilds only when the snapshot set changed.
    private func layout(force: Bool = false) throws -> VirtualDirectory {
        let (current, _, checked) = state.withLock { $0 }
        if !force && Date().timeIntervalSince(checked) < options.refreshInterval { return current }
        refreshLock.lock()
        defer { refreshLock.unlock() }
        let again = state.withLock { $0 }
        if !force && Date().timeIntervalSince(again.checked) < options.refreshInterval { return again.layout }
        let generation = try source.snapshotGeneration()
        if generation == again.generation {
            state.withLock { $0.checked = Date() }
            return again.layout
        }
        let layout = SnapshotLayout.build(try source.snapshots())
        state.withLock { $0 = (layout, generation, Date()) }
        return layout
    }

    private func cachedLayout() -> VirtualDirectory {
        (try? layout()) ?? state.withLock { $0.layout }
    }

    // MARK: trees

    func directory(_ id: BlobID, fallbackTime: FileTime) throws -> TreeDirectory {
        if let d = trees.withLock({ $0.value(for: id) }) { return d }
        let d: TreeDirectory
        do {
            d = try TreeDirectory.decode(try source.treeBytes(id), fallbackTime: fallbackTime)
        } catch {
            let message = "tree \(id.hex): \(Self.describe(error))"
            log(message)
            throw MountError.io(message)
        }
        trees.withLock { _ = $0.insert(d, for: id, cost: d.entries.count + 1) }
        return d
    }

    // MARK: path resolution

    private enum Resolved {
        case virtual(VirtualDirectory)
        case link(String, FileTime)
        case snapshotRoot(SnapshotEntry)
        case tree(TreeDirectory.Entry, snapshotTime: FileTime)
    }

    private func resolve(_ path: String) throws -> Resolved {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        do {
            return try resolve(parts, layout: cachedLayout())
        } catch MountError.notFound where parts.count <= 3 {
            // Maybe a snapshot made since the last refresh: look again (rate-limited).
            return try resolve(parts, layout: (try? layout(force: stateAge() > 0.2)) ?? cachedLayout())
        }
    }

    private func stateAge() -> TimeInterval { Date().timeIntervalSince(state.withLock { $0.checked }) }

    private func resolve(_ parts: [String], layout: VirtualDirectory) throws -> Resolved {
        var current = Resolved.virtual(layout)
        for part in parts {
            switch current {
            case .virtual(let dir):
                switch dir.children[part] {
                case nil: throw MountError.notFound
                case .directory(let d): current = .virtual(d)
                case .snapshot(let e): current = .snapshotRoot(e)
                case .symlink(let t): current = .link(t, dir.mtime)
                }
            case .link, .tree(_, _) where !isDirectory(current):
                throw MountError.notDirectory
            case .snapshotRoot(let e):
                let t = FileTime(e.date)
                guard let child = try directory(e.snapshot.tree, fallbackTime: t).entry(named: part) else { throw MountError.notFound }
                current = .tree(child, snapshotTime: t)
            case .tree(let entry, let t):
                guard let sub = entry.subtree, let child = try directory(sub, fallbackTime: t).entry(named: part) else {
                    throw MountError.notFound
                }
                current = .tree(child, snapshotTime: t)
            }
        }
        return current
    }

    private func isDirectory(_ r: Resolved) -> Bool {
        switch r {
        case .virtual, .snapshotRoot: true
        case .link: false
        case .tree(let e, _): e.attributes.kind == .directory
        }
    }

    // MARK: operations

    /// `getattr`/`lookup`.
    public func entry(at path: String) throws -> Entry {
        switch try resolve(path) {
        case .virtual(let d):
            return Entry(attributes: Attributes(kind: .directory, mode: 0o555, size: 0, mtime: d.mtime, links: 2))
        case .link(let target, let t):
            return Entry(attributes: Attributes(kind: .symlink, mode: 0o777, size: target.utf8.count, mtime: t), target: target)
        case .snapshotRoot(let e):
            return Entry(attributes: Attributes(kind: .directory, mode: 0o555, size: 0, mtime: FileTime(e.date), links: 2))
        case .tree(let e, _):
            return Entry(attributes: e.attributes, target: e.target)
        }
    }

    /// `readlink`.
    public func linkTarget(at path: String) throws -> String {
        let e = try entry(at: path)
        guard e.attributes.kind == .symlink, let t = e.target else { throw MountError.notSymlink }
        return t
    }

    /// `readdir`: names with attributes, in name order (without `.` and `..`).
    public func list(_ path: String) throws -> [(String, Attributes)] {
        switch try resolve(path) {
        case .virtual(let d):
            return d.names.map { name in
                let attrs: Attributes
                switch d.children[name]! {
                case .directory(let sub): attrs = Attributes(kind: .directory, mode: 0o555, size: 0, mtime: sub.mtime, links: 2)
                case .snapshot(let e): attrs = Attributes(kind: .directory, mode: 0o555, size: 0, mtime: FileTime(e.date), links: 2)
                case .symlink(let t): attrs = Attributes(kind: .symlink, mode: 0o777, size: t.utf8.count, mtime: d.mtime)
                }
                return (name, attrs)
            }
        case .link:
            throw MountError.notDirectory
        case .snapshotRoot(let e):
            return try directory(e.snapshot.tree, fallbackTime: FileTime(e.date)).entries.map { ($0.name, $0.attributes) }
        case .tree(let entry, let t):
            guard entry.attributes.kind == .directory else { throw MountError.notDirectory }
            guard let sub = entry.subtree else { return [] }
            return try directory(sub, fallbackTime: t).entries.map { ($0.name, $0.attributes) }
        }
    }

    /// `open`: returns a handle for `read`.
    public func open(_ path: String) throws -> UInt64 {
        guard case .tree(let e, _) = try resolve(path) else { throw MountError.isDirectory }
        guard e.attributes.kind == .file else {
            throw e.attributes.kind == .directory ? MountError.isDirectory : MountError.notFound
        }
        let file = OpenFile(path: path, map: ContentMap(content: e.content ?? .chunks([])) { [source] in try source.contentList($0) })
        return handles.withLock {
            let h = $0.next
            $0.next += 1
            $0.open[h] = file
            return h
        }
    }

    /// `release`.
    public func close(_ handle: UInt64) {
        _ = handles.withLock { $0.open.removeValue(forKey: handle) }
    }

    public var openFiles: Int { handles.withLock { $0.open.count } }

    /// `read`: fills `buffer` from `offset`; returns the byte count, short only at the end of the
    /// file. Never returns bytes that failed verification: a damaged chunk throws `.io`
    /// (after logging which file, chunk and offset).
    public func read(_ handle: UInt64, offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let file = handles.withLock({ $0.open[handle] }) else { throw MountError.badHandle }
        return try file.read(offset: offset, into: buffer, filesystem: self)
    }

    /// Reads a whole file (for tests and small files).
    public func readAll(_ path: String) throws -> [UInt8] {
        let h = try open(path)
        defer { close(h) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 17)
        while true {
            let n = try buf.withUnsafeMutableBytes { try read(h, offset: out.count, into: $0) }
            if n == 0 { return out }
            out += buf[0..<n]
        }
    }

    func report(_ message: String) { log(message) }

    static func describe(_ error: Error) -> String {
        if let e = error as? RepoError { return e.message }
        if let e = error as? MountError, case .io(let m) = e { return m }
        return String(describing: error)
    }
}

/// An open file: its content map and the sequential-read detector that drives read-ahead.
final class OpenFile: @unchecked Sendable {
    let path: String
    let map: ContentMap
    private let lock = NSLock()
    private var lastEnd = 0
    private var ahead: ContentMap.Located?   // last chunk queued for read-ahead
    private var reported = Set<BlobID>()

    init(path: String, map: ContentMap) { self.path = path; self.map = map }

    func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer, filesystem fs: MountFilesystem) throws -> Int {
        let end = min(offset + buffer.count, map.size)
        guard offset >= 0, offset < end else { return 0 }
        var needed: [ContentMap.Located] = []
        do {
            guard var loc = try map.locate(offset) else { return 0 }
            needed.append(loc)
            while loc.end < end, let n = try map.next(after: loc) { needed.append(n); loc = n }
            let readAhead = try planReadAhead(offset: offset, end: end, last: loc, limit: fs.options.readAheadBytes)
            fs.chunks.prefetch(needed.dropFirst().map(\.chunk) + readAhead)
        } catch {
            let message = "\(path): reading the content list at offset \(offset) failed: \(MountFilesystem.describe(error))"
            fs.report(message)
            throw MountError.io(message)
        }
        var written = 0
        for l in needed {
            let bytes: [UInt8]
            do { bytes = try fs.chunks.get(l.chunk) } catch {
                let message = "\(path): chunk \(l.chunk.id.hex) (file bytes \(l.start)..<\(l.end)) is unreadable: \(MountFilesystem.describe(error)); the read returns EIO"
                if lock.withLock({ reported.insert(l.chunk.id).inserted }) { fs.report(message) }
                throw MountError.io(message)
            }
            let from = max(offset, l.start) - l.start
            let to = min(end, l.end) - l.start
            guard to > from else { continue }
            bytes.withUnsafeBytes { src in
                buffer.baseAddress!.advanced(by: written).copyMemory(from: src.baseAddress!.advanced(by: from), byteCount: to - from)
            }
            written += to - from
        }
        return written
    }

    /// Chunks to decode ahead when reads look sequential (each starting near where the last one
    /// ended: the kernel issues read-ahead requests concurrently, so order is only roughly kept).
    private func planReadAhead(offset: Int, end: Int, last: ContentMap.Located, limit: Int) throws -> [ChunkRef] {
        lock.lock()
        defer { lock.unlock() }
        let slack = 8 << 20
        let sequential = offset == 0 || abs(offset - lastEnd) <= slack
        lastEnd = (!sequential || offset == 0) ? end : max(lastEnd, end)
        guard sequential, limit > 0 else { ahead = nil; return [] }
        var cursor = last
        if let a = ahead, a.end > last.end, a.start <= end + limit { cursor = a }
        var out: [ChunkRef] = []
        while cursor.end < end + limit, let n = try map.next(after: cursor) {
            out.append(n.chunk)
            cursor = n
        }
        if ahead == nil || cursor.end > ahead!.end { ahead = cursor }
        return out
    }
}
