/*
 * Schema migrations from the embedded sql/ files. Each runs in its own transaction and
 * is recorded in schema_migrations; a session-level advisory lock makes concurrent runs
 * from several hosts wait for each other instead of racing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* Arbitrary but fixed: "claimd" in ASCII, 0x636c61696d64. */
#define MIGRATE_LOCK   "SELECT pg_advisory_lock(109317141917028)"
#define MIGRATE_UNLOCK "SELECT pg_advisory_unlock(109317141917028)"

static int run(struct db *db, const char *sql, char *err, size_t errsz, const char *what)
{
	PGresult *r = PQexec(db->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, errsz, "%s: %s", what, db_said(db, PQresultErrorMessage(r)));
		err[strcspn(err, "\n")] = '\0';
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

static int applied_already(struct db *db, int version, char *err, size_t errsz)
{
	char v[16];
	const char *p[1] = {v};
	snprintf(v, sizeof(v), "%d", version);
	PGresult *r = PQexecParams(db->conn, "SELECT 1 FROM schema_migrations WHERE version = $1",
	                           1, NULL, p, NULL, NULL, 0);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		rc = PQntuples(r) > 0;
	else
		snprintf(err, errsz, "schema_migrations: %s", db_said(db, PQresultErrorMessage(r)));
	PQclear(r);
	return rc;
}

static int apply(struct db *db, const struct db_migration *m, char *err, size_t errsz)
{
	char v[16];
	const char *p[2] = {v, m->name};
	PGresult *r;

	if (run(db, "BEGIN", err, errsz, m->name) < 0)
		return -1;
	if (run(db, m->sql, err, errsz, m->name) < 0)
		goto rollback;
	snprintf(v, sizeof(v), "%d", m->version);
	r = PQexecParams(db->conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
	                 2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errsz, "%s: %s", m->name, db_said(db, PQresultErrorMessage(r)));
		PQclear(r);
		goto rollback;
	}
	PQclear(r);
	return run(db, "COMMIT", err, errsz, m->name);
rollback:
	PQclear(PQexec(db->conn, "ROLLBACK"));
	return -1;
}

int db_migrate(const char *url, int *applied, char *err, size_t errsz)
{
	struct db *db = db_connect(url, false, err, errsz);
	int rc = -1;

	*applied = 0;
	if (!db)
		return -1;
	if (run(db, "SET client_min_messages = warning", err, errsz, "setup") < 0 ||
	    run(db, MIGRATE_LOCK, err, errsz, "advisory lock") < 0)
		goto out;
	if (run(db,
	        "CREATE TABLE IF NOT EXISTS schema_migrations ("
	        " version integer PRIMARY KEY CHECK (version > 0),"
	        " name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),"
	        " applied_at timestamptz NOT NULL DEFAULT now());"
	        "COMMENT ON TABLE schema_migrations IS 'Which sql/ migrations have been applied.';"
	        "COMMENT ON COLUMN schema_migrations.version IS 'The number in the file name.';"
	        "COMMENT ON COLUMN schema_migrations.name IS 'The file name.';"
	        "COMMENT ON COLUMN schema_migrations.applied_at IS 'When it was applied.';",
	        err, errsz, "schema_migrations") < 0)
		goto unlock;
	for (const struct db_migration *m = db_migrations; m->name; m++) {
		int done = applied_already(db, m->version, err, errsz);
		if (done < 0)
			goto unlock;
		if (done)
			continue;
		if (apply(db, m, err, errsz) < 0)
			goto unlock;
		(*applied)++;
	}
	rc = 0;
unlock:
	PQclear(PQexec(db->conn, MIGRATE_UNLOCK));
out:
	db_close(db);
	return rc;
}
