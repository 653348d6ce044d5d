import ArgumentParser
import RepoRepository

extension RepoCommand {
    struct Unlock: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove stale locks (left by crashed processes).",
            discussion: "A lock is stale when its process no longer exists on this host, or it was not refreshed for 30 minutes.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Remove every lock, even live ones (only when you are sure no other repo process runs).")
        var removeAll = false

        func run() throws {
            let repo = try global.open()
            let removed = try repo.removeLocks(all: removeAll)
            if !global.quiet {
                for r in removed { print("removed \(r)") }
                print("\(removed.count) lock(s) removed")
            }
        }
    }
}
