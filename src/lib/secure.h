/*
 * Every use of libsodium: randomness, the secrets key and its subkeys, eFuse key
 * sealing, HMAC-SHA512, constant-time comparison and base64. Keys live in guarded,
 * locked memory and are wiped on free; nothing here logs key material.
 */
#ifndef CLAIMD_SECURE_H
#define CLAIMD_SECURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EFUSE_KEY_BYTES    16
#define SEALED_EFUSE_BYTES (24 + EFUSE_KEY_BYTES + 16) /* nonce, ciphertext, tag */
#define EFUSE_TAG_BYTES    16
#define HMAC_SHA512_BYTES  64
#define SECRETS_KEY_BYTES  32

struct secrets;

/** Initialises libsodium; returns -1 if it cannot. Safe to call more than once. */
int secure_init(void);
/** Fills @p buf with @p n unpredictable bytes from the kernel's generator (up to 64 bytes
 * through a per-thread pool: secure.c). */
void secure_random(void *buf, size_t n);
/** True when @p a and @p b (both @p n bytes) are equal, in time independent of content. */
bool secure_equal(const void *a, const void *b, size_t n);
/** Overwrites @p n bytes at @p p in a way the compiler keeps. */
void secure_wipe(void *p, size_t n);
/** HMAC-SHA512 of @p msg under a key of any length. */
void secure_hmac_sha512(uint8_t out[HMAC_SHA512_BYTES], const uint8_t *key, size_t keylen,
                        const void *msg, size_t msglen);
/** A keyed 64-bit hash (SipHash) of @p in; @p key is 16 bytes. */
uint64_t secure_hash64(const uint8_t key[16], const void *in, size_t n);
/** SHA-256 of @p in. */
void secure_sha256(uint8_t out[32], const void *in, size_t n);

/**
 * Loads the secrets key file (one line: base64 of 32 bytes). Refuses a file that is
 * group- or world-accessible. Returns NULL with a message in @p err on failure.
 */
struct secrets *secrets_load(const char *path, char *err, size_t errsz);
/** Builds secrets from 32 raw bytes (tests, keygen checks). */
struct secrets *secrets_from_bytes(const uint8_t key[SECRETS_KEY_BYTES]);
/**
 * Secrets that can only issue and check auth_ids: the two subkeys the signer hands
 * the network-facing process (signer.h). Sealing with them stops the process.
 */
struct secrets *secrets_authid_only(const uint8_t authid[32], const uint8_t challenge[32]);
/** Copies the auth_id tag and challenge subkeys of @p s (for the signer's hello). */
void secrets_authid_keys(const struct secrets *s, uint8_t authid[32], uint8_t challenge[32]);
/**
 * The sealing subkey the signer derives from secrets key @p key: what the separation
 * test looks for in each process's memory. Nothing else needs it.
 */
void secrets_seal_subkey(const uint8_t key[SECRETS_KEY_BYTES], uint8_t out[32]);
/** Frees and wipes @p s; NULL is a no-op. */
void secrets_free(struct secrets *s);
/** Writes a new secrets key as base64 plus a NUL into @p out (at least 64 bytes). */
void secrets_keygen(char *out, size_t outsz);

/** Seals an eFuse key with XChaCha20-Poly1305, the normalised MAC as associated data. */
void efuse_seal(const struct secrets *s, const char *mac, const uint8_t key[EFUSE_KEY_BYTES],
                uint8_t out[SEALED_EFUSE_BYTES]);
/** Opens a sealed eFuse key; returns false if it was tampered with or bound to another MAC. */
bool efuse_open(const struct secrets *s, const char *mac, const uint8_t *sealed, size_t n,
                uint8_t key[EFUSE_KEY_BYTES]);
/**
 * A keyed fingerprint of (MAC, eFuse key): equal inputs give equal tags, so imports can
 * tell "same key again" from "different key" without decrypting, and the tag reveals
 * nothing without the secrets key.
 */
void efuse_tag(const struct secrets *s, const char *mac, const uint8_t key[EFUSE_KEY_BYTES],
               uint8_t out[EFUSE_TAG_BYTES]);
/** Keyed 16-byte tag over @p data for auth_id tokens. */
void secrets_authid_tag(const struct secrets *s, const void *data, size_t n, uint8_t out[16]);
/** Keyed 32-byte value from which a challenge is derived. */
void secrets_challenge(const struct secrets *s, const void *data, size_t n, uint8_t out[32]);

/** base64url without padding; returns the length written (@p out gets a NUL too). */
size_t b64url_encode(char *out, size_t outsz, const uint8_t *in, size_t n);
/** Decodes base64url without padding into @p out; false on any invalid input. */
bool b64url_decode(uint8_t *out, size_t outsz, size_t *outlen, const char *in, size_t n);
/** Standard base64 with padding; returns the length written. */
size_t b64_encode(char *out, size_t outsz, const uint8_t *in, size_t n);
/** Decodes standard base64 (padding required, trailing whitespace ignored). */
bool b64_decode(uint8_t *out, size_t outsz, size_t *outlen, const char *in, size_t n);
/** The same, ignoring line breaks (CR and LF) anywhere: a PEM body. */
bool b64_decode_lines(uint8_t *out, size_t outsz, size_t *outlen, const char *in, size_t n);

#endif
