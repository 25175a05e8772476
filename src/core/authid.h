/*
 * auth_id tokens: initiate needs no durable write because the auth_id itself carries
 * the claim session (MAC, expiry, 16 random bytes) under a keyed tag, and the challenge
 * is derived from it. Single use is enforced at verify, in the database.
 */
#ifndef CLAIMD_AUTHID_H
#define CLAIMD_AUTHID_H

#include <stdint.h>

#include "lib/secure.h"
#include "lib/errors.h"
#include "lib/util.h"

#define AUTHID_LEN    58 /* base64url of 43 bytes */
#define CHALLENGE_LEN 64 /* hex of 32 bytes */

/**
 * Issues a new auth_id for @p mac valid until @p expires (unix seconds) and writes it
 * and its challenge, NUL-terminated, to @p auth_id and @p challenge.
 */
void authid_issue(const struct secrets *s, const char *mac, int64_t expires,
                  char auth_id[AUTHID_LEN + 1], char challenge[CHALLENGE_LEN + 1]);
/**
 * Checks an auth_id's form and tag and recovers its MAC, expiry and challenge.
 * Returns CE_AUTHID_INVALID for anything forged or malformed, CE_AUTHID_EXPIRED when
 * @p now is past its expiry, CE_OK otherwise.
 */
enum claimd_err authid_check(const struct secrets *s, const char *auth_id, size_t len, int64_t now,
                             char mac[MAC_LEN + 1], int64_t *expires,
                             char challenge[CHALLENGE_LEN + 1]);

#endif
