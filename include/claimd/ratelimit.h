/*
 * Token buckets in process memory, for per-address, per-MAC and per-user request
 * rates. Fixed memory (a direct-mapped table of buckets under striped locks): a flood
 * of distinct keys can only evict buckets, never grow the process. Keys are hashed
 * with a random per-process key, so nobody can aim collisions at someone else's bucket.
 */
#ifndef CLAIMD_RATELIMIT_H
#define CLAIMD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

struct ratelimit;

/** A table of 2^@p bits buckets. NULL on allocation failure. */
struct ratelimit *ratelimit_new(unsigned bits);
/** Frees @p r; NULL is a no-op. */
void ratelimit_free(struct ratelimit *r);
/**
 * Takes one token from @p key's bucket (of @p kind: separate namespaces for address,
 * MAC and user), refilled at @p per_minute with room for @p burst. Returns true when
 * allowed; otherwise *@p retry_after gets whole seconds until a token is there.
 * @p per_minute 0 always allows.
 */
bool ratelimit_take(struct ratelimit *r, char kind, const char *key, unsigned per_minute,
                    unsigned burst, double now, unsigned *retry_after);

#endif
