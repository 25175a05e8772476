/*
 * The database ceiling: claimd's own claim-path statements (the same prepared SQL, the
 * same DB functions) driven in a loop by THREADS connections, with no HTTP and no
 * crypto. What it reaches bounds the claims per second of any claimd on this schema
 * and machine. Run by tests/bench/db.sh; never used by the service.
 *   bench_db URL commit|initiate|lookup THREADS SECONDS NDEVICES
 * The devices 7C0000000001.. 7C<NDEVICES in hex> must be registered (gen_devices).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include "lib/secure.h"
#include "db/db.h"
#include "core/revocation.h"
#include "db/db_claims.h"

static const char *url, *mode;
static unsigned ndevices;
static double deadline;
static atomic_long done, failed;
/* commit: each device's sealed key, read before the clock starts (the commit spends a
 * session only for the device's current key), indexed by the MAC's number. */
static uint8_t (*sealed)[SEALED_EFUSE_BYTES];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

static enum db_status one(struct db *db, const char *mac, unsigned idx, const char *pem)
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

static void *worker(void *arg)
{
	char err[256], mac[13], pem[701];
	uint32_t r;
	struct db *db = db_connect(url, true, err, sizeof(err));
	(void)arg;
	if (!db) {
		fprintf(stderr, "bench_db: %s\n", err);
		atomic_fetch_add(&failed, 1);
		return NULL;
	}
	memset(pem, 'A', 700); /* a leaf PEM's size */
	pem[700] = '\0';
	while (now() < deadline) {
		secure_random(&r, sizeof(r));
		snprintf(mac, sizeof(mac), "7C%010X", 1 + r % ndevices);
		if (one(db, mac, r % ndevices, pem) == DB_OK)
			atomic_fetch_add(&done, 1);
		else
			atomic_fetch_add(&failed, 1);
	}
	db_close(db);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 6 || (strcmp(argv[2], "commit") && strcmp(argv[2], "initiate") &&
	                  strcmp(argv[2], "lookup"))) {
		fprintf(stderr,
		        "usage: bench_db URL commit|initiate|lookup THREADS SECONDS NDEVICES\n");
		return 2;
	}
	url = argv[1];
	mode = argv[2];
	unsigned threads = (unsigned)atoi(argv[3]);
	double secs = atof(argv[4]);
	ndevices = (unsigned)atoi(argv[5]);
	if (threads < 1 || threads > 256 || secs <= 0 || ndevices < 1 || secure_init() != 0)
		return 2;
	if (strcmp(mode, "commit") == 0) {
		char err[256], mac[13];
		struct device_row row;
		struct db *db = db_connect(url, true, err, sizeof(err));
		if (!db || !(sealed = calloc(ndevices, sizeof(*sealed)))) {
			fprintf(stderr, "bench_db: %s\n", db ? "out of memory" : err);
			return 1;
		}
		for (unsigned i = 0; i < ndevices; i++) {
			snprintf(mac, sizeof(mac), "7C%010X", 1 + i);
			if (db_device_get(db, mac, &row) != DB_OK) {
				fprintf(stderr, "bench_db: %s is not registered\n", mac);
				return 1;
			}
			memcpy(sealed[i], row.sealed, sizeof(row.sealed));
		}
		db_close(db);
	}
	pthread_t th[256];
	struct tms t0, t1;
	times(&t0);
	double start = now();
	deadline = start + secs;
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double el = now() - start;
	times(&t1);
	long n = atomic_load(&done);
	printf("%s: %ld in %.2f s = %.0f per second with %u connections (%ld failed); this "
	       "program's own CPU: %.0f us each\n",
	       mode, n, el, (double)n / el, threads, atomic_load(&failed),
	       n ? (double)(t1.tms_utime + t1.tms_stime - t0.tms_utime - t0.tms_stime) * 1e6 /
	               (double)sysconf(_SC_CLK_TCK) / (double)n
	         : 0.0);
	return atomic_load(&failed) ? 1 : 0;
}
