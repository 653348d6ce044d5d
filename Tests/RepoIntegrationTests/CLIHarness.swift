import XCTest
import Foundation

/// Runs the built `repo` binary the way a user does: a process with arguments, environment,
/// standard input from a file or pipe, and its exit status, stdout and stderr.
struct CLIResult {
    var status: Int32
    var stdout: Data
    var stderr: String
    var out: String { String(decoding: stdout, as: UTF8.self) }
}

/// A scratch directory with a repository path and a cache directory, removed afterwards.
final class Fixture {
    let dir: String
    var repo: String { dir + "/repo" }
    var cache: String { dir + "/cache" }
    var password = "correct horse battery staple"
    /// Where REPO_REPOSITORY points: `repo` (a local directory) unless a test sets another
    /// location (an S3 bucket), with `extraEnvironment` (its credentials).
    var location: String?
    var extraEnvironment: [String: String] = [:]

    /// The binary under test: $REPO_BIN, or the package's debug build.
    static let binary: String = {
        if let b = ProcessInfo.processInfo.environment["REPO_BIN"], !b.isEmpty { return b }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/repo").path
    }()

    init() {
        dir = NSTemporaryDirectory() + "repo-it-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FixtureJanitor.shared.register(dir)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["REPO_REPOSITORY"] = location ?? repo
        env.merge(extraEnvironment) { $1 }
        env["REPO_PASSWORD"] = password
        env["REPO_CACHE_DIR"] = cache
        env.removeValue(forKey: "REPO_PASSWORD_FILE")
        env.removeValue(forKey: "REPO_PASSWORD_COMMAND")
        env.removeValue(forKey: "REPO_KEY_FILE")
        return env
    }

    /// Starts `repo args…` with stdin from `stdinPath` (or /dev/null); output goes to files.
    /// `env` is added to the fixture's environment, and the variables in `unset` removed from it.
    func start(_ args: [String], stdinPath: String? = nil, env: [String: String] = [:], unset: [String] = []) throws -> (Process, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        p.environment = environment.merging(env) { $1 }.filter { !unset.contains($0.key) }
        let id = UUID().uuidString
        let outPath = dir + "/out-" + id, errPath = dir + "/err-" + id
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardInput = FileHandle(forReadingAtPath: stdinPath ?? "/dev/null")!
        p.standardOutput = FileHandle(forWritingAtPath: outPath)!
        p.standardError = FileHandle(forWritingAtPath: errPath)!
        try p.run()
        return (p, outPath, errPath)
    }

    func collect(_ started: (Process, String, String)) -> CLIResult {
        let (p, out, err) = started
        p.waitUntilExit()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        defer { try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: err) }
        return CLIResult(status: status, stdout: FileManager.default.contents(atPath: out) ?? Data(),
                         stderr: String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self))
    }

    @discardableResult
    func run(_ args: [String], stdinPath: String? = nil, env: [String: String] = [:], unset: [String] = []) throws -> CLIResult {
        collect(try start(args, stdinPath: stdinPath, env: env, unset: unset))
    }

    /// Runs and asserts success; returns stdout.
    @discardableResult
    func ok(_ args: [String], stdinPath: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> CLIResult {
        let r = try run(args, stdinPath: stdinPath)
        XCTAssertEqual(r.status, 0, "repo \(args.joined(separator: " ")) failed: \(r.stderr)", file: file, line: line)
        return r
    }

    func initRepo(_ extra: [String] = []) throws { try ok(["init"] + extra) }

    /// Writes `data` to a file in the fixture and returns its path.
    func file(_ name: String, _ data: Data) -> String {
        let path = dir + "/" + name
        FileManager.default.createFile(atPath: path, contents: data)
        return path
    }

    /// `repo store --json`, returning the decoded output.
    func store(_ name: String, from path: String, extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let r = try ok(["store", "--name", name, "--json"] + extra, stdinPath: path, file: file, line: line)
        return try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] ?? [:]
    }

    func snapshots(_ extra: [String] = []) throws -> [[String: Any]] {
        let r = try ok(["snapshots", "--json"] + extra)
        return try JSONSerialization.jsonObject(with: r.stdout) as? [[String: Any]] ?? []
    }

    /// Total bytes of every file under the repository directory.
    func repositorySize() -> Int {
        var total = 0
        let e = FileManager.default.enumerator(atPath: repo)!
        while let f = e.nextObject() as? String {
            if let a = try? FileManager.default.attributesOfItem(atPath: repo + "/" + f), a[.type] as? FileAttributeType == .typeRegular {
                total += (a[.size] as? Int) ?? 0
            }
        }
        return total
    }

    func packFiles() -> [String] {
        let e = FileManager.default.enumerator(atPath: repo + "/data")!
        var out: [String] = []
        while let f = e.nextObject() as? String {
            if f.count > 3 && !f.contains(".tmp-") { out.append(repo + "/data/" + f) }
        }
        return out.sorted()
    }
}

/// Test data.
enum TestData {
    static func random(_ count: Int) -> Data {
        var g = SystemRandomNumberGenerator()
        var d = Data(count: count)
        d.withUnsafeMutableBytes { buf in
            let words = buf.bindMemory(to: UInt64.self)
            for i in 0..<words.count { words[i] = g.next() }
            for i in (words.count * 8)..<count { buf[i] = UInt8.random(in: 0...255) }
        }
        return d
    }

    /// A deterministic pg_dump-style plain SQL dump of roughly `bytes` bytes.
    static func sqlDump(bytes: Int, seed: UInt64 = 1, tables: Int = 3) -> Data {
        var s = seed | 1
        func next() -> UInt64 { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s &* 2685821657736338717 }
        let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
        var out = "--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n\n"
        out.reserveCapacity(bytes + 4096)
        var row = 0
        let perTable = bytes / tables
        for t in 0..<tables {
            out += "CREATE TABLE public.t\(t) (\n    id bigint NOT NULL,\n    name text,\n    amount numeric(12,2),\n    created timestamp with time zone\n);\n\n"
            out += "COPY public.t\(t) (id, name, amount, created) FROM stdin;\n"
            let stop = out.utf8.count + perTable
            while out.utf8.count < stop {
                row += 1
                let r = next()
                out += "\(row)\t\(words[Int(r % 10)])-\(words[Int(r >> 8 % 10)]) \(r >> 20 % 100000)\t\(Double(r >> 40 % 1_000_000) / 100)\t2024-\(1 + r % 12)-\(1 + r >> 4 % 28) 12:\(r >> 12 % 60):00+00\n"
            }
            out += "\\.\n\n"
        }
        return Data(out.utf8)
    }
}

/// Removes every fixture directory when the test that made it finishes. XCTest keeps each test
/// case object (and so a `var fx: Fixture!` set in `setUp`) alive until the whole run ends, so
/// `deinit` alone left a directory per test behind in /tmp, hundreds of megabytes each.
final class FixtureJanitor: NSObject, XCTestObservation, @unchecked Sendable {
    nonisolated(unsafe) static let shared: FixtureJanitor = {
        let janitor = FixtureJanitor()
        XCTestObservationCenter.shared.addTestObserver(janitor)
        return janitor
    }()
    private let lock = NSLock()
    private var directories: [String] = []

    func register(_ dir: String) { lock.withLock { directories.append(dir) } }

    func testCaseDidFinish(_ testCase: XCTestCase) {
        let done = lock.withLock { () -> [String] in defer { directories.removeAll() }; return directories }
        for dir in done { try? FileManager.default.removeItem(atPath: dir) }
    }
}
