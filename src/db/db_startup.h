/*
 * What start-up (and claimd -t) asks of the database before it says "listening": can
 * it be reached at all, is it the right one with a current schema, and a sample of the
 * registered devices' sealed keys to try the secrets key on. Facts only; the daemon
 * decides whether to refuse or to wait.
 */
#ifndef CLAIMD_DB_STARTUP_H
#define CLAIMD_DB_STARTUP_H

#include <stddef.h>

#include "lib/secure.h"
#include "db/db.h"
#include "lib/util.h"

/* How a first connection went. */
enum db_reach {
	DB_REACH_OK,      /* connected, schema current, statements prepared */
	DB_REACH_DOWN,    /* no server answered, or it is starting up, shutting down or
	                     full: it may come (back) without anyone changing anything */
	DB_REACH_REFUSED, /* a server answered and refused (no such database or role,
	                     authentication, permissions), the connection string is
	                     malformed, or the schema is not current: an operator must act */
};

/**
 * Connects to @p url as db_connect(url, true, ...) does and says which of the three it
 * was. DB_REACH_OK with the connection in @p out (the caller closes it); otherwise NULL
 * in @p out and the reason in @p err, without the password (db_connect's redaction).
 */
enum db_reach db_probe(const char *url, struct db **out, char *err, size_t errsz);

/* One registered device's sealed eFuse key. */
struct sealed_sample {
	char mac[MAC_LEN + 1];
	uint8_t sealed[SEALED_EFUSE_BYTES];
};

/**
 * Up to @p max (at most 8) registered devices with their sealed keys: the first and the
 * last by MAC and a few from a random point between, each an index lookup however many
 * devices there are. DB_OK with *@p n set (DB_NO_ROWS: no devices), DB_SOFT or DB_HARD.
 */
enum db_status db_sealed_sample(struct db *db, struct sealed_sample *out, size_t max, size_t *n);

#endif
