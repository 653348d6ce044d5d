import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoSnapshot
import Foundation

extension RepoCommand {
    struct Forget: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the hot/warm/cold retention policy: forget the snapshots it does not keep.",
            discussion: """
                Per group (host + name, or host + paths): hot keeps everything younger than --keep-hot; \
                warm keeps the newest snapshot of each calendar day younger than --keep-warm; cold keeps \
                the newest of each calendar month younger than --keep-cold; --keep-last N keeps the N \
                newest (at least 1: a group's newest snapshot is never forgotten); --keep-tag keeps \
                tagged snapshots; pinned snapshots (`repo pin`) are always kept.
                The policy comes from the flags, over --policy FILE, over the repository's default \
                (`repo policy set`), over the built-in defaults. --dry-run prints every decision \
                and its reason without changing anything. --prune runs `repo prune` afterwards.
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var retention: RetentionOptions
        @OptionGroup var filter: SnapshotFilterOptions

        @Option(help: ArgumentHelp("Read the policy from a YAML file (keys as the flags: keep-hot, keep-warm, keep-cold, keep-last, keep-tag, group-by, tz).", valueName: "FILE"))
        var policy: String?

        @Option(help: ArgumentHelp(TimeInput.help("Evaluate the policy as if it were this time, for reproducible runs.", zoneFlag: "the policy's time zone (--tz)"), valueName: "TIME"))
        var now: String?

        @Flag(help: "Print the decisions; forget nothing.")
        var dryRun = false

        @Flag(help: "Run prune after forgetting.")
        var prune = false

        @Option(help: ArgumentHelp("With --prune: repack packs with more than PCT percent unused (default 5).", valueName: "PCT"))
        var maxUnused: String?

        @Option(help: ArgumentHelp("With --prune: never delete packs or index segments younger than this many minutes (or Nh; default 60).", valueName: "MINUTES"))
        var safetyMargin: String?

        func validate() throws {
            _ = try retention.flagPolicy()
            // The syntax here; the reading in the policy's zone once that is resolved (run).
            try TimeInput.check(now, flag: "--now", zone: TimeZone(identifier: "UTC")!)
            if let m = maxUnused { _ = try PruneCommandSupport.parsePercent(m) }
            if maxUnused != nil && !prune { throw ValidationError("--max-unused needs --prune") }
            _ = try PruneCommandSupport.parseMargin(safetyMargin)
            if safetyMargin != nil && !prune { throw ValidationError("--safety-margin needs --prune") }
        }

        func run() throws {
            let repo = try global.open()
            // A dry run only reads: a shared lock, or none on a read-only repository.
            let lock = try global.lock(repo, exclusive: !dryRun, command: prune ? "forget --prune" : "forget", readOnly: dryRun)
            defer { lock?.release() }
            defer { if (prune && !dryRun) || lock?.usedSpaceReserve == true { repo.restoreSpaceReserve() } }

            var effective = try retention.flagPolicy()
            var sources = ["flags"]
            if let policy {
                effective = effective.over(try PolicyFile.load(policy))
                sources.append("policy file \(policy)")
            }
            if let stored = try repo.storedPolicy() {
                effective = effective.over(stored.policy)
                sources.append("repository default")
            }
            let resolved = effective.resolved()
            if let reason = resolved.invalidReason { throw RepoError(.usage, "retention policy: \(reason)") }
            let zone = TimeZone(identifier: resolved.timeZone!)!
            let nowDate = try now.map { try TimeInput.parse($0, flag: "--now", zone: zone) } ?? Date()

            var op = RepoOperations.Forget(repository: repo, policy: resolved, now: nowDate)
            op.filter = SnapshotFilter(name: filter.name, host: filter.host, tags: filter.tags)
            op.dryRun = dryRun
            let result = try op.run()
            CommandMetrics.shared.forgetFinished(kept: result.kept, forgotten: result.forgotten, dryRun: dryRun)

            var pruneReport: RepoOperations.Prune.Report?
            if prune && !dryRun {
                var p = RepoOperations.Prune(repository: repo)
                if let m = maxUnused { p.maxUnused = try PruneCommandSupport.parsePercent(m) }
                try PruneCommandSupport.configure(&p, safetyMargin: safetyMargin, lock: lock, global: global)
                let line = global.progressLine("pruned")
                if let line { p.progress = { line.update($0) } }
                PruneCommandSupport.installCrashHook(&p)
                pruneReport = try p.run()
                line?.finish()
                CommandMetrics.shared.pruneFinished(pruneReport!)
            }

            if global.json {
                try Console.printJSON(ForgetJSON(policy: resolved, sources: sources, now: Timestamp.format(nowDate),
                                                 dryRun: dryRun, result: result, zone: zone, prune: pruneReport))
                return
            }
            if global.quiet { return }
            print("policy: \(resolved.summary) (from \(sources.joined(separator: " over ")))")
            let local = DateFormatter()
            local.dateFormat = "yyyy-MM-dd HH:mm:ss"
            local.timeZone = zone
            var group: String?
            for item in result.items {
                if item.decision.group != group {
                    group = item.decision.group
                    print("\ngroup \(group!.isEmpty ? "(all)" : SnapshotLabel.escapedForTable(group!)):")
                }
                let verb = item.decision.keep ? "keep  " : (dryRun ? "forget" : "forgot")
                print("  \(item.entry.id.shortHex)  \(local.string(from: item.entry.date))  \(item.decision.tier.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0))  \(verb)  \(item.decision.reasons.joined(separator: "; "))")
            }
            print("\n\(result.kept) kept, \(result.forgotten) \(dryRun ? "would be forgotten (dry run: nothing changed)" : "forgotten")")
            if !result.wal.isEmpty {
                let deleted = result.wal.filter { !$0.keep }.count
                print("\nWAL archive: \(result.wal.count - deleted) files kept, \(deleted) \(dryRun ? "would be deleted" : "deleted")")
                for run in Self.runs(result.wal) {
                    let span = run.count == 1 ? run[0].file.text : "\(run[0].file.text) … \(run[run.count - 1].file.text) (\(run.count) files)"
                    print("  \(run[0].keep ? "keep  " : (dryRun ? "delete" : "deleted"))  \(span)  \(run[0].reason)")
                }
            }
            if let r = pruneReport { PruneCommandSupport.printReport(r) }
            else if prune && dryRun { print("prune not run (dry run)") }
            else if result.forgotten > 0 && !dryRun { print("run `repo prune` to free their data") }
        }
    }
}

extension RepoCommand.Forget {
    /// Consecutive WAL decisions with the same verdict and reason, for one line each.
    static func runs(_ decisions: [WALRetention.Decision]) -> [[WALRetention.Decision]] {
        var out: [[WALRetention.Decision]] = []
        for d in decisions {
            if let last = out.last?.last, last.keep == d.keep, last.reason == d.reason { out[out.count - 1].append(d) } else { out.append([d]) }
        }
        return out
    }
}

/// `repo forget --json` output (documented in the README).
struct ForgetJSON: Encodable {
    struct Item: Encodable {
        var id: String
        var short_id: String
        var time: String
        var local_time: String
        var group: String
        var tier: String
        var keep: Bool
        var decision: String
        var reasons: [String]
        /// S3 Object Lock kept it against the policy; until when (null: unknown), or absent.
        var retained_until: String??

        enum CodingKeys: String, CodingKey { case id, short_id, time, local_time, group, tier, keep, decision, reasons, retained_until }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(short_id, forKey: .short_id); try c.encode(time, forKey: .time)
            try c.encode(local_time, forKey: .local_time); try c.encode(group, forKey: .group); try c.encode(tier, forKey: .tier)
            try c.encode(keep, forKey: .keep); try c.encode(decision, forKey: .decision); try c.encode(reasons, forKey: .reasons)
            if let retained_until { try c.encode(retained_until, forKey: .retained_until) }
        }
    }

    var policy: RetentionPolicy
    var sources: [String]
    var now: String
    var dry_run: Bool
    var snapshots: [Item]
    var kept: Int
    var forgotten: Int
    var prune: Prune.Report?
    /// WAL archive decisions (FORMAT.md §27.5); empty without an archive.
    var wal: [WALItem]

    struct WALItem: Encodable { var file: String; var keep: Bool; var reason: String }

    init(policy: RetentionPolicy, sources: [String], now: String, dryRun: Bool, result: RepoOperations.Forget.Result,
         zone: TimeZone, prune: Prune.Report?) {
        self.policy = policy; self.sources = sources; self.now = now; self.dry_run = dryRun; self.prune = prune
        let f = ISO8601DateFormatter()
        f.timeZone = zone
        snapshots = result.items.map {
            Item(id: $0.entry.id.hex, short_id: $0.entry.id.shortHex, time: $0.entry.snapshot.time,
                 local_time: f.string(from: $0.entry.date), group: $0.decision.group, tier: $0.decision.tier.rawValue,
                 keep: $0.decision.keep, decision: $0.decision.keep ? "keep" : "forget", reasons: $0.decision.reasons,
                 retained_until: $0.decision.retained ? .some($0.decision.retainedUntil.map(Timestamp.format)) : .none)
        }
        kept = result.kept; forgotten = result.forgotten
        wal = result.wal.map { WALItem(file: $0.file.text, keep: $0.keep, reason: $0.reason) }
    }

    enum CodingKeys: String, CodingKey { case policy, sources, now, dry_run, snapshots, kept, forgotten, prune, wal }

    /// Every key, `prune` as `null` without --prune (or with --dry-run).
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(policy, forKey: .policy); try c.encode(sources, forKey: .sources); try c.encode(now, forKey: .now)
        try c.encode(dry_run, forKey: .dry_run); try c.encode(snapshots, forKey: .snapshots); try c.encode(kept, forKey: .kept)
        try c.encode(forgotten, forKey: .forgotten); try c.encode(prune, forKey: .prune); try c.encode(wal, forKey: .wal)
    }
}
