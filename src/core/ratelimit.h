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

/* Separate namespaces of keys: one address, MAC or user never shares another's bucket. */
enum bucket {
	BUCKET_ADDRESS, /* the client address (after trusted-proxy resolution) */
	BUCKET_MAC,     /* a device's MAC address, on initiate */
	BUCKET_USER,    /* a token's user, on every claim request */
};

/** A table of 2^@p bits buckets. NULL on allocation failure. */
struct ratelimit *ratelimit_new(unsigned bits);
/** Frees @p r; NULL is a no-op. */
void ratelimit_free(struct ratelimit *r);
/**
 * Takes one token from @p key's bucket of @p kind, refilled at @p per_minute with room
 * for @p burst, at time @p now (seconds, monotonic). Returns true when allowed; otherwise
 * *@p retry_after gets whole seconds until a token is there. @p per_minute 0 always allows.
 */
bool ratelimit_take(struct ratelimit *r, enum bucket kind, const char *key, unsigned per_minute,
                    unsigned burst, double now, unsigned *retry_after);

#endif
