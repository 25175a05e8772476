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
 * Connects to @p url now (claimctl, claimd -t, migrations) and, when @p prepare, checks
 * the schema is current and prepares every statement of every resource file (a typo
 * stops start-up, not a request). The hosts of @p url get 10 s together to take the
 * connection; replies are awaited without a bound. Lost connections are made again by
 * the transaction runner as in the daemon. Returns NULL with a message in @p err.
 */
struct db *db_connect(const char *url, bool prepare, char *err, size_t errsz);
/** Closes @p db; NULL is a no-op. */
void db_close(struct db *db);
/**
 * Copies @p msg (a libpq message, NUL-terminated; NULL reads as "") into @p out (size
 * @p outsz, always NUL-terminated, cut short when full) with every spelling of the
 * password of connection string @p url replaced by "********": a URI's user information
 * (up to the first and to the last '@', and the pieces between them) and its ?password=
 * parameter, each as written and percent-decoded; the keyword form's password=, bare or
 * quoted, as written and unescaped. Every message of libpq that is logged, printed or
 * kept goes through it (db_conn.c, db.c). @p url NULL: copied unchanged. Returns the
 * length written. No errors.
 */
size_t db_redact(char *out, size_t outsz, const char *msg, const char *url);
/**
 * Makes @p db count its transactions, retries and failed reconnects in @p m (borrowed;
 * it must outlive @p db). Without this call a connection counts nothing (claimctl).
 */
void db_set_metrics(struct db *db, struct metrics_db *m);
/**
 * Whether a claim could be committed now: the database answers, and takes writes from
 * claimd's sessions (not a standby in recovery, not default_transaction_read_only for
 * the session, the role or the database, and the role may insert certificates). A
 * connection that was lost, or that reaches a read-only server while database.url
 * lists several, is made again first. 0; or -1 with a short reason in @p why
 * ("database: ...", no host names or server messages: those go to the log).
 */
int db_ready(struct db *db, char *why, size_t whysz);

/*
 * The circuit: shared by the daemon's connections, it remembers that the database did
 * not answer in time (a connect or a reply took longer than its timeout), so that
 * requests get "busy" (503) at once instead of each waiting in a dead connection; every
 * 250 ms one request probes it, and a connection made, or refused at once, closes it
 * again. A database that refuses at once (stopped, restarting) never opens it.
 */
struct db_circuit;
/**
 * A closed circuit whose connections wait at most @p timeout_ms for a connect (all of
 * database.url's hosts together) and for each reply. NULL when out of memory.
 */
struct db_circuit *db_circuit_new(unsigned timeout_ms);
/** Frees @p c (no connection may use it any more); NULL is a no-op. */
void db_circuit_free(struct db_circuit *c);
/**
 * A daemon worker's connection to @p url, sharing @p c (borrowed; it must outlive the
 * connection), made when it is first used: so this fails only on a @p url that libpq
 * cannot parse (NULL, message in @p err). The schema is checked and the statements
 * prepared on every connect; a stale schema makes each transaction DB_SOFT (logged).
 */
struct db *db_open(const char *url, struct db_circuit *c, char *err, size_t errsz);

/**
 * Applies every embedded migration not yet recorded, each in its own transaction,
 * under an advisory lock so that several hosts may run it at once. Sets *@p applied to
 * how many ran. Returns 0, or -1 with a message in @p err.
 */
int db_migrate(const char *url, int *applied, char *err, size_t errsz);

#endif
