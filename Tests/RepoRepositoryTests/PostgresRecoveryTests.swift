import XCTest
import Foundation
import RepoPrimitives
import RepoSnapshot
import RepoOperations

/// The parts of `pg-backup`/`pg-restore` that need no server: the recovery target and the
/// settings written for it, quoting, the choice of base backup, and the exclusion rules.
final class PostgresRecoveryTests: XCTestCase {
    func testTargetTimeIsWrittenInUTCWithMicrosecondsTruncated() throws {
        let t = try XCTUnwrap(RecoveryTarget.time(rfc3339: "2026-11-30T12:29:59.1234569+02:00"))
        guard case .time(let s, let ns) = t else { return XCTFail() }
        XCTAssertEqual(RecoveryTarget.postgresTime(seconds: s, nanoseconds: ns), "2026-11-30 10:29:59.123456+00")
        let whole = try XCTUnwrap(RecoveryTarget.time(rfc3339: "2026-01-02T03:04:05Z"))
        XCTAssertEqual(whole.settings(action: nil).first { $0.name == "recovery_target_time" }?.value, "2026-01-02 03:04:05.000000+00")
        XCTAssertNil(RecoveryTarget.time(rfc3339: "yesterday"))
    }

    func testSettingsClearOtherTargetsBeforeSettingTheChosenOne() {
        let lsn = RecoveryTarget.lsn(LSN(0x3_0000_0060)).settings(action: .promote)
        XCTAssertEqual(lsn.map(\.name), ["recovery_target", "recovery_target_name", "recovery_target_time", "recovery_target_xid",
                                         "recovery_target_lsn", "recovery_target_action", "recovery_target_timeline"])
        XCTAssertEqual(lsn[4].value, "3/60")
        XCTAssertEqual(lsn[5].value, "promote")
        XCTAssertEqual(lsn.filter { $0.value.isEmpty }.count, 4)
        XCTAssertEqual(RecoveryTarget.name("before-migration").settings(action: nil).first { $0.name == "recovery_target_action" }?.value,
                       "pause", "PostgreSQL's default, written out")
        let latest = RecoveryTarget.latest.settings(action: nil)
        XCTAssertFalse(latest.contains { $0.name == "recovery_target_action" })
        XCTAssertEqual(latest.last?.value, "latest")
        XCTAssertTrue(latest.dropLast().allSatisfy { $0.value.isEmpty })
    }

    func testRestoreCommandIsQuotedForTheShellAndTheConfigurationFile() {
        let cmd = RecoverySettings.walFetchCommand(binary: "/usr/local/bin/repo", repository: "/srv/backup/repo",
                                                   extraArguments: ["--password-file", "/etc/repo/password"])
        XCTAssertEqual(cmd, "/usr/local/bin/repo wal-fetch --repo /srv/backup/repo --password-file /etc/repo/password %f %p")
        let odd = RecoverySettings.walFetchCommand(binary: "/opt/my tools/repo", repository: "/srv/it's 100%",
                                                   extraArguments: ["--password-command", "cat /k\\ey"])
        XCTAssertEqual(odd, #"'/opt/my tools/repo' wal-fetch --repo '/srv/it'\''s 100%%' --password-command 'cat /k\ey' %f %p"#)
        XCTAssertEqual(RecoverySettings.configQuote(odd),
                       #"'''/opt/my tools/repo'' wal-fetch --repo ''/srv/it''\\''''s 100%%'' --password-command ''cat /k\\ey'' %f %p'"#)
        XCTAssertEqual(RecoverySettings.shellQuote(""), "''")

        let settings = RecoverySettings(restoreCommand: cmd, target: .latest, action: nil, comment: "by a test\nsecond line")
        let lines = settings.text.split(separator: "\n")
        XCTAssertEqual(lines.first, "# by a test second line")
        XCTAssertEqual(lines[1], "restore_command = '\(cmd)'")
        XCTAssertTrue(lines.contains("recovery_target_timeline = 'latest'"))
    }

    func testSettingsAreAppendedAndRecoverySignalCreated() throws {
        let dir = NSTemporaryDirectory() + "pg-settings-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "archive_command = 'x'\n".write(toFile: dir + "/postgresql.auto.conf", atomically: true, encoding: .utf8)
        let settings = RecoverySettings(restoreCommand: "repo wal-fetch %f %p", target: .name("p1"), action: .shutdown, comment: "c")
        try settings.write(into: dir, owner: nil)
        let conf = try String(contentsOfFile: dir + "/postgresql.auto.conf", encoding: .utf8)
        XCTAssertTrue(conf.hasPrefix("archive_command = 'x'\n\n# c\nrestore_command = 'repo wal-fetch %f %p'\n"), conf)
        XCTAssertTrue(conf.hasSuffix("recovery_target_name = 'p1'\nrecovery_target_action = 'shutdown'\nrecovery_target_timeline = 'latest'\n"), conf)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: dir + "/recovery.signal")[.size] as? Int, 0)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: dir + "/recovery.signal")[.posixPermissions] as? Int, 0o600)
    }

    func backup(_ id: UInt8, stopTime: String, stopLSN: UInt64, partial: Bool = false) -> SnapshotEntry {
        let pg = PostgresBackup(systemIdentifier: "7", serverVersion: 150018, walSegmentSize: 16 << 20, timeline: 1,
                                startLSN: LSN(stopLSN - 0x100), stopLSN: LSN(stopLSN), startWAL: "", stopWAL: "",
                                startTime: stopTime, stopTime: stopTime, label: "b\(id)", dataDirectory: "/d")
        let snapshot = Snapshot(time: stopTime, host: "h", username: "u", name: nil, paths: ["/d"], tags: ["pg-backup"],
                                tree: BlobID(bytes: [UInt8](repeating: id, count: 32)), partial: partial ? true : nil,
                                stats: .init(totalBytes: 0, chunks: 0, newBlobs: 0, newBytes: 0, seconds: 0), program: "t", postgres: pg)
        return SnapshotEntry(id: Hash256(bytes: [UInt8](repeating: id, count: 32)), snapshot: snapshot, date: Date())
    }

    func testTheNewestBackupThatEndedBeforeTheTargetIsChosen() throws {
        var plain = backup(9, stopTime: "2026-11-30T12:00:00Z", stopLSN: 0x9000)
        plain.snapshot.postgres = nil
        let entries = [backup(1, stopTime: "2026-11-30T10:00:00.5Z", stopLSN: 0x1000),
                       backup(2, stopTime: "2026-11-30T11:00:00Z", stopLSN: 0x2000),
                       backup(3, stopTime: "2026-11-30T11:30:00Z", stopLSN: 0x3000, partial: true),
                       plain]
        func chosen(_ t: RecoveryTarget) -> String? {
            PointInTimeRestore.choose(t, among: entries)?.snapshot.postgres?.label
        }
        XCTAssertEqual(chosen(RecoveryTarget.time(rfc3339: "2026-11-30T10:59:59.999Z")!), "b1")
        XCTAssertEqual(chosen(RecoveryTarget.time(rfc3339: "2026-11-30T11:00:00Z")!), "b2", "a target at the stop time is reachable")
        XCTAssertEqual(chosen(RecoveryTarget.time(rfc3339: "2026-11-30T13:00:00Z")!), "b2", "partial and plain snapshots are never chosen")
        XCTAssertNil(chosen(RecoveryTarget.time(rfc3339: "2026-11-30T10:00:00.4Z")!))
        XCTAssertEqual(chosen(.lsn(LSN(0x1FFF))), "b1")
        XCTAssertEqual(chosen(.lsn(LSN(0x2000))), "b2")
        XCTAssertEqual(chosen(.latest), "b2")
        XCTAssertEqual(chosen(.name("x")), "b2")
    }

    func testExclusionRulesFollowPostgreSQL() {
        let rules = DataDirectoryExclusions.rules(dataDirectory: "/pg")
        func r(_ dir: String, _ names: [String]) -> [String: String] {
            Dictionary(uniqueKeysWithValues: rules(Array(dir.utf8), names.map { Array($0.utf8) }).map {
                (String(decoding: $0.key, as: UTF8.self), $0.value == .exclude ? "exclude" : "empty")
            })
        }
        XCTAssertEqual(r("/pg", ["base", "pg_wal", "pg_replslot", "pg_stat", "pg_stat_tmp", "postmaster.pid", "postmaster.opts",
                                 "backup_label", "backup_label.old", "postgresql.conf", "pg_internal.init"]),
                       ["pg_wal": "empty", "pg_replslot": "empty", "pg_stat_tmp": "empty", "postmaster.pid": "exclude",
                        "postmaster.opts": "exclude", "backup_label": "exclude", "backup_label.old": "exclude",
                        "pg_internal.init": "exclude"])
        // In a database directory: temporary relations and unlogged relations' other forks.
        XCTAssertEqual(r("/pg/base/5", ["16384", "16384_init", "16384_fsm", "16384.1", "16390", "16390_vm", "t3_16400",
                                        "t3_16400_fsm", "pg_internal.init", "pgsql_tmp", "PG_VERSION", "16384x"]),
                       ["16384": "exclude", "16384_fsm": "exclude", "16384.1": "exclude", "t3_16400": "exclude",
                        "t3_16400_fsm": "exclude", "pg_internal.init": "exclude", "pgsql_tmp": "exclude"])
        // Elsewhere only the names that are excluded everywhere.
        XCTAssertEqual(r("/pg/global", ["1262", "1262_init", "pg_control", "pg_internal.init"]), ["pg_internal.init": "exclude"])
        XCTAssertEqual(r("/pg/base", ["5", "pgsql_tmp"]), ["pgsql_tmp": "exclude"])
    }
}
