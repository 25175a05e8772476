/*
 * libpq connections, the statement tables and the transaction runner. Statements are
 * prepared once per connection; every PGresult is cleared in the function that got it.
 */
#include "db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "claimd/crypto.h"
#include "claimd/log.h"

static const struct db_stmt *const stmt_tables[] = {db_claims_stmts, db_devices_stmts,
                                                    db_users_stmts};

static int latest_migration(void)
{
	int v = 0;
	for (const struct db_migration *m = db_migrations; m->name; m++)
		v = m->version;
	return v;
}

static int prepare_all(struct db *db, char *err, size_t errsz)
{
	for (size_t t = 0; t < sizeof(stmt_tables) / sizeof(stmt_tables[0]); t++) {
		for (const struct db_stmt *s = stmt_tables[t]; s->name; s++) {
			PGresult *r = PQprepare(db->conn, s->name, s->sql, 0, NULL);
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				snprintf(err, errsz, "database: preparing %s: %s", s->name,
				         PQresultErrorMessage(r));
				PQclear(r);
				return -1;
			}
			PQclear(r);
		}
	}
	db->prepared = true;
	return 0;
}

struct db *db_connect(const char *url, bool prepare, char *err, size_t errsz)
{
	struct db *db = calloc(1, sizeof(*db));
	PGresult *r = NULL;

	if (!db) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	db->conn = PQconnectdb(url);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		snprintf(err, errsz, "database: %s", PQerrorMessage(db->conn));
		goto fail;
	}
	if (!prepare)
		return db;
	r = PQexec(db->conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errsz, "database: no schema (run 'claimctl migrate'): %s",
		         PQresultErrorMessage(r));
		goto fail;
	}
	if (atoi(PQgetvalue(r, 0, 0)) < latest_migration()) {
		snprintf(err, errsz,
		         "database: schema is at version %s, this build needs %d "
		         "(run 'claimctl migrate')",
		         PQgetvalue(r, 0, 0), latest_migration());
		goto fail;
	}
	PQclear(r);
	r = NULL;
	if (prepare_all(db, err, errsz) < 0)
		goto fail;
	return db;
fail:
	/* Keep only the first line of libpq's message. */
	err[strcspn(err, "\n")] = '\0';
	PQclear(r);
	db_close(db);
	return NULL;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	PQfinish(db->conn);
	free(db->copybuf);
	free(db);
}

static bool ping_once(struct db *db)
{
	PGresult *r = PQexec(db->conn, "SELECT 1");
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	return ok;
}

bool db_ping(struct db *db)
{
	char err[256];

	if (ping_once(db))
		return true;
	if (PQstatus(db->conn) == CONNECTION_OK)
		return false;
	/* The server went away and may be back: one reconnect before saying no. */
	PQreset(db->conn);
	if (PQstatus(db->conn) != CONNECTION_OK)
		return false;
	if (db->prepared && prepare_all(db, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return false;
	}
	return ping_once(db);
}

enum db_status db_classify(struct db *db, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	const char *state;

	if (st == PGRES_TUPLES_OK)
		return PQntuples(r) > 0 ? DB_OK : DB_NO_ROWS;
	if (st == PGRES_COMMAND_OK || st == PGRES_COPY_IN)
		return atoi(PQcmdTuples(r)) > 0 ? DB_OK : DB_NO_ROWS;
	if (PQstatus(db->conn) != CONNECTION_OK)
		return DB_SOFT;
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
		return DB_SOFT;
	log_error("database: %s: %s%s", what, state ? state : "",
	          r ? PQresultErrorMessage(r) : PQerrorMessage(db->conn));
	return DB_HARD;
}

enum db_status db_exec_prepared(struct db *db, const char *name, int n, const char *const *params,
                                const int *lengths, const int *formats, int result_format,
                                PGresult **res)
{
	PGresult *r = PQexecPrepared(db->conn, name, n, params, lengths, formats, result_format);
	enum db_status s = db_classify(db, r, name);
	if (res && s >= DB_NO_ROWS)
		*res = r;
	else
		PQclear(r);
	return s;
}

enum db_status db_exec_sql(struct db *db, const char *sql)
{
	PGresult *r = PQexec(db->conn, sql);
	enum db_status s = db_classify(db, r, sql);
	PQclear(r);
	return s;
}

static void backoff(int attempt)
{
	uint32_t jitter;
	crypto_random(&jitter, sizeof(jitter));
	long ms = (1L << attempt) * 5 + (long)(jitter % 10);
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

enum db_status db_run(struct db *db, bool explicit_tx, enum db_status (*fn)(struct db *, void *),
                      void *arg)
{
	enum { TRIES = 5 };

	for (int attempt = 0; attempt < TRIES; attempt++) {
		enum db_status s;

		if (PQstatus(db->conn) != CONNECTION_OK) {
			PQreset(db->conn);
			if (PQstatus(db->conn) != CONNECTION_OK) {
				backoff(attempt);
				continue;
			}
			/* A reset connection has lost its prepared statements. */
			char err[256];
			if (db->prepared && prepare_all(db, err, sizeof(err)) < 0) {
				log_error("%s", err);
				backoff(attempt);
				continue;
			}
		}
		if (explicit_tx && (s = db_exec_sql(db, "BEGIN")) < DB_NO_ROWS)
			goto retry_or_fail;
		s = fn(db, arg);
		if (s < DB_NO_ROWS) {
			if (explicit_tx && PQstatus(db->conn) == CONNECTION_OK)
				db_exec_sql(db, "ROLLBACK");
			goto retry_or_fail;
		}
		if (explicit_tx) {
			enum db_status c = db_exec_sql(db, "COMMIT");
			if (c < DB_NO_ROWS) {
				s = c;
				goto retry_or_fail;
			}
		}
		return s;
	retry_or_fail:
		if (s == DB_HARD)
			return DB_HARD;
		backoff(attempt);
	}
	return DB_SOFT;
}
