import ArgumentParser
import RepoRepository

extension RepoCommand {
    struct Unlock: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove stale locks (left by crashed processes).",
            discussion: """
                A lock is stale when its process no longer exists on this host, or it was not \
                refreshed for 30 minutes. (Locks of processes that no longer run on this host are \
                also removed automatically by the next command that locks.) --remove-all removes \
                every other lock too, but keeps those of processes still running on this host \
                unless --force is given: a store whose lock disappears refuses to commit.
                """)

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Remove every lock, even live ones of other hosts (only when you are sure no other repo process runs).")
        var removeAll = false

        @Flag(help: "With --remove-all, also remove locks of processes still running on this host.")
        var force = false

        func validate() throws {
            if force && !removeAll { throw ValidationError("--force only goes with --remove-all") }
        }

        func run() throws {
            let repo = try global.open()
            let result = try repo.removeLocks(all: removeAll, force: force)
            if !global.quiet {
                for r in result.removed { print("removed \(r)") }
                print("\(result.removed.count) lock(s) removed")
            }
            if !result.keptLive.isEmpty {
                throw RepoError(.locked, "kept \(result.keptLive.count) lock(s) of processes still running on this host: "
                                + result.keptLive.joined(separator: "; "),
                                hint: "wait for them to finish, or stop them; `repo unlock --remove-all --force` removes their locks anyway (they then fail rather than commit)")
            }
        }
    }
}
