/*
 * Shared by the db*.c files only: the connection struct and statement helpers.
 * Including <libpq-fe.h> here keeps it out of every other file.
 */
#ifndef CLAIMD_DB_INTERNAL_H
#define CLAIMD_DB_INTERNAL_H

#include <libpq-fe.h>

#include "claimd/db.h"

struct db {
	PGconn *conn;
	bool prepared; /* statements were prepared: re-prepare after a reset */
	char *copybuf; /* COPY batch of an import in progress */
	size_t copylen;
};

/* Statement tables of the resource files, prepared on connect. */
extern const struct db_stmt db_claims_stmts[];
extern const struct db_stmt db_devices_stmts[];
extern const struct db_stmt db_users_stmts[];

/**
 * Executes prepared statement @p name with text parameters (NULL = SQL NULL) and
 * classifies the outcome. On DB_OK/DB_NO_ROWS with @p res non-NULL, *@p res is the
 * result, which the caller clears; otherwise it is cleared here.
 */
enum db_status db_exec_prepared(struct db *db, const char *name, int n, const char *const *params,
                                const int *lengths, const int *formats, int result_format,
                                PGresult **res);
/** Runs a plain SQL command (no parameters) and classifies it. */
enum db_status db_exec_sql(struct db *db, const char *sql);
/** Classifies a result as db_exec_prepared() does, logging hard errors. */
enum db_status db_classify(struct db *db, PGresult *r, const char *what);

#endif
