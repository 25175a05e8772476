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
#include "stmts.h"

static const char *url, *mode;
static double deadline;
static atomic_long done, failed;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	char err[256], mac[13];
	unsigned idx;
	struct db *db = db_connect(url, true, err, sizeof(err));
	(void)arg;
	if (!db) {
		fprintf(stderr, "bench_db: %s\n", err);
		atomic_fetch_add(&failed, 1);
		return NULL;
	}
	while (now() < deadline) {
		bench_stmt_device(mac, &idx);
		if (bench_stmt(db, mode, mac, idx) == DB_OK)
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
	unsigned ndevices = (unsigned)atoi(argv[5]);
	if (threads < 1 || threads > 256 || secs <= 0 || ndevices < 1 || secure_init() != 0 ||
	    bench_stmts_load(url, ndevices) != 0)
		return 2;
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
