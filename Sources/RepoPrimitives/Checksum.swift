internal import CRepoXXHash

/// XXH3-64: a fast non-cryptographic checksum, for local cache bookkeeping only (never for
/// anything an attacker controls or anything in the repository format's trust chain).
public enum XXH3 {
    public static func hash(_ data: UnsafeRawBufferPointer) -> UInt64 {
        crepo_xxh3_64(data.baseAddress, data.count)
    }

    public static func hash(_ data: [UInt8]) -> UInt64 { data.withUnsafeBytes { hash($0) } }
}
