/// A command line read without the argument parser, for the commands PostgreSQL starts once
/// per WAL file (`WALFetchFastPath`, `WALPushFastPath`): building the parser's command
/// description costs the Swift runtime 3–4 ms of protocol-conformance lookups per process.
///
/// Reads only a fixed subset: the given options, each at most once, as `--name value` or
/// `--name=value` (a value may not start with `-`), the given flags, and a fixed number of
/// operands. Anything else makes `init` fail, and the caller leaves the command line to the
/// parser, whose errors and help then apply as always.
struct FastCommandLine {
    private(set) var values: [String: String] = [:]
    private(set) var flags: Set<String> = []
    private(set) var operands: [String] = []

    /// `arguments` after the command word; nil outside the subset.
    init?(_ arguments: [String], options: Set<String>, flags allowed: Set<String>, operands count: Int) {
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            guard arg.hasPrefix("-"), arg != "-" else { operands.append(arg); continue }
            var name = arg, value: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq]); value = String(arg[arg.index(after: eq)...])
            }
            guard values[name] == nil, !flags.contains(name) else { return nil }
            if allowed.contains(name) {
                guard value == nil else { return nil }
                flags.insert(name)
                continue
            }
            guard options.contains(name) else { return nil }
            if value == nil {
                guard i < arguments.count, !arguments[i].hasPrefix("-") else { return nil }
                value = arguments[i]
                i += 1
            }
            values[name] = value
        }
        guard operands.count == count else { return nil }
    }

    /// `-v`/`--verbose` given (with `-q`/`--quiet` as well: nil, the parser decides).
    var verbose: Bool? {
        let v = flags.contains("-v") || flags.contains("--verbose"), q = flags.contains("-q") || flags.contains("--quiet")
        return v && q ? nil : v
    }

    var quiet: Bool { flags.contains("-q") || flags.contains("--quiet") }

    /// The local repository directory from `--repo` (`option`) or REPO_REPOSITORY; nil for
    /// none or S3.
    static func localRepository(option: String?, environment: [String: String]) -> String? {
        guard var location = option ?? environment["REPO_REPOSITORY"], !location.isEmpty else { return nil }
        if location.hasPrefix("file://") { location = String(location.dropFirst(7)) }
        return location.contains("://") || location.hasPrefix("s3:") ? nil : location
    }
}
