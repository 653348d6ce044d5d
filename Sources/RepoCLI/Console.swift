import RepoRepository
import RepoOperations
import Foundation
import RepoLaunch

/// Writing to the terminal: errors and warnings on stderr, prompts on /dev/tty.
enum Console {
    static let stderrIsTerminal = isatty(2) != 0

    static func line(_ text: String) {
        StandardError.write(text + "\n")
    }

    /// Prints an error as `repo: error: …` with its hint on the next line.
    static func error(_ e: RepoError) {
        ProgressLine.clearIfShown()
        line("repo: error: \(e.message)")
        if let hint = e.hint { line("repo: \(hint)") }
    }

    /// Reads a line without echo from the controlling terminal; nil when there is none.
    static func prompt(_ text: String) -> String? {
        let tty = open("/dev/tty", O_RDONLY)
        guard tty >= 0 else { return nil }
        close(tty)
        guard let p = getpass(text) else { return nil }
        return String(cString: p)
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try enc.encode(value), as: UTF8.self))
    }
}

/// Human-readable sizes and rates.
enum Format {
    static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(n), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
    }

    static func rate(_ bytes: Int, _ seconds: Double) -> String {
        seconds > 0 ? String(format: "%.1f MB/s", Double(bytes) / seconds / 1e6) : "-"
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }

    /// Parses sizes like `1048576`, `512K`, `1M`, `1MiB`, `2G`.
    static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let digits = t.prefix { $0.isNumber }
        guard let n = Int(digits), !digits.isEmpty else { return nil }
        var unit = String(t.dropFirst(digits.count))
        for suffix in ["IB", "B"] where unit.hasSuffix(suffix) { unit.removeLast(suffix.count); break }
        switch unit {
        case "": return n
        case "K": return n << 10
        case "M": return n << 20
        case "G": return n << 30
        default: return nil
        }
    }
}

/// The progress line of long operations: redrawn in place on a terminal (at most 5 times a
/// second), a plain line every few seconds with `-v` when stderr is not a terminal, silent
/// otherwise.
final class ProgressLine: @unchecked Sendable {
    private let verb: String
    private let started = Date()
    private var last = Date.distantPast
    private let interactive: Bool
    private let lock = NSLock()
    nonisolated(unsafe) private static var shown = false
    /// Seconds between redraws on a terminal: 0.2. Test seam: `REPO_TEST_PROGRESS_INTERVAL_MS`
    /// shortens it, so that a test's short commands draw a line at all. Not for production use.
    private static let interval: TimeInterval = ProcessInfo.processInfo.environment["REPO_TEST_PROGRESS_INTERVAL_MS"]
        .flatMap(Double.init).map { $0 / 1000 } ?? 0.2

    private init(verb: String, interactive: Bool) {
        self.verb = verb; self.interactive = interactive
        last = started   // the first line after one interval, not at zero bytes
    }

    static func make(verb: String, quiet: Bool, verbose: Bool) -> ProgressLine? {
        if quiet { return nil }
        if Console.stderrIsTerminal { return ProgressLine(verb: verb, interactive: true) }
        return verbose ? ProgressLine(verb: verb, interactive: false) : nil
    }

    func update(_ r: ProgressReport) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(last) >= (interactive ? Self.interval : 2) else { return }
        last = now
        let elapsed = now.timeIntervalSince(started)
        var parts = ["\(verb) \(Format.bytes(r.bytes))", Format.rate(r.bytes, elapsed)]
        if r.newBytes > 0 || verb == "stored" {
            parts.append("new \(Format.bytes(r.newBytes))")
            if r.newBytes > 0 { parts.append(String(format: "dedup %.1f×", Double(r.bytes) / Double(r.newBytes))) }
        }
        if let total = r.totalBytes, total > 0 {
            parts.append(String(format: "%.0f%%", 100 * Double(r.bytes) / Double(total)))
            if r.bytes > 0 { parts.append("ETA " + Format.duration(elapsed * Double(total - r.bytes) / Double(r.bytes))) }
        }
        if let items = r.items { parts.append(items) }
        let text = parts.joined(separator: "  ")
        if interactive {
            StandardError.write("\r\u{1B}[K" + text)
            Self.shown = true
        } else {
            Console.line(text)
        }
    }

    /// Ends the line so following output starts on a fresh one.
    func finish() {
        lock.lock(); defer { lock.unlock() }
        Self.clearIfShown()
    }

    static func clearIfShown() {
        if shown {
            StandardError.write("\r\u{1B}[K")
            shown = false
        }
    }
}
