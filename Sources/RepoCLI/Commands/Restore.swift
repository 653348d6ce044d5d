import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoSnapshot
import Foundation

extension RepoCommand {
    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore a snapshot, or a path inside it, into a directory.",
            discussion: """
                SNAPSHOT restores the whole tree under DIR (a backup of /srv/data lands in \
                DIR/srv/data); SNAPSHOT:PATH restores the contents of directory PATH into DIR, or \
                file PATH as DIR/<name>. Onto an existing tree only what differs is rewritten \
                (files whose size and mtime match are left alone unless --verify). Files, \
                directories, symlinks, hard links, modes, mtimes, xattrs and (as root) owners are \
                restored; runs of zeros become holes. Extra files already in DIR are kept.
                Examples:
                  repo restore latest --target /tmp/r
                  repo restore 4f2a:/var/lib/clickhouse/shadow --target /restore --include '*.bin'
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: SnapshotFilterOptions

        @Argument(help: ArgumentHelp("Snapshot id (or prefix) or `latest`, optionally followed by :PATH.", valueName: "SNAPSHOT[:PATH]"))
        var snapshot: String

        @Option(help: ArgumentHelp("Directory to restore into (created if missing).", valueName: "DIR"))
        var target: String

        @Option(name: .customLong("include"), help: ArgumentHelp("Restore only entries matching GLOB (repeatable; `/` in GLOB matches paths in the snapshot).", valueName: "GLOB"))
        var includes: [String] = []

        @Flag(help: "Read every restored file back and compare it with the snapshot; exit 13 on any difference.")
        var verify = false

        func run() throws {
            let (ref, path) = Self.split(RawArguments.bytes(of: snapshot))
            let repo = try global.open()
            let lock = try global.lock(repo, command: "restore \(snapshot)", readOnly: true)
            defer { lock?.release() }
            SignalTrap.stopCooperatively()
            let entry = try repo.findSnapshot(ref, filter: filter.snapshotFilter)
            let at = try repo.locate(pathBytes: path ?? [UInt8(ascii: "/")], in: entry)
            let cancellation = SignalTrap.cancellation
            var op = RepoOperations.Restore(repository: repo)
            op.includes = includes
            op.verify = verify
            op.cancellation = cancellation
            op.warn = global.warningPrinter
            let line = global.progressLine("restored")
            if let line { op.progress = { line.update($0) } }
            let result: RepoOperations.Restore.Result
            do {
                let snapPath = at.path
                if let node = at.node, node.type != .dir {
                    result = try op.run(node: node, snapshotPath: snapPath, target: target)
                } else {
                    result = try op.run(tree: at.tree ?? Tree(nodes: []), snapshotPath: snapPath, target: target)
                }
            } catch {
                line?.finish()
                throw error
            }
            line?.finish()
            if global.json {
                try Console.printJSON(result)
            } else if !global.quiet {
                print("restored \(result.files) files (\(Format.bytes(result.bytes)); \(Format.bytes(result.bytesWritten)) written, \(result.unchangedFiles) already up to date), \(result.dirs) dirs, \(result.symlinks) symlinks, \(result.hardlinks) hard links to \(target)" + (verify ? "; verified \(result.verifiedFiles) files" : ""))
            }
            if !result.damagedFiles.isEmpty {
                let n = result.damagedFiles.count
                throw RepoError(.integrity, "\(n) file\(n == 1 ? " was" : "s were") not restored because data \(n == 1 ? "it needs" : "they need") is damaged or missing in the repository (named above); everything else was restored",
                                hint: "run `repo check --read-data`; once the repository is repaired, run the same restore again to finish")
            }
            if !result.refusedEntries.isEmpty {
                let n = result.refusedEntries.count
                throw RepoError(.integrity, "\(n) entr\(n == 1 ? "y" : "ies") of the snapshot could not be restored (named above); everything else was restored",
                                hint: "names that are not single path components are never written; `repo dump` can still write a stored stream to standard output")
            }
            if !result.conflicts.isEmpty {
                throw RepoError(.partial, "\(result.conflicts.count) entr\(result.conflicts.count == 1 ? "y was" : "ies were") not restored because a directory with contents is in the way (named above)",
                                hint: "move those directories away and run the same restore again")
            }
            if !result.unmatchedIncludes.isEmpty {
                throw RepoError(.partial, "--include \(result.unmatchedIncludes.joined(separator: ", ")) matched nothing",
                                hint: "list the snapshot with `repo ls` to see its paths")
            }
            if result.metadataMismatches > 0 {
                throw RepoError(.partial, "\(result.metadataMismatches) restored entr\(result.metadataMismatches == 1 ? "y differs" : "ies differ") from the snapshot in metadata (see the warnings above); file contents are complete")
            }
            if result.warnings > 0 {
                throw RepoError(.partial, "\(result.warnings) metadata item(s) could not be applied (see the warnings above); file contents are complete")
            }
        }

        /// Splits `SNAPSHOT[:PATH]` (PATH as bytes: names need not be UTF-8).
        static func split(_ s: [UInt8]) -> (String, [UInt8]?) {
            guard let i = s.firstIndex(of: UInt8(ascii: ":")) else { return (String(decoding: s, as: UTF8.self), nil) }
            return (String(decoding: s[..<i], as: UTF8.self), Array(s[(i + 1)...]))
        }
    }
}
