import ArgumentParser
import RepoRepository
import RepoOperations
import RepoSnapshot
import Foundation

extension RepoCommand {
    struct Policy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set the repository's default retention policy (used by `forget` without flags).",
            subcommands: [Show.self, Set.self, Unset.self], defaultSubcommand: Show.self)

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the default policy and the effective one.")
            @OptionGroup var global: GlobalOptions

            func run() throws {
                let repo = try global.open()
                let stored = try repo.storedPolicy()
                let effective = (stored?.policy ?? RetentionPolicy()).resolved()
                if global.json {
                    try Console.printJSON(PolicyJSON(stored: stored?.policy, set_at: stored?.time,
                                                     set_by: stored.map { "\($0.username)@\($0.host)" }, effective: effective))
                    return
                }
                if let stored {
                    print("repository policy: \(stored.policy.summary.isEmpty ? "(empty)" : stored.policy.summary)")
                    print("  set \(stored.time) by \(stored.username)@\(stored.host)")
                } else {
                    print("repository policy: none set (built-in defaults apply)")
                }
                print("effective policy: \(effective.summary)")
            }
        }

        struct Set: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Store a default policy in the repository (encrypted), from flags and/or a YAML file.",
                discussion: "Replaces the previous default. Fields not given fall back to the built-in defaults at forget time.")
            @OptionGroup var global: GlobalOptions
            @OptionGroup var retention: RetentionOptions

            @Option(help: ArgumentHelp("Not a retention rule: how old a group's newest snapshot may get before `repo status` without --max-age calls it late (s, min, h, d, w; e.g. 26h).", valueName: "D"))
            var maxAge: String?

            @Option(help: ArgumentHelp("Read the policy from a YAML file (flags override its fields).", valueName: "FILE"))
            var file: String?

            func validate() throws {
                _ = try retention.flagPolicy()
                if let maxAge, let reason = AgeLimit.invalidReason(maxAge) { throw ValidationError("--max-age: \(reason)") }
            }

            func run() throws {
                var policy = try retention.flagPolicy()
                policy.maxAge = maxAge
                if let file { policy = policy.over(try PolicyFile.load(file)) }
                if policy == RetentionPolicy() {
                    throw RepoError(.usage, "no policy given", hint: "pass flags like --keep-hot 7d, or --file FILE; `repo policy unset` removes the default")
                }
                let repo = try global.open()
                let lock = try global.lock(repo, exclusive: false, command: "policy set")
                defer { lock?.release() }
                try repo.setStoredPolicy(policy)
                if global.json { try Console.printJSON(policy) } else if !global.quiet {
                    print("repository policy set: \(policy.summary)")
                }
            }
        }

        struct Unset: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove the default policy.")
            @OptionGroup var global: GlobalOptions

            func run() throws {
                let repo = try global.open()
                let lock = try global.lock(repo, exclusive: false, command: "policy unset")
                defer { lock?.release() }
                let removed = try repo.removeStoredPolicy()
                if !global.quiet { print(removed ? "repository policy removed" : "no repository policy was set") }
            }
        }
    }
}

struct PolicyJSON: Encodable {
    var stored: RetentionPolicy?
    var set_at: String?
    var set_by: String?
    var effective: RetentionPolicy

    enum CodingKeys: String, CodingKey { case stored, set_at, set_by, effective }

    /// Every key, `null` when no policy is stored.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stored, forKey: .stored); try c.encode(set_at, forKey: .set_at); try c.encode(set_by, forKey: .set_by)
        try c.encode(effective, forKey: .effective)
    }
}
