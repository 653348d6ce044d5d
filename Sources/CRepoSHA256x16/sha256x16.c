// Multi-buffer HMAC-SHA256 on AVX-512; see include/crepo_sha256x16.h.
//
// Each 32-bit lane of a 512-bit register holds the same SHA-256 state word of a different
// message, so one instruction advances sixteen messages. A lane that finishes its message is
// refilled with the next one (its state reset to the key's inner midstate), so lanes stay busy
// while messages remain. Message blocks are copied into a 16 x 64-byte buffer and transposed
// with gathers; the rounds use AVX-512 rotates and three-input logic (Ch, Maj, Σ as one
// instruction each). The functions carry their own target attribute: the file is built for
// any x86-64 and `crepo_sha256x16_available()` says whether the kernel may run.
#include "crepo_sha256x16.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/// One SHA-256 block, scalar (only for the two key blocks of an HMAC).
static void compress1(uint32_t st[8], const uint8_t blk[64]) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++) {
        w[t] = (uint32_t)blk[4 * t] << 24 | (uint32_t)blk[4 * t + 1] << 16 | (uint32_t)blk[4 * t + 2] << 8 | blk[4 * t + 3];
    }
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ROR32(w[t - 15], 7) ^ ROR32(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROR32(w[t - 2], 17) ^ ROR32(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

void crepo_hmac_sha256_midstates(const uint8_t *key, size_t keylen, uint32_t inner[8], uint32_t outer[8]) {
    uint8_t blk[64];
    if (keylen > 64) keylen = 64;   // callers pass at most 64 bytes (documented)
    memset(blk, 0, sizeof blk);
    memcpy(blk, key, keylen);
    for (int i = 0; i < 64; i++) blk[i] ^= 0x36;
    memcpy(inner, H0, sizeof H0);
    compress1(inner, blk);
    memset(blk, 0, sizeof blk);
    memcpy(blk, key, keylen);
    for (int i = 0; i < 64; i++) blk[i] ^= 0x5c;
    memcpy(outer, H0, sizeof H0);
    compress1(outer, blk);
}

#if defined(__x86_64__)

int crepo_sha256x16_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

#define KERNEL __attribute__((target("avx512f,avx512bw")))
#define XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define CH(e, f, g) _mm512_ternarylogic_epi32((e), (f), (g), 0xCA)
#define MAJ(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xE8)
#define ADD(a, b) _mm512_add_epi32((a), (b))

/// One block in every lane: `buf` holds lane l's 64-byte block at 64*l. Only lanes in `active`
/// get the block added to their state.
KERNEL static void blocks_x16(__m512i s[8], const uint8_t *buf, __mmask16 active) {
    const __m512i lanes = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    const __m512i bswap = _mm512_broadcast_i32x4(_mm_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12));
    __m512i w[16];
    for (int t = 0; t < 16; t++) {
        __m512i v = _mm512_i32gather_epi32(_mm512_add_epi32(lanes, _mm512_set1_epi32(t)), (const void *)buf, 4);
        w[t] = _mm512_shuffle_epi8(v, bswap);
    }
    __m512i a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
#pragma clang loop unroll(full)
    for (int t = 0; t < 64; t++) {
        __m512i wt;
        if (t < 16) {
            wt = w[t];
        } else {
            __m512i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
            __m512i s0 = XOR3(_mm512_ror_epi32(w15, 7), _mm512_ror_epi32(w15, 18), _mm512_srli_epi32(w15, 3));
            __m512i s1 = XOR3(_mm512_ror_epi32(w2, 17), _mm512_ror_epi32(w2, 19), _mm512_srli_epi32(w2, 10));
            wt = ADD(ADD(w[t & 15], s0), ADD(w[(t - 7) & 15], s1));
            w[t & 15] = wt;
        }
        __m512i t1 = ADD(ADD(h, XOR3(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25))),
                         ADD(CH(e, f, g), ADD(_mm512_set1_epi32((int)K[t]), wt)));
        __m512i t2 = ADD(XOR3(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22)), MAJ(a, b, c));
        h = g; g = f; f = e; e = ADD(d, t1); d = c; c = b; b = a; a = ADD(t1, t2);
    }
    s[0] = _mm512_mask_add_epi32(s[0], active, s[0], a);
    s[1] = _mm512_mask_add_epi32(s[1], active, s[1], b);
    s[2] = _mm512_mask_add_epi32(s[2], active, s[2], c);
    s[3] = _mm512_mask_add_epi32(s[3], active, s[3], d);
    s[4] = _mm512_mask_add_epi32(s[4], active, s[4], e);
    s[5] = _mm512_mask_add_epi32(s[5], active, s[5], f);
    s[6] = _mm512_mask_add_epi32(s[6], active, s[6], g);
    s[7] = _mm512_mask_add_epi32(s[7], active, s[7], h);
}

/// A message being hashed in one lane: its full blocks straight from the message, then one or
/// two padded tail blocks (the inner hash covers 64 key bytes plus the message).
typedef struct {
    const uint8_t *next;
    size_t fullLeft;
    uint8_t tail[128];
    int tailBlocks, tailDone;
    size_t message;
    int busy;
} Lane;

static void lane_start(Lane *l, const uint8_t *msg, size_t len, size_t index) {
    l->next = msg;
    l->fullLeft = len / 64;
    size_t r = len % 64;
    memset(l->tail, 0, sizeof l->tail);
    if (r) memcpy(l->tail, msg + (len - r), r);
    l->tail[r] = 0x80;
    l->tailBlocks = r + 9 <= 64 ? 1 : 2;
    uint64_t bits = ((uint64_t)len + 64) * 8;
    uint8_t *end = l->tail + 64 * l->tailBlocks;
    for (int i = 0; i < 8; i++) end[-1 - i] = (uint8_t)(bits >> (8 * i));
    l->tailDone = 0;
    l->message = index;
    l->busy = 1;
}

static void store_be(uint8_t *out, uint32_t v) {
    out[0] = (uint8_t)(v >> 24); out[1] = (uint8_t)(v >> 16); out[2] = (uint8_t)(v >> 8); out[3] = (uint8_t)v;
}

KERNEL void crepo_hmac_sha256_many(const uint32_t inner[8], const uint32_t outer[8], size_t n,
                                   const uint8_t *const *msgs, const size_t *lens, uint8_t *out) {
    static const uint8_t zero[64];
    uint8_t buf[16 * 64] __attribute__((aligned(64)));
    uint32_t st[8][16] __attribute__((aligned(64)));
    Lane lane[16];
    __m512i s[8];
    for (int j = 0; j < 8; j++) s[j] = _mm512_set1_epi32((int)inner[j]);
    for (int l = 0; l < 16; l++) lane[l].busy = 0;
    size_t next = 0;

    // Inner hashes; each lane's digest goes to out[32 * message] for the outer pass.
    for (;;) {
        __mmask16 fresh = 0, active = 0;
        for (int l = 0; l < 16; l++) {
            if (!lane[l].busy && next < n) {
                lane_start(&lane[l], msgs[next], lens[next], next);
                next++;
                fresh |= (__mmask16)(1u << l);
            }
            if (lane[l].busy) active |= (__mmask16)(1u << l);
        }
        if (!active) break;
        if (fresh) {
            for (int j = 0; j < 8; j++) s[j] = _mm512_mask_mov_epi32(s[j], fresh, _mm512_set1_epi32((int)inner[j]));
        }
        for (int l = 0; l < 16; l++) {
            const uint8_t *src = zero;
            if (lane[l].busy) src = lane[l].fullLeft ? lane[l].next : lane[l].tail + 64 * lane[l].tailDone;
            memcpy(buf + 64 * l, src, 64);
        }
        blocks_x16(s, buf, active);
        __mmask16 done = 0;
        for (int l = 0; l < 16; l++) {
            if (!lane[l].busy) continue;
            if (lane[l].fullLeft) { lane[l].next += 64; lane[l].fullLeft--; } else { lane[l].tailDone++; }
            if (lane[l].fullLeft == 0 && lane[l].tailDone == lane[l].tailBlocks) done |= (__mmask16)(1u << l);
        }
        if (done) {
            for (int j = 0; j < 8; j++) _mm512_store_si512((void *)st[j], s[j]);
            for (int l = 0; l < 16; l++) {
                if (!(done & (1u << l))) continue;
                for (int j = 0; j < 8; j++) store_be(out + 32 * lane[l].message + 4 * j, st[j][l]);
                lane[l].busy = 0;
            }
        }
    }

    // Outer hashes: one block each (32-byte inner digest, padding, length 96 bytes).
    for (size_t i = 0; i < n; i += 16) {
        size_t m = n - i < 16 ? n - i : 16;
        __mmask16 act = (__mmask16)((1u << m) - 1);
        memset(buf, 0, sizeof buf);
        for (size_t l = 0; l < m; l++) {
            uint8_t *b = buf + 64 * l;
            memcpy(b, out + 32 * (i + l), 32);
            b[32] = 0x80;
            b[62] = 0x03;   // (64 + 32) * 8 = 768 bits
            b[63] = 0x00;
        }
        for (int j = 0; j < 8; j++) s[j] = _mm512_set1_epi32((int)outer[j]);
        blocks_x16(s, buf, act);
        for (int j = 0; j < 8; j++) _mm512_store_si512((void *)st[j], s[j]);
        for (size_t l = 0; l < m; l++) {
            for (int j = 0; j < 8; j++) store_be(out + 32 * (i + l) + 4 * j, st[j][l]);
        }
    }
}

#else

int crepo_sha256x16_available(void) { return 0; }

void crepo_hmac_sha256_many(const uint32_t inner[8], const uint32_t outer[8], size_t n,
                            const uint8_t *const *msgs, const size_t *lens, uint8_t *out) {
    (void)inner; (void)outer; (void)n; (void)msgs; (void)lens; (void)out;
}

#endif
