import ArgumentParser
import RepoStorage
import RepoRepository
import RepoSnapshot
import RepoOperations
import Foundation

extension RepoCommand {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify the repository's structure, and optionally every byte of its data.",
            discussion: "Exits 13 when integrity errors are found, naming each damaged object.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Read and verify every pack.")
        var readData = false

        @Option(help: ArgumentHelp("Read and verify a random PCT percent of the packs (e.g. 10 or 10%).", valueName: "PCT"))
        var readDataSubset: String?

        func validate() throws {
            if readData && readDataSubset != nil { throw ValidationError("use either --read-data or --read-data-subset") }
            if let s = readDataSubset {
                guard let v = Double(s.hasSuffix("%") ? String(s.dropLast()) : s), v > 0, v <= 100 else {
                    throw ValidationError("--read-data-subset takes a percentage between 0 and 100")
                }
            }
        }

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, command: "check", readOnly: true)
            defer { lock?.release() }
            var op = RepoOperations.Check(repository: repo)
            if readData { op.readDataFraction = 1 }
            if let s = readDataSubset { op.readDataFraction = Double(s.hasSuffix("%") ? String(s.dropLast()) : s)! / 100 }
            let line = global.progressLine("read")
            if let line { op.progress = { line.update($0) } }
            let started = (try? repo.backend.now()) ?? Date()
            let report = try op.run()
            line?.finish()
            record(report, fraction: op.readDataFraction, started: started, in: repo, locked: lock != nil)
            CommandMetrics.shared.checkFinished(report)
            if global.json {
                try Console.printJSON(report)
            } else {
                for e in report.errors { print("error: \(e)") }
                if global.verbose { for n in report.notes { print("note: \(n)") } }
                if !global.quiet {
                    print("checked \(report.snapshots) snapshots, \(report.packs) packs, \(report.blobs) blobs" +
                          (report.walFiles > 0 ? ", \(report.walFiles) WAL files" : "") +
                          (report.packsRead > 0 || report.walFilesRead > 0
                              ? "; read \(report.packsRead) packs" + (report.walFilesRead > 0 ? " and \(report.walFilesRead) WAL files" : "")
                                + " (\(Format.bytes(report.bytesRead)))" : ""))
                    print(report.ok ? "no errors were found" : "\(report.errors.count) error(s) found")
                }
            }
            if !report.ok {
                throw RepoError(.integrity, "the repository has \(report.errors.count) integrity error(s)",
                                hint: "the damaged objects are listed above; snapshots that use them cannot be restored in full")
            }
        }

        /// Keeps the outcome in the repository for `repo status` (FORMAT.md §30). Never fails
        /// the check: a repository that cannot be written (the reason it was read without a
        /// lock, or a write refused now) is skipped, said with -v; any other failure is a warning.
        private func record(_ report: RepoOperations.Check.Report, fraction: Double, started: Date, in repo: Repository, locked: Bool) {
            let now = (try? repo.backend.now()) ?? Date()
            let subset = fraction > 0 && fraction < 1
            let record = CheckRecord(started: Timestamp.format(started), time: Timestamp.format(now), host: HostInfo.hostname,
                                     username: HostInfo.username, program: "repo \(RepoOperationsVersion.string)",
                                     seconds: now.timeIntervalSince(started), errors: report.errors.count,
                                     snapshots: report.snapshots, packs: report.packs, readDataFraction: fraction,
                                     packsRead: report.packsRead, bytesRead: report.bytesRead, walFilesRead: report.walFilesRead,
                                     packsReadPrefixes: subset ? CheckRecord.encodePrefixes(report.readPackNames.map(\.bytes)) : nil)
            global.saveRunRecord("check", locked: locked) { try repo.saveCheckRecord(record) }
        }
    }
}
