public import RepoPrimitives
public import RepoRepository
public import RepoIndex

extension Repository {
    /// Writes a new index of `packs`: segments of at most `Prune.packsPerSegment` packs in the
    /// order given (one empty segment when there are none), the **last** naming `superseding` as
    /// superseded (FORMAT.md §12). Until that last one exists the old segments stay
    /// authoritative, so a crash part-way leaves only duplicate listings (§26). Prune and key
    /// rotation rewrite the index this way.
    ///
    /// - Parameter afterEach: called after each segment is durable (the fault tests' kill points).
    /// - Returns: the new segments' ids, in the order written.
    public func writeIndex(of packs: [PackDescriptor], superseding: [Hash256], afterEach: () -> Void = {}) throws -> [Hash256] {
        let all = packs
        var chunks = stride(from: 0, to: all.count, by: Prune.packsPerSegment).map {
            Array(all[$0..<min($0 + Prune.packsPerSegment, all.count)])
        }
        if chunks.isEmpty { chunks = [[]] }
        let old = superseding.sorted()
        var written: [Hash256] = []
        for (i, chunk) in chunks.enumerated() {
            let segment = IndexSegment(packs: chunk, superseded: i == chunks.count - 1 ? old : [])
            written.append(try saveObject(segment.encoded(), kind: .index))
            afterEach()
        }
        return written
    }
}
