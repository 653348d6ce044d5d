import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoSnapshot
import Foundation

extension RepoCommand {
    struct Pin: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pin a snapshot (legal hold): it is never forgotten or pruned while pinned. Without SNAPSHOT, list pins.",
            discussion: "Pinning an already pinned snapshot replaces its pin. `repo unpin` removes it.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: SnapshotFilterOptions

        @Argument(help: ArgumentHelp("Snapshot id (prefix) or `latest`.", valueName: "SNAPSHOT"))
        var snapshot: String?

        @Option(help: ArgumentHelp(TimeInput.help("The pin ends at this time (default: until unpinned)."), valueName: "TIME"))
        var until: String?

        @OptionGroup var timeZone: TimeZoneOption

        @Option(help: ArgumentHelp("Why it is pinned (shown by forget and pin).", valueName: "TEXT"))
        var reason: String?

        func validate() throws {
            try TimeInput.check(until, flag: "--until", zone: try timeZone.zone())
            if snapshot == nil && (until != nil || reason != nil) { throw ValidationError("--until and --reason need a SNAPSHOT") }
        }

        func run() throws {
            let repo = try global.open()
            guard let snapshot else {
                let pins = try repo.pins().map(\.pin).sorted { $0.created < $1.created }
                if global.json { try Console.printJSON(pins.map(PinJSON.init)); return }
                let now = Date()
                for p in pins {
                    let expired = p.until.flatMap(Timestamp.parse).map { $0 <= now } ?? false
                    print("\(p.snapshot.prefix(8))  \(p.until.map { "until \($0)" } ?? "until unpinned")\(expired ? " (expired)" : "")  \(SnapshotLabel.escapedForTable(p.reason ?? ""))  (by \(SnapshotLabel.escapedForTable(p.username))@\(SnapshotLabel.escapedForTable(p.host)) at \(p.created))")
                }
                if !global.quiet { print("\(pins.count) pin\(pins.count == 1 ? "" : "s")") }
                return
            }
            let lock = try global.lock(repo, exclusive: false, command: "pin")
            defer { lock?.release() }
            let entry = try repo.findSnapshot(snapshot, filter: SnapshotFilter(name: filter.name, host: filter.host, tags: filter.tags))
            let pin = RepoSnapshot.Pin(snapshot: entry.id.hex, until: try until.map { Timestamp.format(try TimeInput.parse($0, flag: "--until", zone: try timeZone.zone())) },
                                       reason: reason, created: Timestamp.format(Date()), host: HostInfo.hostname,
                                       username: HostInfo.username)
            try repo.setPin(pin)
            if global.json { try Console.printJSON(PinJSON(pin)) } else if !global.quiet {
                print("pinned \(entry.id.shortHex)\(pin.until.map { " until \($0)" } ?? "")")
            }
        }
    }

    struct Unpin: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a snapshot's pin.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: SnapshotFilterOptions

        @Argument(help: ArgumentHelp("Snapshot id (prefix) or `latest`.", valueName: "SNAPSHOT"))
        var snapshot: String

        func run() throws {
            let repo = try global.open()
            let lock = try global.lock(repo, exclusive: false, command: "unpin")
            defer { lock?.release() }
            // A pin may outlive its snapshot (deleted by hand): match pins by id prefix too.
            let id: String
            if let entry = try? repo.findSnapshot(snapshot, filter: SnapshotFilter(name: filter.name, host: filter.host, tags: filter.tags)) {
                id = entry.id.hex
            } else {
                let hits = Set(try repo.pins().map(\.pin.snapshot).filter { $0.hasPrefix(snapshot.lowercased()) })
                guard hits.count == 1 else {
                    throw RepoError(.failure, hits.isEmpty ? "no snapshot or pin matches \(snapshot)" : "\(snapshot) matches \(hits.count) pins",
                                    hint: "list pins with `repo pin`")
                }
                id = hits.first!
            }
            let removed = try repo.removePins(snapshot: id)
            guard !removed.isEmpty else {
                throw RepoError(.failure, "snapshot \(id.prefix(8)) is not pinned", hint: "list pins with `repo pin`")
            }
            if !global.quiet && !global.json { print("unpinned \(id.prefix(8))") }
            if global.json { try Console.printJSON(["unpinned": id]) }
        }
    }
}

struct PinJSON: Encodable {
    var snapshot: String
    var until: String?
    var reason: String?
    var created: String
    var host: String
    var username: String

    init(_ p: RepoSnapshot.Pin) {
        snapshot = p.snapshot; until = p.until; reason = p.reason; created = p.created; host = p.host; username = p.username
    }

    enum CodingKeys: String, CodingKey { case snapshot, until, reason, created, host, username }

    /// Every key, `until` and `reason` as `null` when not given.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(snapshot, forKey: .snapshot); try c.encode(until, forKey: .until); try c.encode(reason, forKey: .reason)
        try c.encode(created, forKey: .created); try c.encode(host, forKey: .host); try c.encode(username, forKey: .username)
    }
}
