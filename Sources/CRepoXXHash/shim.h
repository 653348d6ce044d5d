#ifndef CREPO_XXHASH_SHIM_H
#define CREPO_XXHASH_SHIM_H
#include <xxhash.h>

static inline unsigned long long crepo_xxh3_64(const void *data, size_t len) {
    return (unsigned long long)XXH3_64bits(data, len);
}
#endif
