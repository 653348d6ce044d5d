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
    /// Compresses `input` on `workers` threads as independent frames, concatenated (a valid
    /// zstd stream: decoders read concatenated frames as one). libzstd's own multithreaded mode
    /// copies the input into job buffers first, which costs more than it saves for one 16 MiB
    /// WAL segment; splitting does not. The input is cut into up to four frames per worker, of
    /// at least 1 MiB, taken from a shared queue: how well a stretch compresses varies (a WAL
    /// segment's first half can take twice its second's time), and one frame per worker left a
    /// core idle while the other finished the slow half. Smaller frames cost 0.4% of size on
    /// pgbench WAL. Nil when the result would not be smaller than the input.
    public static func compressInParts(_ input: UnsafeRawBufferPointer, level: Int32, parts workers: Int) -> [UInt8]? {
        guard workers > 1, input.count >= 2 << 20 else { return ZstdCompressor(level: level).compressIfSmaller(input) }
        var ok = false
        let out = [UInt8](unsafeUninitializedCapacity: partsBound(input.count, workers: workers)) { buf, count in
            let n = compressInParts(input, level: level, workers: workers, into: UnsafeMutableRawBufferPointer(buf))
            ok = n != nil; count = n ?? 0
        }
        return ok ? out : nil
    }

    /// The capacity `compressInParts(_:level:workers:into:)` needs for `size` input bytes.
    public static func partsBound(_ size: Int, workers: Int) -> Int {
        let (parts, step) = split(size, workers: workers)
        return parts * ZSTD_compressBound(step)
    }

    /// `compressInParts` writing into `output` (at least `partsBound` bytes): each frame is
    /// compressed into its own slot of the buffer, then the frames are moved together, so the
    /// result is built without a copy per frame. Returns the length written, or nil when it
    /// would not be smaller than the input (the buffer's contents are then unspecified).
    public static func compressInParts(_ input: UnsafeRawBufferPointer, level: Int32, workers: Int,
                                       into output: UnsafeMutableRawBufferPointer) -> Int? {
        let (parts, step) = split(input.count, workers: workers)
        let slot = ZSTD_compressBound(step)
        precondition(output.count >= parts * slot, "compressInParts: output smaller than partsBound")
        let lengths = UnsafeMutablePointer<Int>.allocate(capacity: parts)
        lengths.initialize(repeating: -1, count: parts)
        defer { lengths.deinitialize(count: parts); lengths.deallocate() }
        // Each thread reads its own slice of `input` and writes its own slot of `output` and
        // of `lengths`.
        nonisolated(unsafe) let source = input, target = output, sizes = lengths
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            let lo = min(source.count, i * step), hi = min(source.count, lo + step)
            guard let ctx = ZSTD_createCCtx() else { return }
            defer { ZSTD_freeCCtx(ctx) }
            let r = ZSTD_compressCCtx(ctx, target.baseAddress! + i * slot, slot, source.baseAddress! + lo, hi - lo, level)
            if crepo_zstd_is_error(r) == 0 { sizes[i] = r }
        }
        var end = 0
        for i in 0..<parts {
            guard lengths[i] >= 0 else { return nil }
            if end != i * slot { (output.baseAddress! + end).copyMemory(from: output.baseAddress! + i * slot, byteCount: lengths[i]) }
            end += lengths[i]
        }
        return end < input.count ? end : nil
    }

    /// Frames and bytes per frame for `size` bytes on `workers` threads (one frame for a small
    /// input or one worker).
    private static func split(_ size: Int, workers: Int) -> (parts: Int, step: Int) {
        let parts = workers > 1 && size >= 2 << 20 ? max(2, min(workers * 4, size >> 20)) : 1
        return (parts, max(1, (size + parts - 1) / parts))
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
