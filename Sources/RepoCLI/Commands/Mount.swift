import ArgumentParser
import RepoRepository
import RepoMount
import Foundation

extension RepoCommand {
    struct Mount: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mount every snapshot read-only (FUSE) at MOUNTPOINT; runs until unmounted or interrupted.",
            discussion: """
                Layout: snapshots/<time>_<id>/, by-name/<name>/<time>/, by-host/<host>/<time>/, \
                by-tag/<tag>/<time>/, each with a `latest` symlink. New snapshots appear without \
                remounting. Stop with Ctrl-C (or SIGTERM) or `fusermount3 -u MOUNTPOINT`; the \
                filesystem is unmounted either way. A damaged chunk makes that read fail with EIO \
                and is named on stderr; wrong bytes are never returned.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "An existing directory to mount on.")
        var mountpoint: String

        @Flag(help: "Let other users read the mount (root, or user_allow_other in /etc/fuse.conf); the kernel then enforces the stored modes.")
        var allowOther = false

        @Option(help: ArgumentHelp("Memory for decoded chunks.", valueName: "SIZE"))
        var cacheSize = "256M"

        @Option(help: ArgumentHelp("How far ahead of a sequential reader to decode (0 disables).", valueName: "SIZE"))
        var readAhead = "32M"

        func validate() throws {
            guard let c = Format.parseSize(cacheSize), c >= 1 << 20 else {
                throw ValidationError("--cache-size: \"\(cacheSize)\" is not a size of at least 1M")
            }
            guard let r = Format.parseSize(readAhead) else { throw ValidationError("--read-ahead: \"\(readAhead)\" is not a size") }
            guard r <= c / 2 else { throw ValidationError("--read-ahead must be at most half of --cache-size") }
        }

        func run() throws {
            // Before any thread starts, so that stop signals reach the FUSE loop.
            FuseMount.blockStopSignals()
            signal(SIGPIPE, SIG_IGN)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: mountpoint, isDirectory: &isDir), isDir.boolValue else {
                throw RepoError(.usage, "the mount point \(mountpoint) is not an existing directory",
                                hint: "create it first: mkdir -p \(mountpoint)")
            }
            let repo = try global.open()
            // Shared lock for the whole mount: prune (exclusive) waits rather than deleting packs
            // that open files still read.
            let lock = try global.lock(repo, command: "mount \(mountpoint)", readOnly: true, trapSignals: false)
            defer { lock?.release() }
            var options = MountFilesystem.Options()
            options.cacheBytes = Format.parseSize(cacheSize)!
            options.readAheadBytes = Format.parseSize(readAhead)!
            let filesystem = MountFilesystem(source: RepositoryMountSource(repository: repo), options: options) {
                Console.line("repo: error: \($0)")
            }
            try filesystem.refresh()
            var fuse = FuseMount.Options(mountpoint: mountpoint)
            fuse.allowOther = allowOther
            fuse.fsname = "repo:" + repo.backend.location
            let quiet = global.quiet
            let ended = try FuseMount.run(filesystem, options: fuse) {
                if !quiet {
                    Console.line("repo: serving the repository at \(mountpoint); stop with Ctrl-C or `fusermount3 -u \(mountpoint)`")
                }
            }
            if !quiet {
                Console.line(ended.map { "repo: signal \($0) received; unmounted \(mountpoint)" } ?? "repo: \(mountpoint) was unmounted")
            }
        }
    }
}
