import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoOperations
import RepoKMS
import Foundation

extension RepoCommand.Key {
    /// `repo key rotate` (README, "Keys"; FORMAT.md §7.6): a new master key, every object
    /// re-encrypted under it, the old one retired.
    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the master key: re-encrypt every object under a new one, so the old key opens nothing.",
            discussion: """
                Carries over the slot this command is opened with and the slots whose credentials \
                are given with --carry-password-file, --carry-key-file and --carry-kms; any other \
                slot stops working, and is only revoked with --revoke-others. New data is written \
                under the new key from the start; packs, index, snapshots (which get new ids), pins, \
                policies, run records and the WAL archive are re-encrypted under the exclusive lock \
                (wal-push keeps working). Safe to interrupt or kill at any point: run it again \
                with the same credential to resume. It waits until --settle-time has passed since \
                it began before it retires the old key, for processes that opened with it.
                """)
        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Carry the password slot(s) this password opens (first line of FILE). Repeatable.", valueName: "FILE"))
        var carryPasswordFile: [String] = []

        @Option(help: ArgumentHelp("Carry the slot(s) this key file opens. Repeatable.", valueName: "FILE"))
        var carryKeyFile: [String] = []

        @Flag(help: "Carry the KMS slots this host's KMS access unwraps (AWS_* settings, --kms-command).")
        var carryKms = false

        @Flag(help: "Delete the slots no given credential opens (they would open nothing after the rotation).")
        var revokeOthers = false

        @Option(help: ArgumentHelp("Minutes after the start before the old key is retired (default 5; 0 for none).", valueName: "MINUTES"))
        var settleTime: Double = KeyRotation.defaultSettleTime / 60

        func validate() throws {
            guard settleTime >= 0, settleTime.isFinite else { throw ValidationError("--settle-time takes minutes, 0 or more") }
        }

        func run() throws {
            let backend = try global.backend()
            let credential = try global.credential()
            var carry: [Credential] = []
            for file in carryPasswordFile {
                let password = try GlobalOptions.passwordFromFile(file)
                guard !password.isEmpty else { throw RepoError(.usage, "the password file \(file) is empty") }
                carry.append(.password(password))
            }
            for file in carryKeyFile { carry.append(.keyFile(try KeyFile.read(path: file))) }
            if carryKms { carry.append(.kms(try global.kmsAccess())) }
            let quiet = global.quiet
            let warn: @Sendable (String) -> Void = { if !quiet { Console.line("repo: warning: \($0)") } }

            // The exclusive lock first, so a repository in use is refused before any slot changes.
            let first = try Repository.open(backend: backend, credential: credential, cacheDirectory: global.cacheDirectory, warn: warn)
            if let lock = first.config.objectLock {
                // Retained objects and key slots (renewed by every prune) cannot be deleted, so
                // the old key could never be retired (FORMAT.md §31).
                throw RepoError(.failure, "\(backend.location) is under S3 Object Lock (\(lock.summary)): its key slots and objects cannot be deleted while locked, so a rotation could never retire the old master key; nothing was changed",
                                hint: "to change the master key of a locked repository, `repo init --object-lock …` a new one and `repo copy` every snapshot into it")
            }
            let firstLock = try global.lock(first, exclusive: true, command: "key rotate")
            let ring = try KeyRing.open(backend: backend, config: first.config, credential: credential)
            let begun: RotationSlots.Begun
            do {
                begun = try RotationSlots.begin(ring: ring, opener: credential, carry: carry, revokeOthers: revokeOthers,
                                                now: try backend.now())
            } catch {
                firstLock?.release()
                throw error
            }
            if begun.finishedEarlier {
                firstLock?.release()
                if global.json {
                    try Console.printJSON(RotateJSON(master: begun.key.fingerprint, resumed: true, carried: [], revoked: [], report: KeyRotation.Report()))
                } else if !quiet {
                    print("rotation finished: the interrupted rotation to master key \(begun.key.fingerprint) only had its transition slots left to drop")
                }
                return
            }
            Self.test(afterBegin: begun)
            // Hold the lock under the new key from here on: a lock object sealed under the old
            // root would be one more thing it opens.
            let repo = first.withKey(begun.key)
            firstLock?.release()
            let held = HeldLock(try global.lock(repo, exclusive: true, command: "key rotate"))
            defer { held.lock?.release() }
            if !global.json && !quiet {
                let fp = begun.key.fingerprint
                print(begun.resumed ? "resuming the rotation to master key \(fp)" : "rotation begun: new master key \(fp)")
                for s in begun.carried { print("  carried key slot \(s.id.prefix(8)) (\(s.kind.rawValue), \(s.host))") }
                for s in begun.revoked { print("  revoked key slot \(s.id.prefix(8)) (\(s.kind.rawValue), \(s.host))") }
                for id in begun.unreadable { print("  left unreadable key slot \(id.prefix(8)) as it is") }
                print("re-encrypting every object under the new key; if interrupted, run `repo key rotate` again to resume")
                fflush(nil)
            }

            var op = KeyRotation(repository: repo)
            op.settleTime = settleTime * 60
            if let text = ProcessInfo.processInfo.environment["REPO_TEST_ROTATE_ROUND_BYTES"], let n = Int(text), n > 0 { op.roundBytes = n }
            if let text = ProcessInfo.processInfo.environment["REPO_TEST_ROTATE_KILL_AT"], let n = Int(text), n > 0 {
                // Test hook: SIGKILL right after the N-th durable step (the fault tests; not for users).
                let counter = PruneCommandSupport.StepCounter()
                op.afterStep = { _ in if counter.next() == n { kill(getpid(), SIGKILL) } }
            }
            if let label = ProcessInfo.processInfo.environment["REPO_TEST_ROTATE_KILL_AT_LABEL"] {
                // Test hook: SIGKILL after the first durable step with this label.
                op.afterStep = { if $0 == label { kill(getpid(), SIGKILL) } }
            }
            let line = global.progressLine("re-encrypted")
            if let line { op.progress = { line.update($0) } }
            if !global.json && !quiet {
                var told = false
                op.waiting = { left in
                    guard !told else { return }
                    told = true
                    Console.line(String(format: "repo: waiting %.0f s before retiring the old key (--settle-time), for processes that opened the repository with it; the repository is not locked meanwhile", left))
                }
            }
            let global = self.global
            op.releaseLock = { held.lock?.release(); held.lock = nil }
            op.retakeLock = { held.lock = try global.lock(repo, exclusive: true, command: "key rotate") }
            let report = try op.run()
            line?.finish()
            if global.json {
                try Console.printJSON(RotateJSON(master: begun.key.fingerprint, resumed: begun.resumed,
                                                 carried: begun.carried.map(\.id), revoked: begun.revoked.map(\.id), report: report))
            } else if !quiet {
                let ids = report.snapshots > 0 ? " (their ids changed; `repo snapshots` lists the new ones)" : ""
                print("re-encrypted \(report.packs) packs (\(Format.bytes(report.packBytes))), \(report.snapshots) snapshots\(ids), \(report.pins) pins, \(report.objects) other objects and \(report.walObjects) WAL objects; index: \(report.segmentsWritten) segments written")
                if !report.unreadable.isEmpty {
                    print("left \(report.unreadable.count) unreadable object(s) as they were: \(report.unreadable.prefix(5).joined(separator: ", ")); see `repo check`")
                }
                print(String(format: "rotation finished: the old master key opens nothing in this repository (%.1f s)", report.seconds))
            }
            if !report.unreadable.isEmpty {
                // The rotation is complete, but the repository holds damage it met (exit 13,
                // as `check` and `dump` report damaged data).
                throw RepoError(.integrity, "the rotation finished, but \(report.unreadable.count) object(s) open under no key and were left as they were: \(report.unreadable.prefix(5).joined(separator: ", "))",
                                hint: "run `repo check --read-data` to see what is damaged and which snapshots it affects")
            }
        }

        /// Test hook: REPO_TEST_ROTATE_KILL_AFTER_BEGIN=1 ends the process with SIGKILL right
        /// after the slots changed, before the pass (the fault tests; not for users).
        static func test(afterBegin: RotationSlots.Begun) {
            if ProcessInfo.processInfo.environment["REPO_TEST_ROTATE_KILL_AFTER_BEGIN"] == "1" { kill(getpid(), SIGKILL) }
        }
    }
}

/// The rotation's lock, given up for the settle wait and taken again.
final class HeldLock: @unchecked Sendable {
    var lock: RepositoryLock?
    init(_ lock: RepositoryLock?) { self.lock = lock }
}

/// `repo key rotate --json` output.
struct RotateJSON: Encodable {
    var master: String
    var resumed: Bool
    var carried: [String]
    var revoked: [String]
    var report: KeyRotation.Report
}
