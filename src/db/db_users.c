/*
 * Statements of the user flow. The quota is exact across daemons because the count and
 * the insert run under pg_advisory_xact_lock on the user; a (user, MAC) pair has one
 * node_id because the unique index nodes_user_mac says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "claimd/db_users.h"
#include "claimd/util.h"

#define AUDIT_COLS                                                                                 \
	"event, flow, outcome, reason, mac, node_id, user_id, remote_addr, request_id, serial"

const struct db_stmt db_users_stmts[] = {
    /* $1 user $2 mac $3 platform $4 ttl seconds */
    {"user_node_touch",
     "UPDATE nodes SET pending_until = now() + make_interval(secs => $4::int), platform = $3,"
     " updated_at = now() WHERE user_id = $1 AND mac = $2 RETURNING node_id"},
    {"user_lock", "SELECT pg_advisory_xact_lock(hashtextextended('claimd user ' || $1, 0))"},
    /* $1 user $2 default quota: true when one more node is allowed */
    {"user_quota_room",
     "SELECT coalesce((SELECT quota FROM user_quotas WHERE user_id = $1), $2::int) = 0"
     " OR (SELECT count(*) FROM nodes WHERE user_id = $1) <"
     "  coalesce((SELECT quota FROM user_quotas WHERE user_id = $1), $2::int)"},
    /* $1 node_id $2 mac $3 user $4 platform $5 ttl */
    {"user_node_insert", "INSERT INTO nodes (node_id, mac, user_id, platform, pending_until)"
                         " VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::int))"
                         " ON CONFLICT DO NOTHING RETURNING node_id"},
    /* $1 user $2 node_id $3 policies $4 serial $5 key_sha256 $6 nb $7 na $8 pem
     * $9 remote $10 request */
    {"user_verify",
     "WITH n AS ("
     "  UPDATE nodes SET pending_until = NULL, updated_at = now(),"
     "   claimed_at = coalesce(claimed_at, now()),"
     "   node_policies = coalesce($3, node_policies)"
     "  WHERE node_id = $2 AND user_id = $1 AND pending_until > now()"
     "  RETURNING node_id, mac),"
     " c AS ("
     "  INSERT INTO certificates (serial, node_id, key_sha256, not_before, not_after, pem)"
     "  SELECT $4, node_id, $5, to_timestamp($6), to_timestamp($7), $8 FROM n RETURNING 1),"
     " a AS ("
     "  INSERT INTO audit (" AUDIT_COLS ")"
     "  SELECT 'verify', 'user', 'ok', 'OK', mac, node_id, $1, $9, $10, $4 FROM n"
     "  RETURNING 1)"
     " SELECT mac FROM n"},
    {"user_set_quota",
     "INSERT INTO user_quotas (user_id, quota) VALUES ($1, $2::int)"
     " ON CONFLICT (user_id) DO UPDATE SET quota = EXCLUDED.quota, updated_at = now()"},
    {"nodes_by_user",
     "SELECT node_id, mac, coalesce(user_id, ''), coalesce(platform, ''),"
     " coalesce(node_policies, ''), created_at::text, coalesce(claimed_at::text, ''),"
     " (SELECT count(*) FROM certificates c WHERE c.node_id = n.node_id)"
     " FROM nodes n WHERE user_id = $1 ORDER BY created_at, node_id"},
    {"nodes_by_key",
     "SELECT node_id, mac, coalesce(user_id, ''), coalesce(platform, ''),"
     " coalesce(node_policies, ''), created_at::text, coalesce(claimed_at::text, ''),"
     " (SELECT count(*) FROM certificates c WHERE c.node_id = n.node_id)"
     " FROM nodes n WHERE node_id = $1 OR mac = $1 ORDER BY created_at, node_id"},
    {"node_certs",
     "SELECT serial, not_before::text, not_after::text, issued_at::text,"
     " encode(key_sha256, 'hex') FROM certificates WHERE node_id = $1 ORDER BY issued_at"},
    {NULL, NULL},
};

enum db_status db_user_initiate(struct db *db, void *arg)
{
	struct user_initiate *u = arg;
	char ttl[16], quota[16];
	const char *touch[4] = {u->user, u->mac, u->platform, ttl};
	PGresult *r = NULL;
	enum db_status s;

	snprintf(ttl, sizeof(ttl), "%u", u->ttl);
	snprintf(quota, sizeof(quota), "%u", u->default_quota);
	u->over_quota = u->created = false;
	/* A MAC this user holds already: same node_id, never counted again. */
	s = db_exec_prepared(db, "user_node_touch", 4, touch, NULL, NULL, 0, &r);
	if (s == DB_NO_ROWS) {
		PQclear(r);
		r = NULL;
		const char *lock[1] = {u->user};
		if ((s = db_exec_prepared(db, "user_lock", 1, lock, NULL, NULL, 0, NULL)) < DB_OK)
			return s < DB_NO_ROWS ? s : DB_HARD;
		/* Another daemon may have made it while we waited for the lock. */
		s = db_exec_prepared(db, "user_node_touch", 4, touch, NULL, NULL, 0, &r);
	}
	if (s < DB_NO_ROWS)
		return s;
	if (s == DB_NO_ROWS) {
		PQclear(r);
		r = NULL;
		const char *room[2] = {u->user, quota};
		s = db_exec_prepared(db, "user_quota_room", 2, room, NULL, NULL, 0, &r);
		if (s < DB_NO_ROWS)
			return s;
		if (PQgetvalue(r, 0, 0)[0] != 't') {
			PQclear(r);
			u->over_quota = true;
			return DB_NO_ROWS;
		}
		PQclear(r);
		r = NULL;
		const char *ins[5] = {u->new_node_id, u->mac, u->user, u->platform, ttl};
		s = db_exec_prepared(db, "user_node_insert", 5, ins, NULL, NULL, 0, &r);
		if (s == DB_NO_ROWS) {
			/* A random 128-bit node_id collided: let the runner try again. */
			PQclear(r);
			return DB_SOFT;
		}
		if (s < DB_NO_ROWS)
			return s;
		u->created = true;
	}
	snprintf(u->node_id, sizeof(u->node_id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	const char *a[10] = {"initiate", "user",  "ok",           "OK",          u->mac,
	                     u->node_id, u->user, u->remote_addr, u->request_id, NULL};
	return db_exec_prepared(db, "audit_insert", 10, a, NULL, NULL, 0, NULL);
}

enum db_status db_user_verify(struct db *db, void *arg)
{
	struct user_verify *v = arg;
	char nb[24], na[24], fp[2 + 64 + 1];
	PGresult *r = NULL;
	enum db_status s;

	snprintf(nb, sizeof(nb), "%lld", (long long)v->not_before);
	snprintf(na, sizeof(na), "%lld", (long long)v->not_after);
	fp[0] = '\\';
	fp[1] = 'x';
	hex_encode_lower(fp + 2, v->key_sha256, 32);
	const char *p[10] = {v->user, v->node_id, v->node_policies, v->serial,      fp,
	                     nb,      na,         v->pem,           v->remote_addr, v->request_id};
	s = db_exec_prepared(db, "user_verify", 10, p, NULL, NULL, 0, &r);
	if (s == DB_OK)
		snprintf(v->mac, sizeof(v->mac), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return s;
}

enum db_status db_user_set_quota(struct db *db, const char *user, unsigned quota)
{
	char q[16];
	snprintf(q, sizeof(q), "%u", quota);
	const char *p[2] = {user, q};
	return db_exec_prepared(db, "user_set_quota", 2, p, NULL, NULL, 0, NULL);
}

enum db_status db_nodes_find(struct db *db, const char *user, const char *key,
                             void (*fn)(void *, const struct node_info *), void *arg)
{
	const char *p[1] = {user ? user : key};
	PGresult *r = NULL;
	enum db_status s =
	    db_exec_prepared(db, user ? "nodes_by_user" : "nodes_by_key", 1, p, NULL, NULL, 0, &r);
	for (int i = 0; s == DB_OK && i < PQntuples(r); i++) {
		struct node_info n = {
		    PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),       PQgetvalue(r, i, 2),
		    PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),       PQgetvalue(r, i, 5),
		    PQgetvalue(r, i, 6), atol(PQgetvalue(r, i, 7)),
		};
		fn(arg, &n);
	}
	PQclear(r);
	return s;
}

enum db_status db_node_certs(struct db *db, const char *node_id,
                             void (*fn)(void *, const struct cert_info *), void *arg)
{
	const char *p[1] = {node_id};
	PGresult *r = NULL;
	enum db_status s = db_exec_prepared(db, "node_certs", 1, p, NULL, NULL, 0, &r);
	for (int i = 0; s == DB_OK && i < PQntuples(r); i++) {
		struct cert_info c = {PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
		                      PQgetvalue(r, i, 3), PQgetvalue(r, i, 4)};
		fn(arg, &c);
	}
	PQclear(r);
	return s;
}
