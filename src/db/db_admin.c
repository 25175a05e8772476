/*
 * Reads for the management API: a node, the nodes of a MAC, and a node's certificates
 * with their PEM. No key material is ever selected (the sealed eFuse key
 * and its tag stay in the table); nothing here decides a status or builds a reply.
 */
#include "db/db_admin.h"

#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* A node's columns as struct node_show reads them; $1 is the node_id or the MAC. */
#define NODE_SHOW                                                                                  \
	"SELECT n.node_id, n.mac, coalesce(n.user_id, '') AS user_id,"                             \
	" coalesce(n.platform, d.platform, '') AS platform,"                                       \
	" extract(epoch FROM n.created_at)::int8 AS created_at,"                                   \
	" coalesce(extract(epoch FROM n.claimed_at), 0)::int8 AS claimed_at,"                      \
	" coalesce(extract(epoch FROM n.released_at), 0)::int8 AS released_at FROM nodes n"        \
	" LEFT JOIN devices d ON d.mac = n.mac AND n.user_id IS NULL"

const struct db_stmt db_admin_stmts[] = {
    /* $1 node_id */
    {"admin_node_certs", "SELECT " CERT_FACTS ", c.pem FROM certificates c JOIN nodes n"
                         " USING (node_id) WHERE c.node_id = $1 ORDER BY c.issued_at, c.serial"},
    /* $1 node_id */
    {"admin_node_show", NODE_SHOW " WHERE n.node_id = $1"},
    /* $1 mac */
    {"admin_device_nodes", NODE_SHOW " WHERE n.mac = $1 ORDER BY n.created_at, n.node_id"},
    {NULL, NULL},
};

enum db_status db_node_cert_pems(struct db *db, const char *node_id, struct cert_pem **out,
                                 size_t *n)
{
	struct cert_pem row = {0};
	const struct db_param p[] = {DB_TEXT(node_id), DB_PARAMS_END};
	const struct db_col cols[] = {
	    DB_COL_TEXT("serial", row.facts.serial),
	    DB_COL_TEXT("node_id", row.facts.node_id),
	    DB_COL_TEXT("mac", row.facts.mac),
	    DB_COL_INT("not_before", &row.facts.not_before),
	    DB_COL_INT("not_after", &row.facts.not_after),
	    DB_COL_INT("issued_at", &row.facts.issued_at),
	    DB_COL_BOOL("revoked", &row.facts.revoked),
	    DB_COL_INT("revoked_at", &row.facts.revoked_at),
	    DB_COL_INT("reason", &row.facts.reason),
	    DB_COL_BOOL("expired", &row.facts.expired),
	    DB_COL_STR("pem", &row.pem),
	    DB_COLS_END,
	};
	void *items = NULL;
	enum db_status s =
	    db_run_collect(db, "admin_node_certs", p, cols, &row, sizeof(row), &items, n);

	*out = items;
	return s;
}

void db_cert_pems_free(struct cert_pem *c, size_t n)
{
	if (!c)
		return;
	for (size_t i = 0; i < n; i++)
		free(c[i].pem);
	free(c);
}

/* The columns of NODE_SHOW, read into @p r. */
static void node_cols(struct db_col cols[8], struct node_show *r)
{
	cols[0] = DB_COL_TEXT("node_id", r->node_id);
	cols[1] = DB_COL_TEXT("mac", r->mac);
	cols[2] = DB_COL_TEXT("user_id", r->user_id);
	cols[3] = DB_COL_TEXT("platform", r->platform);
	cols[4] = DB_COL_INT("created_at", &r->created_at);
	cols[5] = DB_COL_INT("claimed_at", &r->claimed_at);
	cols[6] = DB_COL_INT("released_at", &r->released_at);
	cols[7] = DB_COLS_END;
}

enum db_status db_node_show(struct db *db, const char *node_id, struct node_show *out)
{
	const struct db_param p[] = {DB_TEXT(node_id), DB_PARAMS_END};
	struct db_col cols[8];

	memset(out, 0, sizeof(*out));
	node_cols(cols, out);
	return db_run_exec(db, "admin_node_show", p, cols);
}

enum db_status db_device_nodes(struct db *db, const char *mac, struct node_show **out, size_t *n)
{
	struct node_show row = {0};
	const struct db_param p[] = {DB_TEXT(mac), DB_PARAMS_END};
	struct db_col cols[8];
	void *items = NULL;
	enum db_status s;

	node_cols(cols, &row);
	s = db_run_collect(db, "admin_device_nodes", p, cols, &row, sizeof(row), &items, n);

	*out = items;
	return s;
}
