internal import CRepoSHA256x16

/// HMAC-SHA256 of many messages under one key at once: blob ids for a batch of chunks.
///
/// On CPUs with AVX-512 (F and BW) sixteen messages are hashed side by side in one register
/// set (`CRepoSHA256x16`). Without SHA instructions, one SHA-256 stream runs at about 8-10
/// cycles a byte whatever the code, because its rounds depend on each other; hashing sixteen
/// independent chunks together shares every instruction among them. Elsewhere it falls back to
/// libcrypto one message at a time. Results are identical either way. Not thread-safe.
public final class HMACBatch {
    /// True if the 16-lane kernel runs on this CPU.
    public static let isAccelerated: Bool = crepo_sha256x16_available() != 0

    private var inner = [UInt32](repeating: 0, count: 8)
    private var outer = [UInt32](repeating: 0, count: 8)
    private let single: HMACSHA256
    private let accelerated: Bool

    /// - Parameters:
    ///   - key: the HMAC key (at most 64 bytes; repository keys are 32).
    ///   - accelerated: use the kernel if the CPU has it (tests turn it off to compare).
    public init(key: [UInt8], accelerated: Bool = HMACBatch.isAccelerated) {
        precondition(key.count <= 64, "HMACBatch takes keys of at most 64 bytes")
        single = HMACSHA256(key: key)
        self.accelerated = accelerated && Self.isAccelerated
        crepo_hmac_sha256_midstates(key, key.count, &inner, &outer)
    }

    /// The HMAC of each message, in order.
    public func macs(_ messages: [[UInt8]]) -> [Hash256] {
        guard accelerated, messages.count > 1 else { return messages.map { single.mac($0) } }
        var out = [UInt8](repeating: 0, count: 32 * messages.count)
        let lengths = messages.map(\.count)
        // Pin every message's storage for the call (arrays are contiguous; nested closures keep
        // each buffer alive while its pointer is used).
        func withPointers(_ i: Int, _ acc: inout [UnsafePointer<UInt8>?], _ body: (inout [UnsafePointer<UInt8>?]) -> Void) {
            if i == messages.count { body(&acc); return }
            messages[i].withUnsafeBufferPointer { buf in
                acc.append(buf.baseAddress ?? UnsafePointer(bitPattern: 1))
                withPointers(i + 1, &acc, body)
            }
        }
        var pointers: [UnsafePointer<UInt8>?] = []
        pointers.reserveCapacity(messages.count)
        withPointers(0, &pointers) { ptrs in
            crepo_hmac_sha256_many(inner, outer, messages.count, ptrs, lengths, &out)
        }
        return out.withUnsafeBytes { raw in
            (0..<messages.count).map { Hash256(pointer: raw.baseAddress! + 32 * $0) }
        }
    }
}
