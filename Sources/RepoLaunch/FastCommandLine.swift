#if canImport(Glibc)
import Glibc
#endif

/// A command line read without the argument parser, for the commands PostgreSQL starts once
/// per WAL file (`WALFetchFastPath`, `WALPushFastPath`): building the parser's command
/// description costs the Swift runtime 3–4 ms of protocol-conformance lookups per process.
///
/// Reads only a fixed subset: the given options, each at most once, as `--name value` or
/// `--name=value` (a value may not start with `-`), the given flags, and a fixed number of
/// operands. Anything else makes `init` fail, and the caller leaves the command line to the
/// parser, whose errors and help then apply as always.
///
/// Plain arrays, not `Set` or `Dictionary`: the first use of a generic type with a hashable
/// key makes the runtime look up its conformances by scanning every conformance record of
/// the 160 MB binary, about 1 ms at process start (`perf record` of `wal-fetch`, README,
/// "Speed against pgBackRest"). The same goes for `ProcessInfo.processInfo.environment`, a
/// `[String: String]` of every variable: the fast paths read single variables through
/// `Environment` instead.
public struct FastCommandLine {
    /// One environment variable's value, or nil when it is not set.
    public typealias Environment = (String) -> String?

    /// The process environment, one `getenv` per lookup.
    public static func processEnvironment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    public private(set) var values: [(name: String, value: String)] = []
    public private(set) var flags: [String] = []
    public private(set) var operands: [String] = []

    /// `arguments` after the command word; nil outside the subset.
    public init?(_ arguments: [String], options: [String], flags allowed: [String], operands count: Int) {
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            guard arg.hasPrefix("-"), arg != "-" else { operands.append(arg); continue }
            var name = arg, value: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq]); value = String(arg[arg.index(after: eq)...])
            }
            guard self.value(name) == nil, !flags.contains(name) else { return nil }
            if allowed.contains(name) {
                guard value == nil else { return nil }
                flags.append(name)
                continue
            }
            guard options.contains(name) else { return nil }
            if value == nil {
                guard i < arguments.count, !arguments[i].hasPrefix("-") else { return nil }
                value = arguments[i]
                i += 1
            }
            values.append((name, value!))
        }
        guard operands.count == count else { return nil }
    }

    /// The value given to option `name`, or nil.
    public func value(_ name: String) -> String? { values.first { $0.name == name }?.value }

    /// `-v`/`--verbose` given (with `-q`/`--quiet` as well: nil, the parser decides).
    public var verbose: Bool? {
        let v = flags.contains("-v") || flags.contains("--verbose"), q = flags.contains("-q") || flags.contains("--quiet")
        return v && q ? nil : v
    }

    public var quiet: Bool { flags.contains("-q") || flags.contains("--quiet") }

    /// The local repository directory from `--repo` (`option`) or REPO_REPOSITORY; nil for
    /// none or S3.
    public static func localRepository(option: String?, environment: Environment) -> String? {
        guard var location = option ?? environment("REPO_REPOSITORY"), !location.isEmpty else { return nil }
        if location.hasPrefix("file://") { location = String(location.dropFirst(7)) }
        return location.contains("://") || location.hasPrefix("s3:") ? nil : location
    }
}
