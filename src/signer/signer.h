/*
 * The signer's client: what the network-facing process calls, by name, to have the
 * signer process (server.c: started here before claimd opens a socket, or an external
 * one on a Unix socket) do the work
 * of the keys it holds: the CA key, the Matter PAI key (when configured) and the
 * secrets key. Four things only: a certificate built from one of our profiles
 * (signer_issue()), a CRL (signer_crl()), whether a challenge response is right
 * (signer_check()) and an eFuse key sealed (signer_seal()). No key comes back, except
 * the two auth_id subkeys (README.md, "Security: two processes, and what each holds",
 * says why those may leave). The messages are wire.h's.
 */
#ifndef CLAIMD_SIGNER_H
#define CLAIMD_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/config.h"
#include "lib/secure.h"
#include "lib/vocab.h"
#include "signer/wire.h"
#include "x509/ca.h"

/* Results of the calls below. */
enum signer_result {
	SIGNER_OK = 0,
	SIGNER_FAILED = -1, /* the signer refused (its policy, or the keys would not sign) */
	SIGNER_DOWN = -2,   /* the signer could not be asked: gone, or no answer in time */
};

struct signer;

/**
 * Starts a signer and waits (cfg->signer_timeout seconds at most) for its hello: the
 * CA's certificates, key type and largest leaf, the auth_id subkeys, and the PAI and its
 * largest DAC. With signer.socket set it connects to that external signer ("claimd
 * --signer -c FILE"), trying again for the timeout while nobody listens, and refuses
 * one that runs as this process's own uid; otherwise it runs program @p exe (claimd
 * itself, "/proc/self/exe") as "claimd-signer --signer-child CONFIG" (signer_main())
 * with its end of a new socketpair as SIGNER_FD; the signer reads @p cfg's file itself.
 * A thread then pings the signer every quarter of the timeout (signer_ready()).
 * Returns NULL with the signer's own message ("ca.key: ...") in @p err when it could
 * not load its keys, drop its privileges or make its start-up proofs, or could not be
 * reached.
 */
struct signer *signer_start(const char *exe, const struct claimd_config *cfg, char *err,
                            size_t errsz);
/** Another reference to @p s (a generation that keeps its predecessor's signer, as
 * claimd does once it has dropped root and could not start another); returns @p s. */
struct signer *signer_ref(struct signer *s);
/**
 * Drops a reference; the last one stops the pinger, closes the channel (the signer
 * exits when it reads end-of-file), waits for a child signer a moment and kills it if
 * it lingers, and frees the public CA and secrets the signer handed out. NULL is a
 * no-op.
 */
void signer_free(struct signer *s);
/** The signer's process id. */
pid_t signer_pid(const struct signer *s);
/** The public side of the CA (ca_public()): certificates, largest leaf, key type. Owned
 * by @p s. */
const struct ca *signer_ca(const struct signer *s);
/** The public side of the Matter PAI (pai_public()); NULL when matter.* is not
 * configured. Owned by @p s. */
const struct pai *signer_pai(const struct signer *s);
/** Secrets that can issue and check auth_ids only (secrets_authid_only()); owned by @p s. */
const struct secrets *signer_secrets(const struct signer *s);
/**
 * Whether the signer answered a request or a ping within the last signer.timeout_seconds
 * (/readyz): false while it is stopped, hung, gone or (external) not connected, also
 * when no request is in flight; true again once it answers.
 */
bool signer_ready(struct signer *s);
/**
 * Whether the child signer process has ended, reaping it if so (waitpid without
 * waiting), with its wait status in *@p status. The caller decides what a dead signer
 * means. Always false for an external signer (the pinger connects to it again).
 */
bool signer_reap(struct signer *s, int *status);

/**
 * Has the signer build and sign the certificate @p rq describes (cert_request_device(),
 * pai_dac_request()) and fills @p out (issued_from_der(); issued_clear() frees it)
 * with the serial the signer drew (@p rq's is ignored), checked against the
 * certificate.
 * SIGNER_OK, SIGNER_FAILED (refused by its policy or keys, a field over its limit, or
 * out of memory), or SIGNER_DOWN.
 */
int signer_issue(struct signer *s, const struct cert_request *rq, struct issued *out);
/**
 * Has the signer sign the CRL @p rq describes; the DER goes to a malloc'd *@p der of
 * *@p len bytes. SIGNER_OK, SIGNER_FAILED (refused, or the CRL does not fit one
 * message: logged), or SIGNER_DOWN.
 */
int signer_crl(struct signer *s, const struct crl_request *rq, uint8_t **der, size_t *len);
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

#endif
