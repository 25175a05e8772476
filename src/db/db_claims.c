/*
 * Statements for the claim path. Single use is decided by the database, never by
 * process memory: INSERT ... ON CONFLICT ... DO UPDATE ... WHERE NOT used RETURNING,
 * so two daemons racing on one auth_id cannot both succeed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claimd/db_claims.h"
#include "db_internal.h"
#include "claimd/util.h"

#define AUDIT_COLS                                                                                 \
	"event, flow, outcome, reason, mac, node_id, user_id, remote_addr, request_id, serial"

/* $1 auth_id $2 mac $3 challenge $4 expires $5 max_attempts $6 node_id $7 policies
 * $8 serial $9 key_sha256 $10 not_before $11 not_after $12 pem $13 remote $14 request.
 * Data-modifying CTEs always run to completion; only s decides the answer. */
#define SELF_CLAIM_CTES                                                                            \
	"WITH s AS ("                                                                              \
	"  INSERT INTO claim_sessions (auth_id, mac, challenge, expires_at, used)"                 \
	"  VALUES ($1, $2, $3, to_timestamp($4), true)"                                            \
	"  ON CONFLICT (auth_id) DO UPDATE SET used = true"                                        \
	"  WHERE NOT claim_sessions.used AND claim_sessions.attempts < $5::int"                    \
	"  RETURNING 1),"                                                                          \
	" n AS ("                                                                                  \
	"  INSERT INTO nodes (node_id, mac, user_id, node_policies, claimed_at)"                   \
	"  SELECT $6, $2, NULL, $7, now() WHERE EXISTS (SELECT 1 FROM s)"                          \
	"  ON CONFLICT (node_id) DO UPDATE SET updated_at = now(),"                                \
	"   node_policies = coalesce(EXCLUDED.node_policies, nodes.node_policies)"                 \
	"  RETURNING 1),"                                                                          \
	" c AS ("                                                                                  \
	"  INSERT INTO certificates (serial, node_id, key_sha256, not_before, not_after, pem, "    \
	"auth_id)"                                                                                 \
	"  SELECT $8, $6, $9, to_timestamp($10), to_timestamp($11), $12, $1"                       \
	"  WHERE EXISTS (SELECT 1 FROM s) RETURNING 1),"                                           \
	" a AS ("                                                                                  \
	"  INSERT INTO audit (" AUDIT_COLS ")"                                                     \
	"  SELECT 'verify', 'self', 'ok', 'OK', $2, $6, NULL, $13, $14, $8"                        \
	"  WHERE EXISTS (SELECT 1 FROM s) RETURNING 1)"

/* The device $1 with its lockout: the seconds the lock still runs (zero or less: none). */
#define LOCK_SECS       "coalesce(ceil(extract(epoch FROM l.locked_until - now())), 0)::int4"
#define DEVICE_AND_LOCK " FROM devices d LEFT JOIN mac_lockouts l ON l.mac = d.mac WHERE d.mac = $1"

const struct db_stmt db_claims_stmts[] = {
    /* The lock's remaining seconds (zero or less: none) and whether wrong answers are
     * counted come along, so a locked MAC costs no extra query. */
    {"device_get", "SELECT d.platform, d.efuse_key_sealed, " LOCK_SECS
                   ", coalesce(l.failures, 0) > 0" DEVICE_AND_LOCK},
    /* A self-claim initiate reads the device and records its outcome in one statement
     * (one round trip, one transaction), decided in the order claim.c decides it; the
     * error names come in as $5-$7 so the audit says what the client was told. It
     * writes nothing but the audit row, so its commit does not wait for the disk. */
    {"self_initiate",
     "WITH c AS (SELECT set_config('synchronous_commit', 'off', true)),"
     " d AS (SELECT d.platform = $2 AS platform_ok, " LOCK_SECS " AS secs" DEVICE_AND_LOCK "),"
     " o AS (SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM d) THEN $5::text"
     "  WHEN NOT (SELECT platform_ok FROM d) THEN $6::text"
     "  WHEN (SELECT secs FROM d) > 0 THEN $7::text ELSE 'OK' END AS reason),"
     " a AS (INSERT INTO audit (" AUDIT_COLS ")"
     "  SELECT 'initiate', 'self', CASE WHEN o.reason = 'OK' THEN 'ok' ELSE 'refused' END,"
     "  o.reason, $1, NULL, NULL, $3, $4, NULL FROM o, c)"
     " SELECT EXISTS (SELECT 1 FROM d), coalesce((SELECT platform_ok FROM d), false),"
     " coalesce((SELECT secs FROM d), 0)"},
    {"mac_unlock", "DELETE FROM mac_lockouts WHERE mac = $1"},
    {"audit_insert", "INSERT INTO audit (" AUDIT_COLS ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"},
    /* The same, committed without waiting for the WAL flush: set_config(..., true) lasts
     * to the end of this statement's own transaction, so nothing else is affected. */
    {"audit_insert_async", "WITH s AS (SELECT set_config('synchronous_commit', 'off', true))"
                           " INSERT INTO audit (" AUDIT_COLS ")"
                           " SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10 FROM s"},
    /* $1 auth_id $2 mac $3 challenge $4 expires $5 max_attempts $6 node_id $7 policies
     * $8 serial $9 key_sha256 $10 not_before $11 not_after $12 pem $13 remote $14 request */
    {"self_claim_commit", SELF_CLAIM_CTES " SELECT 1 FROM s"},
    /* The same, and a success forgives earlier wrong answers (but not earlier locks).
     * Used only when the lookup saw failures counted: the UPDATE, even of no row,
     * costs the statement a sixth of its time. A wrong answer counted by another
     * daemon between this verify's lookup and its commit is then not forgiven; it
     * only brings that MAC's lock one failure nearer, never lifts one. */
    {"self_claim_commit_forgive",
     SELF_CLAIM_CTES ","
                     " r AS ("
                     "  UPDATE mac_lockouts SET failures = 0, updated_at = now()"
                     "  WHERE mac = $2 AND EXISTS (SELECT 1 FROM s) RETURNING 1)"
                     " SELECT 1 FROM s"},
    /* $1 auth_id $2 mac $3 challenge $4 expires $5 remote $6 request
     * $7 lockout failures $8 first lock seconds $9 longest lock seconds */
    {"session_wrong",
     "WITH s AS ("
     "  INSERT INTO claim_sessions (auth_id, mac, challenge, expires_at, attempts)"
     "  VALUES ($1, $2, $3, to_timestamp($4), 1)"
     "  ON CONFLICT (auth_id) DO UPDATE SET attempts = claim_sessions.attempts + 1"
     "  RETURNING attempts),"
     " l AS ("
     "  INSERT INTO mac_lockouts AS m (mac, failures, lockouts, locked_until)"
     "  VALUES ($2, CASE WHEN 1 >= $7::int THEN 0 ELSE 1 END,"
     "   CASE WHEN 1 >= $7::int THEN 1 ELSE 0 END,"
     "   CASE WHEN 1 >= $7::int THEN now() + make_interval(secs => $8::int) END)"
     "  ON CONFLICT (mac) DO UPDATE SET"
     "   failures = CASE WHEN m.failures + 1 >= $7::int THEN 0 ELSE m.failures + 1 END,"
     "   lockouts = m.lockouts + CASE WHEN m.failures + 1 >= $7::int THEN 1 ELSE 0 END,"
     "   locked_until = CASE WHEN m.failures + 1 >= $7::int THEN now() + make_interval(secs =>"
     "    least($9::float8, $8::float8 * power(2, m.lockouts))) ELSE m.locked_until END,"
     "   updated_at = now()"
     "  RETURNING coalesce(ceil(extract(epoch FROM locked_until - now())), 0)::int AS secs,"
     "   failures = 0 AND locked_until > now() AS just_locked),"
     " a AS ("
     "  INSERT INTO audit (" AUDIT_COLS ")"
     "  VALUES ('verify', 'self', 'refused', 'RESPONSE_WRONG', $2, NULL, NULL, $5, $6, NULL))"
     " SELECT s.attempts, l.secs, l.just_locked FROM s, l"},
    {"session_state", "SELECT attempts, used FROM claim_sessions WHERE auth_id = $1"},
    {"sessions_gc", "DELETE FROM claim_sessions WHERE expires_at < now() - interval '1 hour'"},
    {NULL, NULL},
};

enum db_status db_device_get(struct db *db, const char *mac, struct device_row *out)
{
	const char *p[1] = {mac};
	PGresult *r = NULL;
	/* Binary results: the sealed key arrives as raw bytes, no hex round trip. */
	enum db_status s = db_exec_prepared(db, "device_get", 1, p, NULL, NULL, 1, &r);

	if (s == DB_OK) {
		int plen = PQgetlength(r, 0, 0), klen = PQgetlength(r, 0, 1);
		if (plen < 1 || plen > 32 || klen != SEALED_EFUSE_BYTES ||
		    PQgetlength(r, 0, 2) != 4 || PQgetlength(r, 0, 3) != 1) {
			s = DB_HARD;
		} else {
			memcpy(out->platform, PQgetvalue(r, 0, 0), (size_t)plen);
			out->platform[plen] = '\0';
			memcpy(out->sealed, PQgetvalue(r, 0, 1), SEALED_EFUSE_BYTES);
			const unsigned char *l = (const unsigned char *)PQgetvalue(r, 0, 2);
			int32_t secs = (int32_t)((uint32_t)l[0] << 24 | (uint32_t)l[1] << 16 |
			                         (uint32_t)l[2] << 8 | l[3]);
			out->locked_for = secs > 0 ? (unsigned)secs : 0;
			out->has_failures = PQgetvalue(r, 0, 3)[0] != 0;
		}
	}
	PQclear(r);
	return s;
}

enum db_status db_self_initiate(struct db *db, struct self_initiate *q)
{
	const char *p[7] = {q->mac,         q->platform,     q->remote_addr, q->request_id,
	                    q->why_unknown, q->why_platform, q->why_locked};
	PGresult *r = NULL;
	enum db_status s = db_exec_prepared(db, "self_initiate", 7, p, NULL, NULL, 0, &r);

	if (s == DB_OK) {
		q->found = PQgetvalue(r, 0, 0)[0] == 't';
		q->platform_ok = PQgetvalue(r, 0, 1)[0] == 't';
		int secs = atoi(PQgetvalue(r, 0, 2));
		q->locked_for = secs > 0 ? (unsigned)secs : 0;
	}
	PQclear(r);
	return s;
}

enum db_status db_audit(struct db *db, const struct audit_rec *a)
{
	const char *p[10] = {a->event,   a->flow,    a->outcome,     a->reason,     a->mac,
	                     a->node_id, a->user_id, a->remote_addr, a->request_id, a->serial};
	return db_exec_prepared(db, "audit_insert", 10, p, NULL, NULL, 0, NULL);
}

enum db_status db_audit_async(struct db *db, const struct audit_rec *a)
{
	const char *p[10] = {a->event,   a->flow,    a->outcome,     a->reason,     a->mac,
	                     a->node_id, a->user_id, a->remote_addr, a->request_id, a->serial};
	return db_exec_prepared(db, "audit_insert_async", 10, p, NULL, NULL, 0, NULL);
}

enum db_status db_self_claim_commit(struct db *db, const struct self_claim *c)
{
	char expires[24], maxa[16], nb[24], na[24], fp[2 + 64 + 1];
	const char *p[14];
	PGresult *r = NULL;
	enum db_status s;

	snprintf(expires, sizeof(expires), "%lld", (long long)c->expires);
	snprintf(maxa, sizeof(maxa), "%u", c->max_attempts);
	snprintf(nb, sizeof(nb), "%lld", (long long)c->not_before);
	snprintf(na, sizeof(na), "%lld", (long long)c->not_after);
	fp[0] = '\\';
	fp[1] = 'x';
	hex_encode_lower(fp + 2, c->key_sha256, 32);
	p[0] = c->auth_id;
	p[1] = c->mac;
	p[2] = c->challenge;
	p[3] = expires;
	p[4] = maxa;
	p[5] = c->node_id;
	p[6] = c->node_policies;
	p[7] = c->serial;
	p[8] = fp;
	p[9] = nb;
	p[10] = na;
	p[11] = c->pem;
	p[12] = c->remote_addr;
	p[13] = c->request_id;
	s = db_exec_prepared(db, c->forgive ? "self_claim_commit_forgive" : "self_claim_commit", 14,
	                     p, NULL, NULL, 0, &r);
	PQclear(r);
	return s;
}

enum db_status db_session_wrong(struct db *db, const struct self_claim *c,
                                const struct lockout_policy *lp, struct wrong_result *out)
{
	char expires[24], n[16], first[16], longest[16];
	const char *p[9] = {c->auth_id,    c->mac, c->challenge, expires, c->remote_addr,
	                    c->request_id, n,      first,        longest};
	PGresult *r = NULL;
	enum db_status s;

	snprintf(expires, sizeof(expires), "%lld", (long long)c->expires);
	/* Lockout off: a threshold no count reaches. */
	snprintf(n, sizeof(n), "%u", lp->failures ? lp->failures : 2147483647u);
	snprintf(first, sizeof(first), "%u", lp->seconds);
	snprintf(longest, sizeof(longest), "%u", lp->max_seconds);
	s = db_exec_prepared(db, "session_wrong", 9, p, NULL, NULL, 0, &r);
	if (s == DB_OK) {
		out->attempts = (unsigned)atoi(PQgetvalue(r, 0, 0));
		int secs = atoi(PQgetvalue(r, 0, 1));
		out->locked_for = secs > 0 ? (unsigned)secs : 0;
		out->just_locked = PQgetvalue(r, 0, 2)[0] == 't';
	}
	PQclear(r);
	return s;
}

enum db_status db_mac_unlock(struct db *db, const char *mac)
{
	const char *p[1] = {mac};
	return db_exec_prepared(db, "mac_unlock", 1, p, NULL, NULL, 0, NULL);
}

enum db_status db_session_state(struct db *db, const char *auth_id, unsigned *attempts, bool *used)
{
	const char *p[1] = {auth_id};
	PGresult *r = NULL;
	enum db_status s = db_exec_prepared(db, "session_state", 1, p, NULL, NULL, 0, &r);
	if (s == DB_OK) {
		*attempts = (unsigned)atoi(PQgetvalue(r, 0, 0));
		*used = PQgetvalue(r, 0, 1)[0] == 't';
	}
	PQclear(r);
	return s;
}

enum db_status db_sessions_gc(struct db *db, long *n)
{
	PGresult *r = NULL;
	enum db_status s = db_exec_prepared(db, "sessions_gc", 0, NULL, NULL, NULL, 0, &r);
	*n = s >= DB_NO_ROWS ? atol(PQcmdTuples(r)) : 0;
	PQclear(r);
	return s;
}
