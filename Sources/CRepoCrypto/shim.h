#ifndef CREPO_CRYPTO_SHIM_H
#define CREPO_CRYPTO_SHIM_H
// Thin, macro-free C entry points over OpenSSL 3's EVP interfaces so the Swift side never
// touches OSSL_PARAM arrays, EVP_CTRL_* macros or variadic calls.
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/kdf.h>

/// Fills `out` with `len` cryptographically secure random bytes. Returns 1 on success.
static inline int crepo_random(uint8_t *out, size_t len) {
    return RAND_bytes(out, (int)len);
}

/// AES-256-GCM encryption with a 12-byte nonce and a 16-byte tag. `ctx` is reused by the caller
/// (one per thread). Returns 1 on success.
static inline int crepo_aes256gcm_seal(EVP_CIPHER_CTX *ctx, const uint8_t *key, const uint8_t *nonce,
                                       const uint8_t *ad, size_t adlen,
                                       const uint8_t *in, size_t inlen,
                                       uint8_t *out, uint8_t *tag) {
    int len = 0;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) return 0;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1) return 0;
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) return 0;
    if (adlen > 0 && EVP_EncryptUpdate(ctx, NULL, &len, ad, (int)adlen) != 1) return 0;
    size_t done = 0;
    while (done < inlen) {
        size_t step = inlen - done;
        if (step > (1u << 30)) step = (1u << 30);
        if (EVP_EncryptUpdate(ctx, out + done, &len, in + done, (int)step) != 1) return 0;
        done += (size_t)len;
    }
    if (EVP_EncryptFinal_ex(ctx, out + done, &len) != 1) return 0;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1) return 0;
    return 1;
}

/// AES-256-GCM encryption in steps, for bytes that become ready in order: `begin` (key, nonce,
/// associated data), `update` any number of times (any lengths; `out` may equal `in`), then
/// `finish`, which writes the 16-byte tag. The result equals one `crepo_aes256gcm_seal` of the
/// concatenated input. Each returns 1 on success.
static inline int crepo_aes256gcm_begin(EVP_CIPHER_CTX *ctx, const uint8_t *key, const uint8_t *nonce,
                                        const uint8_t *ad, size_t adlen) {
    int len = 0;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) return 0;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1) return 0;
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) return 0;
    if (adlen > 0 && EVP_EncryptUpdate(ctx, NULL, &len, ad, (int)adlen) != 1) return 0;
    return 1;
}

static inline int crepo_aes256gcm_update(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t inlen, uint8_t *out) {
    int len = 0;
    size_t done = 0;
    while (done < inlen) {
        size_t step = inlen - done;
        if (step > (1u << 30)) step = (1u << 30);
        if (EVP_EncryptUpdate(ctx, out + done, &len, in + done, (int)step) != 1 || (size_t)len != step) return 0;
        done += step;
    }
    return 1;
}

static inline int crepo_aes256gcm_finish(EVP_CIPHER_CTX *ctx, uint8_t *tag) {
    int len = 0;
    uint8_t last[16];
    if (EVP_EncryptFinal_ex(ctx, last, &len) != 1 || len != 0) return 0;
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
}

/// AES-256-GCM decryption and tag check. Returns 1 when the tag verifies, 0 otherwise (and the
/// output must then be discarded).
static inline int crepo_aes256gcm_open(EVP_CIPHER_CTX *ctx, const uint8_t *key, const uint8_t *nonce,
                                       const uint8_t *ad, size_t adlen,
                                       const uint8_t *in, size_t inlen,
                                       const uint8_t *tag, uint8_t *out) {
    int len = 0;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) return 0;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1) return 0;
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) return 0;
    if (adlen > 0 && EVP_DecryptUpdate(ctx, NULL, &len, ad, (int)adlen) != 1) return 0;
    size_t done = 0;
    while (done < inlen) {
        size_t step = inlen - done;
        if (step > (1u << 30)) step = (1u << 30);
        if (EVP_DecryptUpdate(ctx, out + done, &len, in + done, (int)step) != 1) return 0;
        done += (size_t)len;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1) return 0;
    return EVP_DecryptFinal_ex(ctx, out + done, &len) == 1 ? 1 : 0;
}

/// A reusable HMAC-SHA256 context bound to one key.
static inline EVP_MAC_CTX *crepo_hmac_new(const uint8_t *key, size_t keylen) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (ctx == NULL) return NULL;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, keylen, params) != 1) { EVP_MAC_CTX_free(ctx); return NULL; }
    return ctx;
}

/// Computes HMAC-SHA256 of `data` with the context's key into `out` (32 bytes). Returns 1 on success.
static inline int crepo_hmac_compute(EVP_MAC_CTX *ctx, const uint8_t *data, size_t len, uint8_t *out) {
    size_t outlen = 0;
    if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1) return 0;
    if (EVP_MAC_update(ctx, data, len) != 1) return 0;
    return EVP_MAC_final(ctx, out, &outlen, 32) == 1 && outlen == 32;
}

static inline void crepo_hmac_free(EVP_MAC_CTX *ctx) { EVP_MAC_CTX_free(ctx); }

/// Streaming SHA-256.
static inline EVP_MD_CTX *crepo_sha256_new(void) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) return NULL;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) { EVP_MD_CTX_free(ctx); return NULL; }
    return ctx;
}
static inline int crepo_sha256_update(EVP_MD_CTX *ctx, const void *data, size_t len) {
    return EVP_DigestUpdate(ctx, data, len);
}
static inline int crepo_sha256_final(EVP_MD_CTX *ctx, uint8_t *out) {
    unsigned int outlen = 0;
    return EVP_DigestFinal_ex(ctx, out, &outlen) == 1 && outlen == 32;
}
static inline void crepo_sha256_free(EVP_MD_CTX *ctx) { EVP_MD_CTX_free(ctx); }

/// MD5, only for S3's `Content-MD5` header (RFC 1864), which Object Lock uploads require; never
/// for anything the format relies on. Same shape as the SHA-256 functions.
static inline EVP_MD_CTX *crepo_md5_new(void) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return NULL;
    if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) { EVP_MD_CTX_free(ctx); return NULL; }
    return ctx;
}
static inline int crepo_md5_update(EVP_MD_CTX *ctx, const void *data, size_t len) {
    return EVP_DigestUpdate(ctx, data, len);
}
static inline int crepo_md5_final(EVP_MD_CTX *ctx, uint8_t *out) {
    unsigned int n = 0;
    return EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == 16;
}
static inline void crepo_md5_free(EVP_MD_CTX *ctx) { EVP_MD_CTX_free(ctx); }

/// scrypt (RFC 7914). Returns 1 on success.
static inline int crepo_scrypt(const uint8_t *pass, size_t passlen, const uint8_t *salt, size_t saltlen,
                               uint64_t n, uint64_t r, uint64_t p, uint8_t *out, size_t outlen) {
    uint64_t maxmem = 128 * r * n + (1u << 26);
    return EVP_PBE_scrypt((const char *)pass, passlen, salt, saltlen, n, r, p, maxmem, out, outlen);
}
#endif
