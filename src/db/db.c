/*
 * libpq connections, the statement tables, typed parameters and results, and the one
 * transaction runner. Statements are prepared once per connection; every PGresult is
 * cleared in the function that got it. Nothing here knows what a statement means.
 */
#include "db_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/secure.h"
#include "lib/log.h"
#include "lib/util.h"

static const struct db_stmt *const stmt_tables[] = {
    db_audit_stmts, db_claims_stmts, db_lifecycle_stmts, db_devices_stmts,
    db_users_stmts, db_admin_stmts,  db_startup_stmts};

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
			PGresult *r = db_await(
			    db, db->conn && PQsendPrepare(db->conn, s->name, s->sql, 0, NULL),
			    s->name);
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				snprintf(err, errsz, "database: preparing %s: %s", s->name,
				         r ? db_said(db, PQresultErrorMessage(r)) : db->why);
				PQclear(r);
				return -1;
			}
			PQclear(r);
		}
	}
	return 0;
}

/* The schema is at least this build's: a standby promoted from an older backup, or a
 * server restored from one, must not be written with statements it cannot run. */
static int schema_current(struct db *db, char *err, size_t errsz)
{
	const char *sql = "SELECT coalesce(max(version), 0) FROM schema_migrations";
	PGresult *r = db_await(db, db->conn && PQsendQuery(db->conn, sql), "schema_migrations");
	int rc = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		snprintf(err, errsz, "database: no schema (run 'claimctl migrate'): %s",
		         r ? db_said(db, PQresultErrorMessage(r)) : db->why);
	else if (atoi(PQgetvalue(r, 0, 0)) < latest_migration())
		snprintf(err, errsz,
		         "database: schema is at version %s, this build needs %d "
		         "(run 'claimctl migrate')",
		         PQgetvalue(r, 0, 0), latest_migration());
	else
		rc = 0;
	PQclear(r);
	return rc;
}

bool db_reconnect(struct db *db)
{
	char err[512];

	if (!db_open_conn(db))
		return false;
	if (db->prepare &&
	    (schema_current(db, err, sizeof(err)) < 0 || prepare_all(db, err, sizeof(err)) < 0)) {
		err[strcspn(err, "\n")] = '\0';
		log_error("%s", err);
		/* Not a fault of the connection: "42" (the schema), unless it was lost. */
		if (db->conn)
			snprintf(db->state, sizeof(db->state), "42P01");
		snprintf(db->why, sizeof(db->why), "%.199s", err);
		db_drop(db);
		return false;
	}
	return true;
}

/* A connection struct for @p url, not yet connected. */
static struct db *db_new(const char *url, bool prepare, char *err, size_t errsz)
{
	struct db *db = calloc(1, sizeof(*db));

	if (!db) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	db->prepare = prepare;
	if (db_params_parse(db, url, err, errsz) < 0) {
		db_close(db);
		return NULL;
	}
	return db;
}

struct db *db_connect(const char *url, bool prepare, char *err, size_t errsz)
{
	struct db *db = db_new(url, false, err, errsz);

	if (!db)
		return NULL;
	if (!db_open_conn(db)) {
		snprintf(err, errsz, "database: %s", db->why);
		goto fail;
	}
	db->prepare = prepare;
	if (prepare && (schema_current(db, err, errsz) < 0 || prepare_all(db, err, errsz) < 0))
		goto fail;
	return db;
fail:
	/* Keep only the first line of libpq's message. */
	err[strcspn(err, "\n")] = '\0';
	db_close(db);
	return NULL;
}

struct db *db_open(const char *url, struct db_circuit *c, char *err, size_t errsz)
{
	struct db *db = db_new(url, true, err, errsz);

	if (db) {
		db->circuit = c;
		db->timeout_ms = db_circuit_timeout_ms(c);
	}
	return db;
}

void db_set_metrics(struct db *db, struct metrics_db *m)
{
	db->metrics = m;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	db_drop(db);
	db_params_free(db);
	free(db->copybuf);
	free(db);
}

/* What makes the server refuse claimd's writes, as facts of the session. */
static const char *const ready_sql =
    "SELECT pg_is_in_recovery() AS standby,"
    " current_setting('transaction_read_only') = 'on' AS read_only,"
    " has_table_privilege('certificates', 'INSERT') AND has_table_privilege('nodes', 'INSERT')"
    "  AND has_table_privilege('claim_sessions', 'UPDATE') AS may_write";

static const char standby_why[] = "read-only: the server is a standby (in recovery)";
static const char read_only_why[] = "read-only: default_transaction_read_only is on for "
                                    "claimd's sessions (server, database or role setting)";

int db_ready(struct db *db, char *why, size_t whysz)
{
	bool standby = false, ro = false, may_write = false;
	const struct db_col cols[] = {DB_COL_BOOL("standby", &standby),
	                              DB_COL_BOOL("read_only", &ro),
	                              DB_COL_BOOL("may_write", &may_write), DB_COLS_END};

	for (int attempt = 0; attempt < 2; attempt++) {
		if (!db_gate(db)) {
			/* libpq refused the (last) host for target_session_attrs=read-write. */
			if (strstr(db->why, "hot standby"))
				snprintf(why, whysz, "database: %s", standby_why);
			else if (strstr(db->why, "read-only"))
				snprintf(why, whysz, "database: %s", read_only_why);
			else
				snprintf(why, whysz, "database: %s (SQLSTATE class %.2s)",
				         db->timed_out ? "does not answer in time"
				                       : "no connection",
				         db->state[0] ? db->state : "08");
			return -1;
		}
		enum db_status s = db_exec_sql_rows(db, ready_sql, cols, NULL, NULL);
		if (s == DB_SOFT)
			continue; /* lost under our feet: once more on a new connection */
		if (s != DB_OK) {
			snprintf(why, whysz, "database: error (SQLSTATE class %.2s)", db->state);
			return -1;
		}
		if (!standby && !ro && may_write)
			return 0;
		snprintf(why, whysz, "database: %s",
		         standby ? standby_why
		         : ro    ? read_only_why
		                 : "read-only: the role may not write the claim tables");
		/* Another of database.url's servers may take writes: the next try connects to
		 * whichever does (target_session_attrs=read-write). */
		if (db->nhosts > 1)
			db->stale = true;
		else
			return -1;
	}
	if (!why[0])
		snprintf(why, whysz, "database: no connection (SQLSTATE class %.2s)",
		         db->state[0] ? db->state : "08");
	return -1;
}

/* Remembers @p r's failure (SQLSTATE @p state) for the transaction's log line. */
static void note_result(struct db *db, const PGresult *r, const char *state)
{
	snprintf(db->state, sizeof(db->state), "%s", state);
	db_redact(db->why, sizeof(db->why), PQresultErrorMessage(r), db->url);
	db->why[strcspn(db->why, "\n")] = '\0';
}

/* SQLSTATE classes that say "not now" rather than "never": the server cannot take the
 * work at the moment, the work itself is fine. */
static bool transient(const char *state)
{
	return strncmp(state, "08", 2) == 0     /* connection exception */
	       || strncmp(state, "53", 2) == 0  /* insufficient resources: disk full, ... */
	       || strncmp(state, "57P", 3) == 0 /* server shutting down or starting */
	       || strcmp(state, "57014") == 0   /* statement_timeout */
	       || strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	       strcmp(state, "55P03") == 0; /* lock_timeout */
}

enum db_status db_classify(struct db *db, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	const char *state;

	if (r && st == PGRES_TUPLES_OK)
		return PQntuples(r) > 0 ? DB_OK : DB_NO_ROWS;
	if (r && (st == PGRES_COMMAND_OK || st == PGRES_COPY_IN))
		return atoi(PQcmdTuples(r)) > 0 ? DB_OK : DB_NO_ROWS;
	/* No result: db_await() noted the lost connection or the deadline and dropped the
	 * connection; with the connection still there, the command was never sent (logged
	 * where it was refused). */
	if (!r)
		return db->conn ? DB_HARD : DB_SOFT;
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		note_result(db, r, "08006");
		return DB_SOFT;
	}
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	note_result(db, r, state ? state : "XX000");
	/* A server that no longer takes writes (25006: a demoted or fenced old primary in a
	 * failover) while the connection stays up: retried on a new connection, which libpq
	 * makes to whichever of database.url's hosts takes writes now
	 * (target_session_attrs=read-write). */
	if (state && strcmp(state, "25006") == 0) {
		log_warn("database: %s: the server is read-only; reconnecting", what);
		db->stale = true;
		return DB_SOFT;
	}
	if (state && transient(state))
		return DB_SOFT;
	log_error("database: %s: %s %s", what, state ? state : "",
	          db_said(db, PQresultErrorMessage(r)));
	return DB_HARD;
}

enum { MAX_PARAMS = 32 };

/* PostgreSQL type OIDs (pg_type.dat); domains arrive as their base type. */
enum {
	OID_BOOL = 16,
	OID_BYTEA = 17,
	OID_NAME = 19,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_TEXT = 25,
	OID_BPCHAR = 1042,
	OID_VARCHAR = 1043,
};

/* Sends @p name with @p params; NULL when they do not fit (logged). */
static PGresult *send_params(struct db *db, const char *name, const struct db_param *params)
{
	const char *values[MAX_PARAMS];
	char text[MAX_PARAMS][24];
	int lengths[MAX_PARAMS], formats[MAX_PARAMS], n = 0;

	for (const struct db_param *p = params; p && p->type != DBT_END; p++, n++) {
		if (n == MAX_PARAMS) {
			log_error("database: %s: more than %d parameters", name, MAX_PARAMS);
			return NULL;
		}
		lengths[n] = 0;
		formats[n] = 0;
		switch (p->type) {
		case DBT_TEXT:
		case DBT_STR:
			values[n] = p->text;
			break;
		case DBT_INT:
			snprintf(text[n], sizeof(text[n]), "%lld", (long long)p->num);
			values[n] = text[n];
			break;
		case DBT_BOOL:
			values[n] = p->flag ? "t" : "f";
			break;
		case DBT_BYTEA:
		case DBT_BLOB:
			values[n] = p->bytes;
			lengths[n] = (int)p->len;
			formats[n] = 1;
			break;
		case DBT_END:
			break;
		}
	}
	return db_await(
	    db, db->conn && PQsendQueryPrepared(db->conn, name, n, values, lengths, formats, 1),
	    name);
}

static int64_t be_int(const unsigned char *b, int len)
{
	uint64_t v = 0;
	for (int i = 0; i < len; i++)
		v = v << 8 | b[i];
	/* Sign-extend from len bytes. */
	if (len < 8 && (b[0] & 0x80))
		v |= ~(uint64_t)0 << (8 * len);
	return (int64_t)v;
}

/* Reads row @p i of @p r into @p cols. DB_OK, or DB_HARD (logged) on a mismatch. */
static enum db_status read_row(const PGresult *r, int i, const struct db_col *cols,
                               const char *what)
{
	for (const struct db_col *c = cols; c->name; c++) {
		int f = PQfnumber(r, c->name);
		const char *why = NULL;
		if (f < 0) {
			why = "no such column";
			goto bad;
		}
		unsigned oid = PQftype(r, f);
		const unsigned char *v = (const unsigned char *)PQgetvalue(r, i, f);
		int len = PQgetlength(r, i, f);
		if (PQgetisnull(r, i, f)) {
			if (!c->null) {
				why = "NULL";
				goto bad;
			}
			*c->null = true;
			memset(c->out, 0, c->cap);
			continue;
		}
		if (c->null)
			*c->null = false;
		switch (c->type) {
		case DBT_TEXT:
			if (oid != OID_TEXT && oid != OID_VARCHAR && oid != OID_BPCHAR &&
			    oid != OID_NAME)
				why = "not text";
			else if ((size_t)len >= c->cap)
				why = "too long";
			else {
				memcpy(c->out, v, (size_t)len);
				((char *)c->out)[len] = '\0';
			}
			break;
		case DBT_INT:
			if ((oid == OID_INT2 && len == 2) || (oid == OID_INT4 && len == 4) ||
			    (oid == OID_INT8 && len == 8))
				*(int64_t *)c->out = be_int(v, len);
			else
				why = "not an integer";
			break;
		case DBT_BOOL:
			if (oid != OID_BOOL || len != 1)
				why = "not a boolean";
			else
				*(bool *)c->out = v[0] != 0;
			break;
		case DBT_BYTEA:
			if (oid != OID_BYTEA || (size_t)len != c->cap)
				why = "not bytea of the expected length";
			else
				memcpy(c->out, v, c->cap);
			break;
		case DBT_BLOB: {
			struct db_blob *b = c->out;
			if (oid != OID_BYTEA) {
				why = "not bytea";
			} else if (!(b->p = malloc(len ? (size_t)len : 1))) {
				why = "out of memory";
			} else {
				memcpy(b->p, v, (size_t)len);
				b->len = (size_t)len;
			}
			break;
		}
		case DBT_STR: {
			char **str = c->out;
			if (oid != OID_TEXT && oid != OID_VARCHAR && oid != OID_BPCHAR &&
			    oid != OID_NAME)
				why = "not text";
			else if (!(*str = malloc((size_t)len + 1)))
				why = "out of memory";
			else {
				memcpy(*str, v, (size_t)len);
				(*str)[len] = '\0';
			}
			break;
		}
		case DBT_END:
			break;
		}
		if (!why)
			continue;
	bad:
		log_error("database: %s: column %s: %s", what, c->name, why);
		return DB_HARD;
	}
	return DB_OK;
}

/* Classifies @p r, reads its rows into @p cols (calling @p row for each, or stopping
 * after the first without one) and clears it. */
static enum db_status walk_rows(struct db *db, PGresult *r, const char *what,
                                const struct db_col *cols,
                                enum db_status (*row)(void *cls, int index), void *cls)
{
	enum db_status s = db_classify(db, r, what);

	for (int i = 0; s == DB_OK && cols && i < PQntuples(r); i++) {
		enum db_status rs = read_row(r, i, cols, what);
		if (rs == DB_OK && row)
			rs = row(cls, i);
		if (rs < DB_NO_ROWS)
			s = rs;
		if (!row)
			break; /* db_exec(): the first row only */
	}
	PQclear(r);
	return s;
}

enum db_status db_exec_rows(struct db *db, const char *name, const struct db_param *params,
                            const struct db_col *cols, enum db_status (*row)(void *cls, int index),
                            void *cls)
{
	return walk_rows(db, send_params(db, name, params), name, cols, row, cls);
}

enum db_status db_exec_sql_rows(struct db *db, const char *sql, const struct db_col *cols,
                                enum db_status (*row)(void *cls, int index), void *cls)
{
	PGresult *r = db_await(
	    db, db->conn && PQsendQueryParams(db->conn, sql, 0, NULL, NULL, NULL, NULL, 1), sql);
	return walk_rows(db, r, sql, cols, row, cls);
}

enum db_status db_exec(struct db *db, const char *name, const struct db_param *params,
                       const struct db_col *cols)
{
	return db_exec_rows(db, name, params, cols, NULL, NULL);
}

enum db_status db_exec_sql(struct db *db, const char *sql)
{
	PGresult *r = db_await(db, db->conn && PQsendQuery(db->conn, sql), sql);
	enum db_status s = db_classify(db, r, sql);
	PQclear(r);
	return s;
}

static void backoff(int attempt)
{
	uint32_t jitter;
	secure_random(&jitter, sizeof(jitter));
	long ms = (1L << attempt) * 5 + (long)(jitter % 10);
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* What a transaction's end says for the metrics: DB_SOFT after the last try is "busy"
 * (503), DB_HARD "error" (500). Every failure is logged with its SQLSTATE class, so that
 * a 503 or a 500 can be told apart in the log: 08 no connection, 25 read-only, 40
 * conflicts, 53 out of space or memory, 57 the server shutting down. */
static enum db_status counted(struct db *db, enum db_status s, uint64_t start_us, int tries)
{
	enum metrics_tx o = s == DB_SOFT ? TX_BUSY : s == DB_HARD ? TX_ERROR : TX_OK;
	uint64_t us = now_us_monotonic() - start_us;

	metrics_db_tx(db->metrics, o, us);
	if (s < DB_NO_ROWS)
		log_warn("database: transaction failed (%s) after %d tr%s, %.0f ms: SQLSTATE class "
		         "%.2s: %s",
		         s == DB_SOFT ? "busy" : "error", tries, tries == 1 ? "y" : "ies",
		         (double)us / 1e3, db->state[0] ? db->state : "XX", db->why);
	return s;
}

enum db_status db_run(struct db *db, enum db_tx tx, enum db_status (*fn)(struct db *db, void *cls),
                      void *cls)
{
	enum { TRIES = 5 };
	uint64_t start_us = now_us_monotonic();
	bool stale_before = false;
	int attempt;

	for (attempt = 0; attempt < TRIES; attempt++) {
		enum db_status s;

		/* A write refused as read-only (stale) is a connection retry. */
		if (attempt > 0)
			metrics_db_retry(db->metrics, db->conn &&
			                                      PQstatus(db->conn) == CONNECTION_OK &&
			                                      !db->stale
			                                  ? RETRY_CONFLICT
			                                  : RETRY_CONNECTION);
		/* No server takes the connection, or the database was just found not to answer
		 * (the circuit is open): say so now (503 with Retry-After). The client's retry
		 * is the backoff, and a worker that waited for more reconnects would only make
		 * the devices behind it wait past their timeout. */
		if (!db_gate(db))
			return counted(db, DB_SOFT, start_us, attempt + 1);
		if (tx == DB_EXPLICIT && (s = db_exec_sql(db, "BEGIN")) < DB_NO_ROWS)
			goto retry_or_fail;
		s = fn(db, cls);
		if (s < DB_NO_ROWS) {
			if (tx == DB_EXPLICIT && db->conn && PQstatus(db->conn) == CONNECTION_OK)
				db_exec_sql(db, "ROLLBACK");
			goto retry_or_fail;
		}
		if (tx == DB_EXPLICIT) {
			enum db_status c = db_exec_sql(db, "COMMIT");
			if (c < DB_NO_ROWS) {
				s = c;
				goto retry_or_fail;
			}
		}
		return counted(db, s, start_us, attempt + 1);
	retry_or_fail:
		if (s == DB_HARD)
			return counted(db, DB_HARD, start_us, attempt + 1);
		/* Refused as read-only again on a new connection: no server of database.url
		 * takes writes now, and more tries would only keep the device waiting. */
		if (db->stale && stale_before)
			return counted(db, DB_SOFT, start_us, attempt + 1);
		/* A full disk or a want of memory (class 53) does not pass in milliseconds. */
		if (strncmp(db->state, "53", 2) == 0)
			return counted(db, DB_SOFT, start_us, attempt + 1);
		stale_before = stale_before || db->stale;
		backoff(attempt);
	}
	return counted(db, DB_SOFT, start_us, attempt);
}

struct one_stmt {
	const char *name;
	const struct db_param *params;
	const struct db_col *cols;
};

static enum db_status run_one(struct db *db, void *cls)
{
	const struct one_stmt *o = cls;
	return db_exec(db, o->name, o->params, o->cols);
}

enum db_status db_transaction(struct db *db, db_tx_body body, void *cls)
{
	return db_run(db, DB_EXPLICIT, body, cls);
}

enum db_status db_run_exec(struct db *db, const char *name, const struct db_param *params,
                           const struct db_col *cols)
{
	struct one_stmt o = {name, params, cols};
	return db_run(db, DB_AUTOCOMMIT, run_one, &o);
}

enum db_status db_stream_begin(struct db *db, const char *what)
{
	enum db_status s = DB_SOFT;

	/* Nothing of the caller's has been sent yet, so a connection found lost here is
	 * made again as the runner would (twice at most: the second is a new one). */
	for (int attempt = 0; attempt < 2 && s == DB_SOFT; attempt++) {
		if (!db_gate(db))
			break;
		s = db_exec_sql(db, "BEGIN");
	}
	if (s < DB_NO_ROWS) {
		log_warn("database: %s: cannot begin (%s): SQLSTATE class %.2s: %s", what,
		         s == DB_SOFT ? "busy" : "error", db->state[0] ? db->state : "XX", db->why);
		return s;
	}
	db->streaming = true;
	return DB_OK;
}

enum db_status db_stream_commit(struct db *db, const char *what)
{
	enum db_status s = db_exec_sql(db, "COMMIT");
	db->streaming = false;
	if (s < DB_NO_ROWS) {
		log_error("database: %s: the commit failed; nothing was stored: SQLSTATE class "
		          "%.2s: %s",
		          what, db->state[0] ? db->state : "XX", db->why);
		db_stream_abort(db);
		return s;
	}
	return DB_OK;
}

void db_stream_abort(struct db *db)
{
	PGresult *r;

	db->streaming = false;
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK)
		return;
	/* A COPY still open must be ended before anything else is sent. */
	if (PQisBusy(db->conn) || PQtransactionStatus(db->conn) == PQTRANS_ACTIVE) {
		PQputCopyEnd(db->conn, "aborted");
		while ((r = PQgetResult(db->conn)) != NULL)
			PQclear(r);
	}
	if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		db_exec_sql(db, "ROLLBACK");
}

/* Rows collected into a growing array of elements of @p size, each read into @p row. */
struct collect {
	const void *row;
	size_t size;
	void *items;
	size_t n, cap;
};

static enum db_status collect_row(void *cls, int index)
{
	struct collect *c = cls;
	(void)index;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		void *p = realloc(c->items, cap * c->size);
		if (!p)
			return DB_HARD;
		c->items = p;
		c->cap = cap;
	}
	memcpy((char *)c->items + c->n * c->size, c->row, c->size);
	c->n++;
	return DB_OK;
}

enum db_status db_exec_collect(struct db *db, const char *name, const struct db_param *params,
                               const struct db_col *cols, const void *row, size_t size,
                               void **items, size_t *n)
{
	struct collect c = {row, size, NULL, 0, 0};
	enum db_status s = db_exec_rows(db, name, params, cols, collect_row, &c);

	if (s != DB_OK) {
		free(c.items);
		c.items = NULL;
		c.n = 0;
	}
	*items = c.items;
	*n = c.n;
	return s;
}

struct collect_args {
	const char *name;
	const struct db_param *params;
	const struct db_col *cols;
	const void *row;
	size_t size;
	void **items;
	size_t *n;
};

static enum db_status collect_tx(struct db *db, void *cls)
{
	struct collect_args *a = cls;
	free(*a->items); /* nothing, or the partial list of a failed try */
	return db_exec_collect(db, a->name, a->params, a->cols, a->row, a->size, a->items, a->n);
}

enum db_status db_run_collect(struct db *db, const char *name, const struct db_param *params,
                              const struct db_col *cols, const void *row, size_t size, void **items,
                              size_t *n)
{
	struct collect_args a = {name, params, cols, row, size, items, n};

	*items = NULL;
	*n = 0;
	return db_run(db, DB_AUTOCOMMIT, collect_tx, &a);
}
