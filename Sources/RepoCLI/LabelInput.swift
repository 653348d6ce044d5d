import ArgumentParser
import RepoSnapshot

/// Names, tags and hosts on the command line, checked by `SnapshotLabel` (one set of rules).
enum LabelInput {
    /// A usage error (exit 2) naming the flag, the value and the rule, for the first bad value.
    static func check(_ values: [String], kind: SnapshotLabel.Kind, flag: String) throws {
        for v in values {
            do { try SnapshotLabel.validate(v, kind: kind) } catch {
                throw ValidationError("\(flag): \(error)")
            }
        }
    }

    static func check(_ value: String?, kind: SnapshotLabel.Kind, flag: String) throws {
        try check(value.map { [$0] } ?? [], kind: kind, flag: flag)
    }
}
