public import RepoPrimitives
public import RepoRepository
public import RepoIndex
public import RepoSnapshot

/// Walks everything a snapshot references: its root tree, every subtree, every content list
/// and every data chunk (FORMAT.md §Trees, §File content). Shared by `check` (which reports
/// problems) and `prune` (which must know every live blob and refuses to delete anything when a
/// walk is incomplete).
///
/// Each tree and content list is loaded once per walker, however many snapshots share it.
/// Not thread-safe.
public struct ReferenceWalker {
    /// Where a blob can be read; nil if the index does not know it.
    public typealias Locate = (BlobID) -> BlobLocation?

    private let repository: Repository
    private let locate: Locate
    private let reader: PackReader
    private var seenTrees = Set<BlobID>()
    /// Content lists already read: chunk count and bytes covered (nil if unreadable).
    private var lists: [BlobID: (count: Int, size: Int)?] = [:]

    /// Every tree/list blob (type tree) and data chunk (type data) visited so far.
    public private(set) var treeBlobs = Set<BlobID>()
    public private(set) var dataBlobs = Set<BlobID>()

    public init(repository: Repository, locate: @escaping Locate) {
        self.repository = repository
        self.locate = locate
        reader = PackReader(master: repository.key)
    }

    /// Walks from `root`, reporting each problem (missing or unreadable blob, inconsistent
    /// sizes) through `problem`, prefixed with `context` (e.g. the snapshot's object name).
    public mutating func walk(root: BlobID, context: String, problem: (String) -> Void) {
        var stack = [root]
        while let id = stack.popLast() {
            guard seenTrees.insert(id).inserted else { continue }
            treeBlobs.insert(id)
            guard let loc = locate(id) else {
                problem("\(context): tree \(id.hex) is not in the index")
                continue
            }
            let tree: Tree
            do { tree = try Tree.decode(try repository.loadBlob(at: loc, reader: reader)) } catch {
                problem("\(context): tree \(id.hex): \(error)")
                continue
            }
            for node in tree.nodes {
                if let sub = node.subtree { stack.append(sub) }
                guard let content = node.content else { continue }
                var total = 0
                switch content {
                case .chunks(let refs):
                    for r in refs { total += r.size; visitChunk(r.id, node: node.name, context: context, problem: problem) }
                case .lists(let refs):
                    for l in refs {
                        total += l.size
                        guard let summary = list(l.id, node: node.name, context: context, problem: problem) else { continue }
                        if summary.count != l.count {
                            problem("\(context): \(node.name): content list \(l.id.shortHex) has \(summary.count) chunks, expected \(l.count)")
                        }
                        if summary.size != l.size {
                            problem("\(context): \(node.name): content list \(l.id.shortHex) covers \(summary.size) bytes, the node says \(l.size)")
                        }
                    }
                }
                if node.type == .file, let size = node.size, size != total {
                    problem("\(context): \(node.name): chunks add up to \(total) bytes, node says \(size)")
                }
            }
        }
    }

    private mutating func visitChunk(_ id: BlobID, node: String, context: String, problem: (String) -> Void) {
        guard dataBlobs.insert(id).inserted else { return }
        if locate(id) == nil { problem("\(context): \(node): chunk \(id.hex) is not in the index") }
    }

    private mutating func list(_ id: BlobID, node: String, context: String,
                               problem: (String) -> Void) -> (count: Int, size: Int)? {
        if let cached = lists[id] { return cached }
        treeBlobs.insert(id)
        var summary: (count: Int, size: Int)?
        if let loc = locate(id) {
            do {
                let chunks = try ContentList.decode(try repository.loadBlob(at: loc, reader: reader))
                for c in chunks { visitChunk(c.id, node: node, context: context, problem: problem) }
                summary = (chunks.count, chunks.reduce(0) { $0 + $1.size })
            } catch {
                problem("\(context): \(node): content list \(id.hex): \(error)")
            }
        } else {
            problem("\(context): \(node): content list \(id.hex) is not in the index")
        }
        lists[id] = summary
        return summary
    }
}
