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

#include "lib/secure.h"
#include "x509/ca.h"

#define SIGNER_FD 3 /* the signer's end of the channel, in the signer */

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
 * later, whose number is below one already signed or whose reasons are not RFC 5280
 * codes (section 5.3.1), or a certificate or CRL the keys refuse to sign. The signer's
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
 * The signer process's main, for "claimd --signer CONFIG" (signer_main.c): closes every
 * descriptor above SIGNER_FD, loads the config's CA, Matter PAI and secrets key, drops
 * its privileges (sandbox.h), says hello and answers requests until end-of-file.
 * Returns the exit status: 0 after end-of-file, 1 when it could not start or the peer
 * broke the protocol.
 */
int signer_main(const char *config);

#endif
