import Foundation
import Dispatch
import Synchronization
import RepoStorage
import RepoPrimitives

extension S3Backend {
    /// The pack names under `data/`, listed as 16 shards side by side (`data/0` … `data/f`,
    /// ListObjectsV2 per shard): packs are spread evenly over the shards by their hash names
    /// (FORMAT.md §3), so a repository of 10,000 packs costs one round trip of 16 requests
    /// instead of 10 sequential pages. Names under `data/` that do not start with a hex digit
    /// cannot be packs and are not listed.
    public func listPackNames() throws -> [String] {
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
