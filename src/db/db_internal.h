/*
 * Shared by the files of src/db only: the connection struct, the transaction runner,
 * typed statement parameters and results read by column name, and the audit row every
 * audited statement writes. Including <libpq-fe.h> here keeps it out of every other
 * folder; nothing here decides a claim's outcome.
 */
#ifndef CLAIMD_DB_INTERNAL_H
#define CLAIMD_DB_INTERNAL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* The most servers database.url may list. */
#define DB_MAX_HOSTS 8

struct db {
	PGconn *conn;               /* NULL while there is no connection */
	bool prepare;               /* check the schema and prepare the statements on connect */
	bool stale;                 /* a write refused as read-only: reconnect before a retry */
	bool streaming;             /* in db_stream_begin() ... commit/abort: no reply deadline */
	struct metrics_db *metrics; /* NULL: nothing counted */
	char *copybuf;              /* COPY batch of an import in progress */
	size_t copylen;
	/* database.url, parsed once; each host of a list is tried on its own (db_conn.c). */
	PQconninfoOption *opts;
	char *url;                         /* as given: what db_redact() takes out of messages */
	char *hostbuf, *addrbuf, *portbuf; /* the lists, split in place */
	char *host[DB_MAX_HOSTS], *hostaddr[DB_MAX_HOSTS], *port[DB_MAX_HOSTS];
	int nhosts;
	unsigned timeout_ms;        /* the longest wait for a reply; 0: none (tools) */
	struct db_circuit *circuit; /* shared by the process's connections; NULL: none */
	unsigned epoch;             /* the circuit's epoch when the connection was made */
	bool timed_out;             /* the last connect or reply ran out of time */
	char state[6];              /* SQLSTATE of the last failure ("08xxx": no connection) */
	char why[200];              /* its message, first line */
	char said[1024];            /* db_said()'s last message */
};

/**
 * libpq's message @p msg with @p db's password taken out (db_redact()), in db->said:
 * valid until the next call on @p db. Every PQerrorMessage() and PQresultErrorMessage()
 * goes through it (or db_redact()) before it is logged, printed or kept.
 */
const char *db_said(struct db *db, const char *msg);

/* --- db_conn.c: connecting, waiting for replies, the circuit --- */

/** Parses @p url into @p db's options and host list. 0, or -1 with a message in @p err. */
int db_params_parse(struct db *db, const char *url, char *err, size_t errsz);
/** Frees what db_params_parse() kept. */
void db_params_free(struct db *db);
/**
 * Drops @p db's connection (if any) and connects again, trying database.url's hosts in
 * turn from the one that answered last, each with an equal share of the time left of
 * the circuit's timeout (10 s without one). True when one took the connection; false
 * with the reason in db->state and db->why (counted as a connection error).
 */
bool db_open_conn(struct db *db);
/** Closes @p db's connection without waiting for the server; NULL conn: nothing. */
void db_drop(struct db *db);
/**
 * The result of the command just sent (@p sent: what PQsend* returned), or of its last
 * statement, waiting at most db->timeout_ms (none while streaming). NULL when the
 * connection was lost or the time ran out: then the connection is dropped, the reason
 * is in db->state and db->why (named after @p what), and a timeout opens the circuit.
 * A COPY result is returned as soon as it arrives.
 */
PGresult *db_await(struct db *db, bool sent, const char *what);
/**
 * Whether @p db may use the database now, with a usable connection (remade here when
 * it was lost, refused a write, or predates the circuit's last opening). False at once
 * while the circuit is open, except for the one request in turn to probe it; a connect
 * that ran out of time opens it (one refused at once does not). The reason is in
 * db->state and db->why.
 */
bool db_gate(struct db *db);
/** The reply and connect bound of @p c in ms; 0 for NULL (no bound). */
unsigned db_circuit_timeout_ms(const struct db_circuit *c);
/** Opens @p db's circuit (the database did not answer) and starts a new epoch. */
void db_circuit_trip(struct db *db);
/** db_open_conn(), then the schema check and the statements when db->prepare. */
bool db_reconnect(struct db *db);

/* Statement tables of the resource files, prepared on connect. */
extern const struct db_stmt db_audit_stmts[];
extern const struct db_stmt db_claims_stmts[];
extern const struct db_stmt db_devices_stmts[];
extern const struct db_stmt db_lifecycle_stmts[];
extern const struct db_stmt db_users_stmts[];
extern const struct db_stmt db_admin_stmts[];
extern const struct db_stmt db_startup_stmts[];

/* One certificate row (struct cert_row), as every listing names its columns. */
#define CERT_FACTS                                                                                 \
	"c.serial, c.node_id, n.mac,"                                                              \
	" extract(epoch FROM c.not_before)::int8 AS not_before,"                                   \
	" extract(epoch FROM c.not_after)::int8 AS not_after,"                                     \
	" extract(epoch FROM c.issued_at)::int8 AS issued_at,"                                     \
	" c.revoked_at IS NOT NULL AS revoked,"                                                    \
	" coalesce(extract(epoch FROM c.revoked_at), 0)::int8 AS revoked_at,"                      \
	" coalesce(c.revocation_reason, 0) AS reason, c.not_after < now() AS expired"

/*
 * Typed parameters. Text, numbers and booleans travel in text format (the statement's
 * casts say what SQL type they become); byte strings travel in binary format and must
 * land in a bytea. A NULL text is SQL NULL. An array of them ends with DB_END.
 */
enum db_type {
	DBT_END = 0,
	DBT_TEXT,  /* param: const char *; column: text, varchar or name, copied into char[cap] */
	DBT_INT,   /* param: int64_t as decimal; column: int2, int4 or int8 into int64_t */
	DBT_BOOL,  /* param: bool as t/f; column: bool into bool */
	DBT_BYTEA, /* param: bytes; column: bytea of exactly cap bytes into uint8_t[cap] */
	DBT_BLOB,  /* column: bytea of any length, malloc'd into a struct db_blob */
	DBT_STR,   /* column: text of any length, malloc'd into a char * (the caller frees) */
};

/* A DBT_BLOB column: the caller frees p. */
struct db_blob {
	uint8_t *p;
	size_t len;
};

struct db_param {
	enum db_type type;
	const char *text;
	int64_t num;
	bool flag;
	const void *bytes;
	size_t len;
};

#define DB_TEXT(s)     ((struct db_param){.type = DBT_TEXT, .text = (s)})
#define DB_INT(n)      ((struct db_param){.type = DBT_INT, .num = (int64_t)(n)})
#define DB_BOOL(b)     ((struct db_param){.type = DBT_BOOL, .flag = (b)})
#define DB_BYTEA(p, n) ((struct db_param){.type = DBT_BYTEA, .bytes = (p), .len = (n)})
#define DB_PARAMS_END  ((struct db_param){.type = DBT_END})

/*
 * A result column read by its name (the statement's column alias) into a C variable of
 * the column's type. A NULL value is an error unless @p null is set, which then says
 * whether it was NULL (the output is left zeroed). An array of them ends with DB_END.
 */
struct db_col {
	const char *name;
	enum db_type type;
	void *out;
	size_t cap; /* DBT_TEXT: buffer size with the NUL; DBT_BYTEA: exact length */
	bool *null;
};

#define DB_COL(n, t, p, cap, isnull)      ((struct db_col){(n), (t), (p), (cap), (isnull)})
#define DB_COL_TEXT(n, buf)               DB_COL(n, DBT_TEXT, buf, sizeof(buf), NULL)
#define DB_COL_TEXT_NULL(n, buf, isnull)  DB_COL(n, DBT_TEXT, buf, sizeof(buf), isnull)
#define DB_COL_INT(n, p)                  DB_COL(n, DBT_INT, p, sizeof(int64_t), NULL)
#define DB_COL_INT_NULL(n, p, isnull)     DB_COL(n, DBT_INT, p, sizeof(int64_t), isnull)
#define DB_COL_BOOL(n, p)                 DB_COL(n, DBT_BOOL, p, sizeof(bool), NULL)
#define DB_COL_BYTEA(n, buf)              DB_COL(n, DBT_BYTEA, buf, sizeof(buf), NULL)
#define DB_COL_BYTEA_NULL(n, buf, isnull) DB_COL(n, DBT_BYTEA, buf, sizeof(buf), isnull)
#define DB_COL_BLOB(n, p)                 DB_COL(n, DBT_BLOB, p, sizeof(struct db_blob), NULL)
#define DB_COL_STR(n, p)                  DB_COL(n, DBT_STR, p, sizeof(char *), NULL)
#define DB_COLS_END                       DB_COL(NULL, DBT_END, NULL, 0, NULL)

/**
 * Executes prepared statement @p name with @p params (ended by DB_PARAMS_END; NULL for
 * none) and, when @p cols is given, reads the first row into them (results come in
 * binary format, each column's type checked against its spec). DB_OK: at least one row
 * (or, for a command, one row affected), DB_NO_ROWS: none; DB_SOFT: serialization
 * failure, deadlock or lost connection; DB_HARD: any other error, including a column
 * that is missing, of another type, NULL when it may not be, or too long.
 */
enum db_status db_exec(struct db *db, const char *name, const struct db_param *params,
                       const struct db_col *cols);
/**
 * As db_exec(), for every row: reads it into @p cols, then calls @p row with its index.
 * A status below DB_NO_ROWS from @p row stops the walk and is returned.
 */
enum db_status db_exec_rows(struct db *db, const char *name, const struct db_param *params,
                            const struct db_col *cols, enum db_status (*row)(void *cls, int index),
                            void *cls);
/**
 * As db_exec_rows() for an unprepared command without parameters (for statements over a
 * temporary table, which cannot be prepared at connect).
 */
enum db_status db_exec_sql_rows(struct db *db, const char *sql, const struct db_col *cols,
                                enum db_status (*row)(void *cls, int index), void *cls);

/* How db_run() wraps its callback. */
enum db_tx {
	DB_AUTOCOMMIT, /* each statement commits itself: for single-statement work */
	DB_EXPLICIT,   /* BEGIN ... COMMIT around the callback */
};

/**
 * The transaction runner (the only one): runs @p fn, inside BEGIN/COMMIT with
 * DB_EXPLICIT. On a serialization failure, deadlock or lock timeout (SQLSTATE 40001,
 * 40P01, 55P03), a statement timeout (57014) or a server shutting down (57P01..03) it
 * rolls back and retries with jittered backoff; a full disk or other want of resources
 * (class 53) is DB_SOFT at once; after a lost connection, or a write refused by a read-only server
 * (25006: an old primary fenced in a failover), it makes a new connection (db_gate():
 * database.url's hosts in turn), prepares the statements again and retries; a second
 * 25006 ends it (DB_SOFT): no server takes writes. It returns
 * DB_SOFT at once when no server takes the new connection (the database is down: the
 * client's Retry-After is the wait) or while the circuit is open (the database did
 * not answer in time). No reply is awaited longer than the circuit's timeout. At most 5
 * tries, then DB_SOFT ("busy", 503). DB_HARD on any other error, at once. Otherwise
 * what @p fn returned. Every DB_SOFT or DB_HARD is logged with its SQLSTATE class.
 * @p fn must be safe to run again from the start: it gets @p cls unchanged each time.
 */
enum db_status db_run(struct db *db, enum db_tx tx, enum db_status (*fn)(struct db *db, void *cls),
                      void *cls);
/**
 * As db_exec_rows(), collecting every row: each is read into @p cols (which point into
 * the @p size-byte struct @p row) and copied onto a malloc'd array in *@p items of
 * *@p n entries, which the caller frees. DB_OK; DB_NO_ROWS (none, *@p items NULL);
 * DB_SOFT or DB_HARD (then *@p items is NULL too). Not retried: for use inside db_run().
 */
enum db_status db_exec_collect(struct db *db, const char *name, const struct db_param *params,
                               const struct db_col *cols, const void *row, size_t size,
                               void **items, size_t *n);
/**
 * Runs @p name through db_run() and collects every row: each is read into @p cols (which
 * point into the @p size-byte struct @p row) and copied onto a malloc'd array in
 * *@p items of *@p n entries, which the caller frees. DB_OK; DB_NO_ROWS (none, *@p items
 * NULL); DB_SOFT or DB_HARD (then *@p items is NULL too).
 */
enum db_status db_run_collect(struct db *db, const char *name, const struct db_param *params,
                              const struct db_col *cols, const void *row, size_t size, void **items,
                              size_t *n);
/** db_exec() of one statement in autocommit, through db_run(): retried the same way. */
enum db_status db_run_exec(struct db *db, const char *name, const struct db_param *params,
                           const struct db_col *cols);

/**
 * A streaming transaction: BEGIN, any number of calls (a COPY of an import), then
 * commit or abort. Unlike db_run() it is never retried, because the caller's input
 * cannot be replayed: a soft failure ends it like a hard one. @p what names it in the
 * log. Returns DB_OK or DB_HARD/DB_SOFT.
 */
enum db_status db_stream_begin(struct db *db, const char *what);
/** Commits the streaming transaction. DB_OK, or DB_HARD/DB_SOFT (then rolled back). */
enum db_status db_stream_commit(struct db *db, const char *what);
/** Abandons the streaming transaction (ends a COPY in progress, rolls back). */
void db_stream_abort(struct db *db);

/** Runs a plain SQL command (no parameters, no result rows wanted) and classifies it. */
enum db_status db_exec_sql(struct db *db, const char *sql);
/** Classifies a result as db_exec() does, logging hard errors under @p what. */
enum db_status db_classify(struct db *db, PGresult *r, const char *what);

/*
 * The audit row. Every statement that audits takes the row's eleven fields as its
 * parameters $1..$11, in this order, and inserts them with AUDIT_INSERT_SELECT, so the
 * row says exactly what C decided (reason = the error-table name). A statement may
 * leave mac or node_id NULL for SQL to fill from the row it touched (a fact, not a
 * decision): coalesce($5, ...) / coalesce($6, ...).
 */
#define AUDIT_COLS                                                                                 \
	"event, flow, outcome, reason, mac, node_id, user_id, remote_addr, request_id, serial, "   \
	"detail"
#define AUDIT_NPARAMS 11

struct audit_rec;
/**
 * Writes the audit row's eleven fields into @p p[0..10] (the first parameters of an audited
 * statement).
 */
void db_audit_params(struct db_param p[AUDIT_NPARAMS], const struct audit_rec *a);

#endif
