import XCTest
import Foundation
import RepoOperations
import RepoRepository
import RepoStorage
import RepoLaunch
@testable import RepoCLI

/// The fast path of `wal-fetch` (`WALFetchFastPath`) reads its command lines as the argument
/// parser does, and leaves every other one to the parser.
final class WALFetchFastPathTests: XCTestCase {
    let segment = "000000010000000A000000FE"

    func testReadsWhatTheParserReads() throws {
        let lines: [[String]] = [
            ["--repo", "/r", "--key-file", "/k", segment, "pg_wal/RECOVERYXLOG"],
            ["--repo=/r", "--spool", "/s", "--prefetch", "8", "-q", segment, "d"],
            [segment, "d", "--repo", "/r x", "--password-file", "/p", "-v"],
            ["--cache-dir", "/c", "--password-command", "cat /p", "--prefetch=0", segment, "/abs/d"],
            ["--verbose", "--spool=/s", segment, "d"],
            [segment, "d"],
        ]
        for line in lines {
            guard let fast = WALFetchFastPath.parse(line) else { XCTFail("not read: \(line)"); continue }
            let parsed = try RepoCommand.WalFetch.parseAsRoot(line) as! RepoCommand.WalFetch
            XCTAssertEqual(fast.repository, parsed.global.repository, "\(line)")
            XCTAssertEqual(fast.cacheDir, parsed.global.cacheDir, "\(line)")
            XCTAssertEqual(fast.spool, parsed.spool, "\(line)")
            XCTAssertEqual(fast.prefetch, parsed.prefetch, "\(line)")
            XCTAssertEqual(fast.verbose, parsed.global.verbose, "\(line)")
            XCTAssertEqual(fast.name, parsed.name, "\(line)")
            XCTAssertEqual(fast.destination, parsed.destination, "\(line)")
        }
    }

    func testLeavesEverythingElseToTheParser() {
        let lines: [[String]] = [
            ["--help"], ["-h", segment, "d"], ["--version"],
            [segment], [segment, "d", "e"],
            ["--json", segment, "d"], ["--kms", segment, "d"], ["--prefetch-worker", segment, "d"],
            ["--repo", "/a", "--repo", "/b", segment, "d"],
            ["--prefetch", "-1", segment, "d"], ["--prefetch", "x", segment, "d"],
            ["--repo", segment, "d"],
            ["-q", "-v", segment, "d"], ["--quiet=1", segment, "d"],
            ["--", segment, "d"], ["--metrics-file", "/m", segment, "d"],
        ]
        for line in lines { XCTAssertNil(WALFetchFastPath.parse(line), "\(line)") }
    }

    func testWALPushReadsWhatTheParserReads() throws {
        let path = "/var/lib/postgresql/15/main/pg_wal/" + segment
        let lines: [[String]] = [
            ["--repo", "/r", "--key-file", "/k", path],
            ["--key-file=/k", "-q", "--compression", "zstd:3", path],
            [path, "--cache-dir", "/c", "--verbose"],
            ["pg_wal/" + segment],
        ]
        for line in lines {
            guard let fast = WALPushFastPath.parse(line) else { XCTFail("not read: \(line)"); continue }
            let parsed = try RepoCommand.WalPush.parseAsRoot(line) as! RepoCommand.WalPush
            XCTAssertEqual(fast.repository, parsed.global.repository, "\(line)")
            XCTAssertEqual(fast.keyFile, parsed.global.keyFile, "\(line)")
            XCTAssertEqual(fast.compression, parsed.compression, "\(line)")
            XCTAssertEqual(fast.cacheDir, parsed.global.cacheDir, "\(line)")
            XCTAssertEqual(fast.quiet, parsed.global.quiet, "\(line)")
            XCTAssertEqual(fast.verbose, parsed.global.verbose, "\(line)")
            XCTAssertEqual(fast.path, parsed.path, "\(line)")
        }
        for line in [["--password-file", "/p", path], ["--kms", path], ["--metrics-file", "/m", path], [path, path],
                     ["--key-file", "/a", "--key-file", "/b", path], ["--help"], ["-q", "-v", path]] {
            XCTAssertNil(WALPushFastPath.parse(line), "\(line)")
        }
    }

    /// No explicit spool and an S3 repository: the parser's path, which reads the config.
    func testS3WithoutASpoolIsLeftToTheParser() {
        let call = WALFetchFastPath.parse(["--repo", "s3:http://127.0.0.1:1/b", segment, "d"])!
        XCTAssertNil(WALFetchFastPath.spoolDirectory(call, environment: { _ in nil }))
        // A named spool: the location's own subdirectory, without reading anything.
        XCTAssertEqual(WALFetchFastPath.spoolDirectory(call, environment: { ["REPO_WAL_SPOOL": "/s"][$0] }),
                       WALSpool.directory(under: "/s", location: "s3:http://127.0.0.1:1/b"))
    }

    /// The spooled fast path's check of a local repository: the `.repository` id must appear
    /// in the config's bytes as a JSON string; another id, a missing or non-hex marker: no.
    func testSpoolOwnerIsCheckedAgainstTheRawConfig() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/spool-owner-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spool = WALSpool(directory: dir)
        let id = String(repeating: "a7", count: 32), other = String(repeating: "5c", count: 32)
        let config = Array("{\n  \"compression\" : \"zstd:3\",\n  \"id\" : \"\(id)\",\n  \"version\" : 1\n}\n".utf8)
        XCTAssertFalse(spool.holds(repositoryConfig: config), "no directory, no marker")
        XCTAssertEqual(try spool.adopt(repository: id), 0)
        XCTAssertTrue(spool.holds(repositoryConfig: config))
        XCTAssertTrue(spool.holds(repository: id))
        XCTAssertFalse(spool.holds(repositoryConfig: Array(String(decoding: config, as: UTF8.self).replacingOccurrences(of: id, with: other).utf8)))
        FileManager.default.createFile(atPath: dir + "/" + segment, contents: Data("x".utf8))
        XCTAssertEqual(try spool.adopt(repository: other), 1, "another repository's segment is removed")
        XCTAssertFalse(spool.holds(repositoryConfig: config))
        try Data("zstd:3\n".utf8).write(to: URL(fileURLWithPath: dir + "/.repository"))
        XCTAssertFalse(spool.holds(repositoryConfig: config), "a marker that is not an id matches nothing")
        // The marker is read and trimmed byte by byte (no Foundation on the spooled path).
        try Data(" \t\(id)\r\n\n".utf8).write(to: URL(fileURLWithPath: dir + "/.repository"))
        XCTAssertTrue(spool.holds(repositoryConfig: config), "white space around the id is not part of it")
        XCTAssertTrue(spool.holds(repository: id))
        try Data((id + id + id + id + id).utf8).write(to: URL(fileURLWithPath: dir + "/.repository"))
        XCTAssertFalse(spool.holds(repository: id), "an overlong marker names no repository")
        XCTAssertFalse(spool.holds(repositoryConfig: config))
        try Data().write(to: URL(fileURLWithPath: dir + "/.repository"))
        XCTAssertFalse(spool.holds(repositoryConfig: config), "an empty marker names no repository")
    }

    /// On a real repository's config: the fast path serves a named spool that `adopt` made the
    /// repository's, not one another repository took over; `adopt` does not take a spool over
    /// while a prefetcher holds its lock.
    func testFastPathServesOnlyTheRepositorysOwnSpool() throws {
        let fx = Fixture()
        try fx.initRepo()
        let id = try Repository.readConfig(backend: LocalBackend(path: fx.repo)).id.hex
        let named = fx.dir + "/spool"
        let spool = WALSpool(directory: WALSpool.directory(under: named, location: fx.repo))
        let call = try XCTUnwrap(WALFetchFastPath.parse(["--repo", fx.repo, "--spool", named, segment, "d"]))
        XCTAssertNil(WALFetchFastPath.spoolDirectory(call, environment: { _ in nil }), "not adopted yet")
        try spool.adopt(repository: id)
        XCTAssertEqual(WALFetchFastPath.spoolDirectory(call, environment: { _ in nil }), spool.directory)
        let other = String(repeating: "5c", count: 32)
        let lock = open(spool.directory + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        XCTAssertEqual(flock(lock, LOCK_EX | LOCK_NB), 0)
        XCTAssertThrowsError(try spool.adopt(repository: other), "a prefetcher holds the spool")
        close(lock)
        XCTAssertTrue(spool.holds(repository: id))
        try spool.adopt(repository: other)
        XCTAssertNil(WALFetchFastPath.spoolDirectory(call, environment: { _ in nil }), "another repository's spool")
    }

    /// The location names one key however it is written: file://, trailing or repeated
    /// slashes, `.` and `..`, relative to the working directory.
    func testSpoolLocationKeyIsNormalized() {
        let a = WALSpool.directory(under: "/s", location: "/srv/backup/repo")
        for same in ["file:///srv/backup/repo", "/srv/backup/repo/", "/srv//backup/./x/../repo"] {
            XCTAssertEqual(WALSpool.directory(under: "/s", location: same), a, same)
        }
        let cwd = FileManager.default.currentDirectoryPath
        XCTAssertEqual(WALSpool.directory(under: "/s", location: "rel/repo"), WALSpool.directory(under: "/s", location: cwd + "/rel/repo"))
        XCTAssertNotEqual(WALSpool.directory(under: "/s", location: "s3:http://h/b"), WALSpool.directory(under: "/s", location: "s3:http://h/c"))
        // The normalization itself, at its edges.
        for (path, normal) in [("/", "/"), ("//", "/"), ("/..", "/"), ("/a/..", "/"), ("/a/b/", "/a/b"), ("/a/./b//c/../d", "/a/b/d"),
                               ("x", cwd == "/" ? "/x" : cwd + "/x")] {
            XCTAssertEqual(FileSystem.normalize(path), normal, path)
        }
    }

    /// Each repository location has its own subdirectory of a named spool, the same whether
    /// the location comes from --repo or REPO_REPOSITORY; no location, no fast path.
    func testNamedSpoolsAreKeyedByTheRepositoryLocation() {
        let a = WALSpool.directory(under: "/s", location: "/srv/repo-a"), b = WALSpool.directory(under: "/s", location: "/srv/repo-b")
        XCTAssertNotEqual(a, b)
        XCTAssertTrue(a.hasPrefix("/s/") && a.count == "/s/".count + 16, a)
        XCTAssertEqual(a, WALSpool.directory(under: "/s", location: "/srv/repo-a"))
        let viaOption = WALFetchFastPath.parse(["--repo", "/nonexistent/a", "--spool", "/s", segment, "d"])!
        let viaEnvironment = WALFetchFastPath.parse(["--spool", "/s", segment, "d"])!
        XCTAssertEqual(WALFetchFastPath.spoolDirectory(viaOption, environment: { _ in nil }),
                       WALFetchFastPath.spoolDirectory(viaEnvironment, environment: { ["REPO_REPOSITORY": "/nonexistent/a"][$0] }))
        XCTAssertNil(WALFetchFastPath.spoolDirectory(viaEnvironment, environment: { _ in nil }))
    }

    /// The launcher finds the default spool (`<cache>/<id>/wal-prefetch`) from the id in the
    /// config's bytes, and serves it only once `.repository` there names this repository.
    func testDefaultSpoolIsTheRepositorysOwnOnly() throws {
        let fx = Fixture()
        try fx.initRepo()
        let id = try Repository.readConfig(backend: LocalBackend(path: fx.repo)).id.hex
        let config = try XCTUnwrap(FileManager.default.contents(atPath: fx.repo + "/config"))
        XCTAssertEqual(WALSpoolLayout.repositoryID(inConfig: [UInt8](config)), id)
        let call = try XCTUnwrap(WALFetchFastPath.parse(["--repo", fx.repo, segment, "d"]))
        let env: FastCommandLine.Environment = { ["REPO_CACHE_DIR": fx.cache][$0] }
        let spool = WALSpool(directory: WALSpoolLayout.defaultDirectory(cacheDirectory: fx.cache, repository: id))
        XCTAssertEqual(spool.directory, RepoCommand.WalFetch.defaultSpool(cacheDirectory: fx.cache,
                                                                          config: try Repository.readConfig(backend: LocalBackend(path: fx.repo))))
        XCTAssertNil(WALFetchFastPath.spoolDirectory(call, environment: env), "no spool yet")
        try spool.adopt(repository: id)
        XCTAssertEqual(WALFetchFastPath.spoolDirectory(call, environment: env), spool.directory)
        XCTAssertNil(WALFetchFastPath.spoolDirectory(call, environment: { _ in nil }), "no cache directory, no HOME: the full command decides")
        try Data((String(repeating: "5c", count: 32) + "\n").utf8).write(to: URL(fileURLWithPath: spool.directory + "/.repository"))
        XCTAssertNil(WALFetchFastPath.spoolDirectory(call, environment: env), "a spool that names another repository")
    }

    /// The config's id is read from its bytes: any JSON layout, not from a value that merely
    /// says "id", not from a string too short to be an id.
    func testRepositoryIDIsReadFromTheConfigBytes() {
        let id = String(repeating: "0f", count: 32)
        for text in ["{\"id\":\"\(id)\"}", "{\n  \"compression\" : \"id\",\n  \"id\" : \"\(id)\"\n}\n",
                     "{ \"idx\": \"\(String(repeating: "aa", count: 32))\", \"id\"\t:\n\"\(id)\" }"] {
            XCTAssertEqual(WALSpoolLayout.repositoryID(inConfig: Array(text.utf8)), id, text)
        }
        for text in ["{}", "{\"id\": \"abc\"}", "{\"id\": \"\(id)", "{\"id\": 5}", "{\"ID\": \"\(id)\"}", ""] {
            XCTAssertNil(WALSpoolLayout.repositoryID(inConfig: Array(text.utf8)), text)
        }
    }

    /// `pg-restore` writes the launcher beside repo-core into restore_command when it is there
    /// and executable, else repo-core itself.
    func testRestoreCommandNamesTheLauncherBesideRepoCore() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/launcher-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let core = dir + "/repo-core"
        XCTAssertEqual(Launcher.launcher(besideCore: core), core, "no launcher there")
        FileManager.default.createFile(atPath: dir + "/repo", contents: Data(), attributes: [.posixPermissions: 0o644])
        XCTAssertEqual(Launcher.launcher(besideCore: core), core, "not executable")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/repo")
        XCTAssertEqual(Launcher.launcher(besideCore: core), dir + "/repo")
    }
}
