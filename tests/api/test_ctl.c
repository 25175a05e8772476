/*
 * The operator's side against a real daemon and database: every claimctl command's
 * --help, devices list/show, nodes show of a self-claimed node, claimd -t with and
 * without a database, the messages for missing files, the import's progress on a
 * terminal, and the JSON log (request ids from trusted proxies, health probes at debug).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "lib/util.h"
#include "harness.h"

/* Runs claimctl with @p args on the case's config; exit status, output in *@p out. */
static int ctl(struct fx *f, char **out, const char *args)
{
	return t_run(out, "'%s' -c '%s' %s 2>&1", t_bin("claimctl"), f->t.config, args);
}

static bool self_claim(struct fx *f, const char *mac, const char *platform)
{
	struct sim_device dv = device(mac, platform, "ec");
	struct sim_result res;
	int rc = sim_self_claim(&f->d.url, &dv, NULL, f->t.root, &res);
	if (rc != 0)
		fprintf(stderr, "self claim: %s\n", res.err);
	free(res.certificate);
	EVP_PKEY_free(dv.key);
	return rc == 0;
}

/* Every command and subcommand: --help and -h answer 0 with their own usage, with no
 * config file, no database and whatever else is on the line. */
static void help_everywhere(void)
{
	static const struct {
		const char *args, *want;
	} cmds[] = {
	    {"migrate", "claimctl [-c FILE] migrate"},
	    {"devices import", "devices import [--replace] [--skip-invalid] FILE.csv|-"},
	    {"devices import x.csv", "devices import [--replace]"},
	    {"devices list", "devices list [--platform P] [--claimed|--unclaimed] [--json]"},
	    {"devices show", "devices show MAC"},
	    {"devices unlock", "devices unlock MAC"},
	    {"devices", "devices unlock MAC"},
	    {"users quota", "users quota USER N"},
	    {"users", "users quota USER N"},
	    {"nodes list", "nodes list --user USER"},
	    {"nodes show", "nodes show NODE_ID|MAC"},
	    {"nodes release", "nodes release NODE_ID"},
	    {"nodes export", "nodes export [--user USER]"},
	    {"nodes", "nodes release NODE_ID"},
	    {"certs list",
	     "certs list [--node NODE_ID|--mac MAC|--serial SERIAL] [--revoked] [--json]"},
	    {"certs revoke", "certs revoke (SERIAL...|--node NODE_ID|--mac MAC) [--reason R]"},
	    {"certs", "certs revoke"},
	    {"crl", "crl [--der]"},
	    {"audit export", "audit export [--since T] [--until T] [--format jsonl|csv]"},
	    {"audit", "audit export"},
	    {"keygen", "keygen"},
	    {"dev-idp", "dev-idp --out DIR"},
	    {"dev-token", "dev-token --idp DIR"},
	    {"dev-ca", "dev-ca --out DIR"},
	    {"config-example", "config-example"},
	};
	char *out = NULL;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		for (int h = 0; h < 2; h++) {
			const char *flag = h ? "-h" : "--help";
			/* stdout only: the usage must go there, not to stderr. */
			int rc = t_run(&out, "'%s' -c /nonexistent %s %s 2>/dev/null",
			               t_bin("claimctl"), cmds[i].args, flag);
			CHECKF(rc == 0, "claimctl %s %s exited %d", cmds[i].args, flag, rc);
			CHECKF(out && strstr(out, "usage: ") && strstr(out, cmds[i].want),
			       "claimctl %s %s printed:\n%s", cmds[i].args, flag, out ? out : "");
			free(out);
			out = NULL;
		}
	}
	/* The overview names every command, devices unlock, list and show included. */
	CHECK(t_run(&out, "'%s' --help", t_bin("claimctl")) == 0);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strchr(cmds[i].args, '.'))
			CHECKF(out && strstr(out, cmds[i].args), "overview lacks %s", cmds[i].args);
	free(out);
	/* Options after operands and help anywhere on the line. */
	CHECK(t_run(&out, "'%s' -c /nonexistent nodes show --help", t_bin("claimctl")) == 0);
	CHECK(out && strstr(out, "nodes show NODE_ID|MAC") && !strstr(out, "none found"));
	free(out);
	CHECK(t_run(&out, "'%s' -c /nonexistent certs list --json --help", t_bin("claimctl")) == 0);
	free(out);
	/* An unknown command is still an error. */
	CHECK(t_run(&out, "'%s' -c /nonexistent frobnicate --help 2>&1", t_bin("claimctl")) == 2);
	free(out);
	/* claimsim too: every subcommand's --help and -h, alone or after options, exit 0
	 * with the usage on stdout; a mistyped option is still 2. */
	static const char *const sim[] = {"self --help", "app -h", "cli --help",
	                                  "cli --matter --help", "bench --url http://x -h"};
	for (size_t i = 0; i < sizeof(sim) / sizeof(sim[0]); i++) {
		int rc = t_run(&out, "'%s' %s 2>/dev/null", t_bin("claimsim"), sim[i]);
		CHECKF(rc == 0 && out && strstr(out, "usage: claimsim"), "claimsim %s: %d %s",
		       sim[i], rc, out ? out : "");
		free(out);
	}
	CHECK(t_run(&out, "'%s' cli --onse 2>&1", t_bin("claimsim")) == 2);
	free(out);
}

static void devices_list_and_show(void)
{
	struct fx f;
	char *out = NULL, args[128];

	REQUIRE(fx_up(&f, "devices_list_and_show", NULL));
	REQUIRE(tenv_add_device(&f.t, "7CDFA1000003", "esp32s3", K1));
	REQUIRE(self_claim(&f, MAC1, "esp32s3"));

	/* All three, one per line, in MAC order. */
	CHECK(ctl(&f, &out, "devices list") == 0);
	CHECKF(out && strstr(out, MAC1 "  esp32s3") && strstr(out, MAC2 "  esp32c3") &&
	           strstr(out, "7CDFA1000003") && strstr(out, MAC1) < strstr(out, MAC2),
	       "%s", out ? out : "");
	free(out);
	CHECK(ctl(&f, &out, "devices list --claimed") == 0);
	CHECKF(out && strstr(out, MAC1) && !strstr(out, MAC2) && !strstr(out, "7CDFA1000003"), "%s",
	       out ? out : "");
	free(out);
	CHECK(ctl(&f, &out, "devices list --unclaimed --platform esp32s3") == 0);
	CHECKF(out && !strstr(out, MAC1) && !strstr(out, MAC2) && strstr(out, "7CDFA1000003"), "%s",
	       out ? out : "");
	free(out);
	CHECK(ctl(&f, &out, "devices list --claimed --unclaimed") == 2);
	free(out);
	/* The filter is canonicalised like every platform: the flashing tools' spelling. */
	CHECK(ctl(&f, &out, "devices list --unclaimed --platform ESP32-S3") == 0);
	CHECKF(out && strstr(out, "7CDFA1000003"), "%s", out ? out : "");
	free(out);
	CHECK(ctl(&f, &out, "devices list --platform 'esp 32'") == 2);
	free(out);

	/* JSON: an array of objects, filters applied, never a key. */
	CHECK(t_run(&out, "'%s' -c '%s' devices list --json --platform esp32s3", t_bin("claimctl"),
	            f.t.config) == 0);
	json_t *j = out ? json_loads(out, 0, NULL) : NULL;
	CHECKF(json_is_array(j) && json_array_size(j) == 2, "%s", out ? out : "");
	size_t i;
	json_t *e;
	json_array_foreach(j, i, e)
	{
		const char *mac = json_string_value(json_object_get(e, "mac"));
		CHECK(mac && json_is_string(json_object_get(e, "registered")));
		CHECK(strcmp(json_string_value(json_object_get(e, "platform")) ?: "", "esp32s3") ==
		      0);
		CHECK(json_is_true(json_object_get(e, "claimed")) ==
		      (mac && strcmp(mac, MAC1) == 0));
		CHECK(!json_object_get(e, "efuse_key") && !json_object_get(e, "sealed"));
	}
	json_decref(j);
	free(out);
	CHECK(t_run(&out, "'%s' -c '%s' devices list --json --platform esp32h2", t_bin("claimctl"),
	            f.t.config) == 0);
	j = out ? json_loads(out, 0, NULL) : NULL;
	CHECKF(json_is_array(j) && json_array_size(j) == 0, "%s", out ? out : "");
	json_decref(j);
	free(out);

	/* show: platform, registration, lockout, nodes and certificates; no key. Any MAC
	 * spelling is accepted. */
	CHECK(ctl(&f, &out, "devices show 7c:df:a1:00:00:01") == 0);
	CHECKF(out && strstr(out, "platform esp32s3") && strstr(out, "registered 20") &&
	           strstr(out, "lockout: not locked") && strstr(out, "nodes: 1") &&
	           strstr(out, "(self-claimed)") && strstr(out, "certificates: 1") &&
	           strstr(out, "valid") && !strstr(out, K1HEX) && !strcasestr(out, "0001020304"),
	       "%s", out ? out : "");
	free(out);
	/* A locked device says so. */
	CHECK(sql_long(&f.t,
	               "INSERT INTO mac_lockouts (mac, failures, lockouts, locked_until) VALUES "
	               "('%s', 0, 1, now() + interval '5 minutes') RETURNING 1",
	               MAC2) == 1);
	CHECK(ctl(&f, &out, "devices show " MAC2) == 0);
	CHECKF(out && strstr(out, "lockout: locked until") && strstr(out, "nodes: 0") &&
	           strstr(out, "certificates: 0"),
	       "%s", out ? out : "");
	free(out);
	CHECK(ctl(&f, &out, "devices unlock " MAC2) == 0);
	free(out);
	CHECK(ctl(&f, &out, "devices show " MAC2) == 0);
	CHECK(out && strstr(out, "lockout: not locked"));
	free(out);
	snprintf(args, sizeof(args), "devices show %s", "7CDFA1000099");
	CHECK(ctl(&f, &out, args) == 1);
	CHECK(out && strstr(out, "not registered"));
	free(out);
	CHECK(ctl(&f, &out, "devices show not-a-mac") == 2);
	free(out);

	/* nodes show: a self-claimed node's platform comes from its device. */
	CHECK(ctl(&f, &out, "nodes show " MAC1) == 0);
	CHECKF(out && strstr(out, "platform esp32s3") && !strstr(out, "platform -"), "%s",
	       out ? out : "");
	free(out);
	fx_down(&f);
}

/* claimd -t answers for the database too; --no-database leaves it out. */
static void check_mode_database(void)
{
	struct tenv t;
	char *out = NULL;

	REQUIRE(tenv_setup(&t, "check_mode_database", NULL));
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config) == 0);
	CHECKF(out && strstr(out, "schema current"), "%s", out ? out : "");
	free(out);
	/* A database that does not answer. */
	CHECK(
	    t_run(NULL,
	          "sed -i 's|^  url: .*|  url: \"host=%s/nosuchdir dbname=x connect_timeout=2\"|' "
	          "'%s'",
	          t.dir, t.config) == 0);
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config) != 0);
	CHECKF(out && strstr(out, "database.url") && strstr(out, "cannot be used"), "%s",
	       out ? out : "");
	free(out);
	CHECK(t_run(&out, "'%s' -t --no-database -c '%s' 2>&1", t_bin("claimd"), t.config) == 0);
	CHECKF(out && strstr(out, "not checked"), "%s", out ? out : "");
	free(out);
	/* A database that answers but whose schema is behind this build. */
	REQUIRE(tenv_write_config(&t));
	CHECK(sql_long(
	          &t,
	          "WITH d AS (DELETE FROM schema_migrations WHERE version = (SELECT "
	          "max(version) FROM schema_migrations) RETURNING 1) SELECT count(*) FROM d") == 1);
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config) != 0);
	CHECKF(out && strstr(out, "database.url") && strstr(out, "claimctl migrate"), "%s",
	       out ? out : "");
	free(out);
	tenv_teardown(&t);
}

/* claimd run in the foreground until it exits (at most 20 s): its output and status. */
static int claimd_exit(const struct tenv *t, char **out)
{
	return t_run(out, "timeout 20 '%s' -c '%s' 2>&1", t_bin("claimd"), t->config);
}

/* GET @p path from @p d: the status, the body in @p body. */
static int get_status(struct daemon *d, const char *path, char *body, size_t bodysz)
{
	struct http_response r;
	char req[256];
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	if (raw(d, req, &r) < 0)
		return -1;
	snprintf(body, bodysz, "%s", r.body ? r.body : "");
	int st = r.status;
	http_response_free(&r);
	return st;
}

/*
 * Faults that used to surface at the first claim stop start-up in seconds, with exit
 * status 78 (the unit's RestartPreventExitStatus) and the reason: a secrets key that
 * does not open the registered devices' keys, a database that does not exist, a schema
 * behind the build. A database that is merely not up yet does not stop it: claimd
 * serves /healthz, answers /readyz 503 saying why, and is ready once the server is.
 */
static void startup_faults(void)
{
	static const uint8_t k[16] = {7, 7, 7};
	struct tenv t;
	struct daemon d;
	char *out = NULL, good[1200], body[512], key[1200];

	REQUIRE(tenv_setup(&t, "startup_faults", NULL));
	for (int i = 0; i < 12; i++) {
		char mac[13];
		snprintf(mac, sizeof(mac), "7CDFA1000B%02X", i * 19);
		REQUIRE(tenv_add_device(&t, mac, "esp32s3", k));
	}
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config) == 0);
	/* The first two, the last two and up to four from a random point: 4 to 8 of 12. */
	unsigned tried = 0, bad = 0;
	const char *p = out ? strstr(out, "secrets key opens the ") : NULL;
	CHECKF(p && sscanf(p, "secrets key opens the %u device keys tried", &tried) == 1 &&
	           tried >= 4 && tried <= 8,
	       "%s", out);
	free(out);

	/* Another secrets key: the devices were sealed under the first. */
	snprintf(key, sizeof(key), "%s/secrets.key", t.dir);
	snprintf(good, sizeof(good), "%s/secrets.key.good", t.dir);
	REQUIRE(t_run(NULL, "cp -p '%s' '%s' && '%s' keygen > '%s'", key, good, t_bin("claimctl"),
	              key) == 0);
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config) != 0);
	p = out ? strstr(out, "sealed eFuse keys of ") : NULL;
	CHECKF(out && strstr(out, "secrets.key_file: ") && p &&
	           sscanf(p, "sealed eFuse keys of %u of the %u", &bad, &tried) == 2 &&
	           bad == tried && tried >= 4 && strstr(out, "7CDFA1000B"),
	       "%s", out);
	free(out);
	CHECK(claimd_exit(&t, &out) == 78);
	CHECKF(out && strstr(out, "refusing to start: secrets.key_file") &&
	           !strstr(out, "listening"),
	       "%s", out);
	free(out);
	REQUIRE(t_run(NULL, "mv '%s' '%s'", good, key) == 0);

	/* A database that does not exist (a typo in its name): refused, at once. */
	char conninfo[sizeof(t.conninfo) - 16];
	snprintf(conninfo, sizeof(conninfo), "%.700s", t.conninfo);
	snprintf(t.conninfo, sizeof(t.conninfo), "%s_typo", conninfo);
	REQUIRE(tenv_write_config(&t));
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config) != 0);
	CHECKF(out && strstr(out, "database.url") && strstr(out, "does not exist"), "%s", out);
	free(out);
	time_t t0 = time(NULL);
	CHECK(claimd_exit(&t, &out) == 78);
	CHECKF(out && strstr(out, "refusing to start: database.url") &&
	           strstr(out, "does not exist") && time(NULL) - t0 < 10,
	       "%s", out);
	free(out);

	/* Not up yet: a socket folder the server is not in (yet). */
	const char *pg = getenv("CLAIMD_TEST_PG");
	char pgdir[600], later[700];
	REQUIRE(pg && sscanf(pg, "host=%599s", pgdir) == 1);
	snprintf(later, sizeof(later), "%s/later", t.dir);
	REQUIRE(t_run(NULL, "mkdir -p '%s'", later) == 0);
	snprintf(t.conninfo, sizeof(t.conninfo), "host=%s user=postgres dbname=%s", later,
	         strstr(conninfo, "dbname=") + 7);
	REQUIRE(tenv_write_config(&t));
	REQUIRE(daemon_start(&t, &d));
	CHECK(get_status(&d, "/healthz", body, sizeof(body)) == 200);
	CHECKF(get_status(&d, "/readyz", body, sizeof(body)) == 503 &&
	           strstr(body, "the database could not be used at start-up"),
	       "%s", body);
	REQUIRE(t_run(NULL, "ln -s '%s/.s.PGSQL.5432' '%s/.s.PGSQL.5432'", pgdir, later) == 0);
	int st = 0;
	for (int i = 0; i < 100 && (st = get_status(&d, "/readyz", body, sizeof(body))) != 200; i++)
		usleep(100 * 1000);
	CHECKF(st == 200, "%d %s", st, body);
	CHECK(daemon_stop(&d) == 0);
	char *log = file_read_all(d.log, 1 << 20, NULL);
	CHECKF(log && strstr(log, "not ready: database.url: the database cannot be used") &&
	           strstr(log, "the database answers: ready"),
	       "%s", log ? log : "");
	free(log);

	/* A schema behind this build: refused, naming the command that fixes it. */
	snprintf(t.conninfo, sizeof(t.conninfo), "%s", conninfo);
	REQUIRE(tenv_write_config(&t));
	CHECK(sql_long(
	          &t,
	          "WITH d AS (DELETE FROM schema_migrations WHERE version = (SELECT "
	          "max(version) FROM schema_migrations) RETURNING 1) SELECT count(*) FROM d") == 1);
	CHECK(claimd_exit(&t, &out) == 78);
	CHECKF(out && strstr(out, "refusing to start") && strstr(out, "claimctl migrate"), "%s",
	       out);
	free(out);
	tenv_teardown(&t);
}

/*
 * A second claimd on an address another one listens on is refused (status 78, the
 * reason named), for the public and the management listener, unless every one of
 * them says server.listen_sharing: shared; then both serve.
 */
static void second_listener(void)
{
	struct tenv t;
	struct daemon a, b;
	char *out = NULL, body[256];
	unsigned port = t_free_port(), aport = t_free_port();

	REQUIRE(tenv_setup(&t, "second_listener", NULL) && port && aport);
	REQUIRE(t_run(NULL, "sed -i 's|listen: \"127.0.0.1:0\"|listen: \"127.0.0.1:%u\"|' '%s'",
	              port, t.config) == 0);
	REQUIRE(daemon_start(&t, &a));
	CHECK(claimd_exit(&t, &out) == 78);
	CHECKF(out && strstr(out, "refusing to start: server.listen: cannot listen on") &&
	           strstr(out, "address already in use") && strstr(out, "listen_sharing"),
	       "%s", out);
	free(out);
	/* The same for admin.listen, on a public port of its own. */
	CHECK(daemon_stop(&a) == 0);
	t.o.server = "  listen_sharing: exclusive\n";
	char extra[1400];
	snprintf(extra, sizeof(extra),
	         "admin:\n  listen: \"127.0.0.1:%u\"\n  tokens_file: \"%s/admin-tokens\"\n", aport,
	         t.dir);
	REQUIRE(t_run(NULL, "(umask 077 && echo '%064d t' > '%s/admin-tokens')", 0, t.dir) == 0);
	t.o.extra = extra;
	REQUIRE(tenv_write_config(&t));
	REQUIRE(daemon_start(&t, &a));
	REQUIRE(t_run(NULL, "sed -i 's|listen: \"127.0.0.1:0\"|listen: \"127.0.0.1:%u\"|' '%s'",
	              port, t.config) == 0);
	CHECK(claimd_exit(&t, &out) == 78);
	CHECKF(out && strstr(out, "admin.listen: cannot listen on") &&
	           strstr(out, "address already in use"),
	       "%s", out);
	free(out);
	CHECK(daemon_stop(&a) == 0);
	/* Asked for: both listen, both answer. */
	t.o.server = "  listen_sharing: shared\n";
	t.o.extra = NULL;
	REQUIRE(tenv_write_config(&t));
	REQUIRE(t_run(NULL, "sed -i 's|listen: \"127.0.0.1:0\"|listen: \"127.0.0.1:%u\"|' '%s'",
	              port, t.config) == 0);
	REQUIRE(daemon_start(&t, &a));
	REQUIRE(daemon_start(&t, &b));
	CHECK(get_status(&a, "/healthz", body, sizeof(body)) == 200);
	CHECK(daemon_stop(&a) == 0);
	CHECK(get_status(&b, "/healthz", body, sizeof(body)) == 200);
	CHECK(daemon_stop(&b) == 0);
	tenv_teardown(&t);
}

/*
 * A key file this user cannot read (root's, mode 0600, and claimd started as another
 * user) is named as such, with the owner it needs, not as a file that does not parse;
 * once the key is the user's, it is refused as a key the network process can read.
 * claimctl's devices import, which seals with the key, says to run it as the key's
 * owner instead (docs/install.md, "Registering chips").
 */
static void key_file_owner(void)
{
	struct tenv t;
	char *out = NULL;

	REQUIRE(tenv_setup(&t, "key_file_owner", NULL));
	CHECK(t_run(&out, "runuser -u nobody -- '%s' -t --no-database -c '%s' 2>&1",
	            t_bin("claimd"), t.config) != 0);
	CHECKF(out && strstr(out, "secrets.key: permission denied: this process runs as nobody and "
	                          "the file is owned by root, mode 0600; it needs to be owned by "
	                          "nobody"),
	       "%s", out);
	free(out);
	CHECK(t_run(&out,
	            "echo 'mac,platform,efuse_key' | runuser -u nobody -- '%s' -c '%s' devices "
	            "import - 2>&1",
	            t_bin("claimctl"), t.config) != 0);
	CHECKF(out &&
	           strstr(out, "secrets.key: permission denied: claimctl runs as nobody and the "
	                       "key is owned by root") &&
	           strstr(out, "devices import: run it as the secrets key's owner (root)") &&
	           !strstr(out, "chown"),
	       "%s", out);
	free(out);
	REQUIRE(t_run(NULL, "chown nobody '%s/secrets.key'", t.dir) == 0);
	CHECK(t_run(&out, "runuser -u nobody -- '%s' -t --no-database -c '%s' 2>&1",
	            t_bin("claimd"), t.config) != 0);
	/* A key the network process can read is refused outright (two users, always): the
	 * message names the key and the uid, not a parse failure. */
	CHECKF(out && strstr(out, "secrets.key can be read by uid") &&
	           strstr(out, "only the signer's user may read a key") &&
	           !strstr(out, "not a PEM private key"),
	       "%s", out);
	free(out);
	tenv_teardown(&t);
}

/* Missing files and a directory for a config say so in words, naming the key. */
static void missing_file_messages(void)
{
	struct tenv t;
	char *out = NULL;

	REQUIRE(tenv_setup(&t, "missing_file_messages", NULL));
	/* The config path is a directory. */
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.dir) != 0);
	CHECKF(out && strstr(out, "is a directory") && !strstr(out, "input error"), "%s",
	       out ? out : "");
	free(out);
	CHECK(t_run(&out, "'%s' -c '%s' devices list 2>&1", t_bin("claimctl"), t.dir) != 0);
	CHECKF(out && strstr(out, "is a directory"), "%s", out ? out : "");
	free(out);
	/* A missing CA certificate: one plain line, no OpenSSL error queue before it. */
	CHECK(t_run(NULL,
	            "sed -i 's|certificate: ca/intermediate.pem|certificate: ca/nope.pem|' '%s'",
	            t.config) == 0);
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config) != 0);
	CHECKF(out && strstr(out, "ca.certificate: ") &&
	           strstr(out, "nope.pem: cannot open: No such file or directory") &&
	           !strstr(out, "error:") && !strstr(out, "BIO") &&
	           strchr(out, '\n') == out + strlen(out) - 1,
	       "%s", out ? out : "");
	free(out);
	REQUIRE(tenv_write_config(&t));
	/* A missing JWKS file. */
	t.o.extra = "users:\n  jwt:\n    jwks_file: ./nope.json\n    issuer: \"https://x/\"\n";
	REQUIRE(tenv_write_config(&t));
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config) != 0);
	CHECKF(out && strstr(out, "users.jwt.jwks_file: ") &&
	           strstr(out, "nope.json: cannot open: No such file or directory") &&
	           !strstr(out, ":-1:-1"),
	       "%s", out ? out : "");
	free(out);
	t.o.extra = NULL;
	tenv_teardown(&t);
}

/* On a terminal the import shows progress through the database phase too. */
static void import_progress(void)
{
	struct tenv t;
	char *out = NULL, csv[1100];

	REQUIRE(tenv_setup(&t, "import_progress", NULL));
	snprintf(csv, sizeof(csv), "%s/devices.csv", t.dir);
	FILE *f = fopen(csv, "w");
	REQUIRE(f);
	fputs("mac,platform,efuse_key\n", f);
	for (int i = 0; i < 20000; i++)
		fprintf(f, "7CDFA2%06X,esp32s3,%s\n", i, K1HEX);
	REQUIRE(fclose(f) == 0);
	/* script(1) gives claimctl a terminal for stderr. */
	CHECK(t_run(&out, "script -qec \"'%s' -c '%s' devices import '%s'\" /dev/null",
	            t_bin("claimctl"), t.config, csv) == 0);
	CHECKF(out && strstr(out, "rows read (") && strstr(out, "%,") &&
	           strstr(out, "storing them in the database") && strstr(out, "20000 rows in") &&
	           strstr(out, "20000 added"),
	       "%s", out ? out : "");
	free(out);
	/* Without a terminal: no progress line at all. */
	CHECK(t_run(&out, "'%s' -c '%s' devices import '%s' 2>&1", t_bin("claimctl"), t.config,
	            csv) == 0);
	CHECKF(out && !strstr(out, "rows read") && !strstr(out, "\033[K") &&
	           strstr(out, "20000 unchanged"),
	       "%s", out ? out : "");
	free(out);
	tenv_teardown(&t);
}

/* The daemon's log lines, each parsed as JSON (NULL entries for lines that are not). */
static json_t *log_lines(const struct daemon *d)
{
	json_t *all = json_array();
	FILE *f = fopen(d->log, "r");
	char *line = NULL;
	size_t cap = 0;

	while (f && getline(&line, &cap, f) > 0) {
		json_t *o = json_loads(line, 0, NULL);
		CHECKF(json_is_object(o), "not a JSON object: %s", line);
		json_array_append_new(all, o ? o : json_null());
	}
	free(line);
	if (f)
		fclose(f);
	return all;
}

/* The request line with request id @p id, or NULL. */
static json_t *request_line(json_t *all, const char *id)
{
	size_t i;
	json_t *o;
	json_array_foreach(all, i, o)
	{
		const char *rid = json_string_value(json_object_get(o, "request_id"));
		if (rid && strcmp(rid, id) == 0 && json_object_get(o, "status"))
			return o;
	}
	return NULL;
}

/* The X-Request-Id header of a reply, copied into @p out; false if absent. */
static bool reply_id(const struct http_response *r, char *out, size_t n)
{
	const char *h = r->headers ? strcasestr(r->headers, "\nX-Request-Id: ") : NULL;
	if (!h)
		return false;
	h += strlen("\nX-Request-Id: ");
	size_t len = strcspn(h, "\r\n");
	if (len == 0 || len >= n)
		return false;
	memcpy(out, h, len);
	out[len] = '\0';
	return true;
}

static void json_logs(void)
{
	struct fx f;
	struct http_response r;
	struct topts o = {.extra = "log:\n  format: json\n"};
	char id[80], init_id[80], health_id[80], bad_id[80];
	const char *body = "{\"mac_addr\":\"" MAC1 "\",\"platform\":\"esp32s3\"}";

	REQUIRE(fx_up(&f, "json_logs", &o));
	/* From loopback, a trusted proxy by default: its X-Request-Id is taken and echoed. */
	REQUIRE(post(&f.d, "claim/initiate", "X-Request-Id: proxy-req.0001_A\r\n", body, &r) == 0);
	CHECK(r.status == 200);
	CHECK(reply_id(&r, init_id, sizeof(init_id)) && strcmp(init_id, "proxy-req.0001_A") == 0);
	http_response_free(&r);
	/* A malformed one is not taken: a generated id instead. */
	REQUIRE(post(&f.d, "claim/initiate", "X-Request-Id: bad id\"{}\r\n", body, &r) == 0);
	CHECK(reply_id(&r, bad_id, sizeof(bad_id)) && strcmp(bad_id, "bad") != 0 &&
	      strlen(bad_id) == 16);
	http_response_free(&r);
	/* Every reply carries one: errors, health probes. */
	REQUIRE(raw(&f.d, "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) ==
	        0);
	CHECK(r.status == 404 && reply_id(&r, id, sizeof(id)));
	http_response_free(&r);
	REQUIRE(raw(&f.d, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) ==
	        0);
	CHECK(r.status == 200 && reply_id(&r, health_id, sizeof(health_id)));
	http_response_free(&r);
	REQUIRE(raw(&f.d, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) ==
	        0);
	CHECK(r.status == 200 && reply_id(&r, id, sizeof(id)));
	http_response_free(&r);
	REQUIRE(raw(&f.d, "GET /crl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) == 0);
	CHECK(r.status == 200 && reply_id(&r, id, sizeof(id)));
	http_response_free(&r);
	/* A whole self claim: the verify's line names its MAC. */
	REQUIRE(self_claim(&f, MAC2, "esp32c3"));
	REQUIRE(daemon_stop(&f.d) == 0);

	json_t *all = log_lines(&f.d);
	size_t i;
	json_t *l;
	json_array_foreach(all, i, l)
	{
		CHECK(json_is_string(json_object_get(l, "time")) &&
		      json_is_string(json_object_get(l, "level")) &&
		      json_is_string(json_object_get(l, "message")));
	}
	json_t *a = request_line(all, "proxy-req.0001_A");
	CHECKF(a, "no request line with the proxy's id");
	if (a) {
		CHECK(strcmp(json_string_value(json_object_get(a, "level")) ?: "", "info") == 0);
		CHECK(strcmp(json_string_value(json_object_get(a, "route")) ?: "",
		             "/claim/initiate") == 0);
		CHECK(strcmp(json_string_value(json_object_get(a, "method")) ?: "", "POST") == 0);
		CHECK(json_integer_value(json_object_get(a, "status")) == 200);
		CHECK(json_is_integer(json_object_get(a, "duration_ms")));
		CHECK(strcmp(json_string_value(json_object_get(a, "mac")) ?: "", MAC1) == 0);
	}
	json_t *h = request_line(all, health_id);
	CHECKF(h, "no line for the health probe (log_level is debug in tests)");
	if (h)
		CHECK(strcmp(json_string_value(json_object_get(h, "level")) ?: "", "debug") == 0);
	/* The verify of MAC2 names its MAC; no line carries a key or a challenge response. */
	bool verify_seen = false;
	json_array_foreach(all, i, l)
	{
		const char *route = json_string_value(json_object_get(l, "route"));
		const char *mac = json_string_value(json_object_get(l, "mac"));
		if (route && strcmp(route, "/claim/verify") == 0 && mac && strcmp(mac, MAC2) == 0 &&
		    json_integer_value(json_object_get(l, "status")) == 200)
			verify_seen = true;
		char *text = json_dumps(l, 0);
		CHECKF(text && !strcasestr(text, "0001020304050607") &&
		           !strstr(text, "BEGIN CERTIFICATE") &&
		           !strstr(text, "challenge_response"),
		       "%s", text ? text : "");
		free(text);
	}
	CHECK(verify_seen);
	json_decref(all);
	f.d.pid = 0;
	tenv_teardown(&f.t);

	/* A peer outside server.trusted_proxies is not believed. */
	REQUIRE(tenv_setup(&f.t, "json_logs_untrusted", &o));
	CHECK(t_run(NULL, "sed -i 's|^server:|server:\\n  trusted_proxies: [\"10.0.0.0/8\"]|' '%s'",
	            f.t.config) == 0);
	REQUIRE(tenv_add_device(&f.t, MAC1, "esp32s3", K1));
	REQUIRE(daemon_start(&f.t, &f.d));
	REQUIRE(post(&f.d, "claim/initiate", "X-Request-Id: spoofed-1\r\n", body, &r) == 0);
	CHECK(reply_id(&r, id, sizeof(id)) && strcmp(id, "spoofed-1") != 0);
	http_response_free(&r);
	REQUIRE(daemon_stop(&f.d) == 0);
	all = log_lines(&f.d);
	CHECK(!request_line(all, "spoofed-1") && request_line(all, id));
	json_decref(all);
	f.d.pid = 0;
	tenv_teardown(&f.t);
}

/* The text format keeps its shape and gains the request's subject. */
static void text_log_subject(void)
{
	struct fx f;
	struct http_response r;
	char *out = NULL;
	const char *body = "{\"mac_addr\":\"" MAC1 "\",\"platform\":\"esp32s3\"}";

	REQUIRE(fx_up(&f, "text_log_subject", NULL));
	REQUIRE(post(&f.d, "claim/initiate", "X-Request-Id: text-1\r\n", body, &r) == 0);
	http_response_free(&r);
	REQUIRE(raw(&f.d, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) ==
	        0);
	http_response_free(&r);
	/* A request's line is written when its connection completes, which may be after the
	 * client has the reply: stop claimd first, so that every line is in the log. */
	REQUIRE(daemon_stop(&f.d) == 0);
	CHECK(t_run(&out, "grep -F 'req=text-1 ' '%s'", f.d.log) == 0);
	CHECKF(
	    out &&
	        strstr(out, " info req=text-1 remote=127.0.0.1 POST /claim/initiate -> 200 OK") &&
	        strstr(out, "mac=" MAC1),
	    "%s", out ? out : "");
	free(out);
	CHECK(t_run(&out, "grep -F 'GET /healthz' '%s'", f.d.log) == 0);
	CHECKF(out && strstr(out, " debug req=") && !strstr(out, " info req="), "%s",
	       out ? out : "");
	free(out);
	tenv_teardown(&f.t);
}

/*
 * No password of database.url reaches claimd's log or stderr, claimd -t's output, or
 * claimctl's, whatever libpq says about the URL: a malformed or forbidden %-escape in the
 * password (libpq quotes the token), an '@' left in the password (libpq quotes the rest
 * as a host name), the keyword form's quoted password, a ?password= parameter, and a
 * wrong password refused by a server that asks for one (a cluster of the case's own
 * whose pg_hba.conf wants scram-sha-256).
 */
static void password_never_shown(void)
{
	struct tenv t;
	char dir[300], sock[300], *out = NULL;
	const char *b = getenv("CLAIMD_BUILD_DIR") ? getenv("CLAIMD_BUILD_DIR") : ".";

	REQUIRE(tenv_setup(&t, "password_never_shown", NULL));
	snprintf(dir, sizeof(dir), "%.200s/tmp/pg_password_never_shown", b);
	t_run(NULL, "'%s/tests/pg.sh' stop '%s' >/dev/null 2>&1; rm -rf '%s'", CLAIMD_SOURCE_DIR,
	      dir, dir);
	REQUIRE(t_run(NULL,
	              "mkdir -p '%s' && printf 'local all postgres trust\\nlocal all all "
	              "scram-sha-256\\n' > '%s.hba' && chmod 644 '%s.hba'",
	              dir, dir, dir) == 0);
	REQUIRE(t_run(&out, "PG_OPTS='-c hba_file=%s.hba' '%s/tests/pg.sh' start '%s' 2>&1", dir,
	              CLAIMD_SOURCE_DIR, dir) == 0);
	free(out);
	snprintf(sock, sizeof(sock), "%s", dir);
	REQUIRE(t_run(NULL,
	              "psql -q 'host=%s user=postgres dbname=postgres' -c \"CREATE ROLE pwuser "
	              "LOGIN PASSWORD 'the-right-one'\" >/dev/null",
	              sock) == 0);
	char urls[7][700];
	snprintf(urls[0], sizeof(urls[0]), "postgresql://claimd:Zq7SECRETpw%%zz@/claimd?host=%s",
	         sock);
	snprintf(urls[1], sizeof(urls[1]), "postgresql://claimd:Zq7SECRETpw%%00x@/claimd?host=%s",
	         sock);
	snprintf(urls[2], sizeof(urls[2]),
	         "postgresql://claimd:Zq7SECRETpw@Zq7SECRETtail@nohost.invalid/claimd");
	snprintf(urls[3], sizeof(urls[3]),
	         "host=127.0.0.1 port=1 user=claimd password='Zq7SECRET pw\\\\'s' dbname=claimd");
	snprintf(urls[4], sizeof(urls[4]), "postgresql:///claimd?host=%s&password=Zq7SECRET%%zzpw",
	         sock);
	snprintf(urls[5], sizeof(urls[5]), "postgresql://pwuser:Zq7SECRETwrong@/postgres?host=%s",
	         sock);
	snprintf(urls[6], sizeof(urls[6]), "host=%s user=pwuser password=Zq7SECRETwrong dbname=x",
	         sock);
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		snprintf(t.conninfo, sizeof(t.conninfo), "%.700s", urls[i]);
		REQUIRE(tenv_write_config(&t));
		/* claimd -t, claimd itself (it refuses or waits not ready: 3 s of its log),
		 * and claimctl commands that connect. */
		static const char *const what[] = {"claimd -t", "claimd", "claimctl devices list",
		                                   "claimctl migrate"};
		for (size_t k = 0; k < sizeof(what) / sizeof(what[0]); k++) {
			const char *cmd = what[k];
			int rc =
			    k == 0 ? t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config)
			    : k == 1 ? t_run(&out, "timeout 3 '%s' -c '%s' 2>&1", t_bin("claimd"),
			                     t.config)
			    : k == 2 ? t_run(&out, "'%s' -c '%s' devices list 2>&1",
			                     t_bin("claimctl"), t.config)
			             : t_run(&out, "'%s' -c '%s' migrate 2>&1", t_bin("claimctl"),
			                     t.config);
			CHECKF(rc != 0 && out && strstr(out, "database") &&
			           !strstr(out, "Zq7SECRET") && !strstr(out, "SECRET pw") &&
			           !strstr(out, "Zq7"),
			       "url %zu, %s: %d\n%s", i, cmd, rc, out ? out : "");
			free(out);
			out = NULL;
		}
	}
	/* What libpq said is still there, less the password: the operator learns why. */
	snprintf(t.conninfo, sizeof(t.conninfo), "%.700s", urls[0]);
	REQUIRE(tenv_write_config(&t));
	CHECK(t_run(&out, "'%s' -c '%s' devices list 2>&1", t_bin("claimctl"), t.config) != 0);
	CHECKF(out && strstr(out, "invalid percent-encoded token") && strstr(out, "********"), "%s",
	       out ? out : "");
	free(out);
	snprintf(t.conninfo, sizeof(t.conninfo), "%.700s", urls[5]);
	REQUIRE(tenv_write_config(&t));
	CHECK(t_run(&out, "'%s' -c '%s' devices list 2>&1", t_bin("claimctl"), t.config) != 0);
	CHECKF(out && strstr(out, "password authentication failed"), "%s", out ? out : "");
	free(out);
	t_run(NULL, "'%s/tests/pg.sh' stop '%s' >/dev/null 2>&1; rm -rf '%s' '%s.hba'",
	      CLAIMD_SOURCE_DIR, dir, dir, dir);
	tenv_teardown(&t);
}

/*
 * devices import of a MAC that is locked after wrong challenge responses, with --replace
 * and a new key: stored, and claimctl says it is still locked and prints the command that
 * unlocks it, which (copied as printed) does; imported again, nothing is said.
 */
static void import_locked_device(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	struct topts o = {.extra = "limits:\n  lockout_failures: 2\n"};
	char csv[1100], *out = NULL, cmd[1400];
	static const uint8_t wrong[16] = {0xff};

	REQUIRE(fx_up(&f, "import_locked_device", &o));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	for (int i = 0; i < 2; i++) {
		REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
		char *b = verify_body(&s, wrong, dv.key, MAC1);
		REQUIRE(b && verify(&f.d, b, &r) == 0);
		http_response_free(&r);
		free(b);
	}
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s) == false); /* locked: 429 */
	snprintf(csv, sizeof(csv), "%s/replace.csv", f.t.dir);
	FILE *fp = fopen(csv, "w");
	REQUIRE(fp);
	fputs("mac,platform,efuse_key\n7cdfa1000002,esp32c3," K1HEX "\n"
	      "7C:DF:A1:00:00:01,esp32s3,FF0102030405060708090A0B0C0D0E0F\n",
	      fp);
	REQUIRE(fclose(fp) == 0);
	CHECK(ctl(&f, &out, "devices import --replace") == 2);
	free(out);
	snprintf(cmd, sizeof(cmd), "devices import --replace '%s'", csv);
	CHECK(ctl(&f, &out, cmd) == 0);
	char want[1300];
	snprintf(want, sizeof(want), "claimctl -c %s devices unlock " MAC1, f.t.config);
	CHECKF(out && strstr(out, ":3: " MAC1 ": stored, but still locked until 20") &&
	           strstr(out, want) && !strstr(out, MAC2 ": stored") &&
	           strstr(out, "1 replaced") && strstr(out, "some still locked"),
	       "%s", out ? out : "");
	free(out);
	/* The command as printed unlocks it. */
	CHECK(t_run(&out, "'%s' %s 2>&1", t_bin("claimctl"), want + strlen("claimctl ")) == 0);
	CHECKF(out && strstr(out, "unlocked"), "%s", out ? out : "");
	free(out);
	CHECK(ctl(&f, &out, cmd) == 0);
	CHECKF(out && !strstr(out, "still locked") && strstr(out, "2 unchanged"), "%s",
	       out ? out : "");
	free(out);
	EVP_PKEY_free(dv.key);
	fx_down(&f);
}

/*
 * claimctl refused by PostgreSQL for its role (here a role that does not exist, as root
 * meets it with the default database.url): the message says how to run it instead.
 */
static void ctl_role_refused(void)
{
	struct tenv t;
	char *out = NULL, want[1200];

	REQUIRE(tenv_setup(&t, "ctl_role_refused", NULL));
	size_t len = strlen(t.conninfo);
	snprintf(t.conninfo + len, sizeof(t.conninfo) - len, " user=root");
	REQUIRE(tenv_write_config(&t));
	snprintf(want, sizeof(want), "runuser -u claimd -- claimctl -c %s COMMAND", t.config);
	static const char *const cmds[] = {"devices list", "migrate", "nodes show " MAC1,
	                                   "certs list"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		CHECK(t_run(&out, "'%s' -c '%s' %s 2>&1", t_bin("claimctl"), t.config, cmds[i]) ==
		      1);
		CHECKF(out && strstr(out, "role \"root\" does not exist") && strstr(out, want) &&
		           strstr(out, "as the Unix user running it"),
		       "%s: %s", cmds[i], out ? out : "");
		free(out);
	}
	/* The import also reads the secrets key: its user is the keys' owner. */
	char csv[1100];
	snprintf(csv, sizeof(csv), "%s/one.csv", t.dir);
	FILE *fp = fopen(csv, "w");
	REQUIRE(fp);
	fputs("mac,platform,efuse_key\n" MAC1 ",esp32s3," K1HEX "\n", fp);
	REQUIRE(fclose(fp) == 0);
	snprintf(want, sizeof(want), "runuser -u claimd-signer -- claimctl -c %s COMMAND",
	         t.config);
	CHECK(t_run(&out, "'%s' -c '%s' devices import '%s' 2>&1", t_bin("claimctl"), t.config,
	            csv) == 1);
	CHECKF(out && strstr(out, "role \"root\" does not exist") && strstr(out, want) &&
	           strstr(out, "needs a role in claimd"),
	       "%s", out ? out : "");
	free(out);
	/* claimctl crl signs with the CA key: the same user. */
	CHECK(t_run(&out, "'%s' -c '%s' crl 2>&1", t_bin("claimctl"), t.config) == 1);
	CHECKF(out && strstr(out, want), "%s", out ? out : "");
	free(out);
	/* A database that does not exist is not about the role: no advice. */
	snprintf(t.conninfo + len, sizeof(t.conninfo) - len, " dbname=no_such_db");
	REQUIRE(tenv_write_config(&t));
	CHECK(t_run(&out, "'%s' -c '%s' devices list 2>&1", t_bin("claimctl"), t.config) == 1);
	CHECKF(out && strstr(out, "does not exist") && !strstr(out, "runuser"), "%s",
	       out ? out : "");
	free(out);
	tenv_teardown(&t);
}

static const struct t_case cases[] = {
    {"help_everywhere", help_everywhere},
    {"devices_list_and_show", devices_list_and_show},
    {"check_mode_database", check_mode_database},
    {"missing_file_messages", missing_file_messages},
    {"import_progress", import_progress},
    {"json_logs", json_logs},
    {"text_log_subject", text_log_subject},
    {"startup_faults", startup_faults},
    {"second_listener", second_listener},
    {"key_file_owner", key_file_owner},
    {"password_never_shown", password_never_shown},
    {"import_locked_device", import_locked_device},
    {"ctl_role_refused", ctl_role_refused},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
