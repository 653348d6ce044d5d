import XCTest
import Foundation
@testable import RepoPrimitives
@testable import RepoStorage
@testable import RepoRepository

/// Key-file slots and key files (FORMAT.md §7.4) in-process: the derivation against values
/// computed outside this code base, the file format, and which credential opens which slot.
final class KeySlotTests: XCTestCase {
    let repositoryID = Hash256(bytes: [UInt8](repeating: 0x5A, count: 32))
    let master = MasterKey(encryption: Array(0..<32), blobID: Array(32..<64), chunker: Array(64..<96))

    /// Computed with Python's hmac and `cryptography` (AESGCM) from the text of FORMAT.md §7.4:
    /// kek = HMAC-SHA256(secret, "repo/v1/keyfile" || salt), ad = "repo/v1/keyslot/keyfile" || id.
    func testKeyFileSlotKnownAnswer() throws {
        let secret = Array(UInt8(0)..<32), salt = Array(UInt8(32)..<64)
        XCTAssertEqual(Hex.encode(KeySlot.keyFileKEK(secret: secret, salt: salt)),
                       "039b11588510ee6b83b23ef7cf73eb71e922aa9289f17119f9fe964cb9a7ffdb")
        let json = """
            {"version": 1, "kdf": "keyfile", "salt": "\(Hex.encode(salt))", "nonce": "0102030405060708090a0b0c",
             "wrapped": "72bf19984929ae52e43f6be113a777e64792a31e83bfce343f5d4593a7a58849f616d3a21270b1de3743ed6e0551417de3456e080299e216c43d7e7e551d2d5ae728a8c662016a2aa02073ba08852373b8ce05c04a6b7a9f3bb3bbf57585172ba10ca25e388562ccc8113d88040ab7768679539b",
             "created": "2025-01-01T00:00:00Z", "host": "h", "username": "u"}
            """
        let slot = try KeySlot.decode(Array(json.utf8))
        XCTAssertEqual(slot.kind, .keyFile)
        let opened = try slot.open(.keyFile(KeyFile(secret: secret, path: "k")), repositoryID: repositoryID)
        XCTAssertEqual(opened, master)
        // Bound to the repository id.
        XCTAssertNil(try slot.open(.keyFile(KeyFile(secret: secret, path: "k")), repositoryID: Hash256(bytes: [UInt8](repeating: 1, count: 32))))
    }

    func testEachCredentialOpensOnlyItsKind() throws {
        let file = KeyFile(secret: SecureRandom.bytes(32), path: "a.key")
        let other = KeyFile(secret: SecureRandom.bytes(32), path: "b.key")
        let keySlot = try KeySlot.make(master: master, credential: .keyFile(file), repositoryID: repositoryID, host: "h", username: "u")
        let pwSlot = try KeySlot.make(master: master, credential: .password(Array("pw".utf8)), repositoryID: repositoryID,
                                      n: 1024, host: "h", username: "u")
        XCTAssertEqual(keySlot.kdf, "keyfile")
        XCTAssertNil(keySlot.n)
        XCTAssertEqual(pwSlot.n, 1024)
        XCTAssertEqual(try keySlot.open(.keyFile(file), repositoryID: repositoryID), master)
        XCTAssertNil(try keySlot.open(.keyFile(other), repositoryID: repositoryID))
        XCTAssertNil(try keySlot.open(.password(Array("pw".utf8)), repositoryID: repositoryID))
        XCTAssertNil(try pwSlot.open(.keyFile(file), repositoryID: repositoryID))
        XCTAssertEqual(try pwSlot.open(.password(Array("pw".utf8)), repositoryID: repositoryID), master)
        // A key-file slot's JSON has no scrypt fields.
        let text = String(decoding: try keySlot.encoded(), as: UTF8.self)
        XCTAssertFalse(text.contains("\"n\""), text)

        // The kind is authenticated: a key-file slot relabelled as scrypt, with the secret as
        // its "password", does not open (a different KEK and associated data).
        var relabelled = keySlot
        relabelled.kdf = "scrypt"; relabelled.n = 1024; relabelled.r = 8; relabelled.p = 1
        XCTAssertNil(try relabelled.open(.password(file.secret), repositoryID: repositoryID))
    }

    func testKeyFileParse() throws {
        let hex = String(repeating: "ab", count: 32)
        let secret = [UInt8](repeating: 0xAB, count: 32)
        XCTAssertEqual(KeyFile.parse(Array("repo-keyfile-v1 \(hex)\n".utf8)), secret)
        XCTAssertEqual(KeyFile.parse(Array("repo-keyfile-v1 \(hex)".utf8)), secret)
        XCTAssertEqual(KeyFile.parse(Array("repo-keyfile-v1 \(hex.uppercased())\r\n".utf8)), secret)
        for bad in ["repo-keyfile-v2 \(hex)\n", "repo-keyfile-v1  \(hex)\n", "repo-keyfile-v1 \(hex.dropLast(2))\n",
                    "repo-keyfile-v1 \(hex)00\n", "repo-keyfile-v1 \(hex)\n\n", "correct horse battery staple\n", "",
                    "repo-keyfile-v1 \(hex.dropLast(1))g\n"] {
            XCTAssertNil(KeyFile.parse(Array(bad.utf8)), bad)
        }
        let file = KeyFile(secret: secret, path: "x")
        XCTAssertEqual(file.encoded.count, 81)
        XCTAssertEqual(KeyFile.parse(file.encoded), secret)
    }

    func testCreateAndReadKeyFile() throws {
        let dir = NSTemporaryDirectory() + "repo-keyfile-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/host.key"
        let old = umask(0)   // the mode must be 0600 whatever the umask
        defer { umask(old) }
        let made = try KeyFile.create(path: path)
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
        XCTAssertEqual(mode, 0o600)
        XCTAssertEqual(try KeyFile.read(path: path).secret, made.secret)
        XCTAssertThrowsError(try KeyFile.create(path: path)) { XCTAssertTrue("\($0)".contains("already exists"), "\($0)") }
        XCTAssertEqual(try KeyFile.read(path: path).secret, made.secret, "a refused create leaves the file alone")
        for loose in [0o640, 0o604, 0o660, 0o620] {
            chmod(path, mode_t(loose))
            XCTAssertThrowsError(try KeyFile.read(path: path)) {
                XCTAssertTrue("\($0)".contains("chmod 600 \(path)"), "\($0)")
            }
        }
        chmod(path, 0o400)
        XCTAssertEqual(try KeyFile.read(path: path).secret, made.secret)
    }

    func testKeyRingOpensWithKeyFileAndSkipsOtherKinds() throws {
        let backend = MemoryBackend()
        _ = try Repository.create(backend: backend, password: Array("pw".utf8), chunker: ChunkerParameters(average: 64 * 1024),
                                  compression: "zstd:3", kdfN: 1024)
        let ring = try Repository.keyRing(backend: backend, credential: .password(Array("pw".utf8)))
        XCTAssertEqual(ring.openedKind, .password)
        let file = KeyFile(secret: SecureRandom.bytes(32), path: "m.key")
        let id = try ring.add(.keyFile(file))
        let byFile = try Repository.keyRing(backend: backend, credential: .keyFile(file))
        XCTAssertEqual(byFile.openedSlot, id)
        XCTAssertEqual(byFile.openedKind, .keyFile)
        XCTAssertEqual(byFile.key, ring.key)
        XCTAssertEqual(try byFile.slots().compactMap(\.kind).sorted { $0.rawValue < $1.rawValue }, [.keyFile, .password])

        try ring.remove(id, force: false)
        XCTAssertThrowsError(try Repository.keyRing(backend: backend, credential: .keyFile(file))) {
            XCTAssertEqual(($0 as? RepoError)?.kind, .wrongPassword)
            XCTAssertTrue("\($0)".contains("m.key does not open any slot"), "\($0)")
        }
        XCTAssertThrowsError(try ring.remove(ring.openedSlot, force: true)) {
            XCTAssertTrue("\($0)".contains("last usable key slot"), "\($0)")
        }
    }
}
