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
	long count;      /* complete claims to do (0: use duration) */
	double duration; /* seconds (used when count is 0) */
	bool verify;     /* check every certificate received */
	int pid;         /* claimd's pid, for its peak RSS (0: not reported) */
	bool cfssl;      /* sign the same CSRs with cfssl's /api/v1/cfssl/sign instead */
	bool keep_alive; /* one kept-alive connection per client instead of one per request */
	double rate;     /* claims started per second, all clients together (0: as fast as
	                    they can); latency is then measured from when each was due */
};

/** Runs the benchmark and prints its report to @p out. Returns 0 if no claim failed. */
int bench_run(const struct bench_opts *o, FILE *out);

#endif
