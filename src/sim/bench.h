/*
 * The load generator behind 'claimsim bench': many simulated devices doing complete
 * self claims (initiate + verify with real HMACs and CSRs) against a running claimd.
 * Keys and CSRs are made before the clock starts: key generation is the device's cost.
 */
#ifndef CLAIMD_BENCH_H
#define CLAIMD_BENCH_H

#include <stdbool.h>
#include <stdio.h>

struct bench_opts {
	const char *url;
	const char *devices_file; /* manufacturing CSV: mac,platform,efuse_key */
	const char *key_type;     /* "ec" or "rsa" */
	const char *root;         /* with verify: check the chain up to this root */
	const char *cacert;       /* https URLs: the server's CA (NULL: the system's) */
	unsigned concurrency;
	long count;        /* complete claims to do (0: use duration) */
	double duration;   /* seconds (used when count is 0) */
	bool verify;       /* check every certificate received */
	int pid;           /* claimd's pid, for its peak RSS (0: not reported) */
	bool cfssl;        /* sign the same CSRs with cfssl's /api/v1/cfssl/sign instead */
	bool keep_alive;   /* one kept-alive connection per client instead of one per request */
	double rate;       /* claims started per second, all clients together (0: as fast as
	                      they can); latency is then measured from when each was due */
	unsigned pause_ms; /* between a claim's initiate and its verify (a device answering) */
	const char *serials_file; /* NULL, or: "SERIAL NODE_ID" a line for every certificate
	                             received (serial in upper-case hex) */
	const char *replies_file; /* NULL, or: a line for every exchange, "UNIX_SECONDS.mmm
	                             STAGE CLASS STATUS MS": when it ended, initiate|verify|sign,
	                             200|503-retry-after|other|transport|cut, the HTTP status
	                             (0: none), how long it took in ms */
};

/**
 * Runs the benchmark and prints its report to @p out (claims/s, latency percentiles,
 * CPU per claim, the replies by class, errors by kind). Returns 0 if no claim failed
 * and the log files were written, else 1.
 */
int bench_run(const struct bench_opts *o, FILE *out);
/**
 * Ends a running bench_run() early, as if its time were up: no claim starts after it,
 * the claims under way finish and the report is printed. Async-signal-safe (claimsim
 * calls it on SIGINT and SIGTERM).
 */
void bench_stop(void);

#endif
