/*
 * The signer process's side (server.c, signer_main.c): the keys it holds, the policy
 * it signs by whatever the network process asks, and its answer to each request
 * frame (wire.h). Nothing here is linked into a path the network process takes; the
 * client (signer.h) only starts the process.
 */
#ifndef CLAIMD_SIGNER_SERVER_H
#define CLAIMD_SIGNER_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/secure.h"
#include "signer/wire.h"
#include "x509/ca.h"

/* How far a CRL number may run ahead: the network process numbers CRLs from its
 * database, one more each time (db_crl_refresh()), so a larger step is a compromised or
 * confused claimd pushing the number towards its end, after which no CRL could follow.
 * The first number a signer signs after it starts (it keeps no state on disk) may be
 * anything up to SIGNER_CRL_NUMBER_FIRST_MAX. */
#define SIGNER_CRL_NUMBER_STEP_MAX  1000
#define SIGNER_CRL_NUMBER_FIRST_MAX ((int64_t)1 << 40)

/* An external signer's connections at once (claimd replicas, each one per generation). */
#define SIGNER_PEERS_MAX 64

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
 * The signer's answer to one request frame: operation @p op (enum signer_op) with its
 * payload @p p of @p n bytes, served with @p k. Returns 0 with the reply payload in
 * *@p out (malloc'd, *@p outn bytes; the caller wipes and frees it), or -1 with *@p out
 * NULL for a refusal: an unknown operation, a payload shorter or longer than its
 * fields, a field over its limit, a malformed MAC, a profile whose key is not
 * configured, a validity outside [now - 1 h, now] .. now + validity_days (5 minutes of
 * slack), a CRL whose thisUpdate is not now, whose nextUpdate is more than crl_hours
 * later, whose number is below one already signed or more than
 * SIGNER_CRL_NUMBER_STEP_MAX above it (SIGNER_CRL_NUMBER_FIRST_MAX for the first) or
 * whose reasons are not RFC 5280 codes (section 5.3.1), or a certificate or CRL the
 * keys refuse to sign. An ISSUE's serial is drawn here (cert_random_serial()); the one
 * in the request is ignored, and the reply begins with the one drawn. A PING has an
 * empty payload and reply. The signer's
 * loop calls it for every frame; the tests (tests/api/test_signer.c) and the fuzz
 * target (tests/fuzz/fuzz_signer.c) call it directly.
 */
int signer_answer(struct signer_keys *k, uint32_t op, const uint8_t *p, size_t n, uint8_t **out,
                  size_t *outn);
/**
 * Answers request frames on @p fd with @p k until end-of-file. Returns 0 after
 * end-of-file, 1 when a reply could not be sent.
 */
int signer_serve(int fd, struct signer_keys *k);

/**
 * An external signer's loop: accepts connections on listening Unix socket @p lfd,
 * closes at once any whose peer (SO_PEERCRED) is not uid @p peer_uid, sends each other
 * one @p hello and then answers its request frames as signer_serve() does, one frame
 * at a time from whichever connection has one, each read and answered within
 * @p timeout_ms. At most SIGNER_PEERS_MAX connections; a connection that breaks the
 * protocol or stalls is closed. Returns only when accept fails for good: 1.
 */
int signer_listen(int lfd, uid_t peer_uid, const struct wire_out *hello, struct signer_keys *k,
                  unsigned timeout_ms);

/* How signer_main() reaches its clients. */
enum signer_mode {
	SIGNER_CHILD,    /* started by claimd, its channel on SIGNER_FD */
	SIGNER_EXTERNAL, /* "claimd --signer -c FILE": listens on signer.socket */
};

/**
 * The signer process's main (signer_main.c), for "claimd --signer-child CONFIG" (claimd
 * starts it) and "claimd --signer -c CONFIG" (@p mode SIGNER_EXTERNAL, its own
 * service): closes every descriptor it inherited above stdio (and its channel), loads
 * the config's CA, Matter PAI and secrets key, listens on signer.socket (external),
 * drops its privileges (sandbox.h), makes its start-up proofs (a test certificate, a
 * test DAC, a sealed test key opened again) as the confined process, says hello and
 * answers requests. Returns the exit status: 0 after end-of-file, 1 when it could not
 * start or the peer broke the protocol.
 */
int signer_main(const char *config, enum signer_mode mode);

#endif
