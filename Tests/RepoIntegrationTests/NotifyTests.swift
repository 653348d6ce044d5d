import XCTest
import Foundation

/// `--notify-command` / REPO_NOTIFY_COMMAND (README, "Notifications"): the JSON event a hook
/// receives on success and failure, `--notify-on`, and a failing hook that must not change the
/// command's result.
final class NotifyTests: XCTestCase {
    /// The events appended to `path`, one JSON object per line.
    func events(_ path: String) throws -> [[String: Any]] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    func testEventsOnSuccessAndFailure() throws {
        let fx = Fixture()
        try fx.initRepo()
        let log = fx.dir + "/events.jsonl", envLog = fx.dir + "/env.txt"
        // The hook also prints to its stdout, which must not end up in the command's output.
        let hook = "cat >> \(log); echo \"$REPO_EVENT_COMMAND $REPO_EVENT_SUCCESS $REPO_EVENT_EXIT_CODE\" >> \(envLog); echo hook-output"
        let stored = try fx.run(["store", "--name", "db.sql", "--json", "--notify-command", hook], stdinPath: fx.file("in", TestData.random(50_000)))
        XCTAssertEqual(stored.status, 0, stored.stderr)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: stored.stdout) as? [String: Any], "stdout is still only the command's JSON: \(stored.out)")
        var e = try events(log)
        XCTAssertEqual(e.count, 1)
        XCTAssertEqual(e[0]["command"] as? String, "store")
        XCTAssertEqual(e[0]["success"] as? Bool, true)
        XCTAssertEqual(e[0]["exit_code"] as? Int, 0)
        XCTAssertTrue(e[0]["error"] is NSNull)
        XCTAssertEqual(e[0]["repository"] as? String, fx.repo)
        let snap = try XCTUnwrap(e[0]["snapshot"] as? [String: Any])
        XCTAssertEqual(snap["name"] as? String, "db.sql")
        XCTAssertEqual(snap["total_bytes"] as? Int, 50_000)
        for key in ["version", "event", "started", "ended", "duration_seconds", "host", "username", "hint"] {
            XCTAssertNotNil(e[0][key], key)
        }

        // A store whose producer fails: the event says so, with the command's exit code and error.
        let failed = try fx.run(["store", "--name", "x", "--notify-command", hook, "--", "sh", "-c", "echo partial; exit 3"])
        XCTAssertNotEqual(failed.status, 0)
        e = try events(log)
        XCTAssertEqual(e.count, 2)
        XCTAssertEqual(e[1]["success"] as? Bool, false)
        XCTAssertEqual(e[1]["exit_code"] as? Int, Int(failed.status))
        XCTAssertFalse((e[1]["error"] as? String ?? "").isEmpty, "\(e[1])")
        XCTAssertTrue(e[1]["snapshot"] is NSNull)

        // From the environment, only on failure: a passing check sends nothing, a failing one does.
        let env = ["REPO_NOTIFY_COMMAND": hook, "REPO_NOTIFY_ON": "failure"]
        XCTAssertEqual(try fx.run(["check"], env: env).status, 0)
        XCTAssertEqual(try events(log).count, 2)
        let wrong = try fx.run(["check"], env: env.merging(["REPO_PASSWORD": "wrong"]) { $1 })
        XCTAssertEqual(wrong.status, 12)
        e = try events(log)
        XCTAssertEqual(e.count, 3)
        XCTAssertEqual(e[2]["command"] as? String, "check")
        XCTAssertEqual(e[2]["exit_code"] as? Int, 12)
        XCTAssertTrue((e[2]["error"] as? String ?? "").contains("wrong password"), "\(e[2])")
        // Commands that only read do not notify.
        XCTAssertEqual(try fx.run(["snapshots", "--notify-command", hook]).status, 0)
        XCTAssertEqual(try events(log).count, 3)
        // A command line that does not parse (a broken cron entry) still reaches the hook.
        let usage = try fx.run(["store", "--notify-command", hook], stdinPath: fx.file("in2", Data("x".utf8)))
        XCTAssertEqual(usage.status, 2, usage.stderr)
        e = try events(log)
        XCTAssertEqual(e.count, 4)
        XCTAssertEqual(e[3]["command"] as? String, "store")
        XCTAssertEqual(e[3]["exit_code"] as? Int, 2)
        let lines = try String(contentsOfFile: envLog, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "store 1 0")
        XCTAssertEqual(lines.last, "store 0 2")
    }

    func testFailingHookDoesNotChangeTheResult() throws {
        let fx = Fixture()
        try fx.initRepo()
        let ok = try fx.run(["store", "--name", "a", "--notify-command", "cat >/dev/null; echo 'slack is down' >&2; exit 7"],
                            stdinPath: fx.file("in", Data("x".utf8)))
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stderr.contains("notify command failed") && ok.stderr.contains("status 7"), ok.stderr)
        XCTAssertTrue(ok.stderr.contains("slack is down"), "the hook's own stderr is shown: \(ok.stderr)")
        XCTAssertEqual(try fx.snapshots().count, 1)
        // With -q too (cron runs with -q): the warning is the only trace of a broken hook.
        let quiet = try fx.run(["check", "-q", "--notify-command", "exit 7"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertTrue(quiet.stderr.contains("notify command failed"), quiet.stderr)
        // A failing command stays a failure, with its own exit code, whatever the hook does.
        let bad = try fx.run(["check", "--notify-command", "exit 0"], env: ["REPO_PASSWORD": "wrong"])
        XCTAssertEqual(bad.status, 12)
        // A hook that cannot start at all.
        let missing = try fx.run(["check", "--notify-command", "/nonexistent/hook"])
        XCTAssertEqual(missing.status, 0, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("notify command failed"), missing.stderr)
    }
}
