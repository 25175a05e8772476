/*
 * The load generator behind 'claimsim bench': many simulated devices doing complete
 * self claims (initiate + verify with real HMACs and CSRs) against a running claimd,
 * and, with a user share, assisted claims as the Android app relays them (initiate +
 * verify with a user's access token from the development IdP). Keys, self-claim CSRs
 * and tokens are made before the clock starts: key generation is the device's cost. A
 * user claim's CSR names the node_id its initiate returned, so it is made between the
 * two requests, as the device makes it.
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
	const char *serials_file; /* NULL, or: a line for every certificate received (serial
	                             in upper-case hex): "SERIAL NODE_ID" for a self claim
	                             (NODE_ID is the MAC), "SERIAL NODE_ID MAC USER" for a
	                             user claim */
	const char *replies_file; /* NULL, or: a line for every exchange, "UNIX_SECONDS.mmm
	                             STAGE CLASS STATUS MS FLOW": when it ended,
	                             initiate|verify|sign, 200|503-retry-after|other|transport|
	                             cut, the HTTP status (0: none), how long it took in ms,
	                             self|user|cfssl */
	unsigned user_share;      /* percent (0..100) of the claims made in the user flow, spread
	                             evenly over the claim numbers; needs idp_dir */
	const char *idp_dir;      /* the development IdP's directory (idp.key), for user tokens */
	const char *issuer;       /* the tokens' iss (users.jwt.issuer) */
	const char *audience;     /* their aud (NULL: none) */
	const char *kid;          /* the IdP key's id (claimctl dev-idp's default: "dev-1") */
	unsigned users;           /* distinct users, "bench-user-1" up; claim k goes to k % users */
};

/**
 * Runs the benchmark and prints its report to @p out (claims/s, latency percentiles,
 * CPU per claim, the replies by class, with a user share the claims and replies per
 * flow, errors by kind). Returns 0 if no claim failed and the log files were written,
 * else 1 (also when a token cannot be minted from @p o->idp_dir).
 */
int bench_run(const struct bench_opts *o, FILE *out);
/**
 * Ends a running bench_run() early, as if its time were up: no claim starts after it,
 * the claims under way finish and the report is printed. Async-signal-safe (claimsim
 * calls it on SIGINT and SIGTERM).
 */
void bench_stop(void);

#endif
