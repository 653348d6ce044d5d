import Foundation
public import RepoPrimitives
public import RepoIndex
public import RepoRepository

extension Prune {
    /// Which index segments a prune replaces, and what the replacing segments list.
    struct IndexRewrite {
        /// Active segments the new index replaces (and prune then deletes).
        var replaced: [String] = []
        /// Superseded segments still stored (a prune cut short, or Object Lock): deleted, and
        /// superseded again by the new index when one is written (their superseder may be
        /// among the replaced).
        var leftovers: [String] = []
        /// Kept packs that the new segments must list (not counting newly written packs).
        var relisted: [PackDescriptor] = []
        var isNeeded: Bool { !replaced.isEmpty || !relisted.isEmpty }
    }

    /// Plans the index rewrite so that only segments that must change are replaced (FORMAT.md
    /// §25 step 5), and every other host reads only those again (§20):
    ///
    /// - an active segment is replaced when it lists a pack that goes (deleted or repacked) or
    ///   a pack another active segment lists too;
    /// - small active segments (under a quarter of `packsPerSegment` packs, one per store) are
    ///   merged when there are two or more of them, or when the index is rewritten anyway;
    /// - superseded segments still stored are deleted (an active segment supersedes them
    ///   already), and superseded again by the new index if one is written;
    /// - segments in `kept` (young, or retained by Object Lock) are never replaced.
    ///
    /// The new segments list the kept packs of the replaced segments that no remaining segment
    /// lists, oldest segment first (packs stored together tend to be deleted together, so the
    /// next prune again replaces few segments), then kept unindexed packs by name.
    static func indexRewrite(segments: [(String, IndexSegment)], active: [(String, IndexSegment)], kept: Set<String>,
                             modified: [String: Date], keep: [PackDescriptor], unindexed: Set<Hash256>) -> IndexRewrite {
        let staying = Set(keep.map(\.name))
        let activeNames = Set(active.map(\.0))
        var listings: [Hash256: Int] = [:]
        for (_, seg) in active { for p in seg.packs { listings[p.name, default: 0] += 1 } }
        func isClean(_ seg: IndexSegment) -> Bool {
            seg.packs.allSatisfy { staying.contains($0.name) && listings[$0.name] == 1 }
        }
        let candidates = active.filter { !kept.contains($0.0) }
        var changing = candidates.filter { !isClean($0.1) }
        let small = candidates.filter { isClean($0.1) && $0.1.packs.count < Prune.packsPerSegment / 4 }
        if small.count >= 2 || (!changing.isEmpty && !small.isEmpty) { changing += small }

        var plan = IndexRewrite()
        let changingNames = Set(changing.map(\.0))
        plan.replaced = changing.map(\.0).sorted()
        plan.leftovers = segments.map(\.0).filter { !activeNames.contains($0) }.sorted()
        var listed = Set<Hash256>()
        for (name, seg) in active where !changingNames.contains(name) { for p in seg.packs { listed.insert(p.name) } }
        let oldestFirst = changing.sorted {
            let (a, b) = (modified[$0.0] ?? .distantPast, modified[$1.0] ?? .distantPast)
            return a != b ? a < b : $0.0 < $1.0
        }
        for (_, seg) in oldestFirst {
            for p in seg.packs where staying.contains(p.name) && listed.insert(p.name).inserted { plan.relisted.append(p) }
        }
        for p in keep.sorted(by: { $0.name < $1.name }) where unindexed.contains(p.name) && listed.insert(p.name).inserted {
            plan.relisted.append(p)
        }
        return plan
    }
}
