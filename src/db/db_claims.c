/*
 * Statements for the claim path. Single use is decided by the database, never by
 * process memory: INSERT ... ON CONFLICT ... DO UPDATE ... WHERE NOT used RETURNING,
 * so two daemons racing on one auth_id cannot both succeed. The statements report
 * facts; which refusal a fact means, and what the audit row says, is claim.c's call.
 */
#include "db/db_claims.h"

#include "db_internal.h"

/* $1-$11 the audit row (db_audit_params), then $12 auth_id $13 mac $14 challenge
 * $15 expires $16 max_attempts $17 node_id $18 policies $19 serial $20 key_sha256
 * $21 not_before $22 not_after $23 pem $24 supersede $25 its reason code $26 by whom
 * $27 the sealed eFuse key the response was checked with, in the order
 * self_claim_params() binds them. g reads, in the statement that spends the session,
 * whether the device still has that key and whether its MAC is locked now: the session
 * is spent only when it has and is not. g takes no row lock, and needs none: devices
 * are written only by the import, whose --replace changes a key and nothing a claim
 * writes, and mac_lockouts by wrong answers, unlocks and forgiving, none of which
 * reads what a claim writes. A write committed while this statement runs is ordered
 * after the claim, which was right for the key and the lock state this statement's
 * snapshot holds (the writer then waits for no claim). So a claim may still commit
 * just after a --replace returned: an operator replacing a leaked key revokes the
 * node's certificates after it (docs/operations.md). With $24, o supersedes the node's
 * earlier certificates in the statement that records the new one (which o cannot see),
 * but only those this statement's snapshot holds: a claim of the same node that
 * committed after that snapshot would keep its certificate valid. Such claims meet at
 * the node's row in n, where the later waits for the earlier's commit; n then finds the
 * row changed since g read it (another xmin, or a row where g saw none) and calls
 * claimd_node_changed() (schema 11), which fails the statement with SQLSTATE 40001.
 * Nothing is kept, and db_run() runs the statement again, after its backoff, with a
 * snapshot that holds the other claim. o reads n, so that PostgreSQL runs n first: the
 * node's row is locked before any certificate row, in the order node_release() takes
 * them (the other order could deadlock with a release). Data-modifying CTEs always run
 * to completion; only s decides the answer. */
#define SELF_CLAIM_CTES                                                                            \
	"WITH g AS (SELECT EXISTS (SELECT 1 FROM devices"                                          \
	"   WHERE mac = $13 AND efuse_key_sealed = $27) AS same_key,"                              \
	"  coalesce(ceil(extract(epoch FROM l.locked_until - now())), 0)::int4 AS lock_secs,"      \
	"  coalesce(l.failures, 0) > 0 AS counted,"                                                \
	"  (SELECT xmin::text FROM nodes WHERE node_id = $17) AS node_xmin"                        \
	"  FROM (SELECT) o LEFT JOIN mac_lockouts l ON l.mac = $13),"                              \
	" s AS ("                                                                                  \
	"  INSERT INTO claim_sessions (auth_id, mac, challenge, expires_at, used)"                 \
	"  SELECT $12, $13, $14, to_timestamp($15), true FROM g"                                   \
	"  WHERE g.same_key AND g.lock_secs <= 0"                                                  \
	"  ON CONFLICT (auth_id) DO UPDATE SET used = true"                                        \
	"  WHERE NOT claim_sessions.used AND claim_sessions.attempts < $16::int"                   \
	"  RETURNING 1),"                                                                          \
	" n AS ("                                                                                  \
	"  INSERT INTO nodes (node_id, mac, user_id, node_policies, claimed_at)"                   \
	"  SELECT $17, $13, NULL, $18, now() WHERE EXISTS (SELECT 1 FROM s)"                       \
	"  ON CONFLICT (node_id) DO UPDATE SET released_at = NULL,"                                \
	"   updated_at = CASE WHEN $24::bool"                                                      \
	"    AND nodes.xmin::text IS DISTINCT FROM (SELECT node_xmin FROM g)"                      \
	"    THEN claimd_node_changed() ELSE now() END,"                                           \
	"   node_policies = coalesce(EXCLUDED.node_policies, nodes.node_policies)"                 \
	"  RETURNING 1),"                                                                          \
	" o AS ("                                                                                  \
	"  UPDATE certificates SET revoked_at = now(), revocation_reason = $25, revoked_by = $26"  \
	"  WHERE node_id = $17 AND revoked_at IS NULL AND $24::bool"                               \
	"  AND EXISTS (SELECT 1 FROM n) RETURNING 1),"                                             \
	" c AS ("                                                                                  \
	"  INSERT INTO certificates (serial, node_id, key_sha256, not_before, not_after, pem, "    \
	"auth_id, node_policies)"                                                                  \
	"  SELECT $19, $17, $20, to_timestamp($21), to_timestamp($22), $23, $12,"                  \
	"   coalesce($18, 'mqtt')"                                                                 \
	"  WHERE EXISTS (SELECT 1 FROM s) RETURNING 1),"                                           \
	" a AS ("                                                                                  \
	"  INSERT INTO audit (" AUDIT_COLS ")"                                                     \
	"  SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11"                                    \
	"  WHERE EXISTS (SELECT 1 FROM s) RETURNING 1)"

/* What the commit found: whether it spent the session, and g's facts. */
#define SELF_CLAIM_FACTS                                                                           \
	"SELECT EXISTS (SELECT 1 FROM s) AS spent, same_key, lock_secs, counted FROM g"

/* The device $1 with its lockout: the seconds the lock still runs (zero or less: none). */
#define LOCK_SECS       "coalesce(ceil(extract(epoch FROM l.locked_until - now())), 0)::int4"
#define DEVICE_AND_LOCK " FROM devices d LEFT JOIN mac_lockouts l ON l.mac = d.mac WHERE d.mac = $1"

const struct db_stmt db_claims_stmts[] = {
    /* The lock's remaining seconds and whether wrong answers are counted come along,
     * so a locked MAC costs no extra query. */
    {"device_get", "SELECT d.platform, d.efuse_key_sealed AS sealed, " LOCK_SECS " AS lock_secs,"
                   " coalesce(l.failures, 0) > 0 AS has_failures" DEVICE_AND_LOCK},
    /* $1-$11 the audit row, but $3 and $4 are the caller's outcome and reason for every
     * combination of the facts (text[8], indexed as DEVICE_FACT_COMBINATIONS says);
     * $12 mac $13 platform. The statement only indexes the caller's decision by the
     * facts it read; it writes nothing but the row, so it does not wait for the disk. */
    {"self_initiate",
     "WITH c AS (SELECT set_config('synchronous_commit', 'off', true)),"
     " d AS (SELECT d.platform = $13 AS platform_ok, " LOCK_SECS " AS secs,"
     "  d.efuse_key_sealed AS sealed, coalesce(l.failures, 0) > 0 AS has_failures"
     "  FROM devices d LEFT JOIN mac_lockouts l ON l.mac = d.mac WHERE d.mac = $12),"
     " f AS (SELECT EXISTS (SELECT 1 FROM d) AS found,"
     "  coalesce((SELECT platform_ok FROM d), false) AS platform_ok,"
     "  coalesce((SELECT secs FROM d), 0) AS lock_secs, (SELECT sealed FROM d) AS sealed,"
     "  coalesce((SELECT has_failures FROM d), false) AS has_failures),"
     " i AS (SELECT 1 + 4 * found::int + 2 * platform_ok::int + (lock_secs > 0)::int AS n"
     "  FROM f),"
     " a AS (INSERT INTO audit (" AUDIT_COLS ")"
     "  SELECT $1, $2, ($3::text[])[i.n], ($4::text[])[i.n], $5, $6, $7, $8, $9, $10, $11"
     "  FROM i, c)"
     " SELECT found, platform_ok, lock_secs, sealed, has_failures FROM f"},
    {"mac_unlock", "DELETE FROM mac_lockouts WHERE mac = $1"},
    {"mac_forgive", "UPDATE mac_lockouts SET failures = 0, updated_at = now()"
                    " WHERE mac = $1 AND failures > 0"},
    {"self_claim_commit", SELF_CLAIM_CTES " " SELF_CLAIM_FACTS},
    /* The same, and a success forgives earlier wrong answers (but not earlier locks).
     * Used only when the lookup (or the initiate's memo) saw failures counted: the
     * UPDATE, even of no row, costs the statement a sixth of its time. Wrong answers
     * counted after that read and before this statement began are reported by g
     * (counted) and forgiven by mac_forgive, a statement of their own. One committed
     * while this statement runs is forgiven too when the MAC's lockout row existed as
     * the statement began (the UPDATE reaches the row's newest version), and otherwise
     * not: it only brings that MAC's lock one failure nearer, never lifts one. */
    {"self_claim_commit_forgive",
     SELF_CLAIM_CTES ","
                     " r AS ("
                     "  UPDATE mac_lockouts SET failures = 0, updated_at = now()"
                     "  WHERE mac = $13 AND EXISTS (SELECT 1 FROM s) RETURNING 1)"
                     " " SELF_CLAIM_FACTS},
    /* $1-$11 the audit row, then $12 auth_id $13 mac $14 challenge $15 expires
     * $16 failures that lock $17 first lock seconds $18 longest lock seconds */
    {"session_wrong",
     "WITH s AS ("
     "  INSERT INTO claim_sessions (auth_id, mac, challenge, expires_at, attempts)"
     "  VALUES ($12, $13, $14, to_timestamp($15), 1)"
     "  ON CONFLICT (auth_id) DO UPDATE SET attempts = claim_sessions.attempts + 1"
     "  RETURNING attempts),"
     " l AS ("
     "  INSERT INTO mac_lockouts AS m (mac, failures, lockouts, locked_until)"
     "  VALUES ($13, CASE WHEN 1 >= $16::int THEN 0 ELSE 1 END,"
     "   CASE WHEN 1 >= $16::int THEN 1 ELSE 0 END,"
     "   CASE WHEN 1 >= $16::int THEN now() + make_interval(secs => $17::int) END)"
     "  ON CONFLICT (mac) DO UPDATE SET"
     "   failures = CASE WHEN m.failures + 1 >= $16::int THEN 0 ELSE m.failures + 1 END,"
     "   lockouts = m.lockouts + CASE WHEN m.failures + 1 >= $16::int THEN 1 ELSE 0 END,"
     "   locked_until = CASE WHEN m.failures + 1 >= $16::int THEN now() + make_interval(secs =>"
     "    least($18::float8, $17::float8 * power(2, m.lockouts))) ELSE m.locked_until END,"
     "   updated_at = now()"
     "  RETURNING coalesce(ceil(extract(epoch FROM locked_until - now())), 0)::int AS secs,"
     "   failures = 0 AND locked_until > now() AS just_locked),"
     " a AS ("
     "  INSERT INTO audit (" AUDIT_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11))"
     " SELECT s.attempts, l.secs AS lock_secs, l.just_locked FROM s, l"},
    {"session_state", "SELECT attempts, used FROM claim_sessions WHERE auth_id = $1"},
    {"sessions_gc", "WITH d AS (DELETE FROM claim_sessions"
                    " WHERE expires_at < now() - interval '1 hour' RETURNING 1)"
                    " SELECT count(*) AS deleted FROM d"},
    {NULL, NULL},
};

static unsigned positive(int64_t secs)
{
	return secs > 0 ? (unsigned)secs : 0;
}

enum db_status db_device_get(struct db *db, const char *mac, struct device_row *out)
{
	const struct db_param p[] = {DB_TEXT(mac), DB_PARAMS_END};
	int64_t secs = 0;
	const struct db_col cols[] = {
	    DB_COL_TEXT("platform", out->platform),
	    DB_COL_BYTEA("sealed", out->sealed),
	    DB_COL_INT("lock_secs", &secs),
	    DB_COL_BOOL("has_failures", &out->has_failures),
	    DB_COLS_END,
	};
	enum db_status s = db_run_exec(db, "device_get", p, cols);

	out->locked_for = s == DB_OK ? positive(secs) : 0;
	return s;
}

/* "{a,b,...}": @p n names (upper-case letters, digits and '_' only) as a text[]. */
static bool name_array(char *out, size_t outsz, const char *const *names, size_t n)
{
	size_t len = 0;
	int w;

	for (size_t i = 0; i < n; i++) {
		w = snprintf(out + len, outsz - len, "%c%s", i ? ',' : '{', names[i]);
		if (w < 0 || (size_t)w >= outsz - len)
			return false;
		len += (size_t)w;
	}
	w = snprintf(out + len, outsz - len, "}");
	return w == 1;
}

enum db_status db_self_initiate(struct db *db, const char *mac, const char *platform,
                                const struct audit_rec *a,
                                const char *const outcome[DEVICE_FACT_COMBINATIONS],
                                const char *const reason[DEVICE_FACT_COMBINATIONS],
                                struct device_facts *out)
{
	char outcomes[DEVICE_FACT_COMBINATIONS * 12], reasons[DEVICE_FACT_COMBINATIONS * 66];
	struct db_param p[AUDIT_NPARAMS + 3];
	int64_t secs = 0;
	bool no_key = true;
	const struct db_col cols[] = {DB_COL_BOOL("found", &out->found),
	                              DB_COL_BOOL("platform_ok", &out->platform_ok),
	                              DB_COL_INT("lock_secs", &secs),
	                              DB_COL_BYTEA_NULL("sealed", out->sealed, &no_key),
	                              DB_COL_BOOL("has_failures", &out->has_failures),
	                              DB_COLS_END};
	enum db_status s;

	if (!name_array(outcomes, sizeof(outcomes), outcome, DEVICE_FACT_COMBINATIONS) ||
	    !name_array(reasons, sizeof(reasons), reason, DEVICE_FACT_COMBINATIONS))
		return DB_HARD;
	db_audit_params(p, a);
	p[2] = DB_TEXT(outcomes);
	p[3] = DB_TEXT(reasons);
	p[11] = DB_TEXT(mac);
	p[12] = DB_TEXT(platform);
	p[13] = DB_PARAMS_END;
	s = db_run_exec(db, "self_initiate", p, cols);
	out->locked_for = s == DB_OK ? positive(secs) : 0;
	if (s == DB_OK && out->found && no_key)
		return DB_HARD; /* devices.efuse_key_sealed is NOT NULL */
	return s;
}

/* The audit row, then the session's parameters, as SELF_CLAIM_CTES numbers them. */
static void self_claim_params(struct db_param p[AUDIT_NPARAMS + 17], const struct self_claim *c,
                              const struct audit_rec *a)
{
	db_audit_params(p, a);
	p[11] = DB_TEXT(c->auth_id);
	p[12] = DB_TEXT(c->mac);
	p[13] = DB_TEXT(c->challenge);
	p[14] = DB_INT(c->expires);
	p[15] = DB_INT(c->max_attempts);
	p[16] = DB_TEXT(c->node_id);
	p[17] = DB_TEXT(c->node_policies);
	p[18] = DB_TEXT(c->serial);
	p[19] = DB_BYTEA(c->key_sha256, 32);
	p[20] = DB_INT(c->not_before);
	p[21] = DB_INT(c->not_after);
	p[22] = DB_TEXT(c->pem);
	p[23] = DB_BOOL(c->supersede);
	p[24] = DB_INT(c->supersede_reason);
	p[25] = DB_TEXT(c->superseded_by);
	p[26] = DB_BYTEA(c->sealed, SEALED_EFUSE_BYTES);
	p[27] = DB_PARAMS_END;
}

enum db_status db_self_claim_commit(struct db *db, const struct self_claim *c,
                                    const struct audit_rec *a, struct commit_facts *out)
{
	struct db_param p[AUDIT_NPARAMS + 17];
	int64_t secs = 0;
	const struct db_col cols[] = {
	    DB_COL_BOOL("spent", &out->spent), DB_COL_BOOL("same_key", &out->same_key),
	    DB_COL_INT("lock_secs", &secs), DB_COL_BOOL("counted", &out->counted), DB_COLS_END};
	enum db_status s;

	*out = (struct commit_facts){0};
	self_claim_params(p, c, a);
	s = db_run_exec(db, c->forgive ? "self_claim_commit_forgive" : "self_claim_commit", p,
	                cols);
	if (s == DB_NO_ROWS)
		return DB_HARD; /* the statement always returns its one row */
	if (s != DB_OK)
		*out = (struct commit_facts){0};
	else
		out->locked_for = positive(secs);
	return s;
}

enum db_status db_session_wrong(struct db *db, const struct self_claim *c,
                                const struct lockout_policy *lp, const struct audit_rec *a,
                                struct wrong_result *out)
{
	struct db_param p[AUDIT_NPARAMS + 8];
	int64_t attempts = 0, secs = 0;
	const struct db_col cols[] = {
	    DB_COL_INT("attempts", &attempts),
	    DB_COL_INT("lock_secs", &secs),
	    DB_COL_BOOL("just_locked", &out->just_locked),
	    DB_COLS_END,
	};
	enum db_status s;

	db_audit_params(p, a);
	p[11] = DB_TEXT(c->auth_id);
	p[12] = DB_TEXT(c->mac);
	p[13] = DB_TEXT(c->challenge);
	p[14] = DB_INT(c->expires);
	/* Lockout off: a threshold no count reaches. */
	p[15] = DB_INT(lp->failures ? lp->failures : INT32_MAX);
	p[16] = DB_INT(lp->seconds);
	p[17] = DB_INT(lp->max_seconds);
	p[18] = DB_PARAMS_END;
	s = db_run_exec(db, "session_wrong", p, cols);
	out->attempts = s == DB_OK ? (unsigned)attempts : 0;
	out->locked_for = s == DB_OK ? positive(secs) : 0;
	return s;
}

enum db_status db_mac_unlock(struct db *db, const char *mac)
{
	const struct db_param p[] = {DB_TEXT(mac), DB_PARAMS_END};
	return db_run_exec(db, "mac_unlock", p, NULL);
}

enum db_status db_mac_forgive(struct db *db, const char *mac)
{
	const struct db_param p[] = {DB_TEXT(mac), DB_PARAMS_END};
	return db_run_exec(db, "mac_forgive", p, NULL);
}

enum db_status db_session_state(struct db *db, const char *auth_id, unsigned *attempts, bool *used)
{
	const struct db_param p[] = {DB_TEXT(auth_id), DB_PARAMS_END};
	int64_t n = 0;
	const struct db_col cols[] = {DB_COL_INT("attempts", &n), DB_COL_BOOL("used", used),
	                              DB_COLS_END};
	enum db_status s = db_run_exec(db, "session_state", p, cols);

	*attempts = s == DB_OK ? (unsigned)n : 0;
	return s;
}

enum db_status db_sessions_gc(struct db *db, long *n)
{
	int64_t deleted = 0;
	const struct db_col cols[] = {DB_COL_INT("deleted", &deleted), DB_COLS_END};
	enum db_status s = db_run_exec(db, "sessions_gc", NULL, cols);

	*n = s == DB_OK ? (long)deleted : 0;
	return s;
}
