internal import CRepoZstd
import Dispatch

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

    public init(level: Int32) {
        guard let c = ZSTD_createCCtx() else { fatalError("ZSTD_createCCtx failed") }
        ctx = c
        self.level = level
    }

    deinit { ZSTD_freeCCtx(ctx) }

    /// Compresses `input`; returns nil when the result would not be smaller than the input
    /// (the caller then stores the bytes raw).
    public func compressIfSmaller(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        guard input.count > 0 else { return nil }
        let bound = input.count - 1   // only a strictly smaller result is worth keeping
        var failed = false
        let out = [UInt8](unsafeUninitializedCapacity: bound) { buf, count in
            let r = ZSTD_compressCCtx(ctx, buf.baseAddress, bound, input.baseAddress, input.count, level)
            if crepo_zstd_is_error(r) != 0 { failed = true; count = 0 } else { count = r }
        }
        return failed ? nil : out
    }
}

extension ZstdCompressor {
    /// Compresses `input` as `parts` independent frames, one per thread, concatenated (a
    /// valid zstd stream: decoders read concatenated frames as one). libzstd's own
    /// multithreaded mode copies the input into job buffers first, which costs more than it
    /// saves for one 16 MiB WAL segment; splitting does not. Nil when the result would not be
    /// smaller than the input.
    public static func compressInParts(_ input: UnsafeRawBufferPointer, level: Int32, parts: Int) -> [UInt8]? {
        guard parts > 1, input.count >= parts * 1 << 20 else { return ZstdCompressor(level: level).compressIfSmaller(input) }
        let step = (input.count + parts - 1) / parts
        let results = UnsafeMutablePointer<[UInt8]?>.allocate(capacity: parts)
        results.initialize(repeating: nil, count: parts)
        defer { results.deinitialize(count: parts); results.deallocate() }
        // Each thread reads its own slice of `input` and writes its own slot of `results`.
        nonisolated(unsafe) let source = input, slots = results
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            let lo = i * step, hi = min(source.count, lo + step)
            slots[i] = ZstdCompressor(level: level).compressIfSmaller(UnsafeRawBufferPointer(rebasing: source[lo..<hi]))
        }
        var out: [UInt8] = []
        for i in 0..<parts {
            guard let frame = results[i] else { return nil }
            out.append(contentsOf: frame)
        }
        return out.count < input.count ? out : nil
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
