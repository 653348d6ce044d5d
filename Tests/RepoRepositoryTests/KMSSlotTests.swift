import XCTest
import Foundation
@testable import RepoPrimitives
@testable import RepoStorage
@testable import RepoRepository

/// KMS slots (FORMAT.md §7.5) in-process, with a service that stands in for a KMS: the
/// derivation against values computed outside this code base, which slots a `.kms` credential
/// tries, and that a service's refusal is reported as such (exit 12), not as a wrong password.
final class KMSSlotTests: XCTestCase {
    let repositoryID = Hash256(bytes: [UInt8](repeating: 0x5A, count: 32))
    let master = MasterKey(encryption: Array(0..<32), blobID: Array(32..<64), chunker: Array(64..<96))

    /// "Wraps" by hex-encoding the secret with the key id and context in front; unwraps after
    /// checking both; refuses with `refusal` when it is set.
    final class FakeKMS: KeyManagementService, @unchecked Sendable {
        let provider: String
        var refusal: String?
        var unwraps = 0
        init(provider: String = "aws-kms") { self.provider = provider }

        func wrap(secret: [UInt8], keyID: String, repositoryID: Hash256) throws -> KMSEnvelope {
            KMSEnvelope(provider: provider, keyID: "arn:" + keyID, region: "eu-west-1",
                        ciphertext: keyID + ":" + repositoryID.hex + ":" + Hex.encode(secret))
        }

        func unwrap(_ envelope: KMSEnvelope, repositoryID: Hash256) throws -> [UInt8] {
            unwraps += 1
            if let refusal { throw RepoError(.keyService, refusal) }
            let parts = envelope.ciphertext.split(separator: ":").map(String.init)
            guard parts.count == 3, "arn:" + parts[0] == envelope.keyID, parts[1] == repositoryID.hex else {
                throw RepoError(.keyService, "InvalidCiphertextException")
            }
            return Hex.decode(parts[2])!
        }
    }

    /// Computed with Python's hmac and `cryptography` (AESGCM) from the text of FORMAT.md §7.5:
    /// kek = HMAC-SHA256(secret, "repo/v1/kms" || salt), ad = "repo/v1/keyslot/kms" || id.
    func testKMSSlotKnownAnswer() throws {
        let secret = Array(UInt8(0)..<32), salt = Array(UInt8(32)..<64)
        XCTAssertEqual(Hex.encode(KeySlot.kmsKEK(secret: secret, salt: salt)),
                       "16a610d94850d27e4986113da93661f70a3e0b94b3bfe0d9cd169e0db5f04af2")
        let json = """
            {"version": 1, "kdf": "kms", "salt": "\(Hex.encode(salt))", "nonce": "0102030405060708090a0b0c",
             "wrapped": "d91d69ee8fb7552b1e3a96a69cabc3744c57a39f046a1ec1b5429a13e84d1aabe043a8ac27cacb33377e3cf34a498b4ed613cd133336a1e9dffd705fbae8026009ec86017ac582531b403070cd576c29cd5aacc939123edea19d0dba34603cb9c8c818fb970e06cd2c33722ebf06f6873a24ca60",
             "created": "2025-01-01T00:00:00Z", "host": "h", "username": "u",
             "kms": {"provider": "aws-kms", "key_id": "arn:k", "region": "eu-west-1",
                     "ciphertext": "k:\(repositoryID.hex):\(Hex.encode(secret))"}}
            """
        let slot = try KeySlot.decode(Array(json.utf8))
        XCTAssertEqual(slot.kind, .kms)
        let kms = FakeKMS()
        XCTAssertEqual(try slot.open(.kms(KMSAccess(services: [kms])), repositoryID: repositoryID), master)
        // Pinned to another key, or with only a service of another provider: not tried at all.
        XCTAssertNil(try slot.open(.kms(KMSAccess(services: [kms], pinnedKeyID: "arn:other")), repositoryID: repositoryID))
        XCTAssertNil(try slot.open(.kms(KMSAccess(services: [FakeKMS(provider: "command")])), repositoryID: repositoryID))
        XCTAssertEqual(kms.unwraps, 1)
        // Other credentials never ask the KMS.
        XCTAssertNil(try slot.open(.password(Array("pw".utf8)), repositoryID: repositoryID))
        XCTAssertEqual(kms.unwraps, 1)
    }

    func testMadeSlotRoundTripsAndItsKindIsAuthenticated() throws {
        let kms = FakeKMS()
        let slot = try KeySlot.make(master: master, service: kms, keyID: "key-1", repositoryID: repositoryID, host: "h", username: "u")
        XCTAssertEqual(slot.kdf, "kms")
        XCTAssertNil(slot.n)
        XCTAssertEqual(slot.kms?.keyID, "arn:key-1")
        let decoded = try KeySlot.decode(try slot.encoded())
        XCTAssertEqual(try decoded.open(.kms(KMSAccess(services: [kms])), repositoryID: repositoryID), master)
        // Relabelled as a key-file slot whose "key file" is the unwrapped secret: a different
        // derivation and associated data, so it does not open.
        let secret = Hex.decode(String(slot.kms!.ciphertext.split(separator: ":")[2]))!
        var relabelled = decoded
        relabelled.kdf = "keyfile"
        XCTAssertNil(try relabelled.open(.keyFile(KeyFile(secret: secret, path: "k")), repositoryID: repositoryID))
        // Malformed kms objects make the slot unreadable, not a request to the KMS.
        for bad in [KMSEnvelope(provider: "gcp", keyID: "k", ciphertext: "c"), KMSEnvelope(provider: "aws-kms", keyID: "", ciphertext: "c"),
                    KMSEnvelope(provider: "aws-kms", keyID: "k", ciphertext: "line\nbreak"),
                    KMSEnvelope(provider: "aws-kms", keyID: "k", ciphertext: String(repeating: "A", count: 8193))] {
            var s = decoded
            s.kms = bad
            XCTAssertThrowsError(try s.open(.kms(KMSAccess(services: [kms])), repositoryID: repositoryID))
        }
    }

    func testKeyRingReportsTheServicesReasonNotAWrongPassword() throws {
        let backend = MemoryBackend()
        let config = try Repository.create(backend: backend, credential: .password(Array("pw".utf8)), chunker: .init(average: 1 << 16),
                                           compression: "zstd", kdfN: 1024)
        let ring = try KeyRing.open(backend: backend, config: config, credential: .password(Array("pw".utf8)))
        let kms = FakeKMS()
        let (id, _) = try ring.addKMS(service: kms, keyID: "key-1")
        let opened = try KeyRing.open(backend: backend, config: config, credential: .kms(KMSAccess(services: [kms])))
        XCTAssertEqual(opened.openedSlot, id)
        XCTAssertEqual(opened.openedKind, .kms)
        XCTAssertEqual(opened.key, ring.key)

        kms.refusal = "AccessDeniedException: not allowed kms:Decrypt"
        XCTAssertThrowsError(try KeyRing.open(backend: backend, config: config, credential: .kms(KMSAccess(services: [kms])))) { error in
            XCTAssertEqual((error as? RepoError)?.kind, .keyService)
            XCTAssertTrue("\(error)".contains("AccessDeniedException"), "\(error)")
        }
        // A second, working KMS slot still opens when the first one's service refuses.
        let other = FakeKMS(provider: "command")
        let (second, _) = try ring.addKMS(service: other, keyID: "key-2")
        let fallback = try KeyRing.open(backend: backend, config: config, credential: .kms(KMSAccess(services: [kms, other])))
        XCTAssertEqual(fallback.openedSlot, second)
        // Slots served only by a program this process was not given: a usage error naming the option.
        XCTAssertThrowsError(try KeyRing.open(backend: backend, config: config,
                                              credential: .kms(KMSAccess(services: [FakeKMS(provider: "nothing")])))) { error in
            XCTAssertEqual((error as? RepoError)?.kind, .usage)
            XCTAssertTrue("\(error)".contains("--kms-command"), "\(error)")
        }
    }
}
