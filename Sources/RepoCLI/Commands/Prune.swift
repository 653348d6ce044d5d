import ArgumentParser
import RepoRepository
import RepoOperations
import Foundation

extension RepoCommand {
    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete data no snapshot references, repacking packs that are mostly unused.",
            discussion: """
                Takes the exclusive lock (fails with exit 11 while a store, backup or check runs). \
                Safe to interrupt or kill at any point: new packs and index are written before \
                anything is deleted, and running prune again finishes the job.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Repack a pack when more than PCT percent of its bytes are unused (default 5).", valueName: "PCT"))
        var maxUnused: String = "5"

        @Flag(help: "Report what would be deleted and repacked; change nothing.")
        var dryRun = false

        func validate() throws { _ = try PruneCommandSupport.parsePercent(maxUnused) }

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, exclusive: true, command: "prune")
            defer { lock?.release() }
            var op = RepoOperations.Prune(repository: repo)
            op.maxUnused = try PruneCommandSupport.parsePercent(maxUnused)
            op.dryRun = dryRun
            let line = global.progressLine("repacked")
            if let line { op.progress = { line.update($0) } }
            PruneCommandSupport.installCrashHook(&op)
            let report = try op.run()
            line?.finish()
            if global.json { try Console.printJSON(report) } else if !global.quiet { PruneCommandSupport.printReport(report) }
        }
    }
}

enum PruneCommandSupport {
    /// Parses `5`, `5%` or `2.5` as a fraction (0.05).
    static func parsePercent(_ text: String) throws -> Double {
        let t = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let v = Double(t), v >= 0, v <= 100 else {
            throw ValidationError("--max-unused takes a percentage from 0 to 100, e.g. 5 or 5%")
        }
        return v / 100
    }

    /// Test hook: with REPO_TEST_PRUNE_KILL_AT=N the process kills itself with SIGKILL right
    /// after prune's N-th durable step (used by the fault tests; not for users).
    static func installCrashHook(_ op: inout RepoOperations.Prune) {
        guard let text = ProcessInfo.processInfo.environment["REPO_TEST_PRUNE_KILL_AT"], let n = Int(text), n > 0 else { return }
        let counter = StepCounter()
        op.afterStep = { _ in if counter.next() == n { kill(getpid(), SIGKILL) } }
    }

    final class StepCounter: @unchecked Sendable {
        private var n = 0
        private let lock = NSLock()
        func next() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
    }

    static func printReport(_ r: RepoOperations.Prune.Report) {
        let would = r.dryRun ? "would be " : ""
        print("prune\(r.dryRun ? " (dry run)" : ""): \(r.snapshots) snapshots, \(r.packs) packs (\(Format.bytes(r.packBytes))), \(r.liveBlobs) of \(r.blobs) blobs live")
        print("  \(r.packsDeleted) unused packs \(would)deleted (\(Format.bytes(r.bytesDeleted)))")
        print("  \(r.packsRepacked) packs \(would)repacked (\(Format.bytes(r.bytesRepackedFrom))): \(Format.bytes(r.bytesCopied)) live data copied into \(r.dryRun ? "new packs" : "\(r.packsWritten) new packs")")
        if r.unusedBytesKept > 0 { print("  \(Format.bytes(r.unusedBytesKept)) unused left in packs under the repack threshold") }
        if !r.dryRun {
            print("  index: \(r.segmentsWritten) segments written, \(r.segmentsDeleted) replaced")
            if r.temporaryFilesRemoved > 0 { print("  \(r.temporaryFilesRemoved) leftover temporary files removed") }
        }
        print("\(Format.bytes(max(0, r.bytesFreed))) \(r.dryRun ? "would be freed" : "freed"); repository data now \(Format.bytes(r.packBytesAfter))\(r.dryRun ? "" : String(format: " (%.1f s)", r.seconds))")
    }
}
