/*
 * User authentication for assisted and host-driven claiming: JWT access tokens
 * checked against the identity provider's public keys (a JWKS file). The algorithm is
 * pinned by the key, never chosen by the token. Tokens and keys are never logged.
 */
#ifndef CLAIMD_AUTH_H
#define CLAIMD_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/errors.h"

#define USER_ID_MAX         255
#define TOKEN_MAX           8192
#define AUTH_LEEWAY_SECONDS 60

struct jwks;

struct auth_policy {
	const struct jwks *keys;
	const char *issuer;
	const char *audience; /* "" = not checked */
	const char *user_claim;
	int64_t now;
	const char *audience_claim; /* the claim audience is compared with; NULL = "aud" */
};

/**
 * Loads a JWKS file (RFC 7517): RSA keys (RS256/RS384/RS512, or the JWK's "alg") and
 * EC P-256/P-384 keys (ES256/ES384). Keys of other types are skipped with a warning;
 * a file with no usable key is an error. NULL with a message in @p err on failure.
 */
struct jwks *jwks_load(const char *path, char *err, size_t errsz);
/** Frees @p k; NULL is a no-op. */
void jwks_free(struct jwks *k);
/** How many usable keys were loaded. */
size_t jwks_count(const struct jwks *k);

/**
 * Checks an Authorization header value (the raw token, or "Bearer <token>") and writes
 * the user id to @p user. Returns CE_OK or CE_UNAUTHORIZED; the reason is written to
 * @p why (for the log) but never to the client.
 */
enum claimd_err auth_user(const struct auth_policy *p, const char *authorization,
                          char user[USER_ID_MAX + 1], const char **why);

#endif
