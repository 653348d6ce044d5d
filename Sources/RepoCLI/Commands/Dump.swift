import ArgumentParser
import RepoRepository
import RepoOperations
import Foundation

extension RepoCommand {
    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one stored stream or file to standard output, verifying it.",
            discussion: "The whole stream's SHA-256 recorded at store time is checked; a mismatch or damaged chunk exits 13.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: SnapshotFilterOptions

        @Argument(help: "Snapshot id (or unique prefix), or `latest`.")
        var snapshot: String

        @Argument(help: "Stream or file inside the snapshot (default: its only stream).")
        var path: String?

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, command: "dump \(snapshot)", readOnly: true)
            defer { lock?.release() }
            SignalTrap.stopCooperatively()
            let entry = try repo.findSnapshot(snapshot, filter: SnapshotFilter(name: filter.name, host: filter.host, tags: filter.tags))
            let node = try repo.fileNode(in: entry, pathBytes: path.map(RawArguments.bytes(of:)))
            let cancellation = SignalTrap.cancellation
            var op = RepoOperations.Dump(repository: repo)
            let line = global.progressLine("restored")
            if let line { op.progress = { line.update($0) } }
            op.cancellation = cancellation
            defer { line?.finish() }
            try op.run(node: node, output: 1)
        }
    }
}
