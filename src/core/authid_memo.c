/*
 * The initiate-to-verify memo (authid_memo.h): a set-associative table under striped
 * locks. Lookups compare the whole auth_id in constant time, so a hash collision can
 * never hand one auth_id's entry to another.
 */
#include "core/authid_memo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define STRIPES 64

struct entry {
	char auth_id[AUTHID_LEN];
	char mac[MAC_LEN];
	bool used;
	int64_t expires;
	uint64_t stamp; /* insertion order: the smallest in a set is replaced first */
	struct memo_device d;
};

struct authid_memo {
	struct entry *e; /* MEMO_SETS * MEMO_WAYS */
	uint64_t next_stamp;
	uint8_t key[16];
	pthread_mutex_t locks[STRIPES];
};

struct authid_memo *authid_memo_new(void)
{
	struct authid_memo *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	if (!(m->e = calloc((size_t)MEMO_SETS * MEMO_WAYS, sizeof(*m->e)))) {
		free(m);
		return NULL;
	}
	secure_random(m->key, sizeof(m->key));
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&m->locks[i], NULL);
	return m;
}

void authid_memo_free(struct authid_memo *m)
{
	if (!m)
		return;
	secure_wipe(m->e, (size_t)MEMO_SETS * MEMO_WAYS * sizeof(*m->e));
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&m->locks[i]);
	free(m->e);
	free(m);
}

/* The set of @p auth_id and the lock that guards it. */
static struct entry *set_of(struct authid_memo *m, const char *auth_id, pthread_mutex_t **lock)
{
	uint64_t h = secure_hash64(m->key, auth_id, AUTHID_LEN);
	size_t set = (size_t)(h % MEMO_SETS);

	*lock = &m->locks[set % STRIPES];
	return &m->e[set * MEMO_WAYS];
}

void authid_memo_put(struct authid_memo *m, const char *auth_id, const char *mac, int64_t expires,
                     const struct memo_device *d)
{
	pthread_mutex_t *lock;
	struct entry *set, *victim;

	if (!m || strlen(auth_id) != AUTHID_LEN || strlen(mac) != MAC_LEN)
		return;
	set = set_of(m, auth_id, &lock);
	pthread_mutex_lock(lock);
	/* A free place, or else the oldest entry's. */
	victim = &set[0];
	for (int i = 0; i < MEMO_WAYS; i++) {
		if (!set[i].used) {
			victim = &set[i];
			break;
		}
		if (set[i].stamp < victim->stamp)
			victim = &set[i];
	}
	secure_wipe(victim, sizeof(*victim));
	memcpy(victim->auth_id, auth_id, AUTHID_LEN);
	memcpy(victim->mac, mac, MAC_LEN);
	victim->expires = expires;
	victim->d = *d;
	victim->stamp = __atomic_add_fetch(&m->next_stamp, 1, __ATOMIC_RELAXED);
	victim->used = true;
	pthread_mutex_unlock(lock);
}

bool authid_memo_take(struct authid_memo *m, const char *auth_id, size_t len, const char *mac,
                      int64_t now, struct memo_device *out)
{
	pthread_mutex_t *lock;
	struct entry *set;
	bool found = false;

	if (!m || len != AUTHID_LEN || strlen(mac) != MAC_LEN)
		return false;
	set = set_of(m, auth_id, &lock);
	pthread_mutex_lock(lock);
	for (int i = 0; i < MEMO_WAYS; i++) {
		struct entry *x = &set[i];
		if (!x->used || !secure_equal(x->auth_id, auth_id, AUTHID_LEN))
			continue;
		/* Taken even when it does not serve: an auth_id's entry serves once. */
		found = now <= x->expires && memcmp(x->mac, mac, MAC_LEN) == 0;
		if (found)
			*out = x->d;
		secure_wipe(x, sizeof(*x));
		break;
	}
	pthread_mutex_unlock(lock);
	return found;
}
