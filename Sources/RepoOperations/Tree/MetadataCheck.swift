public import RepoSnapshot
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Compares what is on disk with a snapshot node's metadata, for `restore --verify`, and says
/// which extended attributes a restore manages.
public enum MetadataCheck {
    /// Whether a restore sets and removes the extended attribute `name` so the entry converges on
    /// the snapshot: the `user.`, `trusted.` and `security.` namespaces and the POSIX ACLs
    /// (`system.posix_acl_access`, `system.posix_acl_default`). `security.selinux` is left to
    /// the host's policy (a label from another host is rarely wanted, and removing one is
    /// refused by the kernel), as are other `system.` attributes.
    public static func isRestorable(_ name: String) -> Bool {
        if name == "security.selinux" { return false }
        return name.hasPrefix("user.") || name.hasPrefix("trusted.") || name.hasPrefix("security.")
            || name == "system.posix_acl_access" || name == "system.posix_acl_default"
    }

    /// A description of how `path` differs from `node` in type, mode, owner (as root only),
    /// mtime, symlink target or managed extended attributes; nil when it matches.
    public static func difference(_ node: Node, path: [UInt8], isRoot: Bool) -> String? {
        let shown = PathText.display(path)
        guard let st = try? FileSystem.lstat(path) else { return "\(shown): missing after the restore" }
        let typeOK: Bool
        switch node.type {
        case .file: typeOK = st.isRegular
        case .dir: typeOK = st.isDirectory
        case .symlink: typeOK = st.isSymlink
        }
        guard typeOK else { return "\(shown): is not a \(node.type.rawValue) as in the snapshot" }
        var differences: [String] = []
        if node.type != .symlink, let mode = node.mode, st.permissions != mode {
            differences.append("mode \(String(st.permissions, radix: 8)) instead of \(String(mode, radix: 8))")
        }
        if isRoot, let uid = node.uid, let gid = node.gid, st.uid != uid || st.gid != gid {
            differences.append("owner \(st.uid):\(st.gid) instead of \(uid):\(gid)")
        }
        if let m = node.mtime, let want = FileTime(rfc3339: m), st.mtime != want {
            differences.append("mtime \(st.mtime.rfc3339) instead of \(m)")
        }
        if node.type == .symlink, let target = node.targetBytes, (try? FileSystem.readLink(path)) != target {
            differences.append("symlink target differs")
        }
        let have = FileSystem.extendedAttributes(path).filter { isRestorable($0.name) }
        let want = (node.xattrs ?? []).filter { isRestorable($0.name) }.sorted { $0.name < $1.name }
        if have.map(\.name) != want.map(\.name) {
            let extra = Set(have.map(\.name)).subtracting(want.map(\.name)).sorted()
            let missing = Set(want.map(\.name)).subtracting(have.map(\.name)).sorted()
            differences.append("extended attributes differ" + (extra.isEmpty ? "" : ", extra: \(extra.joined(separator: " "))")
                               + (missing.isEmpty ? "" : ", missing: \(missing.joined(separator: " "))"))
        } else if zip(have, want).contains(where: { $0.valueBytes != $1.valueBytes }) {
            differences.append("extended attribute values differ")
        }
        return differences.isEmpty ? nil : "\(shown): metadata differs from the snapshot: " + differences.joined(separator: "; ")
    }
}
