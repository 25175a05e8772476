/*
 * Unit tests of auth_id tokens: no server, no database. Each case is its own CTest
 * test (label unit).
 */
#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/authid.h"
#include "core/authid_memo.h"
#include "x509/ca.h"
#include "lib/canon.h"
#include "core/cert_reply.h"
#include "lib/config.h"
#include "lib/secure.h"
#include "lib/csvimport.h"
#include "sim/devca.h"
#include "daemon/request_fields.h"
#include "sim/sim.h"
#include "lib/util.h"
#include "harness.h"
#include "unit_support.h"

static bool charset_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

static void authid_tokens(void)
{
	struct secrets *s = test_secrets(1), *other = test_secrets(2);
	char id[AUTHID_LEN + 1], ch[CHALLENGE_LEN + 1], id2[AUTHID_LEN + 1], ch2[CHALLENGE_LEN + 1];
	char mac[13], ch_back[CHALLENGE_LEN + 1];
	int64_t exp;

	authid_issue(s, "7CDFA1000001", 2000000000, id, ch);
	authid_issue(s, "7CDFA1000001", 2000000000, id2, ch2);
	CHECK(strlen(id) <= 63 && charset_ok(id));
	CHECK(strlen(ch) == 64 && strcspn(ch, "\"\\") == 64);
	CHECK(strcmp(id, id2) != 0 && strcmp(ch, ch2) != 0);
	CHECK(authid_check(s, id, strlen(id), 1900000000, mac, &exp, ch_back) == CE_OK);
	CHECK(strcmp(mac, "7CDFA1000001") == 0 && exp == 2000000000 && strcmp(ch, ch_back) == 0);
	CHECK(authid_check(s, id, strlen(id), 2000000001, mac, &exp, ch_back) == CE_AUTHID_EXPIRED);
	CHECK(authid_check(other, id, strlen(id), 1900000000, mac, &exp, ch_back) ==
	      CE_AUTHID_INVALID);
	for (size_t i = 0; i < strlen(id); i++) {
		char t[AUTHID_LEN + 1];
		strcpy(t, id);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		CHECKF(authid_check(s, t, strlen(t), 1900000000, mac, &exp, ch_back) ==
		           CE_AUTHID_INVALID,
		       "tampered position %zu accepted", i);
	}
	CHECK(authid_check(s, id, strlen(id) - 1, 1900000000, mac, &exp, ch_back) ==
	      CE_AUTHID_INVALID);
	CHECK(authid_check(s, "", 0, 1900000000, mac, &exp, ch_back) == CE_AUTHID_INVALID);
	secrets_free(s);
	secrets_free(other);
}

/*
 * The initiate-to-verify memo: an entry serves once, only for its own MAC and before
 * its expiry; memory stays fixed however many auth_ids are put (the oldest of a set
 * goes first), and the newest entries are the ones kept.
 */
static void authid_memo_rules(void)
{
	struct secrets *s = test_secrets(3);
	struct authid_memo *m = authid_memo_new();
	struct memo_device d = {.has_failures = true}, got;
	char id[AUTHID_LEN + 1], ch[CHALLENGE_LEN + 1];

	REQUIRE(s && m);
	memset(d.sealed, 0xab, sizeof(d.sealed));
	authid_issue(s, "7CDFA1000001", 1000, id, ch);
	authid_memo_put(m, id, "7CDFA1000001", 1000, &d);
	CHECK(!authid_memo_take(m, id, strlen(id), "7CDFA1000002", 999, &got));
	/* taken by the wrong MAC's attempt: gone */
	CHECK(!authid_memo_take(m, id, strlen(id), "7CDFA1000001", 999, &got));
	authid_memo_put(m, id, "7CDFA1000001", 1000, &d);
	CHECK(!authid_memo_take(m, id, strlen(id), "7CDFA1000001", 1001, &got)); /* expired */
	authid_memo_put(m, id, "7CDFA1000001", 1000, &d);
	CHECK(!authid_memo_take(m, id, strlen(id) - 1, "7CDFA1000001", 999, &got));
	memset(&got, 0, sizeof(got));
	CHECK(authid_memo_take(m, id, strlen(id), "7CDFA1000001", 1000, &got));
	CHECK(got.has_failures && memcmp(got.sealed, d.sealed, sizeof(d.sealed)) == 0);
	CHECK(!authid_memo_take(m, id, strlen(id), "7CDFA1000001", 1000, &got)); /* once */
	/* Four times the memo's size: the last quarter put is (nearly) all still there. */
	enum { N = 4 * MEMO_SETS * MEMO_WAYS, KEEP = MEMO_SETS * MEMO_WAYS / 4 };
	static char ids[KEEP][AUTHID_LEN + 1];
	for (int i = 0; i < N; i++) {
		authid_issue(s, "7CDFA1000001", 1000, id, ch);
		authid_memo_put(m, id, "7CDFA1000001", 1000, &d);
		if (i >= N - KEEP)
			memcpy(ids[i - (N - KEEP)], id, sizeof(id));
	}
	int kept = 0;
	for (int i = 0; i < KEEP; i++)
		kept += authid_memo_take(m, ids[i], AUTHID_LEN, "7CDFA1000001", 1000, &got);
	CHECKF(kept > KEEP * 95 / 100, "%d of the last %d kept", kept, KEEP);
	authid_memo_free(m);
	secrets_free(s);
}

/* One thread of authid_memo_threads: puts its own auth_ids, each with a sealed key that
 * names it, and takes each back; counts entries that came back wrong. */
struct memo_racer {
	struct authid_memo *m;
	struct secrets *s;
	int id, wrong, kept;
};

static void *memo_race(void *arg)
{
	struct memo_racer *r = arg;
	enum { ROUNDS = 2000, BATCH = 8 };
	char ids[BATCH][AUTHID_LEN + 1], ch[CHALLENGE_LEN + 1];

	for (int round = 0; round < ROUNDS; round++) {
		for (int b = 0; b < BATCH; b++) {
			struct memo_device d = {.has_failures = b % 2};
			authid_issue(r->s, "7CDFA1000001", 1000, ids[b], ch);
			memset(d.sealed, r->id * BATCH + b, sizeof(d.sealed));
			memcpy(d.sealed, ids[b], 8);
			authid_memo_put(r->m, ids[b], "7CDFA1000001", 1000, &d);
		}
		for (int b = 0; b < BATCH; b++) {
			struct memo_device got;
			if (!authid_memo_take(r->m, ids[b], AUTHID_LEN, "7CDFA1000001", 1000, &got))
				continue;
			r->kept++;
			uint8_t want[SEALED_EFUSE_BYTES];
			memset(want, r->id * BATCH + b, sizeof(want));
			memcpy(want, ids[b], 8);
			r->wrong += memcmp(got.sealed, want, sizeof(want)) != 0 ||
			            got.has_failures != (b % 2);
		}
	}
	return NULL;
}

/*
 * The memo under threads: four threads put and take their own auth_ids at once
 * (sharing sets and locks); each entry taken is the one put for that auth_id, and
 * nearly all are still there (each thread has at most 8 in flight in 16,384 places).
 */
static void authid_memo_threads(void)
{
	enum { THREADS = 4 };
	struct secrets *s = test_secrets(5);
	struct authid_memo *m = authid_memo_new();
	struct memo_racer r[THREADS];
	pthread_t th[THREADS];
	int wrong = 0, kept = 0;

	REQUIRE(s && m);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct memo_racer){.m = m, .s = s, .id = i};
		REQUIRE(pthread_create(&th[i], NULL, memo_race, &r[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		wrong += r[i].wrong;
		kept += r[i].kept;
	}
	CHECKF(wrong == 0, "%d entries came back wrong", wrong);
	CHECKF(kept > THREADS * 2000 * 8 * 99 / 100, "%d of %d kept", kept, THREADS * 2000 * 8);
	authid_memo_free(m);
	secrets_free(s);
}

static const struct t_case cases[] = {
    {"authid_tokens", authid_tokens},
    {"authid_memo_rules", authid_memo_rules},
    {"authid_memo_threads", authid_memo_threads},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
