/*
 * Statements of the certificate lifecycle: revocation (idempotent: a certificate keeps
 * its first revocation), listings, released nodes, and the CRL table that makes every
 * replica serve the same CRL with a number that only grows. Facts only: a status name
 * or a CRL's staleness is decided by the callers.
 */
#include "db/db_lifecycle.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "db_internal.h"

const struct db_stmt db_lifecycle_stmts[] = {
    /* $1-$11 the audit row (mac, node_id, user_id and serial NULL: from each
     * certificate), then $12 serials (text[]) $13 node_id $14 mac $15 reason $16 by */
    {"certs_revoke",
     "WITH sel AS ("
     "  SELECT c.serial, c.node_id, n.mac, n.user_id FROM certificates c JOIN nodes n USING "
     "(node_id)"
     "  WHERE c.serial = ANY ($12::text[]) OR c.node_id = $13 OR n.mac = $14),"
     " r AS ("
     "  UPDATE certificates c SET revoked_at = now(), revocation_reason = $15, revoked_by = $16"
     "  FROM sel WHERE c.serial = sel.serial AND c.revoked_at IS NULL"
     "  RETURNING c.serial, sel.node_id, sel.mac, sel.user_id),"
     " a AS ("
     "  INSERT INTO audit (" AUDIT_COLS ")"
     "  SELECT $1, $2, $3, $4, coalesce($5, r.mac), coalesce($6, r.node_id),"
     "   coalesce($7, r.user_id), $8, $9, coalesce($10, r.serial), $11 FROM r)"
     " SELECT (SELECT count(*) FROM sel) AS matched, (SELECT count(*) FROM r) AS revoked,"
     " array_to_string(ARRAY(SELECT x FROM unnest($12::text[]) x"
     "  WHERE x NOT IN (SELECT serial FROM sel)), ' ') AS missing"},
    /* $1 node_id or NULL $2 mac or NULL $3 revoked only $4 serial or NULL */
    {"certs_list", "SELECT " CERT_FACTS " FROM certificates c JOIN nodes n USING (node_id)"
                   " WHERE ($1::text IS NULL OR c.node_id = $1)"
                   " AND ($2::text IS NULL OR n.mac = $2)"
                   " AND (NOT $3::bool OR c.revoked_at IS NOT NULL)"
                   " AND ($4::text IS NULL OR c.serial = $4)"
                   " ORDER BY c.issued_at, c.serial"},
    /* $1-$11 the release's audit row (mac and user_id NULL: from the node), then
     * $12 node_id $13 by $14 reason of the revocations $15 their audit event */
    {"node_release",
     "WITH n AS ("
     "  UPDATE nodes SET released_at = now(), pending_until = NULL, updated_at = now()"
     "  WHERE node_id = $12 AND released_at IS NULL RETURNING node_id, mac, user_id),"
     " r AS ("
     "  UPDATE certificates c SET revoked_at = now(), revocation_reason = $14, revoked_by = $13"
     "  FROM n WHERE c.node_id = n.node_id AND c.revoked_at IS NULL"
     "  RETURNING c.serial, n.node_id, n.mac, n.user_id),"
     " a AS ("
     "  INSERT INTO audit (" AUDIT_COLS ")"
     "  SELECT $1, $2, $3, $4, coalesce($5, n.mac), coalesce($6, n.node_id), coalesce($7, "
     "n.user_id),"
     "   $8, $9, $10, $11 FROM n),"
     " ar AS ("
     "  INSERT INTO audit (" AUDIT_COLS ")"
     "  SELECT $15, $2, $3, $4, r.mac, r.node_id, r.user_id, $8, $9, r.serial, $11 FROM r)"
     " SELECT (SELECT count(*) FROM r) AS revoked FROM n"},
    {"crl_lock", "SELECT pg_advisory_xact_lock(hashtextextended('claimd crl', 0))"},
    /* $1 issuer key id */
    {"crl_facts",
     "SELECT l.number, l.revoked_count,"
     " extract(epoch FROM l.this_update)::int8 AS this_update,"
     " extract(epoch FROM l.next_update)::int8 AS next_update,"
     " (SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL AND profile = 'node')"
     "  AS revoked_now,"
     " (SELECT coalesce(max(number), 0) FROM crls) AS max_number"
     " FROM (SELECT 1) one LEFT JOIN LATERAL ("
     "  SELECT number, revoked_count, this_update, next_update FROM crls"
     "  WHERE issuer_key_id = $1 ORDER BY number DESC LIMIT 1) l ON true"},
    {"crl_revoked", "SELECT serial, extract(epoch FROM revoked_at)::int8 AS revoked_at,"
                    " revocation_reason AS reason FROM certificates WHERE revoked_at IS NOT NULL"
                    " AND profile = 'node' ORDER BY serial"},
    /* $1 number $2 issuer key id $3 revoked count $4 this update $5 next update $6 der */
    {"crl_store", "INSERT INTO crls (number, issuer_key_id, revoked_count, this_update,"
                  " next_update, der) VALUES ($1, $2, $3, to_timestamp($4), to_timestamp($5), $6)"},
    {"crl_get", "SELECT der FROM crls WHERE number = $1"},
    /* $1 user or NULL */
    {"nodes_export", "SELECT n.node_id, n.mac, coalesce(n.user_id, '') AS user_id,"
                     " coalesce(n.platform, d.platform, '') AS platform,"
                     " string_agg(c.pem, E'\\n' ORDER BY c.issued_at, c.serial) AS certs"
                     " FROM nodes n JOIN certificates c USING (node_id)"
                     " LEFT JOIN devices d ON d.mac = n.mac AND n.user_id IS NULL"
                     " WHERE n.released_at IS NULL AND c.revoked_at IS NULL AND c.not_after > now()"
                     " AND ($1::text IS NULL OR n.user_id = $1)"
                     " GROUP BY n.node_id, n.mac, n.user_id, n.platform, d.platform, n.created_at"
                     " ORDER BY n.created_at, n.node_id"},
    /* $1 after this id $2 since or NULL $3 until or NULL $4 page size */
    {"audit_page",
     "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at,"
     " event, flow, outcome, reason, mac, node_id, user_id, remote_addr, request_id, serial,"
     " detail FROM audit WHERE id > $1"
     " AND ($2::timestamptz IS NULL OR at >= $2::timestamptz)"
     " AND ($3::timestamptz IS NULL OR at < $3::timestamptz)"
     " ORDER BY id LIMIT $4"},
    {NULL, NULL},
};

/* "{A,B,...}": serials (already checked to be hex) as a text[] literal. NULL on no memory. */
static char *serial_array(const char *const *serials, size_t n)
{
	size_t len = 3 + n * 34;
	char *s = malloc(len), *o = s;

	if (!s)
		return NULL;
	*o++ = '{';
	for (size_t i = 0; i < n; i++)
		o += snprintf(o, len - (size_t)(o - s), "%s%s", i ? "," : "", serials[i]);
	*o++ = '}';
	*o = '\0';
	return s;
}

enum db_status db_certs_revoke(struct db *db, const struct cert_selector *sel, int reason,
                               const char *by, const struct audit_rec *a, long *matched,
                               long *revoked, char **missing)
{
	struct db_param p[AUDIT_NPARAMS + 6];
	int64_t m = 0, r = 0;
	char *miss = NULL;
	const struct db_col cols[] = {DB_COL_INT("matched", &m), DB_COL_INT("revoked", &r),
	                              DB_COL_STR("missing", &miss), DB_COLS_END};
	char *serials = NULL;
	enum db_status s;

	if (sel->n_serials && !(serials = serial_array(sel->serials, sel->n_serials)))
		return DB_HARD;
	db_audit_params(p, a);
	p[11] = DB_TEXT(serials);
	p[12] = DB_TEXT(sel->node_id);
	p[13] = DB_TEXT(sel->mac);
	p[14] = DB_INT(reason);
	p[15] = DB_TEXT(by);
	p[16] = DB_PARAMS_END;
	s = db_run_exec(db, "certs_revoke", p, cols);
	free(serials);
	*matched = s == DB_OK ? (long)m : 0;
	*revoked = s == DB_OK ? (long)r : 0;
	if (s == DB_OK && miss && *miss) {
		*missing = miss;
	} else {
		free(miss);
		*missing = NULL;
	}
	return s == DB_OK && m == 0 ? DB_NO_ROWS : s;
}

enum db_status db_certs_list(struct db *db, const struct cert_filter *f, struct cert_row **out,
                             size_t *n)
{
	struct cert_row row = {0};
	const struct db_param p[] = {DB_TEXT(f->node_id), DB_TEXT(f->mac), DB_BOOL(f->revoked_only),
	                             DB_TEXT(f->serial), DB_PARAMS_END};
	const struct db_col cols[] = {
	    DB_COL_TEXT("serial", row.serial),
	    DB_COL_TEXT("node_id", row.node_id),
	    DB_COL_TEXT("mac", row.mac),
	    DB_COL_INT("not_before", &row.not_before),
	    DB_COL_INT("not_after", &row.not_after),
	    DB_COL_INT("issued_at", &row.issued_at),
	    DB_COL_BOOL("revoked", &row.revoked),
	    DB_COL_INT("revoked_at", &row.revoked_at),
	    DB_COL_INT("reason", &row.reason),
	    DB_COL_BOOL("expired", &row.expired),
	    DB_COLS_END,
	};
	void *items;
	enum db_status s = db_run_collect(db, "certs_list", p, cols, &row, sizeof(row), &items, n);

	*out = items;
	return s;
}

/* node_release in its own transaction (@p step false) or in the caller's. */
static enum db_status node_release(struct db *db, bool step, const char *node_id, int reason,
                                   const char *by, const struct audit_rec *a, long *revoked)
{
	struct db_param p[AUDIT_NPARAMS + 5];
	int64_t r = 0;
	const struct db_col cols[] = {DB_COL_INT("revoked", &r), DB_COLS_END};
	enum db_status s;

	db_audit_params(p, a);
	p[11] = DB_TEXT(node_id);
	p[12] = DB_TEXT(by);
	p[13] = DB_INT(reason);
	p[14] = DB_TEXT("revoke");
	p[15] = DB_PARAMS_END;
	s = step ? db_exec(db, "node_release", p, cols) : db_run_exec(db, "node_release", p, cols);
	*revoked = s == DB_OK ? (long)r : 0;
	return s;
}

enum db_status db_node_release(struct db *db, const char *node_id, int reason, const char *by,
                               const struct audit_rec *a, long *revoked)
{
	return node_release(db, false, node_id, reason, by, a, revoked);
}

enum db_status db_node_release_step(struct db *db, const char *node_id, int reason, const char *by,
                                    const struct audit_rec *a, long *revoked)
{
	return node_release(db, true, node_id, reason, by, a, revoked);
}

enum db_status db_crl_lock(struct db *db)
{
	return db_exec(db, "crl_lock", NULL, NULL);
}

enum db_status db_crl_facts(struct db *db, const uint8_t issuer_key_id[32], struct crl_facts *f)
{
	const struct db_param p[] = {DB_BYTEA(issuer_key_id, 32), DB_PARAMS_END};
	bool none[4];
	const struct db_col cols[] = {
	    DB_COL_INT_NULL("number", &f->number, &none[0]),
	    DB_COL_INT_NULL("revoked_count", &f->revoked_count, &none[1]),
	    DB_COL_INT_NULL("this_update", &f->this_update, &none[2]),
	    DB_COL_INT_NULL("next_update", &f->next_update, &none[3]),
	    DB_COL_INT("revoked_now", &f->revoked_now),
	    DB_COL_INT("max_number", &f->max_number),
	    DB_COLS_END,
	};
	enum db_status s;

	memset(f, 0, sizeof(*f));
	s = db_exec(db, "crl_facts", p, cols);
	f->have = s == DB_OK && !none[0];
	return s;
}

enum db_status db_crl_revoked(struct db *db, struct revoked_entry **e, size_t *n)
{
	struct revoked_entry row = {0};
	void *all = NULL;
	const struct db_col cols[] = {DB_COL_TEXT("serial", row.serial),
	                              DB_COL_INT("revoked_at", &row.revoked_at),
	                              DB_COL_INT("reason", &row.reason), DB_COLS_END};
	enum db_status s =
	    db_exec_collect(db, "crl_revoked", NULL, cols, &row, sizeof(row), &all, n);

	*e = all;
	return s;
}

enum db_status db_crl_store(struct db *db, int64_t number, const uint8_t issuer_key_id[32],
                            size_t n, int64_t this_update, int64_t next_update, const uint8_t *der,
                            size_t len)
{
	const struct db_param p[] = {
	    DB_INT(number),      DB_BYTEA(issuer_key_id, 32), DB_INT(n),    DB_INT(this_update),
	    DB_INT(next_update), DB_BYTEA(der, len),          DB_PARAMS_END};
	return db_exec(db, "crl_store", p, NULL);
}

enum db_status db_crl_get(struct db *db, int64_t number, uint8_t **der, size_t *len)
{
	const struct db_param p[] = {DB_INT(number), DB_PARAMS_END};
	struct db_blob b = {NULL, 0};
	const struct db_col cols[] = {DB_COL_BLOB("der", &b), DB_COLS_END};
	enum db_status s = db_run_exec(db, "crl_get", p, cols);

	if (s != DB_OK) {
		free(b.p);
		b.p = NULL;
		b.len = 0;
	}
	*der = b.p;
	*len = b.len;
	return s;
}

struct export_tx {
	const char *user;
	node_export_fn fn;
	struct export_sink *s;
	struct node_export row;
	bool stopped;
};

static enum db_status export_row(void *cls, int index)
{
	struct export_tx *t = cls;
	int rc = t->fn(t->s, &t->row);
	(void)index;
	free(t->row.certs);
	t->row.certs = NULL;
	t->stopped = rc < 0;
	return rc < 0 ? DB_HARD : DB_OK;
}

enum db_status db_nodes_export(struct db *db, const char *user, node_export_fn fn,
                               struct export_sink *s)
{
	struct export_tx t = {.user = user, .fn = fn, .s = s};
	const struct db_param p[] = {DB_TEXT(user), DB_PARAMS_END};
	const struct db_col cols[] = {
	    DB_COL_TEXT("node_id", t.row.node_id), DB_COL_TEXT("mac", t.row.mac),
	    DB_COL_TEXT("user_id", t.row.user_id), DB_COL_TEXT("platform", t.row.platform),
	    DB_COL_STR("certs", &t.row.certs),     DB_COLS_END,
	};
	/* Not through the runner: rows already handed out cannot be taken back. */
	return db_exec_rows(db, "nodes_export", p, cols, export_row, &t);
}

enum { AUDIT_PAGE = 5000 };

struct audit_tx {
	audit_export_fn fn;
	struct export_sink *s;
	struct audit_export row;
	bool null[7];
	long rows;
};

static enum db_status audit_row_out(void *cls, int index)
{
	struct audit_tx *t = cls;
	struct audit_export *a = &t->row;
	(void)index;
	a->has_mac = !t->null[0];
	a->has_node_id = !t->null[1];
	a->has_user_id = !t->null[2];
	a->has_remote_addr = !t->null[3];
	a->has_request_id = !t->null[4];
	a->has_serial = !t->null[5];
	a->has_detail = !t->null[6];
	t->rows++;
	return t->fn(t->s, a) < 0 ? DB_HARD : DB_OK;
}

enum db_status db_audit_export(struct db *db, const char *since, const char *until,
                               audit_export_fn fn, struct export_sink *s)
{
	struct audit_tx t = {.fn = fn, .s = s};
	struct audit_export *a = &t.row;
	const struct db_col cols[] = {
	    DB_COL_INT("id", &a->id),
	    DB_COL_TEXT("at", a->at),
	    DB_COL_TEXT("event", a->event),
	    DB_COL_TEXT("flow", a->flow),
	    DB_COL_TEXT("outcome", a->outcome),
	    DB_COL_TEXT("reason", a->reason),
	    DB_COL_TEXT_NULL("mac", a->mac, &t.null[0]),
	    DB_COL_TEXT_NULL("node_id", a->node_id, &t.null[1]),
	    DB_COL_TEXT_NULL("user_id", a->user_id, &t.null[2]),
	    DB_COL_TEXT_NULL("remote_addr", a->remote_addr, &t.null[3]),
	    DB_COL_TEXT_NULL("request_id", a->request_id, &t.null[4]),
	    DB_COL_TEXT_NULL("serial", a->serial, &t.null[5]),
	    DB_COL_TEXT_NULL("detail", a->detail, &t.null[6]),
	    DB_COLS_END,
	};
	int64_t after = 0;
	enum db_status st;

	/* Keyset pages by id: each page is its own short statement, memory stays flat. */
	do {
		const struct db_param p[] = {DB_INT(after), DB_TEXT(since), DB_TEXT(until),
		                             DB_INT(AUDIT_PAGE), DB_PARAMS_END};
		t.rows = 0;
		st = db_exec_rows(db, "audit_page", p, cols, audit_row_out, &t);
		after = a->id;
	} while (st == DB_OK && t.rows == AUDIT_PAGE);
	return st == DB_NO_ROWS ? DB_OK : st;
}
