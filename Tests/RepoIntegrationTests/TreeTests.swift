import XCTest
import Foundation

/// `repo backup / ls / restore / diff / dump PATH` end to end. Trees are generated and compared
/// by an independent walker (Python's os.walk + lstat), never by the code under test.
final class TreeTests: XCTestCase {
    /// Prints a JSON manifest of everything under argv[1]: per relative path (hex of its bytes)
    /// type, mode, size, SHA-256, mtime in ns, symlink target, hard-link group and xattrs.
    static let manifestScript = #"""
import os, sys, json, hashlib, stat
root = os.fsencode(sys.argv[1])
out, groups = {}, {}
def entry(p, rel):
    st = os.lstat(p)
    e = {"mode": stat.S_IMODE(st.st_mode)}
    if stat.S_ISDIR(st.st_mode):
        e["type"] = "dir"; e["mtime"] = st.st_mtime_ns
    elif stat.S_ISLNK(st.st_mode):
        e["type"] = "symlink"; e["target"] = os.readlink(p).hex()
    elif stat.S_ISREG(st.st_mode):
        e["type"] = "file"; e["size"] = st.st_size; e["mtime"] = st.st_mtime_ns
        with open(p, "rb") as f: e["sha256"] = hashlib.sha256(f.read()).hexdigest()
        if st.st_nlink > 1:
            e["group"] = groups.setdefault((st.st_dev, st.st_ino), rel.hex())
    else:
        e["type"] = "other"
    try:
        e["xattrs"] = {n: os.getxattr(p, n, follow_symlinks=False).hex() for n in sorted(os.listxattr(p, follow_symlinks=False))}
    except OSError:
        pass
    return e
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort(); filenames.sort()
    for name in sorted(dirnames + filenames):
        p = os.path.join(dirpath, name)
        rel = os.path.relpath(p, root)
        out[rel.hex()] = entry(p, rel)
print(json.dumps(out, sort_keys=True))
"""#

    /// Makes a tree with every kind of entry the backup must keep.
    static let generatorScript = #"""
import os, sys
root = os.fsencode(sys.argv[1])
def w(rel, data, mode=0o644, mtime_ns=None):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f: f.write(data)
    os.chmod(p, mode)
    if mtime_ns is not None: os.utime(p, ns=(mtime_ns, mtime_ns))
    return p
rnd = os.urandom
w(b"empty-file", b"")
w(b"one-byte", b"x", 0o600, 1_600_000_000_123_456_789)
w(b"data/part-0001/col.bin", rnd(300_000), 0o640)
w(b"data/part-0001/col.mrk", rnd(1000))
w(b"data/part-0002/col.bin", rnd(2_500_000), 0o640, 1_500_000_000_000_000_001)
w(b"data/part-0002/col.mrk", b"m" * 5000)
w(b"exports/2024-01.csv", b"".join(b"%d,row %d,%d\n" % (i, i, i * 7) for i in range(60000)))
w(b"exec.sh", b"#!/bin/sh\necho hi\n", 0o755)
w(b"name with\nnewline", b"newline")
w(b"bad-\xff\xfe-name", b"not utf-8")
w(b"\xc3\xa9t\xc3\xa9.txt", b"utf-8 name")
w(b"setuid-ish", b"s", 0o4755)
os.makedirs(os.path.join(root, b"empty-dir"))
os.makedirs(os.path.join(root, b"deep/a/b/c/d"))
w(b"deep/a/b/c/d/leaf", b"leaf")
os.symlink(b"data/part-0001/col.bin", os.path.join(root, b"rel-link"))
os.symlink(b"/nonexistent/target", os.path.join(root, b"dangling-link"))
os.symlink(b"\xff-raw-target", os.path.join(root, b"raw-link"))
os.link(os.path.join(root, b"data/part-0002/col.mrk"), os.path.join(root, b"hard-a"))
os.link(os.path.join(root, b"data/part-0002/col.mrk"), os.path.join(root, b"deep/hard-b"))
sp = os.path.join(root, b"sparse.img")
with open(sp, "wb") as f:
    f.truncate(64 * 1024 * 1024); f.seek(32 * 1024 * 1024); f.write(b"middle"); f.seek(64 * 1024 * 1024 - 4); f.write(b"tail")
os.setxattr(os.path.join(root, b"one-byte"), b"user.note", b"kept\x00bytes")
os.chmod(os.path.join(root, b"deep/a"), 0o750)
for d in [b"deep/a/b/c/d", b"deep/a/b/c", b"empty-dir"]:
    os.utime(os.path.join(root, d), ns=(1_234_567_890_987_654_321, 1_234_567_890_987_654_321))
"""#

    var fx: Fixture!

    override func setUpWithError() throws {
        fx = Fixture()
        try fx.initRepo()
    }

    @discardableResult
    func sh(_ script: String, env: [String: String] = [:]) throws -> (status: Int32, out: String) {
        try fx.shell(script, env: env)
    }

    func python(_ script: String, _ args: [String]) throws -> String {
        let path = fx.dir + "/script-\(UUID().uuidString).py"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try sh("python3 '\(path)' " + args.map { "'\($0)'" }.joined(separator: " "))
        XCTAssertEqual(r.status, 0, "python script failed")
        return r.out
    }

    func manifest(_ root: String) throws -> [String: NSDictionary] {
        let json = try python(Self.manifestScript, [root])
        return try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: NSDictionary] ?? [:]
    }

    func json(_ r: CLIResult) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] ?? [:]
    }

    /// - Parameter ignoringLinks: compare without hard-link groups (a sub-path restore cannot
    ///   recreate links to files outside the sub-path).
    func assertSameTree(_ a: String, _ b: String, ignoringLinks: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        func strip(_ m: [String: NSDictionary]) -> [String: NSDictionary] {
            guard ignoringLinks else { return m }
            return m.mapValues { d in let c = d.mutableCopy() as! NSMutableDictionary; c.removeObject(forKey: "group"); return c }
        }
        let ma = strip(try manifest(a)), mb = strip(try manifest(b))
        XCTAssertFalse(ma.isEmpty, "empty manifest of \(a)", file: file, line: line)
        XCTAssertEqual(Set(ma.keys), Set(mb.keys), "different entries", file: file, line: line)
        for (k, v) in ma where !(mb[k]?.isEqual(v) ?? false) {
            let name = String(decoding: Data(hex: k), as: UTF8.self)
            XCTFail("\(name): \(v) != \(mb[k] as Any)", file: file, line: line)
        }
    }

    // MARK: round trip

    func testRestoreEqualsOriginal() throws {
        let src = fx.dir + "/src"
        _ = try python(Self.generatorScript, [src])
        let b = try fx.run(["backup", src, "--json"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let out = try json(b)
        XCTAssertEqual(out["partial"] as? Bool, false)
        XCTAssertEqual(out["unreadable"] as? Int, 0)

        let target = fx.dir + "/restored"
        let r = try fx.run(["restore", "latest", "--target", target, "--verify"])
        XCTAssertEqual(r.status, 0, r.stderr)
        try assertSameTree(src, target + src)

        // Sparse files restore sparse: far fewer blocks than the 64 MiB size.
        let st = try sh("stat -c %b '\(target + src)/sparse.img'")
        XCTAssertLessThan(Int(st.out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .max, 1024, "sparse file was restored dense")

        // The same via a sub-path: SNAPSHOT:PATH restores the directory's contents into DIR.
        let sub = fx.dir + "/sub"
        try fx.ok(["restore", "latest:\(src)/data", "--target", sub])
        try assertSameTree(src + "/data", sub, ignoringLinks: true)

        // check reads everything back.
        try fx.ok(["check", "--read-data"])
    }

    func testLsDumpAndIncludes() throws {
        let src = fx.dir + "/src"
        _ = try python(Self.generatorScript, [src])
        try fx.ok(["backup", src])
        let ls = try fx.ok(["ls", "latest", src]).out
        XCTAssertTrue(ls.contains("\(src)/name with\\nnewline"), "newline not escaped:\n\(ls)")
        XCTAssertTrue(ls.contains("\(src)/bad-\\xff\\xfe-name"), "non-UTF-8 byte not escaped")
        XCTAssertTrue(ls.contains("\(src)/rel-link -> data/part-0001/col.bin"))
        XCTAssertTrue(ls.contains("\(src)/empty-dir"))
        XCTAssertTrue(ls.contains("-rwxr-xr-x"), "exec.sh mode")
        // Every line is one entry: the manifest has as many entries.
        XCTAssertEqual(ls.split(separator: "\n").count, try manifest(src).count)

        let dumped = try fx.ok(["dump", "latest", "\(src)/exports/2024-01.csv"]).stdout
        XCTAssertEqual(dumped, FileManager.default.contents(atPath: src + "/exports/2024-01.csv"))

        let target = fx.dir + "/only-bin"
        try fx.ok(["restore", "latest", "--target", target, "--include", "*.bin"])
        let got = try manifest(target + src).filter { $0.value["type"] as? String == "file" }.keys
            .map { String(decoding: Data(hex: $0), as: UTF8.self) }.sorted()
        XCTAssertEqual(got, ["data/part-0001/col.bin", "data/part-0002/col.bin"])
    }

    // MARK: incremental

    func testIncrementalReadsOnlyChangedFiles() throws {
        let src = fx.dir + "/parts"
        try sh("""
            set -e; mkdir -p '\(src)'
            for i in $(seq 1 100); do mkdir -p '\(src)'/p$i; head -c 20000 /dev/urandom > '\(src)'/p$i/col.bin; echo $i > '\(src)'/p$i/count.txt; done
            """)
        let first = try json(try fx.ok(["backup", src, "--json"]))
        XCTAssertEqual(first["files"] as? Int, 200)
        XCTAssertEqual(first["unchanged_files"] as? Int, 0)
        // Change 1 % of the files, add one, remove one.
        try sh("""
            head -c 20000 /dev/urandom > '\(src)'/p7/col.bin; echo changed >> '\(src)'/p50/count.txt
            mkdir '\(src)'/p101; echo new > '\(src)'/p101/count.txt; rm -r '\(src)'/p100
            """)
        let second = try json(try fx.ok(["backup", src, "--json"]))
        XCTAssertEqual(second["parent"] as? String, first["id"] as? String)
        XCTAssertEqual(second["files"] as? Int, 199)
        XCTAssertEqual(second["unchanged_files"] as? Int, 196, "only the 3 changed or new files may be read")
        XCTAssertLessThan(second["new_bytes"] as! Int, 60_000)

        let diff = try fx.ok(["diff", first["id"] as! String, second["id"] as! String]).out
        XCTAssertTrue(diff.contains("M  \(src)/p7/col.bin"), diff)
        XCTAssertTrue(diff.contains("M  \(src)/p50/count.txt"), diff)
        XCTAssertTrue(diff.contains("+  \(src)/p101/"), diff)
        XCTAssertTrue(diff.contains("-  \(src)/p100/col.bin"), diff)
        XCTAssertFalse(diff.contains("p8/"), "unchanged entries must not be listed:\n\(diff)")

        // Restoring onto the first state rewrites only what differs.
        let target = fx.dir + "/t"
        try fx.ok(["restore", first["id"] as! String, "--target", target])
        let again = try json(try fx.ok(["restore", second["id"] as! String, "--target", target, "--json"]))
        XCTAssertLessThanOrEqual(again["bytesWritten"] as! Int, 20_000 + 100, "only changed content may be written")
        // Extra files already in the target are kept; everything in the snapshot matches.
        try sh("rm -r '\(target + src)/p100'")
        try assertSameTree(src, target + src)
    }

    /// Prune after forgetting an older tree snapshot keeps the newer one whole.
    func testForgetPruneKeepsTreeSnapshots() throws {
        let src = fx.dir + "/src"
        _ = try python(Self.generatorScript, [src])
        try fx.ok(["backup", src, "--time", "2024-01-01T00:00:00Z"])
        try sh("head -c 3000000 /dev/urandom > '\(src)/data/part-0002/col.bin' && rm '\(src)/exports/2024-01.csv'")
        try fx.ok(["backup", src, "--time", "2024-01-02T00:00:00Z"])
        let before = fx.repositorySize()
        try fx.ok(["forget", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0", "--keep-last", "1",
                   "--now", "2024-06-01T00:00:00Z", "--prune", "--max-unused", "0", "--safety-margin", "0"])
        XCTAssertEqual(try fx.snapshots().count, 1)
        XCTAssertLessThan(fx.repositorySize(), before - 2_000_000, "prune must free the forgotten files")
        try fx.ok(["check", "--read-data"])
        let target = fx.dir + "/restored"
        try fx.ok(["restore", "latest", "--target", target, "--verify"])
        try assertSameTree(src, target + src)
    }

    // MARK: failures

    func testUnreadableFileMakesPartialSnapshot() throws {
        let src = fx.dir + "/src"
        try sh("mkdir -p '\(src)/sub' && echo ok > '\(src)/a' && echo secret > '\(src)/sub/locked' && chmod 000 '\(src)/sub/locked' && mkdir '\(src)/closed' && echo x > '\(src)/closed/f' && chmod 000 '\(src)/closed'")
        defer { _ = try? sh("chmod -R u+rwx '\(src)'") }
        var prefix = ""
        if geteuid() == 0 {
            // Root reads everything: run the backup as an unprivileged user.
            try sh("chown -R 65534:65534 '\(fx.dir)'")
            prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups "
        }
        let r = try sh(prefix + "'\(Fixture.binary)' backup '\(src)' 2>'\(fx.dir)/err'; echo \"exit=$?\"")
        let err = (try? String(contentsOfFile: fx.dir + "/err", encoding: .utf8)) ?? ""
        XCTAssertTrue(r.out.contains("exit=3"), "expected exit 3: \(r.out) \(err)")
        XCTAssertTrue(err.contains("\(src)/sub/locked: Permission denied"), err)
        XCTAssertTrue(err.contains("\(src)/closed: Permission denied"), err)
        XCTAssertTrue(err.contains("marked partial"), err)
        let snaps = try fx.snapshots()
        XCTAssertEqual(snaps.count, 1)
        XCTAssertEqual(snaps.first?["partial"] as? Bool, true)
        let ls = try fx.ok(["ls", "latest", src]).out
        XCTAssertTrue(ls.contains("\(src)/a"))
        XCTAssertFalse(ls.contains("locked"))
        XCTAssertTrue(try fx.ok(["snapshots"]).out.contains("(partial)"))
    }

    func testVanishedFileIsReportedAndLeftOut() throws {
        let src = fx.dir + "/src"
        try sh("mkdir -p '\(src)' && for i in 1 2 3 4; do echo $i > '\(src)'/f$i; done && echo gone > '\(src)'/z-vanish")
        // Each open waits 400 ms, so the file is deleted after the walk saw it and before it is read.
        let started = try fx.start(["backup", src], env: ["REPO_TEST_OPEN_DELAY_MS": "400"])
        let deadline = Date().addingTimeInterval(20)
        while (try? FileManager.default.contentsOfDirectory(atPath: fx.repo + "/locks"))?.isEmpty != false && Date() < deadline {
            usleep(10_000)
        }
        usleep(100_000)
        try FileManager.default.removeItem(atPath: src + "/z-vanish")
        let r = fx.collect(started)
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("z-vanish: vanished during the backup"), r.stderr)
        let ls = try fx.ok(["ls", "latest", src]).out
        XCTAssertTrue(ls.contains("\(src)/f4"))
        XCTAssertFalse(ls.contains("z-vanish"))
        try fx.ok(["check"])
    }

    func testFileChangingWhileReadIsReported() throws {
        let src = fx.dir + "/src"
        try sh("mkdir -p '\(src)' && head -c 40000000 /dev/urandom > '\(src)/growing.log'")
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/bin/sh")
        writer.arguments = ["-c", "while true; do echo line >> '\(src)/growing.log'; done"]
        try writer.run()
        defer { writer.terminate(); writer.waitUntilExit() }
        let r = try fx.run(["backup", src])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("growing.log: changed while it was being read"), r.stderr)
    }

    func testExcludeGlobs() throws {
        let src = fx.dir + "/src"
        try sh("mkdir -p '\(src)/tmp' '\(src)/keep' && echo 1 > '\(src)/keep/a.bin' && echo 2 > '\(src)/keep/b.tmp' && echo 3 > '\(src)/tmp/c.bin'")
        try fx.ok(["backup", src, "--exclude", "*.tmp", "--exclude", "\(src)/tmp"])
        let ls = try fx.ok(["ls", "latest", src]).out
        XCTAssertTrue(ls.contains("keep/a.bin"))
        XCTAssertFalse(ls.contains("b.tmp"))
        XCTAssertFalse(ls.contains("c.bin"))
        XCTAssertFalse(ls.contains("\(src)/tmp"))
    }

    func testMissingPathFailsWithoutSnapshot() throws {
        let r = try fx.run(["backup", fx.dir + "/does-not-exist"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("does-not-exist: No such file or directory"), r.stderr)
        XCTAssertEqual(try fx.snapshots().count, 0)
    }

    // MARK: many files

    func testHundredThousandFiles() throws {
        let src = fx.dir + "/many"
        try sh("""
            python3 -c "
            import os
            for d in range(200):
                p = os.path.join('\(src)', 'part-%03d' % d); os.makedirs(p)
                for f in range(500):
                    with open(os.path.join(p, 'f%03d.csv' % f), 'w') as h: h.write('%d,%d\\n' % (d, f))
            "
            """)
        var t = Date()
        let b = try json(try fx.ok(["backup", src, "--json"]))
        let backupSeconds = Date().timeIntervalSince(t)
        XCTAssertEqual(b["files"] as? Int, 100_000)
        t = Date()
        let ls = try fx.ok(["ls", "latest", src]).out
        let lsSeconds = Date().timeIntervalSince(t)
        XCTAssertEqual(ls.split(separator: "\n").count, 100_200)
        t = Date()
        let target = fx.dir + "/r"
        try fx.ok(["restore", "latest", "--target", target])
        let restoreSeconds = Date().timeIntervalSince(t)
        let count = try sh("find '\(target + src)' -type f | wc -l").out.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(count, "100000")
        XCTAssertEqual(try String(contentsOfFile: target + src + "/part-123/f456.csv", encoding: .utf8), "123,456\n")
        t = Date()
        let again = try json(try fx.ok(["backup", src, "--json"]))
        XCTAssertEqual(again["unchanged_files"] as? Int, 100_000)
        print(String(format: "100k files: backup %.1f s, unchanged re-backup %.1f s, ls %.1f s, restore %.1f s",
                     backupSeconds, Date().timeIntervalSince(t), lsSeconds, restoreSeconds))
    }

    // MARK: streams

    func testSeveralStreamsInOneSnapshot() throws {
        let r = try fx.ok(["store", "--name", "nightly", "--json",
                           "--stream", "users.sql=seq 1 300000",
                           "--stream", "orders.sql=head -c 3000000 /dev/zero | tr '\\0' o"])
        let out = try json(r)
        XCTAssertEqual((out["streams"] as? [Any])?.count, 2)
        XCTAssertEqual(try fx.ok(["dump", "latest", "users.sql"]).stdout, try sh("seq 1 300000").out.data(using: .utf8))
        XCTAssertEqual(try fx.ok(["dump", "latest", "orders.sql"]).stdout, Data(repeating: UInt8(ascii: "o"), count: 3_000_000))
        XCTAssertEqual(try fx.snapshots().first?["name"] as? String, "nightly")
        let ls = try fx.ok(["ls", "latest"]).out
        XCTAssertTrue(ls.contains("/orders.sql") && ls.contains("/users.sql"), ls)
    }

    func testFailingStreamCommitsNothingAndIsNamed() throws {
        let r = try fx.run(["store", "--name", "nightly",
                            "--stream", "good.sql=seq 1 100000; sleep 1",
                            "--stream", "bad.sql=echo partial; exit 3"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("stream bad.sql: `echo partial; exit 3` exited with status 3"), r.stderr)
        XCTAssertTrue(r.stderr.contains("no snapshot was saved"), r.stderr)
        XCTAssertEqual(try fx.snapshots().count, 0)
        try fx.ok(["check"])

        let bad = try fx.run(["store", "--stream", "noequals"])
        XCTAssertEqual(bad.status, 2)
    }
}

extension Data {
    init(hex: String) {
        var bytes: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { bytes.append(UInt8(String([a, b]), radix: 16)!) }
        self.init(bytes)
    }
}
