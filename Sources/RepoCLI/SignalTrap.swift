import RepoOperations
import Foundation

/// Turns SIGINT/SIGTERM/SIGHUP into a cancellation request that the running operation polls, so
/// it can stop cleanly (no snapshot, lock released) and exit with 128 + signal.
enum SignalTrap {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// - Parameter also: extra action on the first signal (e.g. terminate a child process).
    static func install(_ cancellation: Cancellation, also: (@Sendable (Int32) -> Void)? = nil) {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if cancellation.requestedBy != nil {
                    // Second signal: the user insists.
                    exit(128 + sig)
                }
                cancellation.cancel(signal: sig)
                also?(sig)
            }
            source.resume()
            sources.append(source)
        }
    }
}
