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
#endif
