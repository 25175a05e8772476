/*
 * libsodium wrapper. The one place <sodium.h> is included. Subkeys are derived from the
 * secrets key with crypto_kdf so that sealing, fingerprints and auth_id tags never share
 * a key; the master key is wiped as soon as they exist.
 */
#include "lib/secure.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"

enum { SUB_SEAL = 1, SUB_TAG = 2, SUB_AUTHID = 3, SUB_CHALLENGE = 4 };

struct secrets {
	uint8_t seal[32];
	uint8_t tag[32];
	uint8_t authid[32];
	uint8_t challenge[32];
	bool sealing; /* seal and tag are set: false in the network process (signer.h) */
};

/* The network-facing process holds no sealing key: reaching for one is a bug that must
 * stop the process rather than seal under zeros. */
static void need_sealing(const struct secrets *s)
{
	if (!s->sealing) {
		fputs("claimd: BUG: eFuse sealing outside the signer\n", stderr);
		abort();
	}
}

/*
 * Small draws come from a pool per thread, filled from the kernel's generator
 * (randombytes_buf(): getrandom(2)) RANDOM_POOL bytes at a time, so that a request's id,
 * an auth_id's random part and a node_id cost one system call per many requests
 * instead of one each. The bytes are the kernel's either way; each is handed out once
 * and wiped as it is. A fork's child starts with an empty pool (pthread_atfork()), so a
 * parent and its child never hand out the same bytes.
 */
#define RANDOM_POOL     256
#define RANDOM_POOL_MAX 64 /* larger draws go to the kernel directly */

static _Thread_local struct {
	uint8_t b[RANDOM_POOL];
	size_t left; /* unused bytes, at the end of b */
	unsigned generation;
} pool;
static atomic_uint forks;

static void forked(void)
{
	atomic_fetch_add(&forks, 1);
}

static int atfork_rc = -1;
static void watch_forks(void)
{
	atfork_rc = pthread_atfork(NULL, NULL, forked);
}

int secure_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	if (sodium_init() < 0 || pthread_once(&once, watch_forks) != 0)
		return -1;
	return atfork_rc == 0 ? 0 : -1;
}

void secure_random(void *buf, size_t n)
{
	unsigned g = atomic_load(&forks);

	if (n > RANDOM_POOL_MAX) {
		randombytes_buf(buf, n);
		return;
	}
	if (pool.generation != g || pool.left < n) {
		randombytes_buf(pool.b, sizeof(pool.b));
		pool.left = sizeof(pool.b);
		pool.generation = g;
	}
	uint8_t *p = pool.b + sizeof(pool.b) - pool.left;
	memcpy(buf, p, n);
	sodium_memzero(p, n);
	pool.left -= n;
}

bool secure_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

void secure_wipe(void *p, size_t n)
{
	sodium_memzero(p, n);
}

void secure_hmac_sha512(uint8_t out[HMAC_SHA512_BYTES], const uint8_t *key, size_t keylen,
                        const void *msg, size_t msglen)
{
	crypto_auth_hmacsha512_state st;
	crypto_auth_hmacsha512_init(&st, key, keylen);
	crypto_auth_hmacsha512_update(&st, msg, msglen);
	crypto_auth_hmacsha512_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

uint64_t secure_hash64(const uint8_t key[16], const void *in, size_t n)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t v = 0;
	crypto_shorthash(out, in, n, key);
	for (int i = 0; i < 8; i++)
		v = v << 8 | out[i];
	return v;
}

void secure_sha256(uint8_t out[32], const void *in, size_t n)
{
	crypto_hash_sha256(out, in, n);
}

static const char kdf_ctx[crypto_kdf_CONTEXTBYTES] = {'c', 'l', 'a', 'i', 'm', 'd', '0', '1'};

void secrets_seal_subkey(const uint8_t key[SECRETS_KEY_BYTES], uint8_t out[32])
{
	crypto_kdf_derive_from_key(out, 32, SUB_SEAL, kdf_ctx, key);
}

struct secrets *secrets_from_bytes(const uint8_t key[SECRETS_KEY_BYTES])
{
	const char *ctx = kdf_ctx;
	struct secrets *s = sodium_malloc(sizeof(*s));
	if (!s)
		return NULL;
	crypto_kdf_derive_from_key(s->seal, 32, SUB_SEAL, ctx, key);
	crypto_kdf_derive_from_key(s->tag, 32, SUB_TAG, ctx, key);
	crypto_kdf_derive_from_key(s->authid, 32, SUB_AUTHID, ctx, key);
	crypto_kdf_derive_from_key(s->challenge, 32, SUB_CHALLENGE, ctx, key);
	s->sealing = true;
	sodium_mprotect_readonly(s);
	return s;
}

struct secrets *secrets_authid_only(const uint8_t authid[32], const uint8_t challenge[32])
{
	struct secrets *s = sodium_malloc(sizeof(*s));
	if (!s)
		return NULL;
	sodium_memzero(s, sizeof(*s));
	memcpy(s->authid, authid, 32);
	memcpy(s->challenge, challenge, 32);
	sodium_mprotect_readonly(s);
	return s;
}

void secrets_authid_keys(const struct secrets *s, uint8_t authid[32], uint8_t challenge[32])
{
	memcpy(authid, s->authid, 32);
	memcpy(challenge, s->challenge, 32);
}

struct secrets *secrets_load(const char *path, char *err, size_t errsz)
{
	struct stat st;
	uint8_t key[SECRETS_KEY_BYTES];
	size_t len = 0, klen = 0;
	char *text = NULL;
	struct secrets *s = NULL;

	if (stat(path, &st) < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errsz, "%s: secrets key is group- or world-accessible (chmod 600)",
		         path);
		return NULL;
	}
	char why[256];
	if (key_file_access(path, &st, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "%s: %s", path, why);
		return NULL;
	}
	text = file_read_all(path, 1024, &len);
	if (!text) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (!b64_decode(key, sizeof(key), &klen, text, len) || klen != sizeof(key)) {
		snprintf(err, errsz, "%s: expected base64 of 32 bytes (claimctl keygen)", path);
		goto out;
	}
	s = secrets_from_bytes(key);
	if (!s)
		snprintf(err, errsz, "%s: cannot allocate locked memory", path);
out:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(text, len);
	free(text);
	return s;
}

void secrets_free(struct secrets *s)
{
	if (s)
		sodium_free(s); /* sodium_free wipes before unmapping */
}

void secrets_keygen(char *out, size_t outsz)
{
	uint8_t key[SECRETS_KEY_BYTES];
	randombytes_buf(key, sizeof(key));
	b64_encode(out, outsz, key, sizeof(key));
	sodium_memzero(key, sizeof(key));
}

void efuse_seal(const struct secrets *s, const char *mac, const uint8_t key[EFUSE_KEY_BYTES],
                uint8_t out[SEALED_EFUSE_BYTES])
{
	uint8_t *nonce = out, *ct = out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	need_sealing(s);
	randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, key, EFUSE_KEY_BYTES,
	                                           (const uint8_t *)mac, strlen(mac), NULL, nonce,
	                                           s->seal);
}

bool efuse_open(const struct secrets *s, const char *mac, const uint8_t *sealed, size_t n,
                uint8_t key[EFUSE_KEY_BYTES])
{
	need_sealing(s);
	if (n != SEALED_EFUSE_BYTES)
		return false;
	return crypto_aead_xchacha20poly1305_ietf_decrypt(
	           key, NULL, NULL, sealed + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	           n - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, (const uint8_t *)mac,
	           strlen(mac), sealed, s->seal) == 0;
}

void efuse_tag(const struct secrets *s, const char *mac, const uint8_t key[EFUSE_KEY_BYTES],
               uint8_t out[EFUSE_TAG_BYTES])
{
	crypto_generichash_state st;
	need_sealing(s);
	crypto_generichash_init(&st, s->tag, 32, EFUSE_TAG_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)mac, strlen(mac));
	crypto_generichash_update(&st, key, EFUSE_KEY_BYTES);
	crypto_generichash_final(&st, out, EFUSE_TAG_BYTES);
}

void secrets_authid_tag(const struct secrets *s, const void *data, size_t n, uint8_t out[16])
{
	crypto_generichash(out, 16, data, n, s->authid, 32);
}

void secrets_challenge(const struct secrets *s, const void *data, size_t n, uint8_t out[32])
{
	crypto_generichash(out, 32, data, n, s->challenge, 32);
}

size_t b64url_encode(char *out, size_t outsz, const uint8_t *in, size_t n)
{
	sodium_bin2base64(out, outsz, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return strlen(out);
}

bool b64url_decode(uint8_t *out, size_t outsz, size_t *outlen, const char *in, size_t n)
{
	const char *end = NULL;
	if (sodium_base642bin(out, outsz, in, n, NULL, outlen, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return false;
	return end == in + n;
}

size_t b64_encode(char *out, size_t outsz, const uint8_t *in, size_t n)
{
	sodium_bin2base64(out, outsz, in, n, sodium_base64_VARIANT_ORIGINAL);
	return strlen(out);
}

/* Standard base64, skipping the characters in @p ignore (NULL: none), to the end. */
static bool b64_decode_all(uint8_t *out, size_t outsz, size_t *outlen, const char *in, size_t n,
                           const char *ignore)
{
	const char *end = NULL;
	/* libsodium finds the ignored characters with strchr(), which also matches NUL. */
	if (ignore && memchr(in, '\0', n))
		return false;
	if (sodium_base642bin(out, outsz, in, n, ignore, outlen, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0)
		return false;
	return end == in + n;
}

bool b64_decode_lines(uint8_t *out, size_t outsz, size_t *outlen, const char *in, size_t n)
{
	return b64_decode_all(out, outsz, outlen, in, n, "\r\n");
}

bool b64_decode(uint8_t *out, size_t outsz, size_t *outlen, const char *in, size_t n)
{
	while (n > 0 && (in[n - 1] == '\n' || in[n - 1] == '\r' || in[n - 1] == ' '))
		n--;
	return b64_decode_all(out, outsz, outlen, in, n, NULL);
}
