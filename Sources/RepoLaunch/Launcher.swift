#if canImport(Glibc)
import Glibc
#endif

/// The `repo` executable: a small program in front of `repo-core`, which holds every command.
///
/// PostgreSQL runs `restore_command` once per WAL segment and replays nothing meanwhile, so
/// the start of the process that serves a prefetched segment is on recovery's critical path.
/// `repo-core` is a 160 MB binary with Foundation, the argument parser and seven shared C
/// libraries, about 8.7 ms a spooled `wal-fetch`; this one has none of them (about 3.5 ms,
/// most of it the Swift runtime's own start; README, "Speed against pgBackRest"). It serves
/// `wal-fetch` from the prefetch spool itself (`WALFetchFastPath`) and hands every other
/// command line, byte for byte, to `repo-core` in its own directory (`/proc/self/exe`, links
/// resolved) with `execv`, as `git` hands its subcommands to the programs in `git-core`.
/// `pg-restore` writes this program's path into `restore_command` (the `repo` beside
/// `repo-core`).
public enum Launcher {
    /// The name of the program with every command, next to this one.
    public static let coreName = "repo-core"

    /// The name of this program, next to `repo-core`.
    public static let launcherName = "repo"

    /// PostgreSQL stops recovery when restore_command exits above 125, and takes 127 for a
    /// command that was not found (PostgreSQL documentation, "Recovering Using a Continuous
    /// Archive Backup"): a missing `repo-core` must not look like the end of the archive.
    static let cannotRun: Int32 = 127

    public static func main() -> Never {
        StandardError.reserveStandardDescriptors()
        // A closed stderr (with -v) must not kill the fast path after its rename: PostgreSQL
        // would take the signal for a failed restore_command and stop recovery.
        let pipeDisposition = signal(SIGPIPE, SIG_IGN)
        guard let me = executablePathBytes() else {
            fail("cannot read /proc/self/exe to find \(coreName): \(String(cString: strerror(errno)))")
        }
        var core = directory(of: me) + Array("/\(coreName)".utf8).map { CChar(bitPattern: $0) }
        core.append(0)
        if let arguments = utf8Arguments(), arguments.count > 1, arguments[1] == "wal-fetch",
           let corePath = String(validatingCString: core),
           let code = WALFetchFastPath.run(Array(arguments.dropFirst(2)), environment: FastCommandLine.processEnvironment,
                                           prefetcher: corePath) {
            exit(code)
        }
        // repo-core starts with the disposition this process was given.
        signal(SIGPIPE, pipeDisposition)
        execv(core, CommandLine.unsafeArgv)
        let reason = String(cString: strerror(errno))
        fail("cannot run \(String(decoding: core.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)): \(reason)\n"
             + "repo: \(coreName) must be installed in the same directory as \(launcherName) (README, \"Quick start\")")
    }

    static func fail(_ message: String) -> Never {
        StandardError.write("repo: error: " + message + "\n")
        exit(cannotRun)
    }

    /// The command line as strings when every argument is UTF-8; nil otherwise (such a line
    /// goes to repo-core as it is, and repo-core leaves it to the parser).
    public static func utf8Arguments() -> [String]? {
        var out: [String] = []
        for i in 0..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[i], let text = String(validatingCString: raw) else { return nil }
            out.append(text)
        }
        return out
    }

    /// This program's path (`/proc/self/exe`, links resolved) as bytes without the final NUL;
    /// nil when it cannot be read.
    static func executablePathBytes() -> [CChar]? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return Array(buffer[..<n])
    }

    /// This program's path (`/proc/self/exe`), nil when it cannot be read or is not UTF-8.
    public static func executablePath() -> String? {
        guard let bytes = executablePathBytes() else { return nil }
        return String(validatingCString: bytes + [0])
    }

    /// The directory part of `path`: "." for a bare name, "/" for a file in the root.
    static func directory(of path: [CChar]) -> [CChar] {
        guard let slash = path.lastIndex(of: CChar(UInt8(ascii: "/"))) else { return [CChar(UInt8(ascii: "."))] }
        return slash == 0 ? [CChar(UInt8(ascii: "/"))] : Array(path[..<slash])
    }

    /// The launcher beside `core` (a `repo-core` path) when it is there and executable, else
    /// `core` itself: what `pg-restore` writes into `restore_command`.
    public static func launcher(besideCore core: String) -> String {
        guard let slash = core.lastIndex(of: "/") else { return core }
        let candidate = String(core[...slash]) + launcherName
        return access(candidate, X_OK) == 0 ? candidate : core
    }
}
