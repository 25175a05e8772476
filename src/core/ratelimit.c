/*
 * Direct-mapped token buckets. A slot holds one key's hash; another key landing on it
 * takes it over with a full bucket. With 65,536 slots that only happens under a flood
 * of distinct keys, when the per-address limit (or the proxy) is what matters anyway.
 */
#include "core/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/secure.h"

#define STRIPES 64

struct slot {
	uint64_t hash;
	double tokens;
	double last;
};

struct ratelimit {
	struct slot *slots;
	uint64_t mask;
	uint8_t key[16];
	pthread_mutex_t locks[STRIPES];
};

struct ratelimit *ratelimit_new(unsigned bits)
{
	struct ratelimit *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->slots = calloc((size_t)1 << bits, sizeof(*r->slots));
	if (!r->slots) {
		free(r);
		return NULL;
	}
	r->mask = ((uint64_t)1 << bits) - 1;
	secure_random(r->key, sizeof(r->key));
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&r->locks[i], NULL);
	return r;
}

void ratelimit_free(struct ratelimit *r)
{
	if (!r)
		return;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&r->locks[i]);
	free(r->slots);
	free(r);
}

bool ratelimit_take(struct ratelimit *r, enum bucket kind, const char *key, unsigned per_minute,
                    unsigned burst, double now, unsigned *retry_after)
{
	char buf[320];
	size_t n = strlen(key);
	bool ok;

	if (per_minute == 0)
		return true;
	if (n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[0] = (char)kind; /* the namespace, hashed with the key */
	memcpy(buf + 1, key, n);
	uint64_t h = secure_hash64(r->key, buf, n + 1) | 1; /* 0 marks an empty slot */
	struct slot *s = &r->slots[h & r->mask];
	pthread_mutex_t *lock = &r->locks[(h >> 32) % STRIPES];
	double rate = per_minute / 60.0;

	pthread_mutex_lock(lock);
	if (s->hash != h) {
		s->hash = h;
		s->tokens = burst;
		s->last = now;
	}
	s->tokens = fmin((double)burst, s->tokens + (now - s->last) * rate);
	s->last = now;
	ok = s->tokens >= 1.0;
	if (ok)
		s->tokens -= 1.0;
	else
		*retry_after = (unsigned)ceil((1.0 - s->tokens) / rate);
	pthread_mutex_unlock(lock);
	return ok;
}
