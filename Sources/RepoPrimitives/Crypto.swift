internal import CRepoCrypto

/// Failures of the cryptographic primitives.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    /// A GCM tag did not verify: wrong key, or the bytes were changed.
    case authenticationFailed
    /// libcrypto reported an internal failure in the named call.
    case library(String)

    public var description: String {
        switch self {
        case .authenticationFailed: return "authentication failed (wrong key or corrupted data)"
        case .library(let call): return "libcrypto failure in \(call)"
        }
    }
}

/// Cryptographically secure random bytes from libcrypto's DRBG (`RAND_bytes`).
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { crepo_random($0.baseAddress, count) }
        precondition(ok == 1, "RAND_bytes failed: the system has no usable entropy source")
        return out
    }

    public static func hash() -> Hash256 { Hash256(bytes: bytes(32)) }
}

/// AES-256-GCM with 96-bit nonces and 128-bit tags (`EVP_aes_256_gcm`).
///
/// Owns one `EVP_CIPHER_CTX`; not thread-safe, so use one instance per thread. Ciphertext layout
/// is `ciphertext || tag` (tag last, 16 bytes).
public final class AESGCM {
    public static let keySize = 32, nonceSize = 12, tagSize = 16
    private let ctx: OpaquePointer

    public init() {
        guard let c = EVP_CIPHER_CTX_new() else { fatalError("EVP_CIPHER_CTX_new failed: out of memory") }
        ctx = c
    }

    deinit { EVP_CIPHER_CTX_free(ctx) }

    /// Encrypts `plaintext`; returns `ciphertext || tag`.
    public func seal(key: [UInt8], nonce: [UInt8], associatedData: [UInt8] = [],
                     plaintext: UnsafeRawBufferPointer) throws -> [UInt8] {
        precondition(key.count == Self.keySize && nonce.count == Self.nonceSize)
        let n = plaintext.count
        return try [UInt8](unsafeUninitializedCapacity: n + Self.tagSize) { out, count in
            let ok = crepo_aes256gcm_seal(ctx, key, nonce, associatedData, associatedData.count,
                                          plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), n,
                                          out.baseAddress, out.baseAddress! + n)
            guard ok == 1 else { throw CryptoError.library("EVP_EncryptUpdate (AES-256-GCM)") }
            count = n + Self.tagSize
        }
    }

    /// Encrypts `buffer` in place and writes the 16-byte tag to `tag` (which must not overlap it).
    public func sealInPlace(key: [UInt8], nonce: [UInt8], associatedData: [UInt8] = [],
                            buffer: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer) throws {
        precondition(key.count == Self.keySize && nonce.count == Self.nonceSize)
        let p = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let ok = crepo_aes256gcm_seal(ctx, key, nonce, associatedData, associatedData.count, p, buffer.count, p,
                                      tag.assumingMemoryBound(to: UInt8.self))
        guard ok == 1 else { throw CryptoError.library("EVP_EncryptUpdate (AES-256-GCM)") }
    }

    /// Starts an encryption whose plaintext comes in pieces (`sealUpdate`, then `sealFinish`);
    /// the result is that of one `sealInPlace` over the pieces joined.
    public func sealBegin(key: [UInt8], nonce: [UInt8], associatedData: [UInt8] = []) throws {
        precondition(key.count == Self.keySize && nonce.count == Self.nonceSize)
        guard crepo_aes256gcm_begin(ctx, key, nonce, associatedData, associatedData.count) == 1 else {
            throw CryptoError.library("EVP_EncryptInit_ex (AES-256-GCM)")
        }
    }

    /// Encrypts the next piece in place.
    public func sealUpdate(inPlace buffer: UnsafeMutableRawBufferPointer) throws {
        guard let p = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        guard crepo_aes256gcm_update(ctx, p, buffer.count, p) == 1 else { throw CryptoError.library("EVP_EncryptUpdate (AES-256-GCM)") }
    }

    /// Ends the encryption and writes the 16-byte tag to `tag`.
    public func sealFinish(tag: UnsafeMutableRawPointer) throws {
        guard crepo_aes256gcm_finish(ctx, tag.assumingMemoryBound(to: UInt8.self)) == 1 else {
            throw CryptoError.library("EVP_EncryptFinal_ex (AES-256-GCM)")
        }
    }

    public func seal(key: [UInt8], nonce: [UInt8], associatedData: [UInt8] = [], plaintext: [UInt8]) throws -> [UInt8] {
        try plaintext.withUnsafeBytes { try seal(key: key, nonce: nonce, associatedData: associatedData, plaintext: $0) }
    }

    /// Verifies and decrypts `ciphertext || tag`; throws `CryptoError.authenticationFailed` if the
    /// tag does not verify (no plaintext is returned then).
    public func open(key: [UInt8], nonce: [UInt8], associatedData: [UInt8] = [],
                     sealed: UnsafeRawBufferPointer) throws -> [UInt8] {
        precondition(key.count == Self.keySize && nonce.count == Self.nonceSize)
        guard sealed.count >= Self.tagSize else { throw CryptoError.authenticationFailed }
        let n = sealed.count - Self.tagSize
        let base = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        return try [UInt8](unsafeUninitializedCapacity: max(n, 1)) { out, count in
            let ok = crepo_aes256gcm_open(ctx, key, nonce, associatedData, associatedData.count,
                                          base, n, base + n, out.baseAddress)
            guard ok == 1 else { throw CryptoError.authenticationFailed }
            count = n
        }
    }

    public func open(key: [UInt8], nonce: [UInt8], associatedData: [UInt8] = [], sealed: [UInt8]) throws -> [UInt8] {
        try sealed.withUnsafeBytes { try open(key: key, nonce: nonce, associatedData: associatedData, sealed: $0) }
    }
}

/// HMAC-SHA256 bound to one key (`EVP_MAC` "HMAC" with digest SHA256). Not thread-safe.
public final class HMACSHA256 {
    private let ctx: OpaquePointer

    public init(key: [UInt8]) {
        guard let c = crepo_hmac_new(key, key.count) else { fatalError("EVP_MAC HMAC unavailable in libcrypto") }
        ctx = c
    }

    deinit { crepo_hmac_free(ctx) }

    public func mac(_ data: UnsafeRawBufferPointer) -> Hash256 {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = crepo_hmac_compute(ctx, data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, &out)
        precondition(ok == 1, "HMAC-SHA256 computation failed")
        return Hash256(bytes: out)
    }

    public func mac(_ data: [UInt8]) -> Hash256 { data.withUnsafeBytes { mac($0) } }

    /// One-shot convenience for key derivation: HMAC-SHA256(key, data) as bytes.
    public static func mac(key: [UInt8], _ data: [UInt8]) -> [UInt8] { HMACSHA256(key: key).mac(data).bytes }
}

/// Streaming SHA-256 (`EVP_sha256`, SHA-NI where the CPU has it). Not thread-safe.
public final class SHA256Hasher {
    private let ctx: OpaquePointer

    public init() {
        guard let c = crepo_sha256_new() else { fatalError("EVP_MD_CTX_new failed") }
        ctx = c
    }

    deinit { crepo_sha256_free(ctx) }

    public func update(_ data: UnsafeRawBufferPointer) {
        guard data.count > 0 else { return }
        precondition(crepo_sha256_update(ctx, data.baseAddress, data.count) == 1)
    }

    public func update(_ data: [UInt8]) { data.withUnsafeBytes { update($0) } }

    /// Returns the digest; the hasher must not be used afterwards.
    public func finalize() -> Hash256 {
        var out = [UInt8](repeating: 0, count: 32)
        precondition(crepo_sha256_final(ctx, &out) == 1)
        return Hash256(bytes: out)
    }

    public static func hash(_ data: UnsafeRawBufferPointer) -> Hash256 {
        let h = SHA256Hasher()
        h.update(data)
        return h.finalize()
    }

    public static func hash(_ data: [UInt8]) -> Hash256 { data.withUnsafeBytes { hash($0) } }
}

/// scrypt password-based key derivation (RFC 7914) through `EVP_PBE_scrypt`.
public enum Scrypt {
    public static func derive(password: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64,
                              length: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let ok = crepo_scrypt(password, password.count, salt, salt.count, n, r, p, &out, length)
        guard ok == 1 else { throw CryptoError.library("EVP_PBE_scrypt (N=\(n), r=\(r), p=\(p))") }
        return out
    }
}
