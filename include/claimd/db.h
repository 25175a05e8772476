/*
 * PostgreSQL access: connections, prepared statements, the one transaction runner and
 * migrations. The only headers that know libpq are the db*.c files; callers see C
 * structs and a status. Nothing here builds an HTTP reply.
 */
#ifndef CLAIMD_DB_H
#define CLAIMD_DB_H

#include <stdbool.h>
#include <stddef.h>

enum db_status {
	DB_HARD = -2,   /* a bug or a broken database: give up, log, 500 */
	DB_SOFT = -1,   /* serialization failure, deadlock or lost connection: retry */
	DB_NO_ROWS = 0, /* the statement matched nothing */
	DB_OK = 1,      /* done, one or more rows */
};

struct db;

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
/** True when a trivial query answers, reconnecting once if the connection was lost. */
bool db_ping(struct db *db);

/**
 * Runs @p fn inside BEGIN/COMMIT (or, when !@p explicit_tx, as autocommit statements).
 * Retries with jittered backoff on serialization failures and deadlocks, and after a
 * lost connection (reset first); returns DB_SOFT when retries are exhausted ("busy"),
 * DB_HARD on any other error, otherwise what @p fn returned.
 */
enum db_status db_run(struct db *db, bool explicit_tx, enum db_status (*fn)(struct db *, void *),
                      void *arg);

/**
 * Applies every embedded migration not yet recorded, each in its own transaction,
 * under an advisory lock so that several hosts may run it at once. Sets *@p applied to
 * how many ran. Returns 0, or -1 with a message in @p err.
 */
int db_migrate(const char *url, int *applied, char *err, size_t errsz);

#endif
