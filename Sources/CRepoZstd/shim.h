#ifndef CREPO_ZSTD_SHIM_H
#define CREPO_ZSTD_SHIM_H
#define ZSTD_STATIC_LINKING_ONLY   /* ZSTD_decompressBound (exported by libzstd since 1.4) */
#include <stdint.h>
#include <zstd.h>

/// ZSTD_isError returns unsigned; expose a Swift-friendly boolean form.
static inline int crepo_zstd_is_error(size_t code) { return ZSTD_isError(code) ? 1 : 0; }

/// The most bytes the frames in src can decompress to, or -1 if src is not zstd frames.
static inline long long crepo_zstd_decompress_bound(const void *src, size_t size) {
    unsigned long long b = ZSTD_decompressBound(src, size);
    if (b == ZSTD_CONTENTSIZE_ERROR) return -1;
    return b > (unsigned long long)INT64_MAX ? INT64_MAX : (long long)b;
}
#endif
