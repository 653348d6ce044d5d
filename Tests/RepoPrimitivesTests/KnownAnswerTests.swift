import XCTest
@testable import RepoPrimitives

/// Known-answer vectors from the standards: GCM spec test cases 14 and 16 (AES-256),
/// RFC 4231 (HMAC-SHA256), RFC 7914 §12 (scrypt), FIPS 180-2 (SHA-256).
final class KnownAnswerTests: XCTestCase {
    func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

    func testAES256GCMZeroKey() throws {
        let sealed = try AESGCM().seal(key: [UInt8](repeating: 0, count: 32), nonce: [UInt8](repeating: 0, count: 12),
                                       plaintext: [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(Hex.encode(sealed), "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919")
    }

    func testAES256GCMWithAssociatedData() throws {
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        let iv = hex("cafebabefacedbaddecaf888")
        let p = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let ad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let expected = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
            + "76fc6ece0f4e1768cddf8853bb2d551b"
        let aes = AESGCM()
        let sealed = try aes.seal(key: key, nonce: iv, associatedData: ad, plaintext: p)
        XCTAssertEqual(Hex.encode(sealed), expected)
        XCTAssertEqual(try aes.open(key: key, nonce: iv, associatedData: ad, sealed: sealed), p)
    }

    func testAES256GCMRejectsAnyChange() throws {
        let key = SecureRandom.bytes(32), nonce = SecureRandom.bytes(12)
        let aes = AESGCM()
        let sealed = try aes.seal(key: key, nonce: nonce, associatedData: [1, 2], plaintext: Array("hello world".utf8))
        for i in 0..<sealed.count {
            var bad = sealed
            bad[i] ^= 0x01
            XCTAssertThrowsError(try aes.open(key: key, nonce: nonce, associatedData: [1, 2], sealed: bad)) {
                XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
            }
        }
        XCTAssertThrowsError(try aes.open(key: key, nonce: nonce, associatedData: [1, 3], sealed: sealed))
        XCTAssertThrowsError(try aes.open(key: SecureRandom.bytes(32), nonce: nonce, associatedData: [1, 2], sealed: sealed))
    }

    func testHMACSHA256RFC4231() {
        XCTAssertEqual(HMACSHA256(key: [UInt8](repeating: 0x0b, count: 20)).mac(Array("Hi There".utf8)).hex,
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        let mac = HMACSHA256(key: Array("Jefe".utf8))
        XCTAssertEqual(mac.mac(Array("what do ya want for nothing?".utf8)).hex,
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // The context is reusable: the same input gives the same MAC again.
        XCTAssertEqual(mac.mac(Array("what do ya want for nothing?".utf8)).hex,
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testScryptRFC7914() throws {
        let v1 = try Scrypt.derive(password: [], salt: [], n: 16, r: 1, p: 1, length: 64)
        XCTAssertEqual(Hex.encode(v1), "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906")
        let v2 = try Scrypt.derive(password: Array("password".utf8), salt: Array("NaCl".utf8), n: 1024, r: 8, p: 16, length: 64)
        XCTAssertEqual(Hex.encode(v2), "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
    }

    func testSHA256() {
        XCTAssertEqual(SHA256Hasher.hash(Array("abc".utf8)).hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let h = SHA256Hasher()
        h.update(Array("a".utf8)); h.update(Array("bc".utf8))
        XCTAssertEqual(h.finalize().hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testZstdRoundTripAndIncompressible() throws {
        let text = Array(String(repeating: "INSERT INTO t VALUES (1, 'abc');\n", count: 1000).utf8)
        let z = try XCTUnwrap(text.withUnsafeBytes { ZstdCompressor(level: 3).compressIfSmaller($0) })
        XCTAssertLessThan(z.count, text.count / 10)
        XCTAssertEqual(try z.withUnsafeBytes { try ZstdDecompressor().decompress($0, expectedSize: text.count) }, text)
        let random = SecureRandom.bytes(4096)
        XCTAssertNil(random.withUnsafeBytes { ZstdCompressor(level: 3).compressIfSmaller($0) })
        XCTAssertThrowsError(try z.withUnsafeBytes { try ZstdDecompressor().decompress($0, expectedSize: text.count - 1) })
    }

    /// Sizes come from the repository: one the frame cannot produce, or a negative one, is an
    /// error before any allocation (a 4 GiB size on a small frame once asked malloc for 4 GiB).
    func testZstdRefusesSizesTheFrameCannotProduce() throws {
        let text = Array(String(repeating: "abc", count: 1000).utf8)
        let z = try XCTUnwrap(text.withUnsafeBytes { ZstdCompressor(level: 3).compressIfSmaller($0) })
        for size in [-1, Int.min, 1 << 32, Int.max] {
            XCTAssertThrowsError(try z.withUnsafeBytes { try ZstdDecompressor().decompress($0, expectedSize: size) })
        }
        XCTAssertThrowsError(try [UInt8](repeating: 0, count: 20).withUnsafeBytes {
            try ZstdDecompressor().decompress($0, expectedSize: 10)
        })
    }

    func testHash256HexRoundTrip() {
        let h = SecureRandom.hash()
        XCTAssertEqual(Hash256(hex: h.hex), h)
        XCTAssertEqual(Hash256(bytes: h.bytes), h)
        XCTAssertNil(Hash256(hex: "abc"))
        XCTAssertNil(Hash256(hex: String(repeating: "g", count: 64)))
    }
}
