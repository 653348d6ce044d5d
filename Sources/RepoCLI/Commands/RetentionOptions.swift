import ArgumentParser
import RepoRepository
import RepoSnapshot
import Foundation
import Yams

/// The retention flags shared by `forget` and `policy set`. Every flag is optional, so the
/// effective policy is layered: flags over `--policy FILE` over the repository's default
/// policy over the built-in defaults (hot 7d, warm 30d, cold 7y, keep-last 1, local time zone).
struct RetentionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Keep every snapshot younger than D (h, d, w, m = 30 days, y = 365 days; default 7d).", valueName: "D"))
    var keepHot: String?

    @Option(help: ArgumentHelp("Among snapshots younger than D, keep the newest of each calendar day (default 30d).", valueName: "D"))
    var keepWarm: String?

    @Option(help: ArgumentHelp("Among snapshots younger than D, keep the newest of each calendar month (default 7y).", valueName: "D"))
    var keepCold: String?

    @Option(help: ArgumentHelp("Keep the newest N snapshots of each group (default 1, at least 1).", valueName: "N"))
    var keepLast: Int?

    @Option(name: .customLong("keep-tag"), help: ArgumentHelp("Keep every snapshot with tag T (repeatable).", valueName: "T"))
    var keepTags: [String] = []

    @Option(help: ArgumentHelp("Fields that form a group: a comma-separated subset of host, name, paths, tags (default host,name,paths).", valueName: "FIELDS"))
    var groupBy: String?

    @Option(help: ArgumentHelp("Time zone for calendar days and months, e.g. Europe/Berlin or UTC (default: local).", valueName: "TZ"))
    var tz: String?

    /// The policy the flags alone describe (unset fields stay nil).
    func flagPolicy() throws -> RetentionPolicy {
        try LabelInput.check(keepTags, kind: .tag, flag: "--keep-tag")
        func duration(_ text: String?, _ flag: String) throws -> RetentionDuration? {
            guard let text else { return nil }
            guard let d = RetentionDuration(parsing: text) else {
                throw ValidationError("--\(flag): \"\(text)\" is not a duration like 12h, 7d, 2w, 6m, 7y")
            }
            return d
        }
        let policy = RetentionPolicy(hot: try duration(keepHot, "keep-hot"), warm: try duration(keepWarm, "keep-warm"),
                                     cold: try duration(keepCold, "keep-cold"), keepLast: keepLast,
                                     keepTags: keepTags.isEmpty ? nil : keepTags,
                                     groupBy: try groupBy.map(Self.parseGroupBy), timeZone: tz)
        if let reason = policy.invalidReason { throw ValidationError(reason) }
        return policy
    }

    static func parseGroupBy(_ text: String) throws -> [GroupField] {
        let fields = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let parsed = fields.compactMap(GroupField.init(rawValue:))
        guard parsed.count == fields.count, !parsed.isEmpty else {
            throw ValidationError("--group-by: \"\(text)\" must be a comma-separated subset of host, name, paths, tags")
        }
        return parsed
    }
}

/// Reads a policy file: YAML (or JSON, which YAML includes), with the flag names as keys:
///
///     keep-hot: 7d
///     keep-warm: 30d
///     keep-cold: 7y
///     keep-last: 3
///     keep-tag: [release]
///     group-by: [host, name]
///     tz: Europe/Berlin
enum PolicyFile {
    static func load(_ path: String) throws -> RetentionPolicy {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RepoError(.usage, "cannot read the policy file \(path)", hint: "check the path and its permissions")
        }
        let text = String(decoding: data, as: UTF8.self)
        let node: Yams.Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw RepoError(.usage, "the policy file \(path) is not valid YAML: \(error)")
        }
        guard let map = node?.mapping else {
            throw RepoError(.usage, "the policy file \(path) must be a mapping of keep-hot, keep-warm, keep-cold, keep-last, keep-tag, group-by, tz")
        }
        var policy = RetentionPolicy()
        for (k, v) in map {
            guard let key = k.string else { continue }
            func scalar() throws -> String {
                guard let s = v.scalar?.string else { throw RepoError(.usage, "\(path): \(key) must be a single value") }
                return s
            }
            func list() throws -> [String] {
                if let seq = v.sequence { return seq.compactMap { $0.scalar?.string } }
                return try scalar().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            }
            func duration() throws -> RetentionDuration {
                let s = try scalar()
                guard let d = RetentionDuration(parsing: s) else {
                    throw RepoError(.usage, "\(path): \(key): \"\(s)\" is not a duration like 12h, 7d, 2w, 6m, 7y")
                }
                return d
            }
            switch key {
            case "keep-hot": policy.hot = try duration()
            case "keep-warm": policy.warm = try duration()
            case "keep-cold": policy.cold = try duration()
            case "keep-last":
                guard let n = Int(try scalar()) else { throw RepoError(.usage, "\(path): keep-last must be a whole number") }
                policy.keepLast = n
            case "keep-tag":
                let tags = try list()
                for t in tags {
                    if let reason = SnapshotLabel.invalidReason(t, kind: .tag) {
                        throw RepoError(.usage, "\(path): keep-tag: tag \(SnapshotLabel.quoted(t)): \(reason)")
                    }
                }
                policy.keepTags = tags
            case "group-by":
                do { policy.groupBy = try RetentionOptions.parseGroupBy(try list().joined(separator: ",")) } catch {
                    throw RepoError(.usage, "\(path): group-by must list some of host, name, paths, tags")
                }
            case "tz": policy.timeZone = try scalar()
            case "max-age": policy.maxAge = try scalar()
            default:
                throw RepoError(.usage, "\(path): unknown key \"\(key)\" (known: keep-hot, keep-warm, keep-cold, keep-last, keep-tag, group-by, tz, max-age)")
            }
        }
        if let reason = policy.invalidReason { throw RepoError(.usage, "\(path): \(reason)") }
        return policy
    }
}
