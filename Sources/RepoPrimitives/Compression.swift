internal import CRepoZstd
import Dispatch
import Synchronization

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
    /// compressed into its own slot of the buffer and moved next to the one before as soon as
    /// all frames before it are done, so the result is built without a copy per frame and
    /// mostly while other frames are still compressing. Returns the length written, or nil
    /// when it would not be smaller than the input (the buffer's contents are then unspecified).
    public static func compressInParts(_ input: UnsafeRawBufferPointer, level: Int32, workers: Int,
                                       into output: UnsafeMutableRawBufferPointer) -> Int? {
        compressInParts(input, level: level, workers: workers, into: output) { _ in true }
    }

    /// `compressInParts(_:level:workers:into:)` handing each frame, once in its final place, to
    /// `emit`: in frame order, one call at a time, on whichever thread completed the frame (or
    /// the one before it). A frame's final place is `output` from the end of the frame before,
    /// so `emit` may change those bytes (encrypt them in place); `emit` returning false stops
    /// the work and makes the result nil.
    public static func compressInParts(_ input: UnsafeRawBufferPointer, level: Int32, workers: Int,
                                       into output: UnsafeMutableRawBufferPointer,
                                       emit: (UnsafeMutableRawBufferPointer) -> Bool) -> Int? {
        let (parts, step) = split(input.count, workers: workers)
        let slot = ZSTD_compressBound(step)
        precondition(output.count >= parts * slot, "compressInParts: output smaller than partsBound")
        // Frame i is compressed into [i·slot, (i+1)·slot) and, once frames 0…i-1 are in place,
        // moved to `end` ≤ i·slot: never into a slot above i, which other threads may be
        // writing. One context per thread, reused for every frame it takes: a context's tables
        // are half a MiB of fresh pages, and first touches of fresh pages are much of what a
        // 16 MiB segment costs apart from zstd itself.
        let frames = FrameQueue(count: parts)
        return withoutActuallyEscaping(emit) { emit in
            nonisolated(unsafe) let source = input, target = output, sink = emit
            DispatchQueue.concurrentPerform(iterations: min(max(workers, 1), parts)) { _ in
                guard let ctx = ZSTD_createCCtx() else { frames.fail(); return }
                defer { ZSTD_freeCCtx(ctx) }
                while let i = frames.next() {
                    let lo = min(source.count, i * step), hi = min(source.count, lo + step)
                    let r = ZSTD_compressCCtx(ctx, target.baseAddress! + i * slot, slot, source.baseAddress! + lo, hi - lo, level)
                    guard crepo_zstd_is_error(r) == 0 else { frames.fail(); return }
                    frames.done(i, length: r) { frame, length, at in
                        if at != frame * slot { (target.baseAddress! + at).copyMemory(from: target.baseAddress! + frame * slot, byteCount: length) }
                        return sink(UnsafeMutableRawBufferPointer(start: target.baseAddress! + at, count: length))
                    }
                }
            }
            guard let end = frames.finished else { return nil }
            return end < input.count ? end : nil
        }
    }

    /// The frames of one `compressInParts`: handed out in order to whichever thread asks
    /// first, and placed (moved and emitted) in order as they complete.
    private final class FrameQueue: Sendable {
        private struct State {
            var lengths: [Int]
            /// The first frame not yet placed, and where it goes.
            var placed = 0, end = 0
            var failed = false
        }
        private let taken = Atomic<Int>(0)
        private let count: Int
        private let state: Mutex<State>

        init(count: Int) {
            self.count = count
            state = Mutex(State(lengths: [Int](repeating: -1, count: count)))
        }

        /// The next frame's index; nil when all are taken or the work failed.
        func next() -> Int? {
            if state.withLock({ $0.failed }) { return nil }
            let i = taken.wrappingAdd(1, ordering: .relaxed).oldValue
            return i < count ? i : nil
        }

        func fail() { state.withLock { $0.failed = true } }

        /// Records frame `i`'s length and places every frame that is now next in line:
        /// `place(frame, length, offset)` moves and emits it; false fails the work.
        func done(_ i: Int, length: Int, place: (Int, Int, Int) -> Bool) {
            state.withLock { s in
                s.lengths[i] = length
                while !s.failed, s.placed < count, s.lengths[s.placed] >= 0 {
                    let frame = s.placed, n = s.lengths[frame]
                    if !place(frame, n, s.end) { s.failed = true; break }
                    s.end += n
                    s.placed += 1
                }
            }
        }

        /// The total length once every frame is placed; nil if any failed.
        var finished: Int? {
            state.withLock { $0.failed || $0.placed < count ? nil : $0.end }
        }
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
        try Self.checkBound(input, expectedSize: expectedSize)
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

    /// `decompress` into `buffer`, which then holds exactly the `expectedSize` bytes, reusing its
    /// storage when that is large enough. For a caller that decompresses object after object of
    /// one size (the WAL prefetcher, 16 MiB segments): a new 16 MiB array is a new mapping, so
    /// 4,096 page faults, the kernel zeroing every page and an munmap per object, more CPU than
    /// zstd itself (FORMAT.md §27.6). On failure `buffer`'s contents are unspecified.
    public func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int, into buffer: inout [UInt8]) throws {
        try Self.checkBound(input, expectedSize: expectedSize)
        if buffer.count > expectedSize {
            buffer.removeLast(buffer.count - expectedSize)      // keeps the capacity
        } else if buffer.count < expectedSize {
            buffer.append(contentsOf: repeatElement(0, count: expectedSize - buffer.count))
        }
        let r = buffer.withUnsafeMutableBytes { ZSTD_decompressDCtx(ctx, $0.baseAddress, expectedSize, input.baseAddress, input.count) }
        if crepo_zstd_is_error(r) != 0 { throw CompressionError.zstd(String(cString: ZSTD_getErrorName(r))) }
        guard r == expectedSize else { throw CompressionError.sizeMismatch(expected: expectedSize, actual: r) }
    }

    /// The expected size comes from the repository: allocate it only when the frames can
    /// actually produce that many bytes (a few bytes of zstd cannot make 4 GiB), and never hand
    /// zstd a negative capacity. `ZSTD_decompressBound` takes a frame's declared content size
    /// on trust, and a header can declare any size; so the bound is also capped by what the
    /// input can hold: every block of at most 128 KiB output takes at least 4 input bytes (a
    /// 3-byte block header and 1 byte of content, RFC 8878 §3.1.1.2), so `n` input bytes make
    /// at most ⌈n / 4⌉ × 128 KiB.
    private static func checkBound(_ input: UnsafeRawBufferPointer, expectedSize: Int) throws {
        let declared = crepo_zstd_decompress_bound(input.baseAddress, input.count)
        guard declared >= 0 else { throw CompressionError.zstd("not a zstd frame") }
        let bound = min(declared, Int64((input.count + 3) / 4) << 17)
        guard expectedSize >= 0, Int64(expectedSize) <= bound else {
            throw CompressionError.sizeMismatch(expected: expectedSize, actual: Int(bound))
        }
    }
}
