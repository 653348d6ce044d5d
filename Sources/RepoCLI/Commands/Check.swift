import ArgumentParser
import RepoRepository
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
            let report = try op.run()
            line?.finish()
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
    }
}
