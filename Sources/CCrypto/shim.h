#ifndef VERTEBRA_CCRYPTO_SHIM_H
#define VERTEBRA_CCRYPTO_SHIM_H
/* The system libcrypto (OpenSSL) for SCRAM's hash, HMAC and PBKDF2. Only these three entry points
   are used; wrapping them here keeps OpenSSL's macros and version differences out of Swift. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stddef.h>

static inline const EVP_MD *vertebra_digest(int bits) {
    return bits == 1 ? EVP_sha1() : EVP_sha256();
}

/* Digest of data; out must hold 32 bytes. Returns the digest length, or 0 on failure. */
static inline int vertebra_hash(int bits, const void *data, size_t length, unsigned char *out) {
    unsigned int size = 0;
    return EVP_Digest(data, length, out, &size, vertebra_digest(bits), NULL) == 1 ? (int)size : 0;
}

/* HMAC(key, data); out must hold 32 bytes. Returns the MAC length, or 0 on failure. */
static inline int vertebra_hmac(int bits, const void *key, size_t keyLength, const void *data,
                                size_t length, unsigned char *out) {
    unsigned int size = 0;
    return HMAC(vertebra_digest(bits), key, (int)keyLength, data, length, out, &size) != NULL ? (int)size : 0;
}

/* PBKDF2-HMAC(password, salt, iterations) into out[outLength]. Returns 1 on success. */
static inline int vertebra_pbkdf2(int bits, const char *password, size_t passwordLength,
                                  const unsigned char *salt, size_t saltLength, int iterations,
                                  unsigned char *out, size_t outLength) {
    return PKCS5_PBKDF2_HMAC(password, (int)passwordLength, salt, (int)saltLength, iterations,
                             vertebra_digest(bits), (int)outLength, out);
}

/* Cryptographically secure random bytes. Returns 1 on success. */
static inline int vertebra_random(unsigned char *out, int length) {
    return RAND_bytes(out, length);
}
/* Streaming SHA-256 (file checksums): begin, update any number of times, finish (frees). */
static inline EVP_MD_CTX *vertebra_sha256_begin(void) {
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    if (context != NULL && EVP_DigestInit_ex(context, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(context);
        return NULL;
    }
    return context;
}

static inline int vertebra_sha256_update(EVP_MD_CTX *context, const void *data, size_t length) {
    return EVP_DigestUpdate(context, data, length);
}

/* Writes 32 bytes to out and frees the context. Returns the digest length, or 0 on failure. */
static inline int vertebra_sha256_finish(EVP_MD_CTX *context, unsigned char *out) {
    unsigned int size = 0;
    int ok = EVP_DigestFinal_ex(context, out, &size);
    EVP_MD_CTX_free(context);
    return ok == 1 ? (int)size : 0;
}

static inline void vertebra_sha256_discard(EVP_MD_CTX *context) { EVP_MD_CTX_free(context); }

#endif
