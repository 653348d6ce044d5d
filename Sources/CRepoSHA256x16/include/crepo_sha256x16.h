// Multi-buffer HMAC-SHA256: sixteen independent messages hashed at once in the 32-bit lanes of
// AVX-512 registers. On a CPU without SHA instructions one SHA-256 stream runs at about one
// byte per 8-10 cycles however it is written (its rounds depend on each other); sixteen streams
// side by side share each instruction, which makes blob ids several times cheaper. Same
// results as any HMAC-SHA256 (tested against libcrypto).
#ifndef CREPO_SHA256X16_H
#define CREPO_SHA256X16_H
#include <stddef.h>
#include <stdint.h>

/// 1 if this CPU runs the 16-lane kernel (AVX-512 F and BW), else 0.
int crepo_sha256x16_available(void);

/// The SHA-256 states after the key's inner (key ^ ipad) and outer (key ^ opad) blocks. `key`
/// must be at most 64 bytes (repository keys are 32).
void crepo_hmac_sha256_midstates(const uint8_t *key, size_t keylen, uint32_t inner[8], uint32_t outer[8]);

/// HMAC-SHA256 of `n` messages (`msgs[i]`, `lens[i]` bytes) under the key whose midstates are
/// given; writes n 32-byte tags to `out`. Requires crepo_sha256x16_available().
void crepo_hmac_sha256_many(const uint32_t inner[8], const uint32_t outer[8], size_t n,
                            const uint8_t *const *msgs, const size_t *lens, uint8_t *out);
#endif
