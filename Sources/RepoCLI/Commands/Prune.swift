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
                anything is deleted, and running prune again finishes the job. Packs and index \
                segments younger than --safety-margin are never deleted. On a full disk it gives \
                up the repository's space reserve to write its lock and only deletes (no repacking).
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Repack a pack when more than PCT percent of its bytes are unused (default 5).", valueName: "PCT"))
        var maxUnused: String = "5"

        @Flag(help: "Report what would be deleted and repacked; change nothing.")
        var dryRun = false

        @Option(help: ArgumentHelp("Never delete packs or index segments younger than this many minutes (or Nh; default 60, 0 disables).", valueName: "MINUTES"))
        var safetyMargin: String?

        func validate() throws {
            _ = try PruneCommandSupport.parsePercent(maxUnused)
            _ = try PruneCommandSupport.parseMargin(safetyMargin)
        }

        func run() throws {
            let repo = try global.open()
            // A dry run only reads: a shared lock, or none on a read-only repository.
            let lock = try global.lock(repo, exclusive: !dryRun, command: "prune", readOnly: dryRun)
            defer { lock?.release() }
            // Whatever happens, put the space reserve back if it is missing and there is room.
            defer { if !dryRun { repo.restoreSpaceReserve() } }
            var op = RepoOperations.Prune(repository: repo)
            op.maxUnused = try PruneCommandSupport.parsePercent(maxUnused)
            op.dryRun = dryRun
            try PruneCommandSupport.configure(&op, safetyMargin: safetyMargin, lock: lock, global: global)
            let line = global.progressLine("pruned")
            if let line { op.progress = { line.update($0) } }
            PruneCommandSupport.installCrashHook(&op)
            let report = try op.run()
            line?.finish()
            CommandMetrics.shared.pruneFinished(report)
            if global.json { try Console.printJSON(report) } else if !global.quiet { PruneCommandSupport.printReport(report) }
        }
    }
}

enum PruneCommandSupport {
    /// Parses `--safety-margin`: minutes (`90`) or hours (`2h`); nil gives the default.
    static func parseMargin(_ text: String?) throws -> TimeInterval {
        guard let text else { return RepoOperations.Prune.defaultSafetyMargin }
        let hours = text.hasSuffix("h")
        guard let v = Double(hours ? String(text.dropLast()) : text), v >= 0 else {
            throw ValidationError("--safety-margin takes minutes (e.g. 60) or hours (e.g. 2h); 0 disables it")
        }
        return v * (hours ? 3600 : 60)
    }

    /// Applies the safety margin, and delete-only mode when the lock took the space reserve.
    static func configure(_ op: inout RepoOperations.Prune, safetyMargin: String?, lock: RepositoryLock?, global: GlobalOptions) throws {
        op.safetyMargin = try parseMargin(safetyMargin)
        if lock?.usedSpaceReserve == true {
            op.deleteOnly = true
            global.warningPrinter("the disk is full: prune only deletes this time (no repacking); run it again later to repack")
        }
    }

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
        if r.recentPacksKept > 0 { print("  \(r.recentPacksKept) unused packs kept: younger than the safety margin (--safety-margin)") }
        if r.retainedPacksKept > 0 || r.retainedSegmentsKept > 0 || r.retainedDeletesRefused > 0 {
            var parts: [String] = []
            if r.retainedPacksKept > 0 { parts.append("\(r.retainedPacksKept) packs kept whole") }
            if r.retainedSegmentsKept > 0 { parts.append("\(r.retainedSegmentsKept) index segments kept") }
            if r.retainedDeletesRefused > 0 { parts.append("\(r.retainedDeletesRefused) deletes refused by the storage") }
            let until = r.nextRetentionExpiry.map { "; the first is free after \(Timestamp.format($0)), for a later prune" } ?? ""
            print("  S3 Object Lock: \(parts.joined(separator: ", ")) under retention\(until)")
        }
        if !r.dryRun {
            print("  index: \(r.segmentsWritten) segments written, \(r.segmentsDeleted) replaced, \(r.segmentsUnchanged) unchanged")
            if r.temporaryFilesRemoved > 0 { print("  \(r.temporaryFilesRemoved) leftover temporary files removed") }
        }
        print("\(Format.bytes(max(0, r.bytesFreed))) \(r.dryRun ? "would be freed" : "freed"); repository data now \(Format.bytes(r.packBytesAfter))\(r.dryRun ? "" : String(format: " (%.1f s)", r.seconds))")
    }
}
