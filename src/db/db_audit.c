/*
 * The audit statements and the binding of an audit row as a statement's first eleven
 * parameters, shared by every audited statement of src/db. The reason comes from C;
 * no statement here or elsewhere writes one itself.
 */
#include "db/db_audit.h"

#include "db_internal.h"

const struct db_stmt db_audit_stmts[] = {
    {"audit_insert",
     "INSERT INTO audit (" AUDIT_COLS ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"},
    /* The same, committed without waiting for the WAL flush: set_config(..., true) lasts
     * to the end of this statement's own transaction, so nothing else is affected. */
    {"audit_insert_async", "WITH s AS (SELECT set_config('synchronous_commit', 'off', true))"
                           " INSERT INTO audit (" AUDIT_COLS ")"
                           " SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11 FROM s"},
    {NULL, NULL},
};

void db_audit_params(struct db_param p[AUDIT_NPARAMS], const struct audit_rec *a)
{
	p[0] = DB_TEXT(a->event);
	p[1] = DB_TEXT(a->flow);
	p[2] = DB_TEXT(a->outcome);
	p[3] = DB_TEXT(a->reason);
	p[4] = DB_TEXT(a->mac);
	p[5] = DB_TEXT(a->node_id);
	p[6] = DB_TEXT(a->user_id);
	p[7] = DB_TEXT(a->remote_addr);
	p[8] = DB_TEXT(a->request_id);
	p[9] = DB_TEXT(a->serial);
	p[10] = DB_TEXT(a->detail);
}

static enum db_status insert(struct db *db, const char *stmt, const struct audit_rec *a)
{
	struct db_param p[AUDIT_NPARAMS + 1];

	db_audit_params(p, a);
	p[AUDIT_NPARAMS] = DB_PARAMS_END;
	return db_run_exec(db, stmt, p, NULL);
}

enum db_status db_audit(struct db *db, const struct audit_rec *a)
{
	return insert(db, "audit_insert", a);
}

enum db_status db_audit_async(struct db *db, const struct audit_rec *a)
{
	return insert(db, "audit_insert_async", a);
}
