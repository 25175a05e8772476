/* The claim path's statements for the benchmarks: see stmts.h. */
#include "stmts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/revocation.h"
#include "db/db_claims.h"
#include "lib/secure.h"

static unsigned ndevices = 1;
/* each device's sealed key, indexed by the MAC's number less one */
static uint8_t (*sealed)[SEALED_EFUSE_BYTES];
static char pem[701]; /* a leaf PEM's size, filled by bench_stmts_load() */

int bench_stmts_load(const char *url, unsigned n)
{
	char err[256], mac[13];
	struct device_row row;
	struct db *db = db_connect(url, true, err, sizeof(err));
	if (!db || !(sealed = calloc(n, sizeof(*sealed)))) {
		fprintf(stderr, "bench: %s\n", db ? "out of memory" : err);
		db_close(db);
		return -1;
	}
	memset(pem, 'A', sizeof(pem) - 1);
	for (unsigned i = 0; i < n; i++) {
		snprintf(mac, sizeof(mac), "7C%010X", 1 + i);
		if (db_device_get(db, mac, &row) != DB_OK) {
			fprintf(stderr, "bench: %s is not registered\n", mac);
			db_close(db);
			return -1;
		}
		memcpy(sealed[i], row.sealed, sizeof(row.sealed));
	}
	db_close(db);
	ndevices = n;
	return 0;
}

void bench_stmt_device(char mac[13], unsigned *idx)
{
	uint32_t r;
	secure_random(&r, sizeof(r));
	*idx = r % ndevices;
	snprintf(mac, 13, "7C%010X", 1 + *idx);
}

static void random_token(char *out, size_t n, const char *alphabet)
{
	uint8_t r[64];
	size_t k = strlen(alphabet);
	secure_random(r, n);
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[r[i] % k];
	out[n] = '\0';
}

static enum db_status commit(struct db *db, const char *mac, unsigned idx)
{
	char auth_id[44], serial[33], challenge[65];
	uint8_t fp[32];
	random_token(auth_id, 43,
	             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
	random_token(serial, 32, "0123456789ABCDEF");
	serial[0] = '1';
	random_token(challenge, 64, "0123456789abcdef");
	secure_random(fp, sizeof(fp));
	time_t t = time(NULL);
	struct self_claim c = {
	    .auth_id = auth_id,
	    .mac = mac,
	    .challenge = challenge,
	    .expires = t + 300,
	    .max_attempts = 3,
	    .node_id = mac,
	    .serial = serial,
	    .pem = pem,
	    .not_before = t - 3600,
	    .not_after = t + 86400 * 365,
	    .key_sha256 = fp,
	    .sealed = sealed[idx],
	    /* as claimd's default revocation.on_reclaim: a re-claim revokes the node's
	     * earlier certificates in the same statement */
	    .supersede = true,
	    .supersede_reason = CRL_REASON_SUPERSEDED,
	    .superseded_by = "bench",
	};
	struct audit_rec a = {.event = "verify",
	                      .flow = "self",
	                      .outcome = "ok",
	                      .reason = "OK",
	                      .mac = mac,
	                      .node_id = mac,
	                      .remote_addr = "127.0.0.1",
	                      .request_id = "bench",
	                      .serial = serial};
	struct commit_facts f;
	enum db_status st = db_self_claim_commit(db, &c, &a, &f);
	return st == DB_OK && !f.spent ? DB_NO_ROWS : st;
}

enum db_status bench_stmt(struct db *db, const char *mode, const char *mac, unsigned idx)
{
	if (strcmp(mode, "lookup") == 0) {
		struct device_row row;
		return db_device_get(db, mac, &row);
	}
	if (strcmp(mode, "initiate") == 0) {
		/* As claim_self_initiate() asks it: the lookup and the audit row of the
		 * caller's decision for every combination of facts, one statement. */
		static const char *const outcome[DEVICE_FACT_COMBINATIONS] = {
		    "refused", "refused", "refused", "refused",
		    "refused", "refused", "ok",      "refused"};
		static const char *const reason[DEVICE_FACT_COMBINATIONS] = {"UNKNOWN_DEVICE",
		                                                             "UNKNOWN_DEVICE",
		                                                             "UNKNOWN_DEVICE",
		                                                             "UNKNOWN_DEVICE",
		                                                             "PLATFORM_MISMATCH",
		                                                             "PLATFORM_MISMATCH",
		                                                             "OK",
		                                                             "MAC_LOCKED"};
		struct audit_rec a = {.event = "initiate",
		                      .flow = "self",
		                      .mac = mac,
		                      .remote_addr = "127.0.0.1",
		                      .request_id = "bench"};
		struct device_facts f;
		return db_self_initiate(db, mac, "esp32s3", &a, outcome, reason, &f);
	}
	return commit(db, mac, idx);
}
