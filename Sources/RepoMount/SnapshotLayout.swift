public import RepoPrimitives
public import RepoSnapshot
import Foundation

/// The virtual top of the mount, built from the snapshot list (a pure function of it):
///
///     snapshots/<time>_<shortid>/…        every snapshot, and `latest` → the newest
///     by-name/<name>/<time>/…             per stream name (or backed-up paths), `latest` in each
///     by-host/<host>/<time>/…             per host, `latest` in each
///     by-tag/<tag>/<time>/…               per tag, `latest` in each
///
/// `<time>` is the snapshot time in UTC to the second (`2024-05-01T12:00:00Z`); two snapshots of
/// one group filed in the same second both get `_<shortid>` appended. Names that are not valid
/// path components are escaped (`PathName`).
public final class VirtualDirectory: Sendable {
    public enum Child: Sendable {
        case directory(VirtualDirectory)
        case snapshot(SnapshotEntry)
        case symlink(String)
    }

    public let names: [String]
    public let children: [String: Child]
    public let mtime: FileTime

    init(children: [String: Child], mtime: FileTime) {
        self.children = children
        self.names = children.keys.sorted()
        self.mtime = mtime
    }

    public static let empty = VirtualDirectory(children: [:], mtime: .zero)
}

public enum SnapshotLayout {
    public static let latest = "latest"

    /// Builds the virtual tree for `entries` (any order).
    public static func build(_ entries: [SnapshotEntry]) -> VirtualDirectory {
        let sorted = entries.sorted { ($0.date, $0.id) < ($1.date, $1.id) }
        var byName: [String: [SnapshotEntry]] = [:]
        var byHost: [String: [SnapshotEntry]] = [:]
        var byTag: [String: [SnapshotEntry]] = [:]
        for e in sorted {
            let s = e.snapshot
            byName[s.name ?? (s.paths ?? []).joined(separator: ","), default: []].append(e)
            byHost[s.host, default: []].append(e)
            for t in Set(s.tags) { byTag[t, default: []].append(e) }
        }
        var top: [String: VirtualDirectory.Child] = [:]
        top["snapshots"] = .directory(listing(sorted, name: { "\(time($0).directoryName)_\($0.id.shortHex)" }))
        for (label, groups) in [("by-name", byName), ("by-host", byHost), ("by-tag", byTag)] {
            var dirs: [String: VirtualDirectory.Child] = [:]
            var newest = FileTime.zero
            for (group, members) in groups {
                let d = grouped(members)
                dirs[PathName.escape(group)] = .directory(d)
                newest = max(newest, d.mtime)
            }
            top[label] = .directory(VirtualDirectory(children: dirs, mtime: newest))
        }
        return VirtualDirectory(children: top, mtime: sorted.last.map(time) ?? .zero)
    }

    static func time(_ e: SnapshotEntry) -> FileTime { FileTime(e.date) }

    /// A group: `<time>` per snapshot (`<time>_<shortid>` where times collide), plus `latest`.
    static func grouped(_ members: [SnapshotEntry]) -> VirtualDirectory {
        var counts: [String: Int] = [:]
        for e in members { counts[time(e).directoryName, default: 0] += 1 }
        return listing(members) { e in
            let t = time(e).directoryName
            return counts[t]! > 1 ? "\(t)_\(e.id.shortHex)" : t
        }
    }

    /// A directory of snapshots (oldest first) named by `name`, with `latest` → the newest.
    static func listing(_ members: [SnapshotEntry], name: (SnapshotEntry) -> String) -> VirtualDirectory {
        var children: [String: VirtualDirectory.Child] = [:]
        var last: String?
        for e in members {
            let n = name(e)
            children[n] = .snapshot(e)
            last = n
        }
        if let last { children[latest] = .symlink(last) }
        return VirtualDirectory(children: children, mtime: members.last.map(time) ?? .zero)
    }
}
