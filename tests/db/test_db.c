/*
 * Database tests against the fixture's real PostgreSQL: migrations (concurrent and
 * repeated), the schema's own guarantees, and claimctl's CSV import end to end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/claim.h"
#include "db/db.h"
#include "db/db_claims.h"
#include "db/db_users.h"
#include "harness.h"

struct mig {
	const char *url;
	int rc, applied;
	char err[256];
};

static void *migrate_thread(void *arg)
{
	struct mig *m = arg;
	m->rc = db_migrate(m->url, &m->applied, m->err, sizeof(m->err));
	return NULL;
}

static void migrate_concurrent(void)
{
	struct tenv t;
	char *out = NULL;
	REQUIRE(tenv_setup(&t, "migrate_concurrent", NULL));
	/* Start from an empty database: drop what the harness migrated. */
	PQclear(PQexec(t.pg, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"));
	struct mig m[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		m[i] = (struct mig){.url = t.conninfo};
		pthread_create(&th[i], NULL, migrate_thread, &m[i]);
	}
	int total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECKF(m[i].rc == 0, "migrate %d: %s", i, m[i].err);
		total += m[i].applied;
	}
	int embedded = 0;
	for (const struct db_migration *mg = db_migrations; mg->name; mg++)
		embedded++;
	/* Each migration applied by exactly one of the racing runners. */
	CHECKF(total == embedded, "%d applied, %d embedded", total, embedded);
	CHECK(sql_long(&t, "SELECT count(*) FROM schema_migrations") == embedded);
	/* And claimctl migrate on a current schema is a no-op that succeeds. */
	CHECK(t_run(&out, "'%s' -c '%s' migrate", t_bin("claimctl"), t.config) == 0);
	CHECK(out && strstr(out, "0 migration(s) applied"));
	free(out);
	tenv_teardown(&t);
}

/* True when @p sql is refused by the database. */
static bool refused(struct tenv *t, const char *sql)
{
	PGresult *r = PQexec(t->pg, sql);
	bool no = PQresultStatus(r) == PGRES_FATAL_ERROR;
	PQclear(r);
	return no;
}

static void schema_guarantees(void)
{
	struct tenv t;
	REQUIRE(tenv_setup(&t, "schema_guarantees", NULL));
	PGresult *r = PQexec(t.pg, "INSERT INTO audit (event, flow, outcome, reason) VALUES "
	                           "('verify','self','ok','OK')");
	CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
	PQclear(r);
	/* Append-only: no UPDATE, DELETE or TRUNCATE. */
	CHECK(refused(&t, "UPDATE audit SET reason = 'X'"));
	CHECK(refused(&t, "DELETE FROM audit"));
	CHECK(refused(&t, "TRUNCATE audit"));
	/* CHECK constraints on formats. */
	CHECK(refused(&t, "INSERT INTO nodes (node_id, mac) VALUES ('bad id!', '7CDFA1000001')"));
	CHECK(refused(&t, "INSERT INTO nodes (node_id, mac) VALUES ('n1', '7cdfa1000001')"));
	CHECK(refused(&t, "INSERT INTO devices (mac, platform, efuse_key_sealed, efuse_key_tag) "
	                  "VALUES ('7CDFA1000001', 'esp32s3', '\\x00', '\\x00')"));
	/* ... declared as domains on the claim tables (schema 4): still checked on write. */
	CHECK(refused(&t, "INSERT INTO audit (event, flow, outcome, reason) VALUES "
	                  "('claim','self','ok','OK')"));
	CHECK(refused(&t, "INSERT INTO audit (event, flow, outcome, reason, serial) VALUES "
	                  "('verify','self','ok','OK','abc')"));
	CHECK(refused(&t, "INSERT INTO claim_sessions (auth_id, mac, challenge, expires_at, "
	                  "attempts) VALUES ('a1', '7CDFA1000001', 'c', now(), -1)"));
	CHECK(refused(&t, "INSERT INTO claim_sessions (auth_id, mac, challenge, expires_at) "
	                  "VALUES ('a b', '7CDFA1000001', 'c', now())"));
	/* Every table and column is documented. */
	CHECK(sql_long(&t, "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = "
	                   "a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	                   "n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT "
	                   "a.attisdropped AND col_description(c.oid, a.attnum) IS NULL") == 0);
	CHECK(sql_long(&t, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
	                   "relnamespace WHERE nspname = 'public' AND relkind = 'r' AND "
	                   "obj_description(c.oid, 'pg_class') IS NULL") == 0);
	tenv_teardown(&t);
}

/* A database at schema 3 with data in it moves to schema 4 (domains) intact. */
static void migrate_from_3(void)
{
	struct tenv t;
	int applied = 0;
	char err[256];
	REQUIRE(tenv_setup(&t, "migrate_from_3", NULL));
	PQclear(PQexec(t.pg,
	               "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
	               "CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
	               " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"));
	for (const struct db_migration *m = db_migrations; m->name && m->version <= 3; m++) {
		PGresult *r = PQexec(t.pg, m->sql);
		CHECKF(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", m->name,
		       PQresultErrorMessage(r));
		PQclear(r);
		char v[16];
		snprintf(v, sizeof(v), "%d", m->version);
		r = PQexecParams(t.pg,
		                 "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
		                 NULL, (const char *[]){v, m->name}, NULL, NULL, 0);
		CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
		PQclear(r);
	}
	PGresult *r = PQexec(
	    t.pg,
	    "INSERT INTO nodes (node_id, mac) VALUES ('7CDFA1000001', '7CDFA1000001');"
	    "INSERT INTO nodes (node_id, mac, user_id) VALUES ('n2', '7CDFA1000002', 'alice');"
	    "INSERT INTO claim_sessions (auth_id, mac, challenge, expires_at, used)"
	    " VALUES ('a1', '7CDFA1000001', 'c', now(), true);"
	    "INSERT INTO certificates (serial, node_id, key_sha256, not_before, not_after, pem)"
	    " VALUES (repeat('A', 32), '7CDFA1000001', decode(repeat('00', 32), 'hex'), now(),"
	    " now() + interval '1 day', repeat('x', 200));"
	    "INSERT INTO audit (event, flow, outcome, reason, mac) VALUES"
	    " ('verify', 'self', 'ok', 'OK', '7CDFA1000001');"
	    "INSERT INTO mac_lockouts (mac, failures) VALUES ('7CDFA1000002', 2);"
	    /* Platforms as imports stored them before they were canonical. */
	    "INSERT INTO devices (mac, platform, efuse_key_sealed, efuse_key_tag) VALUES"
	    " ('7CDFA1000011', 'esp32-s3', decode(repeat('00', 56), 'hex'),"
	    "  decode(repeat('00', 16), 'hex')),"
	    " ('7CDFA1000012', 'esp32_c3', decode(repeat('00', 56), 'hex'),"
	    "  decode(repeat('01', 16), 'hex'))");
	CHECKF(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	CHECKF(db_migrate(t.conninfo, &applied, err, sizeof(err)) == 0, "%s", err);
	/* Every migration after 3, each once. */
	int after3 = 0;
	for (const struct db_migration *m = db_migrations; m->name; m++)
		after3 += m->version > 3;
	CHECKF(applied == after3, "%d applied, %d after version 3", applied, after3);
	CHECK(
	    sql_long(&t, "SELECT count(*) FROM devices WHERE platform IN ('esp32s3', 'esp32c3')") ==
	    2);
	CHECK(sql_long(&t, "SELECT (SELECT count(*) FROM nodes) + (SELECT count(*) FROM "
	                   "claim_sessions) + (SELECT count(*) FROM certificates) + (SELECT "
	                   "count(*) FROM audit) + (SELECT sum(failures) FROM mac_lockouts)") == 7);
	CHECK(sql_long(&t, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'nodes'::regclass "
	                   "AND attname = 'mac' AND atttypid = 'mac_address'::regtype") == 1);
	CHECK(refused(&t, "INSERT INTO nodes (node_id, mac) VALUES ('n3', '7cdfa1000003')"));
	CHECK(refused(&t, "INSERT INTO certificates (serial, node_id, key_sha256, not_before, "
	                  "not_after, pem) VALUES (repeat('B', 32), 'n2', decode(repeat('00', 32), "
	                  "'hex'), now(), now() + interval '1 day', 'short')"));
	tenv_teardown(&t);
}

static const char *write_csv(struct tenv *t, const char *name, const char *text)
{
	static char path[1024];
	snprintf(path, sizeof(path), "%s/%s", t->dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

#define K1 "000102030405060708090A0B0C0D0E0F"
#define K2 "0F0E0D0C0B0A09080706050403020100"

static int import(struct tenv *t, char **out, const char *flags, const char *file)
{
	return t_run(out, "'%s' -c '%s' devices import %s '%s'", t_bin("claimctl"), t->config,
	             flags, file);
}

static void import_rules(void)
{
	struct tenv t;
	char *out = NULL;
	REQUIRE(tenv_setup(&t, "import_rules", NULL));
	const char *a = write_csv(&t, "a.csv",
	                          "mac,platform,efuse_key\n7CDFA1000001,esp32s3," K1
	                          "\n7cdfa1000002,ESP32C3," K1 "\n");
	CHECK(import(&t, &out, "", a) == 0 && strstr(out, "2 added"));
	free(out);
	/* Idempotent. */
	CHECK(import(&t, &out, "", a) == 0 && strstr(out, "2 unchanged"));
	free(out);
	CHECK(sql_long(&t, "SELECT count(*) FROM devices") == 2);
	/* The key is stored sealed, not in clear. */
	CHECK(
	    sql_long(
	        &t,
	        "SELECT count(*) FROM devices WHERE "
	        "position('\\x000102030405060708090a0b0c0d0e0f'::bytea in efuse_key_sealed) > 0") ==
	    0);
	/* A different key for a known MAC is refused, with the line, and nothing is stored. */
	const char *b = write_csv(&t, "b.csv",
	                          "mac,platform,efuse_key\n7CDFA1000003,esp32s3," K1
	                          "\n7CDFA1000001,esp32s3," K2 "\n");
	CHECK(import(&t, &out, "", b) == 1);
	CHECKF(out && strstr(out, "b.csv:3: 7CDFA1000001: MAC already registered"), "%s", out);
	free(out);
	CHECK(sql_long(&t, "SELECT count(*) FROM devices") == 2);
	/* --replace takes the new key. */
	char *before = sql_value(
	    &t, "SELECT encode(efuse_key_tag, 'hex') FROM devices WHERE mac = '7CDFA1000001'");
	CHECK(import(&t, &out, "--replace", b) == 0 && strstr(out, "1 added, 1 replaced"));
	free(out);
	char *after = sql_value(
	    &t, "SELECT encode(efuse_key_tag, 'hex') FROM devices WHERE mac = '7CDFA1000001'");
	CHECK(before && after && strcmp(before, after) != 0);
	free(before);
	free(after);
	/* A bad row: all or nothing, reported as FILE:LINE: reason. */
	const char *c = write_csv(&t, "c.csv",
	                          "mac,platform,efuse_key\n7CDFA1000010,esp32s3," K1
	                          "\n7CDFA10000,esp32s3," K1 "\n");
	CHECK(import(&t, &out, "", c) == 1);
	CHECKF(out && strstr(out, "c.csv:3: mac:") && strstr(out, "nothing stored"), "%s", out);
	free(out);
	CHECK(sql_long(&t, "SELECT count(*) FROM devices WHERE mac = '7CDFA1000010'") == 0);
	/* --skip-invalid stores the valid rows. */
	CHECK(import(&t, &out, "--skip-invalid", c) == 0 && strstr(out, "1 added"));
	free(out);
	CHECK(sql_long(&t, "SELECT count(*) FROM devices WHERE mac = '7CDFA1000010'") == 1);
	/* The same MAC twice in a file with different keys is a conflict. */
	const char *d = write_csv(&t, "d.csv",
	                          "mac,platform,efuse_key\n7CDFA1000020,esp32s3," K1
	                          "\n7CDFA1000020,esp32s3," K2 "\n");
	CHECK(import(&t, &out, "", d) == 1);
	CHECKF(out && strstr(out, "d.csv:3: 7CDFA1000020: MAC appears again"), "%s", out);
	free(out);
	/* Standard input. */
	CHECK(t_run(&out,
	            "printf 'mac,platform,efuse_key\\n7CDFA1000030,esp32c6,%s\\n' | '%s' -c '%s' "
	            "devices import -",
	            K1, t_bin("claimctl"), t.config) == 0);
	free(out);
	CHECK(sql_long(&t, "SELECT count(*) FROM devices WHERE mac = '7CDFA1000030' AND platform = "
	                   "'esp32c6'") == 1);
	tenv_teardown(&t);
}

static void sessions_gc(void)
{
	struct tenv t;
	char err[256];
	long n = -1;
	REQUIRE(tenv_setup(&t, "sessions_gc", NULL));
	PQclear(PQexec(t.pg,
	               "INSERT INTO claim_sessions (auth_id, mac, challenge, expires_at) VALUES "
	               "('old', '7CDFA1000001', 'c', now() - interval '2 hours'),"
	               "('recent', '7CDFA1000001', 'c', now() - interval '10 minutes'),"
	               "('live', '7CDFA1000001', 'c', now() + interval '5 minutes')"));
	struct db *db = db_connect(t.conninfo, true, err, sizeof(err));
	REQUIRE(db);
	CHECK(db_sessions_gc(db, &n) == DB_OK && n == 1);
	CHECK(sql_long(&t, "SELECT count(*) FROM claim_sessions WHERE auth_id = 'old'") == 0);
	CHECK(sql_long(&t, "SELECT count(*) FROM claim_sessions") == 2);
	db_close(db);
	tenv_teardown(&t);
}

static void audit_async_is_local(void)
{
	struct tenv t;
	char err[256];
	REQUIRE(tenv_setup(&t, "audit_async_is_local", NULL));
	struct db *db = db_connect(t.conninfo, true, err, sizeof(err));
	REQUIRE(db);
	struct audit_rec a = {.event = "initiate",
	                      .flow = "self",
	                      .outcome = "ok",
	                      .reason = "OK",
	                      .mac = "7CDFA1000001",
	                      .remote_addr = "127.0.0.1",
	                      .request_id = "r1"};
	CHECK(db_audit_async(db, &a) == DB_OK);
	CHECK(sql_long(&t, "SELECT count(*) FROM audit WHERE request_id = 'r1' AND event = "
	                   "'initiate'") == 1);
	/* The relaxed commit is for that statement's own transaction only. (The test
	 * server runs with synchronous_commit off, so this session sets it on first.) */
	db_close(db);
	char *v = NULL;
	PGconn *c = PQconnectdb(t.conninfo);
	PQclear(PQexec(c, "SET synchronous_commit = on"));
	PGresult *r = PQexec(c, "WITH s AS (SELECT set_config('synchronous_commit', 'off', true)) "
	                        "INSERT INTO audit (event, flow, outcome, reason) "
	                        "SELECT 'initiate', 'self', 'ok', 'OK' FROM s");
	CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
	PQclear(r);
	r = PQexec(c, "SHOW synchronous_commit");
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	CHECKF(v && strcmp(v, "on") == 0, "synchronous_commit after the statement: %s",
	       v ? v : "?");
	free(v);
	tenv_teardown(&t);
}

/*
 * The transaction runner's retry paths, driven by a real failure inside the database:
 * a trigger on @p table fails the first @p n statements that write it with SQLSTATE
 * @p code ('lost': the server ends the connection instead). The count is a sequence,
 * which a rollback does not undo, so it also tells how many tries the runner made.
 */
static bool fail_writes(struct tenv *t, const char *table, int n, const char *code)
{
	char *sql = NULL;
	bool ok = asprintf(&sql,
	                   "CREATE SEQUENCE t_tries;"
	                   "CREATE FUNCTION t_fail() RETURNS trigger LANGUAGE plpgsql AS $f$"
	                   " BEGIN"
	                   "  IF nextval('t_tries') <= %d THEN"
	                   "   IF '%s' = 'lost' THEN"
	                   "    PERFORM pg_terminate_backend(pg_backend_pid());"
	                   "    PERFORM pg_sleep(5);"
	                   "   ELSE"
	                   "    RAISE EXCEPTION 'forced failure' USING ERRCODE = '%s';"
	                   "   END IF;"
	                   "  END IF;"
	                   "  RETURN NEW;"
	                   " END $f$;"
	                   "CREATE TRIGGER t_fail BEFORE INSERT ON %s"
	                   " FOR EACH ROW EXECUTE FUNCTION t_fail()",
	                   n, code, strcmp(code, "lost") == 0 ? "XX000" : code, table) > 0;
	PGresult *r = ok ? PQexec(t->pg, sql) : NULL;
	ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "trigger: %s\n", r ? PQresultErrorMessage(r) : "out of memory");
	PQclear(r);
	free(sql);
	return ok;
}

/* How many writes the trigger saw: the runner's tries. */
static long tries(struct tenv *t)
{
	return sql_long(t, "SELECT last_value FROM t_tries");
}

static const struct audit_rec runner_row = {.event = "verify",
                                            .flow = "self",
                                            .outcome = "ok",
                                            .reason = "OK",
                                            .mac = "7CDFA1000001",
                                            .request_id = "runner"};

/* One audited write through the runner after @p n failures of kind @p code. */
static void runner_case(const char *name, int n, const char *code, enum db_status want,
                        long want_tries, long want_rows)
{
	struct tenv t;
	char err[256];
	REQUIRE(tenv_setup(&t, name, NULL));
	REQUIRE(fail_writes(&t, "audit", n, code));
	struct db *db = db_connect(t.conninfo, true, err, sizeof(err));
	REQUIRE(db);
	enum db_status s = db_audit(db, &runner_row);
	CHECKF(s == want, "%s: status %d, want %d", name, s, want);
	CHECKF(tries(&t) == want_tries, "%s: %ld tries, want %ld", name, tries(&t), want_tries);
	CHECK(sql_long(&t, "SELECT count(*) FROM audit WHERE request_id = 'runner'") == want_rows);
	/* The connection is usable afterwards, whatever happened to it. */
	struct device_row d;
	CHECK(db_device_get(db, "7CDFA1000001", &d) == DB_NO_ROWS);
	db_close(db);
	tenv_teardown(&t);
}

/* 40001 twice: rolled back and retried, written once. */
static void runner_serialization_failure(void)
{
	runner_case("runner_serialization_failure", 2, "40001", DB_OK, 3, 1);
}

/* 40P01 once: retried, written once. */
static void runner_deadlock(void)
{
	runner_case("runner_deadlock", 1, "40P01", DB_OK, 2, 1);
}

/* The server ends the connection mid-statement: reset, prepared again, retried. */
static void runner_lost_connection(void)
{
	runner_case("runner_lost_connection", 1, "lost", DB_OK, 2, 1);
}

/* Serialization failures on every try: five tries, then busy (503), nothing written. */
static void runner_retries_exhausted(void)
{
	runner_case("runner_retries_exhausted", 1000, "40001", DB_SOFT, 5, 0);
}

/* Any other error is hard at once: no retry. */
static void runner_hard_error(void)
{
	runner_case("runner_hard_error", 1000, "23514", DB_HARD, 1, 0);
}

/* An explicit transaction (the user initiate: several statements) is retried whole:
 * the rolled-back try leaves no node and no audit row behind. */
static void runner_explicit_transaction(void)
{
	struct tenv t;
	char err[256];
	REQUIRE(tenv_setup(&t, "runner_explicit_transaction", NULL));
	REQUIRE(fail_writes(&t, "audit", 1, "40001"));
	struct db *db = db_connect(t.conninfo, true, err, sizeof(err));
	REQUIRE(db);
	struct user_initiate u = {.user = "alice",
	                          .mac = "7CDFA1000009",
	                          .platform = "esp32",
	                          .ttl = 300,
	                          .default_quota = 5};
	struct audit_rec a = {.event = "initiate",
	                      .flow = "user",
	                      .outcome = "ok",
	                      .reason = "OK",
	                      .user_id = "alice",
	                      .request_id = "runner"};
	CHECK(claim_user_initiate_tx(db, &u, &a) == DB_OK);
	CHECK(u.created && strlen(u.node_id) == NODE_ID_RANDOM_LEN);
	CHECK(tries(&t) == 2);
	CHECK(sql_long(&t, "SELECT count(*) FROM nodes WHERE user_id = 'alice'") == 1);
	char *node = sql_value(&t, "SELECT node_id FROM audit WHERE request_id = 'runner'");
	CHECKF(node && strcmp(node, u.node_id) == 0, "audit node_id %s", node ? node : "(none)");
	CHECK(sql_long(&t, "SELECT count(*) FROM audit WHERE request_id = 'runner' AND mac = "
	                   "'7CDFA1000009'") == 1);
	free(node);
	db_close(db);
	tenv_teardown(&t);
}

static const struct t_case cases[] = {
    {"migrate_concurrent", migrate_concurrent},
    {"schema_guarantees", schema_guarantees},
    {"migrate_from_3", migrate_from_3},
    {"import_rules", import_rules},
    {"sessions_gc", sessions_gc},
    {"audit_async_is_local", audit_async_is_local},
    {"runner_serialization_failure", runner_serialization_failure},
    {"runner_deadlock", runner_deadlock},
    {"runner_lost_connection", runner_lost_connection},
    {"runner_retries_exhausted", runner_retries_exhausted},
    {"runner_hard_error", runner_hard_error},
    {"runner_explicit_transaction", runner_explicit_transaction},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
