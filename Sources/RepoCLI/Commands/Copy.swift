import ArgumentParser
import Foundation
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoSnapshot

extension RepoCommand {
    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy snapshots from another repository into this one (3-2-1: a copy off-site).",
            discussion: """
            Copies the given snapshots (default: all) from --from-repo into --repo. Only blobs the \
            destination lacks are stored, re-encrypted under the destination's keys; a snapshot \
            already copied (by this or an earlier run) is skipped, so running it again copies \
            nothing. Tags come along; pins on a copied snapshot are copied too. With a destination \
            made by `repo init --copy-chunker-params-from SRC`, blobs the destination has are not \
            even read from the source (README, "Copies").
            """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var source: SourceOptions

        @Option(name: .customLong("from-repo"), help: ArgumentHelp("The repository to copy from (env REPO_FROM_REPOSITORY).", valueName: "LOCATION"))
        var fromRepo: String?

        @Option(help: ArgumentHelp("Only snapshots from this host.", valueName: "HOST"))
        var host: String?

        @Option(help: ArgumentHelp("Only snapshots with this tag (repeatable: all of them).", valueName: "TAG"))
        var tag: [String] = []

        @Argument(help: ArgumentHelp("Source snapshot ids (or unique prefixes), or `latest`; default: every snapshot.", valueName: "SNAPSHOT"))
        var snapshots: [String] = []

        func run() throws {
            let sourceOptions = try source.options(location: fromRepo, like: global)
            let from = try sourceOptions.open()
            let fromLock = try sourceOptions.lock(from, command: "copy (source)", readOnly: true)
            defer { fromLock?.release() }
            let to = try global.open()
            if to.config.id == from.config.id {
                throw RepoError(.usage, "the source and the destination are the same repository (\(to.config.id.shortHex))")
            }
            let toLock = try global.lock(to, command: "copy")
            defer { toLock?.release() }

            let filter = SnapshotFilter(host: host, tags: tag)
            var chosen: [SnapshotEntry] = []
            if snapshots.isEmpty {
                chosen = try from.snapshots(matching: filter)
            } else {
                var seen = Set<Hash256>()
                for ref in snapshots {
                    let e = try from.findSnapshot(ref, filter: filter)
                    if seen.insert(e.id).inserted { chosen.append(e) }
                }
            }
            let line = global.progressLine("copying")
            defer { line?.finish() }
            // Ctrl-C (or SIGTERM) stops between blobs: what was uploaded is indexed, and the
            // snapshots already copied stay; a second signal exits at once.
            SignalTrap.stopCooperatively()
            let copy = SnapshotCopy(source: from, destination: to)
            copy.cancellation = SignalTrap.cancellation
            if let line { copy.progress = { line.update($0) } }
            let report = try copy.run(chosen, progress: global.verbose && !global.quiet ? { Console.line("repo: \($0)") } : nil)
            if global.json {
                try Console.printJSON(report)
            } else if !global.quiet {
                for c in report.copied {
                    print("copied \(c.source.prefix(8)) -> \(c.destination.prefix(8))  \(c.time)  \(c.host)  \(c.name ?? c.paths?.joined(separator: " ") ?? "")")
                }
                if !report.skipped.isEmpty { print("\(report.skipped.count) snapshot\(report.skipped.count == 1 ? "" : "s") already copied, skipped") }
                let translated = copy.sameIDs || report.copied.isEmpty ? "" : " (blob ids translated: the repositories do not share chunker parameters)"
                let pins = report.pins == 0 ? "" : ", \(report.pins) pin\(report.pins == 1 ? "" : "s")"
                print("\(report.copied.count) snapshot\(report.copied.count == 1 ? "" : "s") copied: \(report.newBlobs) new blobs, \(Format.bytes(report.newStoredBytes)) stored\(pins)\(translated) in \(String(format: "%.1f", report.seconds)) s")
            }
        }
    }
}
