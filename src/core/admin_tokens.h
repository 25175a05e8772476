/*
 * The management API's bearer tokens: admin.tokens_file lists the SHA-256 of each token
 * with a name for the audit trail, so the file never holds a usable token. Loaded with
 * each config generation (a SIGHUP picks up a changed file); knows nothing of HTTP.
 */
#ifndef CLAIMD_ADMIN_TOKENS_H
#define CLAIMD_ADMIN_TOKENS_H

#include <stddef.h>

/* Longest token name; names go into audit rows and log lines. */
#define ADMIN_TOKEN_NAME_MAX 64

struct admin_tokens;

/**
 * Loads @p path: lines "SHA256-HEX NAME" (64 hex digits, then a name of 1-64 characters
 * of [A-Za-z0-9._@:-]); blank lines and lines starting with '#' are skipped. Refuses a
 * file that is group- or world-accessible, a malformed line ("PATH:LINE: ...") and a
 * file with no token. NULL with the reason in @p err.
 */
struct admin_tokens *admin_tokens_load(const char *path, char *err, size_t errsz);
/** Frees @p t; NULL is a no-op. */
void admin_tokens_free(struct admin_tokens *t);
/**
 * The name of the token @p token (@p len bytes) when its SHA-256 is listed in @p t,
 * else NULL (also when @p t is NULL). Every listed hash is compared, in constant time.
 */
const char *admin_tokens_check(const struct admin_tokens *t, const char *token, size_t len);

#endif
