internal import CRepoZstd

/// Failures of the compression primitives.
public enum CompressionError: Error, CustomStringConvertible {
    case zstd(String)
    case sizeMismatch(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .zstd(let m): return "zstd: \(m)"
        case .sizeMismatch(let e, let a): return "zstd: decompressed \(a) bytes, expected \(e)"
        }
    }
}

/// zstd compression with a reusable context (`ZSTD_compressCCtx`). Not thread-safe.
public final class ZstdCompressor {
    private let ctx: OpaquePointer
    public let level: Int32

    /// Compression runs on `workers` extra threads when > 0 (libzstd's multithreaded mode,
    /// `ZSTD_c_nbWorkers`; the frame format is the same). A libzstd built without threads
    /// compresses on the calling thread.
    public init(level: Int32, workers: Int32 = 0) {
        guard let c = ZSTD_createCCtx() else { fatalError("ZSTD_createCCtx failed") }
        ctx = c
        self.level = level
        ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level)
        if workers > 0 { _ = ZSTD_CCtx_setParameter(ctx, ZSTD_c_nbWorkers, workers) }
    }

    deinit { ZSTD_freeCCtx(ctx) }

    /// Compresses `input`; returns nil when the result would not be smaller than the input
    /// (the caller then stores the bytes raw).
    public func compressIfSmaller(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        guard input.count > 0 else { return nil }
        let bound = input.count - 1   // only a strictly smaller result is worth keeping
        var failed = false
        let out = [UInt8](unsafeUninitializedCapacity: bound) { buf, count in
            let r = ZSTD_compress2(ctx, buf.baseAddress, bound, input.baseAddress, input.count)
            if crepo_zstd_is_error(r) != 0 { failed = true; count = 0 } else { count = r }
        }
        return failed ? nil : out
    }
}

/// zstd decompression with a reusable context. Not thread-safe.
public final class ZstdDecompressor {
    private let ctx: OpaquePointer

    public init() {
        guard let c = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx failed") }
        ctx = c
    }

    deinit { ZSTD_freeDCtx(ctx) }

    /// Decompresses a frame whose decompressed size the caller knows (it is recorded per blob).
    public func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int) throws -> [UInt8] {
        // The expected size comes from the repository: allocate it only when the frames can
        // actually produce that many bytes (a few bytes of zstd cannot make 4 GiB), and never
        // hand zstd a negative capacity.
        let bound = crepo_zstd_decompress_bound(input.baseAddress, input.count)
        guard bound >= 0 else { throw CompressionError.zstd("not a zstd frame") }
        guard expectedSize >= 0, Int64(expectedSize) <= bound else {
            throw CompressionError.sizeMismatch(expected: expectedSize, actual: Int(bound))
        }
        var err: String?
        let out = [UInt8](unsafeUninitializedCapacity: max(expectedSize, 1)) { buf, count in
            let r = ZSTD_decompressDCtx(ctx, buf.baseAddress, expectedSize, input.baseAddress, input.count)
            if crepo_zstd_is_error(r) != 0 {
                err = String(cString: ZSTD_getErrorName(r)); count = 0
            } else { count = r }
        }
        if let err { throw CompressionError.zstd(err) }
        guard out.count == expectedSize else { throw CompressionError.sizeMismatch(expected: expectedSize, actual: out.count) }
        return out
    }
}
