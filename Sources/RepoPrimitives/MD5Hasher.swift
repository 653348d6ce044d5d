internal import CRepoCrypto
import Foundation

/// Streaming MD5 (RFC 1321) through libcrypto, for S3's `Content-MD5` header (RFC 1864): Amazon
/// S3 requires it, or an additional checksum, on every upload that carries Object Lock retention
/// (Amazon S3 API Reference, PutObject and UploadPart, "Content-MD5"). MD5 is broken as a hash;
/// nothing in the repository format relies on it.
public final class MD5Hasher {
    private let ctx: OpaquePointer

    public init() {
        guard let c = crepo_md5_new() else { fatalError("EVP_MD_CTX_new (MD5) failed") }
        ctx = c
    }

    deinit { crepo_md5_free(ctx) }

    public func update(_ data: UnsafeRawBufferPointer) {
        guard data.count > 0 else { return }
        precondition(crepo_md5_update(ctx, data.baseAddress, data.count) == 1)
    }

    public func update(_ data: [UInt8]) { data.withUnsafeBytes { update($0) } }

    /// The 16-byte digest; the hasher must not be used afterwards.
    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        precondition(crepo_md5_final(ctx, &out) == 1)
        return out
    }

    /// The `Content-MD5` value of `data`: its MD5 digest in base64.
    public static func contentMD5(_ data: [UInt8]) -> String {
        let h = MD5Hasher()
        h.update(data)
        return Data(h.finalize()).base64EncodedString()
    }
}
