#if canImport(Glibc)
import Glibc
#endif

/// The `repo` executable: a small program in front of `repo-core`, which holds every command.
///
/// PostgreSQL runs `restore_command` once per WAL segment and replays nothing meanwhile, so
/// the start of the process that serves a prefetched segment is on recovery's critical path.
/// `repo-core` is a 160 MB binary with the Swift runtime, Foundation and seven shared C
/// libraries, about 11 ms to start and exit; this one has none of that (about 1–2 ms). It
/// serves `wal-fetch` from the prefetch spool itself (`WALFetchFastPath`) and hands every other
/// command line, unchanged, to `repo-core` in the same directory with `execv`, as `git` hands
/// its subcommands to the programs in `git-core`. `REPO_EXECUTABLE` tells `repo-core` the path
/// of this program, which `pg-restore` writes into `restore_command`.
public enum Launcher {
    /// The name of the program with every command, next to this one.
    public static let coreName = "repo-core"

    /// The variable that carries this program's path to `repo-core`.
    public static let executableVariable = "REPO_EXECUTABLE"

    /// PostgreSQL stops recovery when restore_command exits above 125, and takes 127 for a
    /// command that was not found (PostgreSQL documentation, "Recovering Using a Continuous
    /// Archive Backup"): a missing `repo-core` must not look like the end of the archive.
    static let cannotRun: Int32 = 127

    public static func main() -> Never {
        let me = executablePath() ?? String(cString: CommandLine.unsafeArgv[0]!)
        let core = directory(of: me) + "/" + coreName
        if let arguments = utf8Arguments(), arguments.count > 1, arguments[1] == "wal-fetch",
           let code = WALFetchFastPath.run(Array(arguments.dropFirst(2)), environment: FastCommandLine.processEnvironment,
                                           prefetcher: core) {
            exit(code)
        }
        setenv(executableVariable, me, 1)
        // The bytes as given: paths need not be UTF-8, and `CommandLine.arguments` would have
        // replaced what is not (repo-core reads them as bytes, RawArguments).
        execv(core, CommandLine.unsafeArgv)
        let reason = String(cString: strerror(errno))
        WALFetchFastPath.standardError("repo: error: cannot run \(core): \(reason)\n"
                                       + "repo: \(coreName) must be installed in the same directory as repo (README, \"Two commands on a fresh machine\")\n")
        exit(cannotRun)
    }

    /// The command line as strings when every argument is UTF-8; nil otherwise (such a line
    /// goes to repo-core as it is).
    static func utf8Arguments() -> [String]? {
        var out: [String] = []
        for i in 0..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[i], let text = String(validatingCString: raw) else { return nil }
            out.append(text)
        }
        return out
    }

    /// This program's path (`/proc/self/exe`), nil when it cannot be read.
    public static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The directory part of `path`: "." for a bare name, "/" for a file in the root.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
