import Foundation
import Dispatch
import Synchronization
import RepoStorage
import RepoPrimitives

extension S3Backend {
    /// The pack names under `data/`. Up to 1,000 packs take one ListObjectsV2 page; beyond
    /// that the 16 shards `data/0` … `data/f` are listed side by side: packs are spread evenly
    /// over them by their hash names (FORMAT.md §3), so a repository of 10,000 packs costs two
    /// round trips (the first page, then 16 requests at once) instead of 10 sequential pages.
    /// Names under `data/` that do not start with a hex digit cannot be packs and are left out.
    public func listPackNames() throws -> [String] {
        let first = try page(prefix: client.location.key("data/"), token: nil, max: 1000)
        if first.next == nil { return first.objects.map(\.name).filter(PackObjectName.mayBePack) }
        let shards = (Array("0123456789abcdef")).map { "data/\($0)" }
        let results = Mutex<[Result<[String], Error>]>(Array(repeating: .success([]), count: shards.count))
        BlockingThreads.run(count: shards.count) { i in
            let r = Result { try self.list(prefix: shards[i]).map(\.name) }
            results.withLock { $0[i] = r }
        }
        var names: [String] = []
        for r in results.withLock({ $0 }) { names += try r.get() }
        return names
    }
}
