/*
 * PostgreSQL access: connections and migrations. The resource headers (db_audit.h,
 * db_claims.h, db_devices.h, db_users.h) add typed functions, each of which runs its own
 * transaction through the one runner in src/db. Only src/db knows libpq and SQL;
 * callers see C structs and a status. Nothing here builds an HTTP reply.
 */
#ifndef CLAIMD_DB_H
#define CLAIMD_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/metrics.h"

enum db_status {
	DB_HARD = -2,   /* a bug or a broken database: give up, log, 500 */
	DB_SOFT = -1,   /* retries exhausted after serialization failures, deadlocks or a
	                 * lost connection: busy, 503 */
	DB_NO_ROWS = 0, /* the statement matched nothing */
	DB_OK = 1,      /* done, one or more rows */
};

struct db;

/*
 * A transaction's body, written by the domain (claim.c, revocation.c): it calls the
 * step functions of the resource headers (those documented "a step") in order and
 * returns the status of the whole. It must be safe to run again from the start: the
 * runner retries it with @p cls unchanged.
 */
typedef enum db_status (*db_tx_body)(struct db *db, void *cls);

/**
 * Runs @p body in one transaction (BEGIN ... COMMIT) through the one transaction runner:
 * retried after a serialization failure, a deadlock or a lost connection, DB_SOFT when
 * the retries run out, DB_HARD on any other error (db_internal.h, db_run()). A body
 * returning below DB_NO_ROWS rolls back. Otherwise what @p body returned.
 */
enum db_status db_transaction(struct db *db, db_tx_body body, void *cls);

struct db_stmt {
	const char *name;
	const char *sql;
};

struct db_migration {
	int version;
	const char *name;
	const char *sql;
};

/** The embedded migrations, sorted, ended by a zero entry (generated from sql/). */
extern const struct db_migration db_migrations[];

/**
 * Connects to @p url and, when @p prepare, checks the schema is current and prepares
 * every statement of every resource file (a typo stops start-up, not a request).
 * Returns NULL with a message in @p err on failure.
 */
struct db *db_connect(const char *url, bool prepare, char *err, size_t errsz);
/** Closes @p db; NULL is a no-op. */
void db_close(struct db *db);
/**
 * Makes @p db count its transactions, retries and failed reconnects in @p m (borrowed;
 * it must outlive @p db). Without this call a connection counts nothing (claimctl).
 */
void db_set_metrics(struct db *db, struct metrics_db *m);
/** True when a trivial query answers, reconnecting once if the connection was lost. */
bool db_ping(struct db *db);

/**
 * Applies every embedded migration not yet recorded, each in its own transaction,
 * under an advisory lock so that several hosts may run it at once. Sets *@p applied to
 * how many ran. Returns 0, or -1 with a message in @p err.
 */
int db_migrate(const char *url, int *applied, char *err, size_t errsz);

#endif
