/*
 * Statements of the user flow. The quota is exact across daemons because the count and
 * the insert run under pg_advisory_xact_lock on the user; a (user, MAC) pair has one
 * node_id because the unique index nodes_user_mac says so. Facts only: whether the
 * user is over quota is reported, the refusal is claim.c's.
 */
#include "db/db_users.h"

#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* A self-claimed node has no platform of its own: its device's registration says it. */
#define NODE_PLATFORM                                                                              \
	" coalesce(n.platform, (SELECT d.platform FROM devices d WHERE d.mac = n.mac), '')"

const struct db_stmt db_users_stmts[] = {
    /* $1 user $2 mac $3 platform $4 ttl seconds */
    {"user_node_touch",
     "UPDATE nodes SET pending_until = now() + make_interval(secs => $4::int), platform = $3,"
     " updated_at = now() WHERE user_id = $1 AND mac = $2 AND released_at IS NULL"
     " RETURNING node_id"},
    {"user_lock", "SELECT pg_advisory_xact_lock(hashtextextended('claimd user ' || $1, 0))"},
    /* $1 user $2 default quota: whether one more node is allowed. A node counts while
     * it is held: claimed and not released, or initiated and still pending (protocol.md
     * section 7: an abandoned initiate must not cost a slot). */
    {"user_quota_room",
     "SELECT coalesce((SELECT quota FROM user_quotas WHERE user_id = $1), $2::int) = 0"
     " OR (SELECT count(*) FROM nodes WHERE user_id = $1 AND released_at IS NULL"
     "  AND (claimed_at IS NOT NULL OR pending_until > now())) <"
     "  coalesce((SELECT quota FROM user_quotas WHERE user_id = $1), $2::int) AS room"},
    /* $1 node_id $2 mac $3 user $4 platform $5 ttl */
    {"user_node_insert", "INSERT INTO nodes (node_id, mac, user_id, platform, pending_until)"
                         " VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::int))"
                         " ON CONFLICT DO NOTHING RETURNING node_id"},
    /* $1-$11 the audit row ($5 mac NULL: taken from the node), then $12 user $13 node_id
     * $14 policies $15 serial $16 key_sha256 $17 not_before $18 not_after $19 pem
     * $20 supersede $21 its reason code $22 by whom $23 certificate profile */
    {"user_verify",
     "WITH n AS ("
     "  UPDATE nodes SET pending_until = NULL, updated_at = now(),"
     "   claimed_at = coalesce(claimed_at, now()),"
     "   node_policies = coalesce($14, node_policies)"
     "  WHERE node_id = $13 AND user_id = $12 AND pending_until > now()"
     "  RETURNING node_id, mac),"
     " o AS ("
     "  UPDATE certificates SET revoked_at = now(), revocation_reason = $21, revoked_by = $22"
     "  WHERE node_id = $13 AND revoked_at IS NULL AND $20::bool"
     "  AND EXISTS (SELECT 1 FROM n) RETURNING 1),"
     " c AS ("
     "  INSERT INTO certificates (serial, node_id, key_sha256, not_before, not_after, pem,"
     "   node_policies, profile)"
     "  SELECT $15, node_id, $16, to_timestamp($17), to_timestamp($18), $19,"
     "   coalesce($14, 'mqtt'), $23 FROM n RETURNING 1),"
     " a AS ("
     "  INSERT INTO audit (" AUDIT_COLS ")"
     "  SELECT $1, $2, $3, $4, coalesce($5, n.mac), $6, $7, $8, $9, $10, $11 FROM n"
     "  RETURNING 1)"
     " SELECT mac FROM n"},
    /* $1 node_id $2 user: the MAC of this user's pending initiate of node_id, under a
     * per-MAC lock that the transaction holds to its end. Every user verify of one MAC
     * (under claim.transfer release or refuse) takes it before it reads who else holds
     * the MAC, so two users racing for a device are decided one after the other, on any
     * daemon; the node's row is locked too, so no release slips in before the verify. */
    {"user_verify_lock",
     "SELECT mac, pg_advisory_xact_lock(hashtextextended('claimd mac ' || mac, 0)) IS NULL"
     "  AS unused FROM nodes WHERE node_id = $1 AND user_id = $2 AND pending_until > now()"
     " FOR UPDATE"},
    /* $1 mac $2 user $3 key_sha256 or NULL: the live nodes of other users that hold a
     * valid (unrevoked, unexpired) certificate of the MAC, and whether one of those
     * certificates is of key $3. Self-claimed nodes (no user) are not anyone's. */
    {"mac_holders",
     "SELECT n.node_id, n.user_id, coalesce(bool_or(c.key_sha256 = $3), false) AS same_key"
     " FROM nodes n JOIN certificates c USING (node_id)"
     " WHERE n.mac = $1 AND n.user_id IS NOT NULL AND n.user_id <> $2"
     "  AND n.released_at IS NULL AND c.revoked_at IS NULL AND c.not_after > now()"
     " GROUP BY n.node_id, n.user_id ORDER BY n.node_id"},
    {"user_set_quota",
     "INSERT INTO user_quotas (user_id, quota) VALUES ($1, $2::int)"
     " ON CONFLICT (user_id) DO UPDATE SET quota = EXCLUDED.quota, updated_at = now()"},
    {"nodes_by_user",
     "SELECT node_id, mac, coalesce(user_id, '') AS user_id," NODE_PLATFORM " AS platform,"
     " coalesce(node_policies, '') AS policies, created_at::text AS created_at,"
     " coalesce(claimed_at::text, '') AS claimed_at,"
     " (SELECT count(*) FROM certificates c WHERE c.node_id = n.node_id) AS certificates"
     " FROM nodes n WHERE user_id = $1 ORDER BY created_at, node_id"},
    {"nodes_by_key",
     "SELECT node_id, mac, coalesce(user_id, '') AS user_id," NODE_PLATFORM " AS platform,"
     " coalesce(node_policies, '') AS policies, created_at::text AS created_at,"
     " coalesce(claimed_at::text, '') AS claimed_at,"
     " (SELECT count(*) FROM certificates c WHERE c.node_id = n.node_id) AS certificates"
     " FROM nodes n WHERE node_id = $1 OR mac = $1 ORDER BY created_at, node_id"},
    {"node_certs", "SELECT serial, not_before::text AS not_before, not_after::text AS not_after,"
                   " issued_at::text AS issued_at, encode(key_sha256, 'hex') AS key_sha256"
                   " FROM certificates WHERE node_id = $1 ORDER BY issued_at"},
    {NULL, NULL},
};

/* Runs again from the start on a retry: every output is set afresh. */
enum db_status db_user_initiate(struct db *db, struct user_initiate *u, const char *candidate,
                                const struct audit_rec *audit)
{
	const struct db_param touch[] = {DB_TEXT(u->user), DB_TEXT(u->mac), DB_TEXT(u->platform),
	                                 DB_INT(u->ttl), DB_PARAMS_END};
	const struct db_col node[] = {DB_COL_TEXT("node_id", u->node_id), DB_COLS_END};
	enum db_status s;

	u->over_quota = u->created = false;
	/* A MAC this user holds already: same node_id, never counted again. */
	s = db_exec(db, "user_node_touch", touch, node);
	if (s == DB_NO_ROWS) {
		const struct db_param lock[] = {DB_TEXT(u->user), DB_PARAMS_END};
		if ((s = db_exec(db, "user_lock", lock, NULL)) < DB_NO_ROWS)
			return s;
		/* Another daemon may have made it while we waited for the lock. */
		s = db_exec(db, "user_node_touch", touch, node);
	}
	if (s == DB_NO_ROWS) {
		const struct db_param quota[] = {DB_TEXT(u->user), DB_INT(u->default_quota),
		                                 DB_PARAMS_END};
		bool room = false;
		const struct db_col cols[] = {DB_COL_BOOL("room", &room), DB_COLS_END};
		if ((s = db_exec(db, "user_quota_room", quota, cols)) < DB_NO_ROWS)
			return s;
		if (!room) {
			u->over_quota = true;
			return DB_NO_ROWS;
		}
		const struct db_param ins[] = {DB_TEXT(candidate), DB_TEXT(u->mac),
		                               DB_TEXT(u->user),   DB_TEXT(u->platform),
		                               DB_INT(u->ttl),     DB_PARAMS_END};
		s = db_exec(db, "user_node_insert", ins, node);
		/* A random 131-bit node_id collided: let the runner try again. */
		if (s == DB_NO_ROWS)
			return DB_SOFT;
		u->created = s == DB_OK;
	}
	if (s < DB_NO_ROWS)
		return s;
	struct audit_rec a = *audit;
	struct db_param p[AUDIT_NPARAMS + 1];
	a.mac = u->mac;
	a.node_id = u->node_id;
	db_audit_params(p, &a);
	p[AUDIT_NPARAMS] = DB_PARAMS_END;
	return db_exec(db, "audit_insert", p, NULL);
}

/* The audit row, then the verify's parameters, as user_verify numbers them. */
static void user_verify_params(struct db_param p[AUDIT_NPARAMS + 13], const struct user_verify *v,
                               const struct audit_rec *a)
{
	db_audit_params(p, a);
	p[11] = DB_TEXT(v->user);
	p[12] = DB_TEXT(v->node_id);
	p[13] = DB_TEXT(v->node_policies);
	p[14] = DB_TEXT(v->serial);
	p[15] = DB_BYTEA(v->key_sha256, 32);
	p[16] = DB_INT(v->not_before);
	p[17] = DB_INT(v->not_after);
	p[18] = DB_TEXT(v->pem);
	p[19] = DB_BOOL(v->supersede);
	p[20] = DB_INT(v->supersede_reason);
	p[21] = DB_TEXT(v->superseded_by);
	p[22] = DB_TEXT(v->profile);
	p[23] = DB_PARAMS_END;
}

enum db_status db_user_verify(struct db *db, struct user_verify *v, const struct audit_rec *a)
{
	struct db_param p[AUDIT_NPARAMS + 13];
	const struct db_col cols[] = {DB_COL_TEXT("mac", v->mac), DB_COLS_END};

	user_verify_params(p, v, a);
	return db_run_exec(db, "user_verify", p, cols);
}

enum db_status db_user_verify_step(struct db *db, struct user_verify *v, const struct audit_rec *a)
{
	struct db_param p[AUDIT_NPARAMS + 13];
	const struct db_col cols[] = {DB_COL_TEXT("mac", v->mac), DB_COLS_END};

	user_verify_params(p, v, a);
	return db_exec(db, "user_verify", p, cols);
}

enum db_status db_user_verify_lock(struct db *db, const char *user, const char *node_id,
                                   char mac[MAC_LEN + 1])
{
	const struct db_param p[] = {DB_TEXT(node_id), DB_TEXT(user), DB_PARAMS_END};
	bool unused = false;
	const struct db_col cols[] = {DB_COL("mac", DBT_TEXT, mac, MAC_LEN + 1, NULL),
	                              DB_COL_BOOL("unused", &unused), DB_COLS_END};
	mac[0] = '\0';
	return db_exec(db, "user_verify_lock", p, cols);
}

enum db_status db_mac_holders(struct db *db, const char *mac, const char *user,
                              const uint8_t *key_sha256, struct mac_holder **out, size_t *n)
{
	struct mac_holder row = {0};
	/* A NULL pointer binds SQL NULL: no certificate is then of "the" key. */
	const struct db_param p[] = {DB_TEXT(mac), DB_TEXT(user), DB_BYTEA(key_sha256, 32),
	                             DB_PARAMS_END};
	const struct db_col cols[] = {
	    DB_COL_TEXT("node_id", row.node_id),
	    DB_COL_TEXT("user_id", row.user_id),
	    DB_COL_BOOL("same_key", &row.same_key),
	    DB_COLS_END,
	};
	void *items = NULL;
	enum db_status s =
	    db_exec_collect(db, "mac_holders", p, cols, &row, sizeof(row), &items, n);

	*out = items;
	return s;
}

enum db_status db_user_set_quota(struct db *db, const char *user, unsigned quota)
{
	const struct db_param p[] = {DB_TEXT(user), DB_INT(quota), DB_PARAMS_END};
	return db_run_exec(db, "user_set_quota", p, NULL);
}

enum db_status db_nodes_find(struct db *db, const char *user, const char *key,
                             struct node_info **out, size_t *n)
{
	struct node_info row = {0};
	const struct db_param p[] = {DB_TEXT(user ? user : key), DB_PARAMS_END};
	const struct db_col cols[] = {
	    DB_COL_TEXT("node_id", row.node_id),
	    DB_COL_TEXT("mac", row.mac),
	    DB_COL_TEXT("user_id", row.user_id),
	    DB_COL_TEXT("platform", row.platform),
	    DB_COL_TEXT("policies", row.policies),
	    DB_COL_TEXT("created_at", row.created_at),
	    DB_COL_TEXT("claimed_at", row.claimed_at),
	    DB_COL_INT("certificates", &row.certificates),
	    DB_COLS_END,
	};
	void *items;
	enum db_status s = db_run_collect(db, user ? "nodes_by_user" : "nodes_by_key", p, cols,
	                                  &row, sizeof(row), &items, n);

	*out = items;
	return s;
}

enum db_status db_node_certs(struct db *db, const char *node_id, struct cert_info **out, size_t *n)
{
	struct cert_info row = {0};
	const struct db_param p[] = {DB_TEXT(node_id), DB_PARAMS_END};
	const struct db_col cols[] = {
	    DB_COL_TEXT("serial", row.serial),         DB_COL_TEXT("not_before", row.not_before),
	    DB_COL_TEXT("not_after", row.not_after),   DB_COL_TEXT("issued_at", row.issued_at),
	    DB_COL_TEXT("key_sha256", row.key_sha256), DB_COLS_END,
	};
	void *items;
	enum db_status s = db_run_collect(db, "node_certs", p, cols, &row, sizeof(row), &items, n);

	*out = items;
	return s;
}
