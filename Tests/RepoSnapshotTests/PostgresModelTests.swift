import XCTest
import Foundation
@testable import RepoSnapshot

/// WAL names, LSNs, history files, WAL retention (FORMAT.md §27.5) and pg-status's windows.
final class PostgresModelTests: XCTestCase {
    let size = 16 << 20

    func seg(_ n: UInt64, _ tli: UInt32 = 1) -> WALFileName { WALFileName(timeline: tli, segment: n, segmentSize: size) }

    func testNamesAndPositions() throws {
        let n = try XCTUnwrap(WALFileName("000000010000000A000000FE"))
        XCTAssertEqual(n.kind, .segment)
        XCTAssertEqual(n.segmentNumber(segmentSize: size), 0xA * 256 + 0xFE)
        XCTAssertEqual(seg(0xA * 256 + 0xFF).text, "000000010000000A000000FF")
        XCTAssertEqual(seg(0xA * 256 + 0x100).text, "000000010000000B00000000")
        XCTAssertEqual(WALFileName("00000002.history")?.kind, .history)
        XCTAssertEqual(WALFileName("000000010000000A000000FE.partial")?.kind, .partial)
        XCTAssertEqual(WALFileName("000000010000000A000000FE.00000028.backup")?.kind, .backup)
        for bad in ["", "00000001000000000000000", "000000010000000a000000fe", "0000000100000000000000001", "../../etc/passwd",
                    "000000010000000A000000FE.backup", "0000000G.history", "00000001.historyx"] {
            XCTAssertNil(WALFileName(bad), bad)
        }
        XCTAssertEqual(n.objectName, "wal/00000001/000000010000000A000000FE")
        XCTAssertEqual(LSN("16/B374D848")?.value, 0x16_B374_D848)
        XCTAssertEqual(LSN(0x16_B374_D848).description, "16/B374D848")
        XCTAssertEqual(LSN("0/3000028")?.segment(size: size), 3)
        XCTAssertNil(LSN("16B374D848")); XCTAssertNil(LSN("1/"))
        XCTAssertLessThan(try XCTUnwrap(WALFileName("000000010000000100000000")), try XCTUnwrap(WALFileName("000000020000000000000001")))
    }

    func testTimelineHistory() throws {
        let h = try TimelineHistory(timeline: 3, text: "1\t0/3000198\tno recovery target specified\n\n# comment\n2\t0/5000000\tat restore point \"x\"\n")
        XCTAssertEqual(h.entries.map(\.timeline), [1, 2])
        XCTAssertEqual(h.timeline(at: LSN(0x100)), 1)
        XCTAssertEqual(h.timeline(at: LSN(0x400_0000)), 2)
        XCTAssertEqual(h.timeline(at: LSN(0x600_0000)), 3)
        XCTAssertThrowsError(try TimelineHistory(timeline: 2, text: "one\ttwo\n"))
    }

    func backup(_ id: String, start: UInt64, stop: UInt64, tli: UInt32 = 1, daysAgo: Double, now: Date) -> WALRetention.Backup {
        WALRetention.Backup(id: id, date: now.addingTimeInterval(-daysAgo * 86400), info: PostgresBackup(
            systemIdentifier: "1", serverVersion: 150000, walSegmentSize: size, timeline: tli,
            startLSN: LSN(start * UInt64(size) + 0x28), stopLSN: LSN(stop * UInt64(size) + 0x100),
            startWAL: seg(start, tli).text, stopWAL: seg(stop, tli).text, startTime: "", stopTime: "2026-11-01T00:00:00Z",
            label: "l", dataDirectory: "/d"))
    }

    /// Old backups keep only their own WAL; the hot tier's oldest backup opens the window;
    /// history files and the window's backup files stay.
    func testRetentionKeepsEachBackupsWALAndTheHotWindow() throws {
        let now = Date()
        let cold = backup("c0ld", start: 2, stop: 3, daysAgo: 40, now: now)
        let warm = backup("w4rm", start: 10, stop: 10, daysAgo: 10, now: now)
        let hot1 = backup("h0t1", start: 20, stop: 21, daysAgo: 5, now: now)
        let hot2 = backup("h0t2", start: 30, stop: 30, daysAgo: 1, now: now)
        var files = (1...35).map { seg(UInt64($0)) }
        files.append(WALFileName("00000002.history")!)
        files.append(WALFileName(seg(20).text + ".00000028.backup")!)
        files.append(WALFileName(seg(5).text + ".00000028.backup")!)
        let plan = WALRetention.plan(files: files, remaining: [cold, warm, hot1, hot2], hotHorizon: now.addingTimeInterval(-7 * 86400))
        let kept = Set(plan.filter(\.keep).map(\.file.text))
        let expected = Set([2, 3, 10].map { seg(UInt64($0)).text } + (20...35).map { seg(UInt64($0)).text }
                           + ["00000002.history", seg(20).text + ".00000028.backup"])
        XCTAssertEqual(kept, expected)
        XCTAssertTrue(plan.first { $0.file == seg(25) }!.reason.contains("h0t1"))
        XCTAssertTrue(plan.first { $0.file == seg(3) }!.reason.contains("c0ld"))

        // No backup in the hot tier: the newest backup opens the window.
        let plan2 = WALRetention.plan(files: files, remaining: [cold, warm], hotHorizon: now)
        XCTAssertEqual(Set(plan2.filter(\.keep).map(\.file.text)).subtracting(["00000002.history"]),
                       Set([2, 3].map { seg(UInt64($0)).text } + (10...35).map { seg(UInt64($0)).text } + [seg(20).text + ".00000028.backup"]))
        // No backup at all: nothing goes.
        XCTAssertTrue(WALRetention.plan(files: files, remaining: [], hotHorizon: now).allSatisfy(\.keep))
    }

    func testStatusWindowsGapsAndTimelines() throws {
        let now = Date()
        let b1 = backup("b1", start: 2, stop: 3, daysAgo: 3, now: now)
        let b2 = backup("b2", start: 10, stop: 11, daysAgo: 1, now: now)
        // Timeline 1: 2…8 and 10…14 (gap 9); timeline 2 branches at segment 13 and runs 13…16.
        var files: [(name: WALFileName, archived: Date?)] = ((2...8).map { UInt64($0) } + (10...14).map { UInt64($0) }).map { (seg($0), nil) }
        files += (13...16).map { (seg(UInt64($0), 2), nil) }
        let history = try TimelineHistory(timeline: 2, text: "1\t0/D800000\tpromoted\n")
        let s = WALStatus(files: files, histories: [2: history], backups: [b1, b2], segmentSize: size)
        XCTAssertEqual(s.timelines.map(\.segments), [12, 4])
        XCTAssertEqual(s.timelines[1].parent, 1)
        XCTAssertEqual(s.gaps.count, 1)
        XCTAssertEqual(s.gaps[0].from, seg(9).text)
        XCTAssertFalse(s.gaps[0].harmsRecovery, "between older backups")
        XCTAssertTrue(s.problems.isEmpty, "\(s.problems)")
        XCTAssertEqual(s.windows.filter { $0.backup == "b1" }.map(\.to), [LSN(9 * UInt64(size))])
        let fromB2 = s.windows.filter { $0.backup == "b2" }
        XCTAssertEqual(fromB2.map(\.timeline), [1, 2])
        XCTAssertEqual(fromB2[1].from, LSN(0xD80_0000))
        XCTAssertEqual(fromB2[1].to, LSN(17 * UInt64(size)))

        // A branch exactly at the end of the parent's stored WAL (a segment boundary), as a
        // promotion after recovery to the end of the archive makes.
        let atBoundary = try TimelineHistory(timeline: 3, text: "1\t0/F000000\tend of the archive\n")
        let tl3: [(name: WALFileName, archived: Date?)] = ((10...14).map { (seg(UInt64($0)), nil) }) + [(seg(15, 3), nil)]
        let branched = WALStatus(files: tl3, histories: [3: atBoundary], backups: [b2], segmentSize: size)
        XCTAssertEqual(branched.windows.map(\.timeline), [1, 3], "\(branched.windows)")

        // A hole after the newest backup, and a backup whose WAL is missing, are problems.
        let holed = files.filter { $0.name != seg(12) && $0.name != seg(3) }
        let bad = WALStatus(files: holed, histories: [2: history], backups: [b1, b2], segmentSize: size)
        XCTAssertEqual(bad.problems.count, 2, "\(bad.problems)")
        XCTAssertTrue(bad.problems.contains { $0.contains("b1") && $0.contains("cannot be made consistent") })
        XCTAssertTrue(bad.problems.contains { $0.contains(seg(12).text) && $0.contains("after the newest base backup") })
        XCTAssertTrue(WALStatus(files: files, histories: [:], backups: [], segmentSize: size).problems.contains { $0.contains("no base backup") })
    }

    /// The path from a backup to a timeline, PostgreSQL's 'latest', and where histories diverge.
    func testTimelinePathLatestAndDivergence() throws {
        let h2 = try TimelineHistory.strict(timeline: 2, bytes: Array("1\t0/5000100\tbefore 2026-12-02 16:16:21+00\n".utf8))
        let h3 = try TimelineHistory.strict(timeline: 3, bytes: Array("1\t0/5000100\tx\n2\t0/7000000\ty\n".utf8))
        let histories: [UInt32: TimelineHistory] = [2: h2, 3: h3]
        XCTAssertEqual(TimelinePath.newest(from: 1, histories: histories), 3)
        XCTAssertEqual(TimelinePath.newest(from: 1, histories: [3: h3]), 1, "probing stops at the first missing history")
        let p = try XCTUnwrap(TimelinePath(from: 1, at: LSN(0x2000028), to: 3, histories: histories))
        XCTAssertEqual(p.branches.map { [$0.parent, $0.child] }, [[1, 2], [2, 3]])
        XCTAssertEqual(TimelinePath(from: 1, at: LSN(0x2000028), to: 1, histories: histories)?.branches, [])
        // A backup on timeline 1 after the branch, or on a timeline not in the history: none.
        XCTAssertNil(TimelinePath(from: 1, at: LSN(0x6000028), to: 2, histories: histories))
        XCTAssertNil(TimelinePath(from: 4, at: LSN(0x2000028), to: 3, histories: histories))
        XCTAssertNil(TimelinePath(from: 1, at: LSN(0x2000028), to: 5, histories: histories))
        XCTAssertNotNil(TimelinePath(from: 2, at: LSN(0x6000000), to: 3, histories: histories))
        // Timeline 1 archived past segment 5 (the switchpoint's): diverged there; timeline 2
        // ends in segment 6, before its switchpoint's segment 7: not diverged.
        let seg = 16 << 20
        XCTAssertEqual(p.divergences(lastSegment: [1: 5, 2: 6], segmentSize: seg).map(\.parent), [1])
        XCTAssertEqual(p.divergences(lastSegment: [1: 4, 2: 7], segmentSize: seg).map(\.parent), [2])
        XCTAssertEqual(p.divergences(lastSegment: [1: 4], segmentSize: seg), [])
        // History files as PostgreSQL reads them.
        XCTAssertThrowsError(try TimelineHistory.strict(timeline: 3, bytes: Array("2\t0/1\tx\n1\t0/2\ty\n".utf8)))
        XCTAssertThrowsError(try TimelineHistory.strict(timeline: 2, bytes: Array("2\t0/1\tx\n".utf8)))
        XCTAssertThrowsError(try TimelineHistory.strict(timeline: 2, bytes: [0x31, 0x09, 0xFF, 0x0A]))
        // A restore point name in LATIN1 in the reason is PostgreSQL's own output: refusing it
        // would fail archive_command for good and fill pg_wal.
        let latin1 = Array("1\t0/3000198\tat restore point \"caf".utf8) + [0xE9, 0x22, 0x0A]
        XCTAssertEqual(try TimelineHistory.strict(timeline: 2, bytes: latin1).entries.map(\.switchpoint), [LSN(0x3000198)])
    }
}
