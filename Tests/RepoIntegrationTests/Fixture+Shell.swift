import XCTest
import Foundation

extension Fixture {
    /// Runs `/bin/sh -c script` with the fixture's environment; returns status and stdout.
    @discardableResult
    func shell(_ script: String, env: [String: String] = [:]) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        p.environment = environment.merging(env) { $1 }
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs a project script (`scripts/…`, from the package root) with its stdout and stderr
    /// together; returns the exit status and that output.
    static func runProjectScript(_ interpreter: String, _ script: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [interpreter, root.path + "/" + script] + args
        p.currentDirectoryURL = root
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// SHA-256 of every regular file under `root`, by path relative to it (Python's os.walk,
    /// independent of the code under test).
    func fileHashes(_ root: String) throws -> [String: String] {
        let script = """
            import os, sys, json, hashlib
            root = sys.argv[1]; out = {}
            for d, dirs, files in os.walk(root):
                for f in files:
                    p = os.path.join(d, f)
                    if os.path.islink(p): continue
                    out[os.path.relpath(p, root)] = hashlib.sha256(open(p, 'rb').read()).hexdigest()
            print(json.dumps(out))
            """
        let path = dir + "/hashes-\(UUID().uuidString).py"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try shell("python3 '\(path)' '\(root)'")
        XCTAssertEqual(r.status, 0)
        return try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: String] ?? [:]
    }
}

/// Runs `/bin/sh -c command` with its output thrown away; returns the exit status (for mount,
/// umount, chattr and the like in tests that need root).
@discardableResult
func quietShell(_ command: String) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try? p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

extension XCTestCase {
    /// Bind-mounts `source` read-only at `mountPoint` (created if missing; needs root) and
    /// unmounts it when the test ends, even when it fails.
    func mountReadOnly(_ source: String, at mountPoint: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        XCTAssertEqual(quietShell("mount --bind '\(source)' '\(mountPoint)'"), 0, "this test needs root to bind-mount", file: file, line: line)
        addTeardownBlock { quietShell("umount '\(mountPoint)'") }
        XCTAssertEqual(quietShell("mount -o remount,bind,ro '\(mountPoint)'"), 0, file: file, line: line)
        XCTAssertNotEqual(quietShell("touch '\(mountPoint)/probe'"), 0, "the bind mount is not read-only", file: file, line: line)
    }
}
