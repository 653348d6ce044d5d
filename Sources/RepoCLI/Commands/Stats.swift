import ArgumentParser
import RepoRepository
import RepoOperations

extension RepoCommand {
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show sizes, counts and the dedup ratio.")

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let repo = try global.open()
            let s = try RepositoryStats.compute(repo)
            if global.json { try Console.printJSON(s); return }
            print("snapshots:          \(s.snapshots)")
            print("content (logical):  \(Format.bytes(s.logicalBytes))")
            print("unique content:     \(Format.bytes(s.uniqueBytes)) in \(s.dataBlobs) data and \(s.treeBlobs) tree blobs")
            print("stored in packs:    \(Format.bytes(s.packBytes)) in \(s.packs) packs")
            print(String(format: "dedup ratio:        %.2f× (logical / stored)", s.dedupRatio))
            print(String(format: "compression ratio:  %.2f×", s.compressionRatio))
            if s.walFiles > 0 { print("WAL archive:        \(s.walFiles) files in \(Format.bytes(s.walBytes))") }
        }
    }
}
