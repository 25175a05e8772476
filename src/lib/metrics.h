/*
 * The daemon's request and claim counters in the names and labels docs/operations.md lists
 * ("Metrics"): requests by route and status code, their duration as a histogram by
 * route, claims by flow and outcome, and the build. Lock-free counters; writing the
 * Prometheus text format; nothing here knows HTTP.
 */
#ifndef CLAIMD_METRICS_H
#define CLAIMD_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/errors.h"

#define METRICS_ROUTES  32 /* distinct route labels a process may have */
#define METRICS_STATUS  16 /* the status codes counted apart, and one slot for the rest */
#define METRICS_BUCKETS 13 /* duration histogram buckets, +Inf included */

/* Durations: one bucket count per upper bound (1 ms ... 5 s, then +Inf). */
struct metrics_histogram {
	atomic_long buckets[METRICS_BUCKETS]; /* not cumulative: each observation in one bucket */
	atomic_llong sum_us;                  /* durations, microseconds */
};

struct metrics_route {
	const char *label; /* a route's path as the route table spells it; NULL: free */
	atomic_long by_status[METRICS_STATUS];
	struct metrics_histogram duration;
};

enum metrics_flow { FLOW_SELF, FLOW_USER, FLOW_MATTER, FLOW__COUNT };

/* How a database transaction (one db_run(), retries included) ended. */
enum metrics_tx { TX_OK, TX_BUSY, TX_ERROR, TX__COUNT };
/* Why db_run() tried a transaction again. */
enum metrics_retry { RETRY_CONFLICT, RETRY_CONNECTION, RETRY__COUNT };

/* Where a self verify took its device from (authid_memo.h): the memo of this daemon's
 * initiate, a lookup (no memo entry: the initiate went to another daemon or came before
 * a restart, newer entries pushed it out, or an earlier verify of the auth_id took it),
 * or the memo first and then a lookup (the memo's verdict was not a right answer, or
 * the commit found the device's record changed). */
enum metrics_device_source {
	DEVICE_FROM_MEMO,
	DEVICE_FROM_LOOKUP,
	DEVICE_FROM_MEMO_THEN_LOOKUP,
	DEVICE_FROM__COUNT
};

/* The database counters, fed by the transaction runner of each worker's connection. */
struct metrics_db {
	struct metrics_histogram tx_duration; /* one db_run(), first BEGIN to last reply */
	atomic_long tx[TX__COUNT];
	atomic_long retries[RETRY__COUNT];
	atomic_long connection_errors; /* connects and reconnects that failed */
};

struct metrics {
	pthread_mutex_t lock; /* taken only to add a route label */
	double start_time;    /* unix seconds, with fractions, when the process started */
	struct metrics_route routes[METRICS_ROUTES];
	atomic_long claims[FLOW__COUNT][CE__COUNT];
	atomic_long issued[FLOW__COUNT];             /* certificates sent, by flow */
	atomic_long device_from[DEVICE_FROM__COUNT]; /* self verifies by their device's source */
	struct metrics_db db;
};

/** Initialises @p m. 0, or -1. */
int metrics_init(struct metrics *m);
/** Releases what metrics_init() took. */
void metrics_destroy(struct metrics *m);
/**
 * Counts one finished request of route @p label (a static string; "unmatched" for no
 * route) with HTTP @p status, which took @p duration_us microseconds. Once
 * METRICS_ROUTES labels exist, further ones are not counted.
 */
void metrics_request(struct metrics *m, const char *label, unsigned status, uint64_t duration_us);
/** Counts one claim request of @p flow that ended with @p e (CE_OK: a certificate). */
void metrics_claim(struct metrics *m, enum metrics_flow flow, enum claimd_err e);
/** Counts one certificate sent to a client of @p flow. */
void metrics_issued(struct metrics *m, enum metrics_flow flow);
/** Counts one self verify whose device came from @p src. @p m NULL: nothing. */
void metrics_device_source(struct metrics *m, enum metrics_device_source src);
/** Adds one observation of @p us microseconds to @p h. */
void metrics_observe(struct metrics_histogram *h, uint64_t us);
/**
 * Counts one finished database transaction that took @p us microseconds (its retries
 * included) and ended as @p outcome. @p db NULL (a tool's connection): nothing.
 */
void metrics_db_tx(struct metrics_db *db, enum metrics_tx outcome, uint64_t us);
/** Counts one retry of a transaction for @p why. @p db NULL: nothing. */
void metrics_db_retry(struct metrics_db *db, enum metrics_retry why);
/** Counts one failed connect or reconnect to the database. @p db NULL: nothing. */
void metrics_db_connection_error(struct metrics_db *db);
/** The gauges of the moment that metrics_write() adds to the counters. */
struct metrics_gauges {
	const char *version;   /* claimd_build_info */
	int64_t ca_not_after;  /* claimd_ca_not_after_timestamp_seconds */
	long claims_in_flight; /* claimd_claims_in_flight */
};

/**
 * Writes claimd_http_requests_total, claimd_http_request_duration_seconds,
 * claimd_claims_total, claimd_certificates_issued_total{flow},
 * claimd_self_verify_device_total{source}, claimd_build_info,
 * claimd_ca_not_after_timestamp_seconds, claimd_claims_in_flight, the database family
 * (claimd_db_transaction_duration_seconds, claimd_db_transactions_total{outcome},
 * claimd_db_transaction_retries_total{reason}, claimd_db_connection_errors_total) and
 * the standard process_* metrics (resident memory, open
 * file descriptors, CPU seconds, start time; read from /proc and getrusage) in the
 * Prometheus text exposition format (version 0.0.4) to @p f.
 */
void metrics_write(struct metrics *m, const struct metrics_gauges *g, FILE *f);

#endif
