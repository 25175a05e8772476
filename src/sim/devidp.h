/*
 * A development identity provider: a signing key, its JWKS, and access tokens minted
 * from it, so the demo and the tests can show assisted claiming without a real IdP.
 * Never for production: a real deployment points users.jwt at its own provider.
 */
#ifndef CLAIMD_DEVIDP_H
#define CLAIMD_DEVIDP_H

#include <stddef.h>

/**
 * Writes DIR/idp.key (private, mode 0600) and DIR/jwks.json (public) for a new key of
 * @p type "ec" (ES256) or "rsa" (RS256) with key id @p kid. Returns 0 or -1 + @p err.
 */
int devidp_create(const char *dir, const char *type, const char *kid, char *err, size_t errsz);

struct devtoken {
	const char *key_file; /* DIR/idp.key */
	const char *kid;
	const char *issuer, *audience; /* audience NULL or "": none */
	const char *user_claim;        /* default "sub" */
	const char *user;
	long ttl; /* seconds; negative makes an expired token */
};

/** Mints a signed access token; the caller frees it. NULL + @p err on failure. */
char *devidp_token(const struct devtoken *t, char *err, size_t errsz);

#endif
