import XCTest
import Foundation

/// Exit 0 only when all of it happened: output that could not be written, producers that
/// ignore SIGTERM, times that must not move forward.
final class OutputAndProducerTests: XCTestCase {
    func testOutputThatCannotBeWrittenIsAnError() throws {
        let fx = Fixture()
        try fx.initRepo()
        _ = try fx.store("db.sql", from: fx.file("a", Data("a\n".utf8)))
        for args in [["snapshots"], ["snapshots", "--json"], ["stats"], ["check"], ["ls", "latest"]] {
            let bin = Fixture.binary
            let r = try fx.shell("'\(bin)' \(args.joined(separator: " ")) > /dev/full 2>/dev/null; echo $?")
            XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "1", "repo \(args.joined(separator: " ")) > /dev/full")
        }
        // A reader that stops early is not an error.
        let head = try fx.shell("'\(Fixture.binary)' snapshots | head -c 1 >/dev/null; echo ${PIPESTATUS:-x}")
        XCTAssertEqual(head.status, 0)
    }

    func testInterruptKillsAProducerThatIgnoresSIGTERM() throws {
        let fx = Fixture()
        try fx.initRepo()
        let pids = fx.dir + "/pids"
        let started = try fx.start(["store", "--name", "trap", "--", "sh", "-c",
                                    "trap '' TERM INT; echo $$ > \(pids); sleep 77 & echo $! >> \(pids); sleep 78 & echo $! >> \(pids); wait"])
        Thread.sleep(forTimeInterval: 1.5)
        kill(started.0.processIdentifier, SIGINT)
        let r = fx.collect(started)
        XCTAssertEqual(r.status, 130, r.stderr)
        Thread.sleep(forTimeInterval: 0.5)
        let all = (try String(contentsOfFile: pids, encoding: .utf8)).split(separator: "\n").compactMap { Int32($0) }
        XCTAssertEqual(all.count, 3)
        // Alive and not a zombie waiting to be reaped.
        let alive = all.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(close, offsetBy: 2)] != "Z"
        }
        for pid in alive { kill(pid, SIGKILL) }
        XCTAssertEqual(alive, [], "the producer outlived repo")
        XCTAssertEqual(try fx.snapshots().count, 0)
    }

    func testSubMillisecondTimesDoNotMoveToTheNextDay() throws {
        let fx = Fixture()
        try fx.initRepo()
        _ = try fx.store("rnd", from: fx.file("a", Data("a\n".utf8)), extra: ["--time", "2024-05-10T23:59:59.9996Z"])
        XCTAssertEqual(try fx.snapshots()[0]["time"] as? String, "2024-05-10T23:59:59.999Z")
    }
}
