#ifndef CREPO_ZSTD_SHIM_H
#define CREPO_ZSTD_SHIM_H
#include <zstd.h>

/// ZSTD_isError returns unsigned; expose a Swift-friendly boolean form.
static inline int crepo_zstd_is_error(size_t code) { return ZSTD_isError(code) ? 1 : 0; }
#endif
