/*
 * The signer: a separate process, started by claimd before it opens a socket, that
 * holds the CA key, the Matter PAI key (when configured) and the secrets key. The network-facing
 * process asks it, over a socketpair and a small fixed-format protocol, for four things only: a
 * certificate built from one of our profiles (a RainMaker node's, a Matter DAC), a CRL, whether a
 * challenge response is right, and an eFuse key sealed. It never sends a key back, except the two
 * auth_id subkeys (see docs/operations.md, "Privilege separation", for why those may leave).
 *
 * Wire format, both ways: a header of two big-endian u32 (request: operation; reply:
 * 0 = done, 1 = refused) and the payload length, at most SIGNER_MSG_MAX, then the
 * payload. Integers are big-endian, i64 two's complement; every field has a fixed size
 * or a u32 length before it, and both sides refuse a payload whose parts do not add
 * up to its length exactly.
 */
#ifndef CLAIMD_SIGNER_H
#define CLAIMD_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "x509/ca.h"
#include "lib/config.h"
#include "lib/secure.h"
#include "lib/util.h"

#define SIGNER_MSG_MAX (16u << 20) /* a CRL of some 340,000 entries */
#define SIGNER_FD      3           /* the signer's end of the socketpair, in the signer */

/* Results of the calls below; SIGNER_DOWN equals CA_UNAVAILABLE on purpose. */
enum signer_result { SIGNER_OK = 0, SIGNER_FAILED = -1, SIGNER_DOWN = CA_UNAVAILABLE };

/* What the signer found for a challenge response. */
enum signer_verdict { SIGNER_RIGHT = 0, SIGNER_WRONG = 1, SIGNER_UNOPENABLE = 2 };

struct signer;

/**
 * Starts a signer: runs program @p exe (claimd itself, "/proc/self/exe") as
 * "claimd-signer --signer CONFIG" with its end of a new socketpair as SIGNER_FD, and
 * waits (cfg->signer_timeout seconds at most) for its hello: the CA's certificates,
 * key type and largest leaf, the auth_id subkeys, and the PAI and its largest DAC. The signer reads
 * @p cfg's file itself. Returns NULL with the signer's own message ("ca.key: ...") in @p err when
 * it could not load its keys or drop its privileges.
 */
struct signer *signer_start(const char *exe, const struct claimd_config *cfg, char *err,
                            size_t errsz);
/**
 * Closes the channel (the signer exits when it reads end-of-file), waits for the
 * process a moment and kills it if it lingers, and frees the CA and secrets the
 * signer handed out. NULL is a no-op.
 */
void signer_free(struct signer *s);
/** The signer's process id. */
pid_t signer_pid(const struct signer *s);
/**
 * A key-less CA whose signatures are made by the signer (ca_from_remote()); owned by
 * @p s.
 */
struct ca *signer_ca(struct signer *s);
/**
 * The Matter PAI without its key (pai_from_remote()), its DACs signed by the signer;
 * NULL when matter.* is not configured. Owned by @p s.
 */
struct pai *signer_pai(struct signer *s);
/** Secrets that can issue and check auth_ids only (secrets_authid_only()); owned by @p s. */
const struct secrets *signer_secrets(const struct signer *s);
/** False once a call found the signer gone or timed out (then it stays false). */
bool signer_alive(struct signer *s);
/**
 * Whether the signer process has ended, reaping it if so (waitpid without waiting),
 * with its wait status in *@p status. The caller decides what a dead signer means.
 */
bool signer_reap(struct signer *s, int *status);

/**
 * Asks whether @p response is HMAC-SHA512(eFuse key, @p challenge) for the key
 * @p sealed (efuse_seal() under @p mac); the key never leaves the signer.
 * SIGNER_OK with *@p v set, SIGNER_FAILED, or SIGNER_DOWN.
 */
int signer_check(struct signer *s, const char mac[MAC_LEN + 1],
                 const uint8_t sealed[SEALED_EFUSE_BYTES], const char *challenge,
                 const uint8_t response[HMAC_SHA512_BYTES], enum signer_verdict *v);
/**
 * Seals an eFuse key for @p mac and computes its tag (efuse_seal(), efuse_tag()).
 * SIGNER_OK, SIGNER_FAILED or SIGNER_DOWN.
 */
int signer_seal(struct signer *s, const char mac[MAC_LEN + 1], const uint8_t key[EFUSE_KEY_BYTES],
                uint8_t sealed[SEALED_EFUSE_BYTES], uint8_t tag[EFUSE_TAG_BYTES]);

/* What the signer process holds and the policy it signs by (from its config). */
struct signer_keys {
	struct ca *ca;
	struct pai *pai; /* NULL: no Matter PAI configured */
	struct secrets *secrets;
	unsigned validity_days;   /* ca.validity_days: the longest certificate it signs */
	unsigned crl_hours;       /* revocation.crl_hours: the longest CRL it signs */
	char *const *product_ids; /* matter.product_ids, NULL-terminated; NULL or empty = any */
	int64_t crl_number;       /* the highest CRL number signed so far (0: none) */
	int64_t now;              /* unix seconds to judge validity by; 0: the clock (the
	                             fuzz target fixes it so its seeds stay valid) */
};

/**
 * The signer's answer to one request frame: operation @p op (ISSUE 1, CRL 2, CHECK 3,
 * SEAL 4; the wire numbers of signer.c) with its payload @p p of @p n bytes, served with
 * @p k. Returns 0 with the reply payload in *@p out (malloc'd, *@p outn bytes; the caller
 * wipes and frees it), or -1 with *@p out NULL for a refusal: an unknown operation, a
 * payload shorter or longer than its fields, a field over its limit, a malformed MAC, a
 * profile whose key is not configured, a validity outside [now - 1 h, now] ..
 * now + validity_days (5 minutes of slack), a CRL whose thisUpdate is not now, whose
 * nextUpdate is more than crl_hours later, whose number is below one already signed or
 * whose reasons are not RFC 5280 codes (section 5.3.1), or a certificate or CRL the keys
 * refuse to sign. The signer's loop calls it for every frame; the fuzz target
 * (tests/fuzz/fuzz_signer.c) calls it directly.
 */
int signer_answer(struct signer_keys *k, uint32_t op, const uint8_t *p, size_t n, uint8_t **out,
                  size_t *outn);

/**
 * The signer process's main, for "claimd --signer CONFIG": closes every descriptor
 * above SIGNER_FD, loads the config's CA, Matter PAI and secrets key, drops its privileges
 * (sandbox.h), says hello and answers requests until end-of-file. Returns the exit
 * status: 0 after end-of-file, 1 when it could not start or the peer broke the
 * protocol.
 */
int signer_main(const char *config);

#endif
