import RepoOperations
import RepoRepository
import Foundation
import Synchronization

/// The process-wide handling of SIGINT, SIGTERM and SIGHUP (and SIGPIPE) for every command
/// that takes a lock; installed by `GlobalOptions.lock` before the lock is written.
///
/// - A command that polls `cancellation` (store, backup, dump, restore) declares so with
///   `stopCooperatively()`: the first signal asks it to stop, runs the registered stop actions
///   (signal a producer's process group) and gives it `gracePeriod` to end cleanly (no
///   snapshot, lock released, exit 128 + signal); after that the locks are released and the
///   process exits anyway.
/// - Any other command (ls, diff, check, prune…) has nothing to finish: its locks are released
///   and it exits 128 + signal at once.
/// - A second signal always ends the process at once (locks released).
/// - SIGPIPE is ignored: a write to a closed pipe fails with EPIPE, which commands turn into a
///   quiet end (`RepoError.Kind.outputClosed`) that releases the lock on the way out.
enum SignalTrap {
    /// The cancellation request every cooperative operation polls.
    static let cancellation = Cancellation()
    /// How long a cooperative command may take to stop after the first signal.
    static let gracePeriod: TimeInterval = 2

    private struct State {
        var installed = false
        var cooperative = false
        var actions: [@Sendable (Int32) -> Void] = []
    }
    private static let state = Mutex(State())
    /// Kept alive for the life of the process; written once, by the first `install`.
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Installs the handlers (idempotent).
    static func install() {
        signal(SIGPIPE, SIG_IGN)
        let first = state.withLock { s -> Bool in defer { s.installed = true }; return !s.installed }
        guard first else { return }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { received(sig) }
            source.resume()
            sources.append(source)
        }
    }

    /// The running command polls `cancellation` and stops cleanly on its own.
    static func stopCooperatively() {
        install()
        state.withLock { $0.cooperative = true }
    }

    /// Runs `action` on the first signal (e.g. to stop a child process group).
    static func onStop(_ action: @escaping @Sendable (Int32) -> Void) {
        state.withLock { $0.actions.append(action) }
    }

    private static func received(_ sig: Int32) {
        if cancellation.requestedBy != nil { exitNow(sig) }   // second signal: the user insists
        cancellation.cancel(signal: sig)
        let (cooperative, actions) = state.withLock { ($0.cooperative, $0.actions) }
        for action in actions { action(sig) }
        guard cooperative else { exitNow(sig) }
        DispatchQueue.global().asyncAfter(deadline: .now() + gracePeriod) { exitNow(sig) }
    }

    /// Releases every lock this process holds, writes `--metrics-file` and runs the notify
    /// command (if given) and exits with 128 + `sig`, without running anything else (other
    /// threads may be blocked on a pipe).
    static func exitNow(_ sig: Int32) -> Never {
        RepositoryLock.releaseAll()
        CommandMetrics.shared.finish(exitCode: 128 + sig)
        CommandNotification.shared.finish(exitCode: 128 + sig, error: RepoError(.interrupted(signal: sig), "interrupted by signal \(sig)"))
        _exit(128 + sig)
    }
}
