/*
 * The management API against a real daemon and database: bearer tokens (missing,
 * wrong, another file's, reloaded on SIGHUP), device registration (all-or-nothing,
 * idempotent, sealed as the CSV import seals), lookups without key material,
 * verify-signature with real EC and RSA device keys, revoke and release seen in /crl and
 * claimctl, /metrics on both listeners, and /admin paths absent from the public one.
 */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "lib/config.h"
#include "db/db_devices.h"
#include "lib/util.h"
#include "harness.h"

#define TOKEN_A     "factory-line-token-0123456789"
#define TOKEN_B     "backend-token-abcdefghijklmn"
#define TOKEN_OTHER "a-token-listed-in-another-file"
#define TOKEN_NEW   "the-token-after-the-reload"

static char tokens_path[1024];
static char extra[1400];

/* Writes the tokens file with the SHA-256 of each token in @p toks named @p names. */
static bool write_tokens(const char *path, const char *const *toks, const char *const *names, int n,
                         mode_t mode)
{
	char tmp[1100];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return false;
	fputs("# test tokens\n\n", f);
	for (int i = 0; i < n; i++) {
		uint8_t h[32];
		char hex[65];
		secure_sha256(h, toks[i], strlen(toks[i]));
		hex_encode_lower(hex, h, sizeof(h));
		fprintf(f, "%s %s\n", hex, names[i]);
	}
	return fclose(f) == 0 && chmod(tmp, mode) == 0 && rename(tmp, path) == 0;
}

/* A case's world with the management API on, tokens A (factory-1) and B (backend), and
 * the config lines @p more (or NULL). */
static bool admin_up_with(struct fx *f, const char *name, const char *more)
{
	static const char *const toks[] = {TOKEN_A, TOKEN_B};
	static const char *const names[] = {"factory-1", "backend"};
	const char *dir = getenv("CLAIMD_BUILD_DIR") ? getenv("CLAIMD_BUILD_DIR") : ".";

	snprintf(tokens_path, sizeof(tokens_path), "%s/tmp/%s.tokens", dir, name);
	if (t_run(NULL, "mkdir -p '%s/tmp'", dir) != 0 ||
	    !write_tokens(tokens_path, toks, names, 2, 0600))
		return false;
	snprintf(extra, sizeof(extra),
	         "admin:\n  listen: \"127.0.0.1:0\"\n  tokens_file: \"%s\"\n%s", tokens_path,
	         more ? more : "");
	struct topts o = {.extra = extra};
	if (!fx_up(f, name, &o))
		return false;
	return f->d.admin_port != 0;
}

static bool admin_up(struct fx *f, const char *name)
{
	return admin_up_with(f, name, NULL);
}

/* A request to @p u with an optional bearer token and JSON body; 0 or -1. */
static int req(const struct http_url *u, const char *method, const char *path, const char *token,
               const char *body, struct http_response *r)
{
	char head[1024], err[256], *all = NULL;
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n",
	                 method, path);
	if (token)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Authorization: Bearer %s\r\n",
		              token);
	if (body)
		n += snprintf(head + n, sizeof(head) - (size_t)n,
		              "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
	snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	if (asprintf(&all, "%s%s", head, body ? body : "") < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	int rc = http_exchange(u, all, strlen(all), 10000, r, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "%s %s: %s\n", method, path, err);
	free(all);
	return rc;
}

/* The status of a management request (the body is dropped); -1 on failure. */
static int astatus(struct fx *f, const char *method, const char *path, const char *token,
                   const char *body)
{
	struct http_response r;
	if (req(&f->d.admin_url, method, path, token, body, &r) < 0)
		return -1;
	int st = r.status;
	http_response_free(&r);
	return st;
}

/* A management request's JSON body when its status is @p want, else NULL. */
static json_t *ajson(struct fx *f, const char *method, const char *path, const char *token,
                     const char *body, int want)
{
	struct http_response r;
	json_t *j = NULL;
	if (req(&f->d.admin_url, method, path, token, body, &r) < 0)
		return NULL;
	CHECKF(r.status == want, "%s %s: %d %.*s", method, path, r.status, (int)r.len,
	       r.body ? r.body : "");
	if (r.status == want)
		j = json_loadb(r.body, r.len, 0, NULL);
	http_response_free(&r);
	return j;
}

/* The daemon's log contains @p s. */
static bool log_has(struct fx *f, const char *s)
{
	char *out = NULL;
	t_run(&out, "cat '%s'", f->d.log);
	bool yes = out && strstr(out, s);
	free(out);
	return yes;
}

static void auth_failures(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(admin_up(&f, "admin_auth_failures"));
	const char *path = "/admin/v1/devices/" MAC1;

	/* No token, a wrong one, one listed only in another file, another scheme. */
	REQUIRE(req(&f.d.admin_url, "GET", path, NULL, NULL, &r) == 0);
	check_failure(&r, 401, "bearer token");
	CHECK(r.headers && strstr(r.headers, "WWW-Authenticate: Bearer"));
	http_response_free(&r);
	CHECK(astatus(&f, "GET", path, "wrong", NULL) == 401);
	CHECK(astatus(&f, "GET", path, TOKEN_OTHER, NULL) == 401);
	CHECK(astatus(&f, "GET", path, TOKEN_A "x", NULL) == 401);
	CHECK(astatus(&f, "GET", path, "", NULL) == 401);
	char basic[256];
	snprintf(
	    basic, sizeof(basic),
	    "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Basic %s\r\n\r\n",
	    path, TOKEN_A);
	char err[256];
	REQUIRE(http_exchange(&f.d.admin_url, basic, strlen(basic), 10000, &r, err, sizeof(err)) ==
	        0);
	CHECK(r.status == 401);
	http_response_free(&r);
	/* Unknown paths and /metrics need the token too; POSTs are refused before the body. */
	CHECK(astatus(&f, "GET", "/admin/v1/nothing", NULL, NULL) == 401);
	CHECK(astatus(&f, "GET", "/metrics", NULL, NULL) == 401);
	CHECK(astatus(&f, "POST", "/admin/v1/devices", "wrong", "[]") == 401);
	/* Both listed tokens work; the log names the token, never the token itself. */
	CHECK(astatus(&f, "GET", path, TOKEN_A, NULL) == 200);
	CHECK(astatus(&f, "GET", path, TOKEN_B, NULL) == 200);
	CHECK(astatus(&f, "GET", "/admin/v1/nothing", TOKEN_A, NULL) == 404);
	CHECK(astatus(&f, "DELETE", path, TOKEN_A, NULL) == 405);
	CHECK(log_has(&f, "by admin:factory-1") && log_has(&f, "by admin:backend"));
	CHECK(!log_has(&f, TOKEN_A));

	/* A group-readable file is refused on reload: the old tokens keep working. */
	static const char *const next[] = {TOKEN_NEW};
	static const char *const next_names[] = {"rotated"};
	REQUIRE(write_tokens(tokens_path, next, next_names, 1, 0640));
	kill(f.d.pid, SIGHUP);
	for (int i = 0; i < 200 && !log_has(&f, "reload refused"); i++)
		usleep(20000);
	CHECK(log_has(&f, "group- or world-accessible"));
	CHECK(astatus(&f, "GET", path, TOKEN_A, NULL) == 200);
	CHECK(astatus(&f, "GET", path, TOKEN_NEW, NULL) == 401);
	/* Fixed, it is read on the next SIGHUP: the new token works, the old ones no more. */
	REQUIRE(chmod(tokens_path, 0600) == 0);
	kill(f.d.pid, SIGHUP);
	int st = 0;
	for (int i = 0; i < 200 && (st = astatus(&f, "GET", path, TOKEN_NEW, NULL)) != 200; i++)
		usleep(20000);
	CHECK(st == 200);
	CHECK(astatus(&f, "GET", path, TOKEN_A, NULL) == 401);
	CHECK(astatus(&f, "GET", path, TOKEN_B, NULL) == 401);
	CHECK(log_has(&f, "by admin:rotated"));
	/* A malformed line: the reload is refused naming the line; the tokens stay. */
	FILE *tf = fopen(tokens_path, "w");
	REQUIRE(tf);
	fputs("# comment\n\nnot-a-hash rotated\n", tf);
	fclose(tf);
	kill(f.d.pid, SIGHUP);
	for (int i = 0; i < 200 && !log_has(&f, ".tokens:3: expected"); i++)
		usleep(20000);
	CHECK(log_has(&f, ".tokens:3: expected \"SHA256-HEX NAME\""));
	CHECK(astatus(&f, "GET", path, TOKEN_NEW, NULL) == 200);
	fx_down(&f);
}

static void public_listener(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(admin_up(&f, "admin_public_listener"));
	/* The public listener has no management paths, token or not. */
	static const char *const paths[] = {"/admin/v1/devices/" MAC1, "/admin/v1/nodes/" MAC1,
	                                    "/admin/v1/devices", "/admin/v1/nodes/" MAC1 "/release",
	                                    "/admin/v1/certificates/00/revoke"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		REQUIRE(req(&f.d.url, i == 2 || i >= 3 ? "POST" : "GET", paths[i], TOKEN_A,
		            i >= 2 ? "{}" : NULL, &r) == 0);
		check_failure(&r, 404, "no such endpoint");
		http_response_free(&r);
	}
	/* /metrics: public without a token; on the admin listener only with one. */
	REQUIRE(req(&f.d.url, "GET", "/metrics", NULL, NULL, &r) == 0);
	CHECK(r.status == 200 && r.body && strstr(r.body, "claimd_replies_total"));
	http_response_free(&r);
	CHECK(astatus(&f, "GET", "/metrics", NULL, NULL) == 401);
	CHECK(astatus(&f, "GET", "/metrics", "wrong", NULL) == 401);
	REQUIRE(req(&f.d.admin_url, "GET", "/metrics", TOKEN_B, NULL, &r) == 0);
	CHECK(r.status == 200 && r.body && strstr(r.body, "claimd_replies_total") &&
	      strstr(r.body, "code=\"ADMIN_TOKEN\",status=\"401\"} 2"));
	CHECK(r.headers && strstr(r.headers, "text/plain"));
	http_response_free(&r);
	/* server.metrics: admin (taken at SIGHUP): the public listener answers 404 for
	 * /metrics and the admin listener still serves it behind its tokens. */
	REQUIRE(t_run(NULL,
	              "sed -i 's/^  log_level: debug$/  log_level: debug\\n  metrics: admin/' '%s'",
	              f.t.config) == 0);
	kill(f.d.pid, SIGHUP);
	for (int i = 0; i < 100 && !log_has(&f, "reloaded"); i++)
		usleep(20000);
	REQUIRE(req(&f.d.url, "GET", "/metrics", NULL, NULL, &r) == 0);
	check_failure(&r, 404, "no such endpoint");
	http_response_free(&r);
	CHECK(astatus(&f, "GET", "/metrics", NULL, NULL) == 401);
	REQUIRE(req(&f.d.admin_url, "GET", "/metrics", TOKEN_B, NULL, &r) == 0);
	CHECK(r.status == 200 && r.body && strstr(r.body, "\nclaimd_build_info{"));
	http_response_free(&r);
	fx_down(&f);
}

/* The number member @p k of @p j, or -1. */
static long jnum(const json_t *j, const char *k)
{
	json_t *v = json_object_get(j, k);
	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static void register_devices(void)
{
	struct fx f;
	json_t *j;
	REQUIRE(admin_up(&f, "admin_register"));
	/* The flashing tools' spelling of the platform is stored canonical. */
	const char *two = "[{\"mac\":\"7c:df:a1:00:01:01\",\"platform\":\"ESP32-S3\","
	                  "\"efuse_key\":\"" K1HEX "\"},"
	                  "{\"mac\":\"7CDFA1000102\",\"platform\":\"esp32c3\","
	                  "\"efuse_key\":\"00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\"}]";
	j = ajson(&f, "POST", "/admin/v1/devices", TOKEN_A, two, 200);
	CHECK(j && jnum(j, "added") == 2 && jnum(j, "unchanged") == 0);
	json_decref(j);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM devices WHERE mac IN ('7CDFA1000101', "
	                     "'7CDFA1000102')") == 2);
	/* Sealed exactly as the CSV import seals: the same tag, and the key opens. */
	uint8_t tag[EFUSE_TAG_BYTES], key[EFUSE_KEY_BYTES];
	char taghex[2 * EFUSE_TAG_BYTES + 1];
	efuse_tag(f.t.secrets, "7CDFA1000101", K1, tag);
	hex_encode_lower(taghex, tag, sizeof(tag));
	CHECK(sql_long(&f.t,
	               "SELECT count(*) FROM devices WHERE mac = '7CDFA1000101' AND "
	               "encode(efuse_key_tag, 'hex') = '%s' AND platform = 'esp32s3'",
	               taghex) == 1);
	char *sealed = sql_value(&f.t, "SELECT encode(efuse_key_sealed, 'hex') FROM devices WHERE "
	                               "mac = '7CDFA1000102'");
	uint8_t sb[SEALED_EFUSE_BYTES];
	CHECK(sealed && hex_decode(sb, sizeof(sb), sealed, strlen(sealed), false) &&
	      efuse_open(f.t.secrets, "7CDFA1000102", sb, sizeof(sb), key) &&
	      memcmp(key, K1, 16) == 0);
	free(sealed);
	/* A registered device self-claims. */
	struct sim_device dv = device("7CDFA1000101", "esp32s3", "ec");
	CHECK(fx_self_claim(&f, &dv));
	EVP_PKEY_free(dv.key);
	/* Again: a no-op. */
	j = ajson(&f, "POST", "/admin/v1/devices", TOKEN_A, two, 200);
	CHECK(j && jnum(j, "added") == 0 && jnum(j, "unchanged") == 2);
	json_decref(j);
	CHECK(sql_long(&f.t,
	               "SELECT count(*) FROM audit WHERE event = 'register' AND flow = 'operator' "
	               "AND detail LIKE '%% by admin:factory-1' AND request_id IS NOT NULL") == 2);
	/* A bad row anywhere: nothing stored, the error names the field. */
	static const struct {
		const char *body, *desc;
		int status;
	} bad[] = {
	    {"[{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"},"
	     "{\"mac\":\"7CDFA10002\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"}]",
	     "devices[1]: mac: must be 12 hex digits", 400},
	    {"[{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"},"
	     "{\"mac\":\"7CDFA1000202\",\"platform\":\"esp 32\",\"efuse_key\":\"" K1HEX "\"}]",
	     "devices[1]: platform:", 400},
	    {"[{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"},"
	     "{\"mac\":\"7CDFA1000202\",\"platform\":\"esp32s3\",\"efuse_key\":\"0011\"}]",
	     "devices[1]: efuse_key: must be 32 hex digits", 400},
	    {"[{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"},"
	     "{\"mac\":\"7CDFA1000202\",\"platform\":\"esp32s3\"}]",
	     "devices[1]: body: expected a non-empty JSON array of {mac, platform, efuse_key}: "
	     "efuse_key: missing or not a string",
	     400},
	    {"[{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"},"
	     "{\"mac\":7,\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"}]",
	     "devices[1]: body: expected a non-empty JSON array of {mac, platform, efuse_key}: "
	     "mac: missing or not a string",
	     400},
	    /* The first bad item is named, here item 0 (an item that is no object). */
	    {"[7,{\"mac\":\"7CDFA1000202\",\"platform\":\"esp32s3\"}]",
	     "devices[0]: body: expected a non-empty JSON array of {mac, platform, efuse_key}: "
	     "not an object",
	     400},
	    /* An unknown IDF target, as every entry point refuses it (canon.c). */
	    {"[{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"},"
	     "{\"mac\":\"7CDFA1000202\",\"platform\":\"esp99\",\"efuse_key\":\"" K1HEX "\"}]",
	     "devices[1]: platform:", 400},
	    {"[]", "array", 400},
	    {"{\"mac\":\"7CDFA1000201\"}", "array", 400},
	    {"not json", "array", 400},
	    /* A known MAC with another key, or listed twice with different data: 409. */
	    {"[{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"},"
	     "{\"mac\":\"7CDFA1000101\",\"platform\":\"esp32s3\","
	     "\"efuse_key\":\"FF0102030405060708090A0B0C0D0E0F\"}]",
	     "nothing stored: devices[1] (7CDFA1000101): MAC already registered with a different "
	     "key or platform",
	     409},
	    {"[{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"},"
	     "{\"mac\":\"7CDFA1000102\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"}]",
	     "nothing stored: devices[1] (7CDFA1000102): MAC already registered", 409},
	    {"[{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX "\"},"
	     "{\"mac\":\"7CDFA1000201\",\"platform\":\"esp32c3\",\"efuse_key\":\"" K1HEX "\"}]",
	     "nothing stored: devices[1] (7CDFA1000201): MAC appears again with a different key or "
	     "platform (first at devices[0])",
	     409},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_response r;
		REQUIRE(req(&f.d.admin_url, "POST", "/admin/v1/devices", TOKEN_A, bad[i].body,
		            &r) == 0);
		check_failure(&r, bad[i].status, bad[i].desc);
		http_response_free(&r);
	}
	CHECK(sql_long(&f.t, "SELECT count(*) FROM devices WHERE mac LIKE '7CDFA10002%%'") == 0);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM devices") == 4);
	/* The key of the known MAC is unchanged. */
	CHECK(sql_long(&f.t,
	               "SELECT count(*) FROM devices WHERE mac = '7CDFA1000101' AND "
	               "encode(efuse_key_tag, 'hex') = '%s'",
	               taghex) == 1);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM audit WHERE event = 'register'") == 2);
	fx_down(&f);
}

struct import_racer {
	struct fx *f;
	pthread_barrier_t *bar;
	char body[256];
	int status;
};

static void *import_race_one(void *arg)
{
	struct import_racer *r = arg;
	pthread_barrier_wait(r->bar);
	r->status = astatus(r->f, "POST", "/admin/v1/devices", TOKEN_A, r->body);
	return NULL;
}

/*
 * Registrations of one new MAC with different keys, sent at the same moment: exactly one
 * is stored and the others are refused as conflicts (409), as when they come one after
 * the other. A registration without replace never changes a key, even one stored by
 * another import that committed while it ran (interface.md, the CSV's rules).
 */
static void import_race(void)
{
	enum { RACERS = 4, ROUNDS = 12 };
	struct fx f;
	REQUIRE(admin_up(&f, "admin_import_race"));
	for (int round = 0; round < ROUNDS; round++) {
		char mac[MAC_LEN + 1];
		pthread_barrier_t bar;
		pthread_t th[RACERS];
		struct import_racer r[RACERS];
		int ok = 0, conflict = 0, winner = -1;

		snprintf(mac, sizeof(mac), "7CDFA10030%02X", round);
		pthread_barrier_init(&bar, NULL, RACERS);
		for (int i = 0; i < RACERS; i++) {
			r[i] = (struct import_racer){.f = &f, .bar = &bar};
			snprintf(r[i].body, sizeof(r[i].body),
			         "[{\"mac\":\"%s\",\"platform\":\"esp32s3\",\"efuse_key\":"
			         "\"%02X0102030405060708090A0B0C0D0E0F\"}]",
			         mac, 0xA0 + i);
			REQUIRE(pthread_create(&th[i], NULL, import_race_one, &r[i]) == 0);
		}
		for (int i = 0; i < RACERS; i++) {
			pthread_join(th[i], NULL);
			if (r[i].status == 200) {
				ok++;
				winner = i;
			} else if (r[i].status == 409) {
				conflict++;
			}
		}
		pthread_barrier_destroy(&bar);
		CHECKF(ok == 1 && conflict == RACERS - 1, "%s: %d stored, %d refused, of %d", mac,
		       ok, conflict, RACERS);
		if (ok != 1)
			continue;
		/* The stored key is the one whose registration was answered 200. */
		uint8_t key[EFUSE_KEY_BYTES] = {0, 1, 2,  3,  4,  5,  6,  7,
		                                8, 9, 10, 11, 12, 13, 14, 15};
		uint8_t tag[EFUSE_TAG_BYTES];
		char taghex[2 * EFUSE_TAG_BYTES + 1];
		key[0] = (uint8_t)(0xA0 + winner);
		efuse_tag(f.t.secrets, mac, key, tag);
		hex_encode_lower(taghex, tag, sizeof(tag));
		CHECKF(sql_long(&f.t,
		                "SELECT count(*) FROM devices WHERE mac = '%s' AND "
		                "encode(efuse_key_tag, 'hex') = '%s'",
		                mac, taghex) == 1,
		       "%s: the stored key is not the one answered 200", mac);
	}
	fx_down(&f);
}

static void lookups(void)
{
	struct fx f;
	json_t *j;
	char *text;
	REQUIRE(admin_up(&f, "admin_lookups"));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	REQUIRE(fx_self_claim(&f, &dv));
	EVP_PKEY_free(dv.key);
	char *serial =
	    sql_value(&f.t, "SELECT serial FROM certificates WHERE node_id = '%s'", MAC1);
	REQUIRE(serial);

	/* A device, by any spelling of its MAC: no key material in the reply. */
	j = ajson(&f, "GET", "/admin/v1/devices/7c:df:a1:00:00:01", TOKEN_B, NULL, 200);
	REQUIRE(j);
	CHECK(strcmp(json_string_value(json_object_get(j, "mac")), MAC1) == 0);
	json_t *rg = json_object_get(j, "registration");
	CHECK(strcmp(json_string_value(json_object_get(rg, "platform")), "esp32s3") == 0);
	CHECK(json_is_false(json_object_get(json_object_get(rg, "lockout"), "locked")));
	CHECK(json_is_null(json_object_get(json_object_get(rg, "lockout"), "locked_until")));
	const char *reg = json_string_value(json_object_get(rg, "registered"));
	CHECK(reg && strlen(reg) == 20 && reg[10] == 'T' && reg[19] == 'Z');
	json_t *n0 = json_array_get(json_object_get(j, "nodes"), 0);
	CHECK(n0 && strcmp(json_string_value(json_object_get(n0, "node_id")), MAC1) == 0 &&
	      json_is_null(json_object_get(n0, "user")) &&
	      json_is_string(json_object_get(n0, "claimed")) &&
	      json_is_null(json_object_get(n0, "released")));
	CHECK(json_array_size(json_object_get(j, "nodes")) == 1);
	CHECK(json_array_size(json_object_get(j, "certificates")) == 1);
	text = json_dumps(j, 0);
	char *sealed = sql_value(&f.t,
	                         "SELECT encode(efuse_key_sealed, 'hex') FROM devices WHERE "
	                         "mac = '%s'",
	                         MAC1);
	char *tag = sql_value(&f.t,
	                      "SELECT encode(efuse_key_tag, 'hex') FROM devices WHERE "
	                      "mac = '%s'",
	                      MAC1);
	CHECK(text && !strstr(text, "efuse") && !strstr(text, "sealed") && !strstr(text, "key") &&
	      !strcasestr(text, K1HEX) && sealed && !strcasestr(text, sealed) && tag &&
	      !strcasestr(text, tag) && strstr(text, serial));
	free(text);
	free(sealed);
	free(tag);
	json_decref(j);
	CHECK(astatus(&f, "GET", "/admin/v1/devices/7CDFA1009999", TOKEN_A, NULL) == 404);
	CHECK(astatus(&f, "GET", "/admin/v1/devices/nonsense", TOKEN_A, NULL) == 400);

	/* A node: its certificates with serial, status, not_after and PEM. */
	j = ajson(&f, "GET", "/admin/v1/nodes/" MAC1, TOKEN_B, NULL, 200);
	REQUIRE(j);
	CHECK(strcmp(json_string_value(json_object_get(j, "mac")), MAC1) == 0);
	CHECK(json_is_null(json_object_get(j, "user")));
	CHECK(strcmp(json_string_value(json_object_get(j, "platform")), "esp32s3") == 0);
	CHECK(json_is_string(json_object_get(j, "created")) &&
	      json_is_string(json_object_get(j, "claimed")) &&
	      json_is_null(json_object_get(j, "released")));
	json_t *c0 = json_array_get(json_object_get(j, "certificates"), 0);
	CHECK(c0 && strcmp(json_string_value(json_object_get(c0, "serial")), serial) == 0);
	CHECK(c0 && strcmp(json_string_value(json_object_get(c0, "status")), "valid") == 0);
	CHECK(c0 && json_is_string(json_object_get(c0, "not_after")));
	const char *pem = c0 ? json_string_value(json_object_get(c0, "pem")) : NULL;
	CHECK(pem && strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
	text = json_dumps(j, 0);
	CHECK(text && !strstr(text, "PRIVATE") && !strcasestr(text, K1HEX));
	free(text);
	json_decref(j);
	CHECK(astatus(&f, "GET", "/admin/v1/nodes/nope", TOKEN_A, NULL) == 404);
	CHECK(astatus(&f, "GET", "/admin/v1/nodes/bad%20id", TOKEN_A, NULL) == 400);
	free(serial);
	fx_down(&f);
}

/* Signs @p msg with SHA-256: ECDSA (DER), or RSA with @p pad and PSS salt @p salt. */
static char *sign_hex(EVP_PKEY *k, const char *msg, int pad, int salt)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	uint8_t sig[1024];
	size_t n = sizeof(sig);
	char *hex = NULL;

	if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, k) != 1)
		goto out;
	if (pad && EVP_PKEY_CTX_set_rsa_padding(pctx, pad) != 1)
		goto out;
	if (pad == RSA_PKCS1_PSS_PADDING && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) != 1)
		goto out;
	if (EVP_DigestSign(md, sig, &n, (const uint8_t *)msg, strlen(msg)) != 1)
		goto out;
	if ((hex = malloc(2 * n + 1)))
		hex_encode_lower(hex, sig, n);
out:
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return hex;
}

/* verify-signature of @p node: 1 valid, 0 not, -status otherwise. */
static int verify_sig(struct fx *f, const char *node, const char *challenge, const char *sighex)
{
	char path[160], *body = NULL;
	struct http_response r;
	int v;

	snprintf(path, sizeof(path), "/admin/v1/nodes/%s/verify-signature", node);
	json_t *b = json_pack("{s:s, s:s}", "challenge", challenge, "signature", sighex);
	body = json_dumps(b, 0);
	json_decref(b);
	if (req(&f->d.admin_url, "POST", path, TOKEN_B, body, &r) < 0) {
		free(body);
		return -1;
	}
	free(body);
	json_t *j = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
	v = j ? json_is_true(json_object_get(j, "valid")) : -r.status;
	json_decref(j);
	http_response_free(&r);
	return v;
}

static void verify_signature(void)
{
	struct fx f;
	const char *ch = "rainmaker-user-node-mapping-challenge-4711";
	REQUIRE(admin_up(&f, "admin_verify_signature"));
	struct sim_device ec = device(MAC1, "esp32s3", "ec");
	struct sim_device rsa = device(MAC2, "esp32c3", "rsa");
	REQUIRE(fx_self_claim(&f, &ec));
	REQUIRE(fx_self_claim(&f, &rsa));

	/* ECDSA, DER. */
	char *s = sign_hex(ec.key, ch, 0, 0);
	REQUIRE(s);
	CHECK(verify_sig(&f, MAC1, ch, s) == 1);
	CHECK(verify_sig(&f, MAC1, "another challenge", s) == 0);
	CHECK(verify_sig(&f, MAC2, ch, s) == 0); /* another node's key */
	s[10] = s[10] == '0' ? '1' : '0';
	CHECK(verify_sig(&f, MAC1, ch, s) == 0);
	free(s);
	/* RSA: PKCS#1 v1.5, and PSS with several salt lengths. */
	s = sign_hex(rsa.key, ch, RSA_PKCS1_PADDING, 0);
	REQUIRE(s);
	CHECK(verify_sig(&f, MAC2, ch, s) == 1);
	CHECK(verify_sig(&f, MAC2, "x", s) == 0);
	free(s);
	static const int salts[] = {0, 20, 32, RSA_PSS_SALTLEN_MAX};
	for (size_t i = 0; i < sizeof(salts) / sizeof(salts[0]); i++) {
		s = sign_hex(rsa.key, ch, RSA_PKCS1_PSS_PADDING, salts[i]);
		REQUIRE(s);
		CHECKF(verify_sig(&f, MAC2, ch, s) == 1, "PSS salt %d", salts[i]);
		s[strlen(s) - 1] = s[strlen(s) - 1] == '0' ? '1' : '0';
		CHECKF(verify_sig(&f, MAC2, ch, s) == 0, "PSS salt %d, altered", salts[i]);
		free(s);
	}
	/* Bad input. */
	CHECK(verify_sig(&f, MAC1, ch, "zz") == -400);
	CHECK(verify_sig(&f, MAC1, ch, "abc") == -400);
	CHECK(verify_sig(&f, MAC1, "", "00") == -400);
	CHECK(astatus(&f, "POST", "/admin/v1/nodes/" MAC1 "/verify-signature", TOKEN_B, "[1]") ==
	      400);
	/* No such node, and a node whose certificate is revoked: 404. */
	CHECK(verify_sig(&f, "7CDFA1009999", ch, "00") == -404);
	s = sign_hex(ec.key, ch, 0, 0);
	char *serial =
	    sql_value(&f.t, "SELECT serial FROM certificates WHERE node_id = '%s'", MAC1);
	REQUIRE(s && serial);
	char path[128];
	snprintf(path, sizeof(path), "/admin/v1/certificates/%s/revoke", serial);
	CHECK(astatus(&f, "POST", path, TOKEN_A, "{\"reason\":\"keyCompromise\"}") == 200);
	CHECK(verify_sig(&f, MAC1, ch, s) == -404);
	/* A new certificate (re-claim) is the current one again. */
	REQUIRE(fx_self_claim(&f, &ec));
	CHECK(verify_sig(&f, MAC1, ch, s) == 1);
	free(s);
	free(serial);
	EVP_PKEY_free(ec.key);
	EVP_PKEY_free(rsa.key);
	fx_down(&f);
}

/* Whether the CRL served on /crl lists @p serial; -1 when it cannot be had. */
static int crl_lists(struct fx *f, const char *serial)
{
	struct http_response r;
	if (req(&f->d.url, "GET", "/crl", NULL, NULL, &r) < 0 || r.status != 200) {
		http_response_free(&r);
		return -1;
	}
	const unsigned char *p = (const unsigned char *)r.body;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)r.len);
	http_response_free(&r);
	if (!crl)
		return -1;
	int found = 0;
	STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
	for (int i = 0; rev && i < sk_X509_REVOKED_num(rev); i++) {
		const ASN1_INTEGER *sn =
		    X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rev, i));
		BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		/* BN_bn2hex drops leading zeros. */
		if (hex && strlen(hex) <= strlen(serial) &&
		    strcmp(serial + strlen(serial) - strlen(hex), hex) == 0)
			found = 1;
		OPENSSL_free(hex);
		BN_free(bn);
	}
	X509_CRL_free(crl);
	return found;
}

/* The case's world with MAC1 (esp32s3) and MAC2 (esp32c3) self-claimed, EC keys. */
static bool two_claimed(struct fx *f, const char *name, struct sim_device *dv,
                        struct sim_device *dv2)
{
	if (!admin_up(f, name))
		return false;
	*dv = device(MAC1, "esp32s3", "ec");
	*dv2 = device(MAC2, "esp32c3", "ec");
	return fx_self_claim(f, dv) && fx_self_claim(f, dv2);
}

static void revoke_and_release(void)
{
	struct fx f;
	json_t *j;
	char path[160], *out = NULL;
	struct sim_device dv, dv2;
	REQUIRE(two_claimed(&f, "admin_revoke_release", &dv, &dv2));
	char *serial =
	    sql_value(&f.t, "SELECT serial FROM certificates WHERE node_id = '%s'", MAC1);
	REQUIRE(serial);
	CHECK(crl_lists(&f, serial) == 0);
	/* claimctl nodes show, before: the certificate valid, the node live. */
	CHECK(fx_claimctl(&f, &out, "nodes show " MAC1) == 0);
	CHECKF(out && strstr(out, serial) && strstr(out, "  valid  ") && !strstr(out, "released"),
	       "%s", out ? out : "");
	free(out);

	/* Lower case with ':' separators names the same serial. */
	char typed[80] = "", *o = typed;
	for (int i = 0; serial[i]; i++)
		o += sprintf(o, "%s%c", i && i % 2 == 0 ? ":" : "", serial[i] | 0x20);
	snprintf(path, sizeof(path), "/admin/v1/certificates/%s/revoke", typed);
	j = ajson(&f, "POST", path, TOKEN_A, "{\"reason\":\"keyCompromise\"}", 200);
	CHECK(j && strcmp(json_string_value(json_object_get(j, "serial")), serial) == 0);
	CHECK(j && json_is_true(json_object_get(j, "newly_revoked")));
	json_decref(j);
	/* Idempotent; asked again with another reason, the reply says the kept one. */
	j = ajson(&f, "POST", path, TOKEN_A, "{\"reason\":\"keyCompromise\"}", 200);
	CHECK(j && json_is_false(json_object_get(j, "newly_revoked")));
	json_decref(j);
	j = ajson(&f, "POST", path, TOKEN_A, "{\"reason\":\"superseded\"}", 200);
	CHECK(j && json_is_false(json_object_get(j, "newly_revoked")));
	CHECKF(j && strcmp(json_string_value(json_object_get(j, "reason")) ?: "",
	                   "keyCompromise") == 0,
	       "reason %s", j ? json_string_value(json_object_get(j, "reason")) : "");
	CHECK(j && strstr(json_string_value(json_object_get(j, "description")) ?: "",
	                  "already revoked"));
	const char *rat = j ? json_string_value(json_object_get(j, "revoked_at")) : NULL;
	CHECK(rat && strlen(rat) == 20 && rat[19] == 'Z');
	json_decref(j);
	j = ajson(&f, "POST", path, TOKEN_A, NULL, 200); /* no body: unspecified asked */
	CHECK(j &&
	      strcmp(json_string_value(json_object_get(j, "reason")) ?: "", "keyCompromise") == 0);
	json_decref(j);
	CHECK(sql_long(&f.t, "SELECT revocation_reason FROM certificates WHERE serial = '%s'",
	               serial) == 1);
	CHECK(
	    sql_long(&f.t,
	             "SELECT count(*) FROM audit WHERE event = 'revoke' AND flow = 'operator' AND "
	             "serial = '%s' AND mac = '%s' AND detail = 'keyCompromise by "
	             "admin:factory-1' AND request_id IS NOT NULL",
	             serial, MAC1) == 1);
	int listed = 0;
	for (int i = 0; i < 100 && (listed = crl_lists(&f, serial)) != 1; i++)
		usleep(50000); /* the process's CRL copy is checked every CRL_CHECK_SECONDS */
	CHECK(listed == 1);
	CHECK(fx_claimctl(&f, &out, "certs list --mac " MAC1) == 0);
	CHECKF(out && strstr(out, serial) && strstr(out, "revoked"), "%s", out);
	free(out);
	/* Refusals: unknown and malformed serials, a bad reason. */
	CHECK(astatus(&f, "POST", "/admin/v1/certificates/0123456789ABCDEF0123456789ABCDEF/revoke",
	              TOKEN_A, "{}") == 404);
	CHECK(astatus(&f, "POST", "/admin/v1/certificates/12345/revoke", TOKEN_A, "{}") == 400);
	snprintf(path, sizeof(path), "/admin/v1/certificates/%s/revoke", serial);
	CHECK(astatus(&f, "POST", path, TOKEN_A, "{\"reason\":\"stolen\"}") == 400);
	struct http_response rr;
	REQUIRE(req(&f.d.admin_url, "POST", path, TOKEN_A, "{\"reason\":\"removeFromCRL\"}", &rr) ==
	        0);
	check_failure(&rr, 400, "removeFromCRL is an RFC 5280 reason but is not supported");
	http_response_free(&rr);
	CHECK(astatus(&f, "POST", path, TOKEN_A, "{\"reason\":7}") == 400);
	CHECK(astatus(&f, "GET", path, TOKEN_A, NULL) == 405);

	/* Release MAC2's node: its certificate is revoked, on the CRL, audited. */
	char *serial2 =
	    sql_value(&f.t, "SELECT serial FROM certificates WHERE node_id = '%s'", MAC2);
	REQUIRE(serial2);
	j = ajson(&f, "POST", "/admin/v1/nodes/" MAC2 "/release", TOKEN_A, NULL, 200);
	CHECK(j && jnum(j, "certificates_revoked") == 1);
	json_decref(j);
	CHECK(sql_long(&f.t, "SELECT revocation_reason FROM certificates WHERE serial = '%s'",
	               serial2) == 5);
	CHECK(sql_long(&f.t,
	               "SELECT count(*) FROM audit WHERE event = 'release' AND node_id = '%s' AND "
	               "mac = '%s' AND detail = 'released by admin:factory-1'",
	               MAC2, MAC2) == 1);
	CHECK(fx_claimctl(&f, &out, "certs list --mac " MAC2) == 0);
	CHECKF(out && strstr(out, serial2) && strstr(out, "revoked"), "%s", out);
	free(out);
	for (int i = 0; i < 100 && (listed = crl_lists(&f, serial2)) != 1; i++)
		usleep(50000);
	CHECK(listed == 1);
	j = ajson(&f, "GET", "/admin/v1/nodes/" MAC2, TOKEN_B, NULL, 200);
	CHECK(j && json_is_string(json_object_get(j, "released")));
	json_decref(j);
	/* claimctl nodes show agrees with certs list: the same status word for each
	 * certificate, with the revocation's time and reason; a released node is marked. */
	char *list = NULL;
	CHECK(fx_claimctl(&f, &list, "certs list") == 0);
	const char *const shown[][2] = {{MAC1, serial}, {MAC2, serial2}};
	for (int k = 0; k < 2; k++) {
		const char *row = list ? strstr(list, shown[k][1]) : NULL;
		char word[16] = "";
		if (row)
			sscanf(row + strlen(shown[k][1]), " %*s %15s", word);
		char args[64], want[64];
		snprintf(args, sizeof(args), "nodes show %s", shown[k][0]);
		snprintf(want, sizeof(want), "%s  %s  ", shown[k][1], word);
		CHECK(fx_claimctl(&f, &out, args) == 0);
		CHECKF(word[0] && strcmp(word, "revoked") == 0 && out && strstr(out, want) &&
		           !strstr(out, "  valid  "),
		       "certs list says %s; nodes show:\n%s", word, out ? out : "");
		CHECKF(out && strstr(out, k == 0 ? "keyCompromise" : "cessationOfOperation"), "%s",
		       out ? out : "");
		CHECKF(out && (k == 1) == (strstr(out, "  released 2") != NULL), "%s",
		       out ? out : "");
		free(out);
	}
	free(list);
	CHECK(fx_claimctl(&f, &out, "devices show " MAC2) == 0);
	CHECKF(out && strstr(out, "  released 2"), "%s", out ? out : "");
	free(out);
	/* Released twice: no live node. Unknown and malformed node ids. */
	CHECK(astatus(&f, "POST", "/admin/v1/nodes/" MAC2 "/release", TOKEN_A, NULL) == 404);
	CHECK(astatus(&f, "POST", "/admin/v1/nodes/nope/release", TOKEN_A, NULL) == 404);
	CHECK(astatus(&f, "POST", "/admin/v1/nodes/a.b/release", TOKEN_A, NULL) == 400);
	free(serial);
	free(serial2);
	EVP_PKEY_free(dv.key);
	EVP_PKEY_free(dv2.key);
	fx_down(&f);
}

/* GET /admin/v1/certificates/{serial}: 200 with @p want's facts, or the status; the
 * reply's description (failures) into @p desc when asked for. */
static int cert_get(struct fx *f, const char *form, const char *want, char *desc, size_t descsz)
{
	char path[256];
	struct http_response r;
	snprintf(path, sizeof(path), "/admin/v1/certificates/%s", form);
	if (req(&f->d.admin_url, "GET", path, TOKEN_B, NULL, &r) < 0)
		return -1;
	int st = r.status;
	json_t *j = json_loadb(r.body, r.len, 0, NULL);
	if (st == 200 &&
	    !(j && strcmp(json_string_value(json_object_get(j, "serial")), want) == 0 &&
	      json_is_string(json_object_get(j, "mac"))))
		st = -2;
	if (desc && j && json_is_string(json_object_get(j, "description")))
		snprintf(desc, descsz, "%s", json_string_value(json_object_get(j, "description")));
	json_decref(j);
	http_response_free(&r);
	return st;
}

/*
 * Identifiers and bodies as operators' tools write them (issue 23, kind 3): a serial in
 * every printed form through GET and revoke and through claimctl; ambiguous and
 * malformed serials refused naming the form; a JSON body with a UTF-8 byte order mark on
 * every management endpoint that takes one; a self-claimed node named by its MAC in any
 * case and with separators.
 */
static void identifier_forms(void)
{
	struct fx f;
	json_t *j;
	char path[256], desc[400], *out = NULL;
	struct sim_device dv, dv2;
	REQUIRE(two_claimed(&f, "admin_identifier_forms", &dv, &dv2));
	char *serial =
	    sql_value(&f.t, "SELECT serial FROM certificates WHERE node_id = '%s'", MAC1);
	char *serial2 =
	    sql_value(&f.t, "SELECT serial FROM certificates WHERE node_id = '%s'", MAC2);
	REQUIRE(serial && serial2 && strlen(serial) == 32);

	/* The forms: lower case, no leading zeros, 0x, ':' / ' ' (as %20) / '-' between
	 * bytes, decimal, openssl x509 -serial's "serial=". */
	uint8_t b[16];
	REQUIRE(hex_decode(b, sizeof(b), serial, 32, false));
	BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
	char *dec = bn ? BN_bn2dec(bn) : NULL;
	REQUIRE(dec);
	char lower[33], bare[33], ox[40], colon[64], spaced[128], dashed[64], eq[48];
	for (int i = 0; i <= 32; i++)
		lower[i] = (char)(serial[i] ? serial[i] | 0x20 : 0);
	snprintf(bare, sizeof(bare), "%s", serial + strspn(serial, "0"));
	snprintf(ox, sizeof(ox), "0x%s", lower);
	char *c = colon, *sp = spaced, *d = dashed;
	for (int i = 0; i < 32; i += 2) {
		c += sprintf(c, "%s%.2s", i ? ":" : "", lower + i);
		sp += sprintf(sp, "%s%.2s", i ? "%20" : "", serial + i);
		d += sprintf(d, "%s%.2s", i ? "-" : "", lower + i);
	}
	snprintf(eq, sizeof(eq), "serial=%s", serial);
	const char *forms[] = {serial, lower, bare, ox, colon, spaced, dashed, dec, eq};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		CHECKF(cert_get(&f, forms[i], serial, NULL, 0) == 200, "GET %s", forms[i]);
	/* Revoked by its decimal form; each other form then finds the same, already revoked. */
	snprintf(path, sizeof(path), "/admin/v1/certificates/%s/revoke", dec);
	j = ajson(&f, "POST", path, TOKEN_A, "{\"reason\":\"keyCompromise\"}", 200);
	CHECK(j && strcmp(json_string_value(json_object_get(j, "serial")), serial) == 0 &&
	      json_is_true(json_object_get(j, "newly_revoked")));
	json_decref(j);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		snprintf(path, sizeof(path), "/admin/v1/certificates/%s/revoke", forms[i]);
		j = ajson(&f, "POST", path, TOKEN_A, NULL, 200);
		CHECKF(j && strcmp(json_string_value(json_object_get(j, "serial")), serial) == 0 &&
		           json_is_false(json_object_get(j, "newly_revoked")),
		       "revoke %s", forms[i]);
		json_decref(j);
	}
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL") ==
	      1);
	/* Refused, naming the form: decimal digits of no serial's length; mixed
	 * separators; a byte split; more than 16 bytes. A 0x value that is no serial: 404. */
	CHECK(cert_get(&f, "1234", serial, desc, sizeof(desc)) == 400);
	CHECKF(strcmp(desc, "serial: ambiguous: 1234 (4 decimal digits) could be hex or "
	                    "decimal: a claimd serial is 31-32 hex digits or 37-39 decimal "
	                    "digits; write hex with 0x (0x1234)") == 0,
	       "%s", desc);
	snprintf(path, sizeof(path), "/admin/v1/certificates/%.30s/revoke", dec);
	struct http_response rr;
	REQUIRE(req(&f.d.admin_url, "POST", path, TOKEN_A, NULL, &rr) == 0);
	check_failure(&rr, 400, "(30 decimal digits) could be hex or decimal");
	http_response_free(&rr);
	CHECK(cert_get(&f, "0a:1b-2c", serial, desc, sizeof(desc)) == 400);
	CHECKF(strstr(desc, "serial: not a certificate serial: mixes the separators"), "%s", desc);
	CHECK(cert_get(&f, "ab:1:cd", serial, desc, sizeof(desc)) == 400);
	CHECKF(strstr(desc, "whole bytes"), "%s", desc);
	CHECK(cert_get(&f, "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", serial, desc, sizeof(desc)) ==
	      400);
	CHECKF(strstr(desc, "more than 16 bytes"), "%s", desc);
	CHECK(cert_get(&f, "0x1234", serial, desc, sizeof(desc)) == 404);
	CHECKF(strstr(desc, "no such certificate"), "%s", desc);

	/* claimctl: the same forms, as arguments (a spaced one quoted). */
	char args[256];
	const char *ctl_forms[] = {lower, bare, ox, colon, dashed, dec, eq};
	for (size_t i = 0; i < sizeof(ctl_forms) / sizeof(ctl_forms[0]); i++) {
		snprintf(args, sizeof(args), "certs list --serial '%s'", ctl_forms[i]);
		CHECKF(fx_claimctl(&f, &out, args) == 0 && out && strstr(out, serial) &&
		           strstr(out, "revoked") && !strstr(out, serial2),
		       "%s: %s", args, out);
		free(out);
		out = NULL;
	}
	char spaced2[64], *s2 = spaced2;
	for (int i = 0; i < 32; i += 2)
		s2 += sprintf(s2, "%s%.2s", i ? " " : "", serial2 + i);
	snprintf(args, sizeof(args), "certs list --serial '%s'", spaced2);
	CHECKF(fx_claimctl(&f, &out, args) == 0 && out && strstr(out, serial2) &&
	           !strstr(out, "revoked"),
	       "%s", out);
	free(out);
	BN_free(bn);
	REQUIRE(hex_decode(b, sizeof(b), serial2, 32, false));
	bn = BN_bin2bn(b, sizeof(b), NULL);
	OPENSSL_free(dec);
	dec = bn ? BN_bn2dec(bn) : NULL;
	REQUIRE(dec);
	snprintf(args, sizeof(args), "certs revoke '%s' --reason superseded", spaced2);
	CHECKF(fx_claimctl(&f, &out, args) == 0 && out && strstr(out, "1 certificate(s) revoked"),
	       "%s", out);
	free(out);
	snprintf(args, sizeof(args), "certs revoke %s", dec);
	CHECKF(fx_claimctl(&f, &out, args) == 0 && out && strstr(out, "1 already revoked"), "%s",
	       out);
	free(out);
	CHECK(fx_claimctl(&f, &out, "certs revoke 1234") == 2);
	CHECKF(out &&
	           strstr(out, "certs revoke: 1234: 1234 (4 decimal digits) could be hex or "
	                       "decimal") &&
	           strstr(out, "write hex with 0x (0x1234)"),
	       "%s", out);
	free(out);
	CHECK(fx_claimctl(&f, &out, "certs list --serial 12:3") == 2);
	CHECKF(out && strstr(out, "whole bytes"), "%s", out);
	free(out);
	CHECK(fx_claimctl(&f, &out, "certs list --serial 0x1234") == 0);
	CHECKF(out && !strstr(out, serial) && !strstr(out, serial2), "%s", out);
	free(out);

	/* A self-claimed node by its MAC, any case and separators: the API's lookups,
	 * verify-signature and release, and claimctl's --node. */
	const char *macs[] = {"7cdfa1000001", "7C:DF:A1:00:00:01", "7c-df-a1-00-00-01",
	                      "7c:DF:a1:00:00:01"};
	for (size_t i = 0; i < sizeof(macs) / sizeof(macs[0]); i++) {
		snprintf(path, sizeof(path), "/admin/v1/nodes/%s", macs[i]);
		j = ajson(&f, "GET", path, TOKEN_B, NULL, 200);
		CHECKF(j && strcmp(json_string_value(json_object_get(j, "node_id")), MAC1) == 0,
		       "%s", macs[i]);
		json_decref(j);
		snprintf(args, sizeof(args), "certs list --node '%s'", macs[i]);
		CHECKF(fx_claimctl(&f, &out, args) == 0 && out && strstr(out, serial), "%s: %s",
		       args, out);
		free(out);
	}
	CHECK(astatus(&f, "GET", "/admin/v1/nodes/7c:df:a1-00:00:01", TOKEN_B, NULL) == 400);
	CHECK(astatus(&f, "GET", "/admin/v1/nodes/7cdfa1009999", TOKEN_B, NULL) == 404);

	/* A byte order mark before the JSON: every endpoint that reads a body. */
	const char *bom = "\xEF\xBB\xBF";
	char body[512];
	snprintf(body, sizeof(body),
	         "%s[{\"mac\":\"7c:df:a1:00:02:01\",\"platform\":\"esp32c6\",\"efuse_key\":"
	         "\"" K1HEX "\"}]",
	         bom);
	j = ajson(&f, "POST", "/admin/v1/devices", TOKEN_A, body, 200);
	CHECK(j && jnum(j, "added") == 1);
	json_decref(j);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM devices WHERE mac = '7CDFA1000201' AND "
	                     "platform = 'esp32c6'") == 1);
	/* verify-signature through the MAC in lower case, with a marked body. */
	REQUIRE(fx_self_claim(&f, &dv)); /* a valid certificate again */
	const char *ch = "bom-challenge";
	char *sig = sign_hex(dv.key, ch, 0, 0);
	REQUIRE(sig);
	snprintf(body, sizeof(body), "%s{\"challenge\":\"%s\",\"signature\":\"%s\"}", bom, ch, sig);
	j = ajson(&f, "POST", "/admin/v1/nodes/7cdfa1000001/verify-signature", TOKEN_B, body, 200);
	CHECK(j && json_is_true(json_object_get(j, "valid")));
	json_decref(j);
	free(sig);
	char *serial3 = sql_value(&f.t,
	                          "SELECT serial FROM certificates WHERE node_id = '%s' AND "
	                          "revoked_at IS NULL",
	                          MAC1);
	REQUIRE(serial3);
	snprintf(path, sizeof(path), "/admin/v1/certificates/%s/revoke", serial3);
	snprintf(body, sizeof(body), "%s{\"reason\":\"affiliationChanged\"}", bom);
	j = ajson(&f, "POST", path, TOKEN_A, body, 200);
	CHECK(j &&
	      strcmp(json_string_value(json_object_get(j, "reason")), "affiliationChanged") == 0);
	json_decref(j);
	CHECK(sql_long(&f.t, "SELECT revocation_reason FROM certificates WHERE serial = '%s'",
	               serial3) == 3);
	/* A mark alone is an empty body (reason unspecified); two marks, or a mark inside,
	 * are not JSON. */
	j = ajson(&f, "POST", path, TOKEN_A, bom, 200);
	CHECK(j && json_is_false(json_object_get(j, "newly_revoked")));
	json_decref(j);
	snprintf(body, sizeof(body), "%s%s{\"reason\":\"superseded\"}", bom, bom);
	CHECK(astatus(&f, "POST", path, TOKEN_A, body) == 400);
	snprintf(body, sizeof(body), " %s[]", bom);
	CHECK(astatus(&f, "POST", "/admin/v1/devices", TOKEN_A, body) == 400);
	/* Release through a MAC with separators. */
	j = ajson(&f, "POST", "/admin/v1/nodes/7C-DF-A1-00-00-02/release", TOKEN_A, NULL, 200);
	CHECK(j && strcmp(json_string_value(json_object_get(j, "node_id")), MAC2) == 0);
	json_decref(j);

	free(serial3);
	OPENSSL_free(dec);
	BN_free(bn);
	free(serial);
	free(serial2);
	EVP_PKEY_free(dv.key);
	EVP_PKEY_free(dv2.key);
	if (t_failures)
		daemon_dump_log(&f.d);
	fx_down(&f);
}

#define REQUIRED_KEYS "ca:\n  certificate: ca.pem\n  key: ca.key\nsecrets:\n  key_file: s.key\n"

/* Loads @p text: NULL-free success when @p want is NULL, else a failure naming @p want. */
static void config_case(const char *text, const char *want)
{
	char err[512] = "";
	struct claimd_config *c =
	    config_load_buffer("c.yaml", text, strlen(text), err, sizeof(err));
	if (want)
		CHECKF(!c && strstr(err, want), "want '%s', got '%s'", want, err);
	else
		CHECKF(c != NULL, "%s", err);
	config_free(c);
}

static void config_keys(void)
{
	/* Off by default; on with both keys; the tokens file is required with a listener. */
	config_case(REQUIRED_KEYS, NULL);
	config_case(REQUIRED_KEYS "admin:\n  listen: \"127.0.0.1:8081\"\n  tokens_file: t\n", NULL);
	config_case(REQUIRED_KEYS "admin:\n  listen: \"[::1]:8081\"\n  tokens_file: t\n", NULL);
	config_case(REQUIRED_KEYS "admin:\n  listen: \"127.0.0.1:8081\"\n",
	            "admin.tokens_file: required when admin.listen is set");
	config_case(REQUIRED_KEYS "admin:\n  listen: \"nohost\"\n  tokens_file: t\n",
	            "c.yaml:7:11: admin.listen: expected host:port");
	config_case(REQUIRED_KEYS "admin:\n  listen: \"a:70000\"\n  tokens_file: t\n",
	            "admin.listen: port must be 0-65535");
	config_case(REQUIRED_KEYS "admin:\n  bogus: 1\n", "unknown key 'admin.bogus'");
	/* /metrics on the management listener only: it must exist. */
	config_case(REQUIRED_KEYS "server:\n  metrics: admin\n",
	            "server.metrics: admin needs admin.listen");
	config_case(REQUIRED_KEYS "server:\n  metrics: private\n",
	            "c.yaml:7:12: server.metrics: expected public or admin");
	config_case(
	    REQUIRED_KEYS
	    "server:\n  metrics: admin\nadmin:\n  listen: \"127.0.0.1:8081\"\n  tokens_file: t\n",
	    NULL);
	/* admin.listen needs a restart; the tokens file is re-read on SIGHUP. */
	char err[256];
	const char *a = REQUIRED_KEYS "admin:\n  listen: \"127.0.0.1:1\"\n  tokens_file: a\n";
	const char *b = REQUIRED_KEYS "admin:\n  listen: \"127.0.0.1:2\"\n  tokens_file: b\n";
	struct claimd_config *x = config_load_buffer("a.yaml", a, strlen(a), err, sizeof(err));
	struct claimd_config *y = config_load_buffer("b.yaml", b, strlen(b), err, sizeof(err));
	REQUIRE(x && y);
	size_t pos = 0;
	const char *k = config_next_restart_change(x, y, &pos);
	CHECKF(k && strcmp(k, "admin.listen") == 0, "%s", k ? k : "(none)");
	CHECK(config_next_restart_change(x, y, &pos) == NULL);
	config_free(x);
	config_free(y);
}

/* Ends claimd's sessions (both listeners' workers) on the case's database. */
static void end_sessions(struct fx *f)
{
	CHECK(sql_long(&f->t, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000)"
	                      " FROM pg_stat_activity WHERE application_name = 'claimd'"
	                      " AND datname = current_database()) s") >= 0);
}

/*
 * PostgreSQL ends claimd's sessions (a restart, a failover, an idle-session reaper)
 * before each management request: every one is answered as if nothing had happened,
 * through the same reconnect-and-retry as the claims, never 500 (issue 24: an import
 * got 500 with nothing logged). Label outage too.
 */
static void lost_connections(void)
{
	struct fx f;
	char path[160];
	const char *two = "[{\"mac\":\"7CDFA1000101\",\"platform\":\"esp32s3\","
	                  "\"efuse_key\":\"" K1HEX "\"},"
	                  "{\"mac\":\"7CDFA1000102\",\"platform\":\"esp32c3\","
	                  "\"efuse_key\":\"" K1HEX "\"}]";
	REQUIRE(admin_up(&f, "admin_lost_connections"));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	REQUIRE(fx_self_claim(&f, &dv));
	EVP_PKEY_free(dv.key);
	char *serial =
	    sql_value(&f.t, "SELECT serial FROM certificates WHERE node_id = '%s'", MAC1);
	REQUIRE(serial);
	/* Twice each: the management API has two workers, each with its connection. */
	for (int round = 0; round < 2; round++) {
		end_sessions(&f);
		CHECK(astatus(&f, "POST", "/admin/v1/devices", TOKEN_A, two) == 200);
		end_sessions(&f);
		CHECK(astatus(&f, "GET", "/admin/v1/devices/" MAC1, TOKEN_B, NULL) == 200);
		end_sessions(&f);
		CHECK(astatus(&f, "GET", "/admin/v1/nodes/" MAC1, TOKEN_B, NULL) == 200);
		end_sessions(&f);
		snprintf(path, sizeof(path), "/admin/v1/certificates/%s/revoke", serial);
		CHECK(astatus(&f, "POST", path, TOKEN_A, "{\"reason\":\"keyCompromise\"}") == 200);
	}
	/* The revocation reaches the CRL through the same runner. */
	end_sessions(&f);
	int listed = 0;
	for (int i = 0; i < 100 && (listed = crl_lists(&f, serial)) != 1; i++)
		usleep(50000);
	CHECK(listed == 1);
	end_sessions(&f);
	CHECK(astatus(&f, "POST", "/admin/v1/nodes/" MAC1 "/release", TOKEN_A, "{}") == 200);
	CHECKF(!log_has(&f, "-> 500"), "a 500 in the log");
	CHECK(sql_long(&f.t, "SELECT count(*) FROM devices WHERE mac IN ('7CDFA1000101',"
	                     " '7CDFA1000102')") == 2);
	free(serial);
	if (t_failures)
		daemon_dump_log(&f.d);
	fx_down(&f);
}

/* The access line (it has "status") of a request on @p route with @p mac and a status
 * that is (@p ok) or is not 200; its request id, or NULL. */
static const char *access_id(json_t *all, const char *route, const char *mac, bool ok)
{
	size_t i;
	json_t *o;
	json_array_foreach(all, i, o)
	{
		const char *r = json_string_value(json_object_get(o, "route"));
		const char *m = json_string_value(json_object_get(o, "mac"));
		json_t *st = json_object_get(o, "status");
		if (st && r && strcmp(r, route) == 0 && (!mac || (m && strcmp(m, mac) == 0)) &&
		    (json_integer_value(st) == 200) == ok)
			return json_string_value(json_object_get(o, "request_id"));
	}
	return NULL;
}

/* The request_id field of the first line whose message contains @p text, or NULL. */
static const char *line_id(json_t *all, const char *text, bool *found)
{
	size_t i;
	json_t *o;
	*found = false;
	json_array_foreach(all, i, o)
	{
		const char *m = json_string_value(json_object_get(o, "message"));
		if (m && strstr(m, text)) {
			*found = true;
			return json_string_value(json_object_get(o, "request_id"));
		}
	}
	return NULL;
}

/*
 * log.format: json: every line written while a request is served carries its request id
 * as the "request_id" field (the claim, the wrong response, the lockout, the management
 * API's actions), the same id as the request's access line; the message text no longer
 * has to carry it. Lines outside any request (start-up, shutdown) carry none.
 */
static void json_log_request_ids(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	json_t *j;
	char path[160];

	REQUIRE(admin_up_with(&f, "admin_json_log_ids",
	                      "log:\n  format: json\nlimits:\n  lockout_failures: 2\n"));
	j = ajson(&f, "POST", "/admin/v1/devices", TOKEN_A,
	          "[{\"mac\":\"7CDFA1000301\",\"platform\":\"esp32s3\",\"efuse_key\":\"" K1HEX
	          "\"}]",
	          200);
	json_decref(j);
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	REQUIRE(fx_self_claim(&f, &dv));
	/* Two wrong responses for MAC2: a wrong-response line each, then the lockout. */
	static const uint8_t wrong[16] = {0xff};
	for (int i = 0; i < 2; i++) {
		REQUIRE(initiate(&f.d, MAC2, "esp32c3", &s));
		char *b = verify_body(&s, wrong, dv.key, MAC2);
		REQUIRE(b && verify(&f.d, b, &r) == 0);
		CHECK(r.status != 200);
		http_response_free(&r);
		free(b);
	}
	char *serial =
	    sql_value(&f.t, "SELECT serial FROM certificates WHERE node_id = '%s'", MAC1);
	REQUIRE(serial);
	snprintf(path, sizeof(path), "/admin/v1/certificates/%s/revoke", serial);
	CHECK(astatus(&f, "POST", path, TOKEN_A, "{\"reason\":\"keyCompromise\"}") == 200);
	CHECK(astatus(&f, "POST", "/admin/v1/nodes/" MAC1 "/release", TOKEN_A, NULL) == 200);
	REQUIRE(daemon_stop(&f.d) == 0);
	f.d.pid = 0;

	json_t *all = json_array();
	FILE *lf = fopen(f.d.log, "r");
	char *line = NULL;
	size_t cap = 0;
	while (lf && getline(&line, &cap, lf) > 0) {
		json_t *o = json_loads(line, 0, NULL);
		CHECKF(json_is_object(o), "not a JSON object: %s", line);
		json_array_append_new(all, o ? o : json_null());
	}
	free(line);
	if (lf)
		fclose(lf);

	/* Each line about a request names the request its access line names. */
	static const struct {
		const char *text, *route, *mac;
		bool ok;
	} about[] = {
	    {"devices registered by admin:factory-1", "/admin/v1/devices", NULL, true},
	    {"POST /admin/v1/devices by admin:factory-1", "/admin/v1/devices", NULL, true},
	    {"claimed " MAC1, "/claim/verify", MAC1, true},
	    {"wrong challenge response for " MAC2, "/claim/verify", MAC2, false},
	    {MAC2 " locked for", "/claim/verify", MAC2, false},
	    {"revoked (keyCompromise) by admin:factory-1", "/admin/v1/certificates/*/revoke", NULL,
	     true},
	    {"node " MAC1 " released by admin:factory-1", "/admin/v1/nodes/*/release", NULL, true},
	};
	for (size_t i = 0; i < sizeof(about) / sizeof(about[0]); i++) {
		bool found;
		const char *id = line_id(all, about[i].text, &found);
		const char *want = access_id(all, about[i].route, about[i].mac, about[i].ok);
		CHECKF(found, "no line with \"%s\"", about[i].text);
		CHECKF(id && want && strlen(id) >= 16, "\"%s\": request_id %s, its request %s",
		       about[i].text, id ? id : "(none)", want ? want : "(none)");
		/* The wrong-response lines are two requests: the id is one of theirs. */
		if (id && want && !strstr(about[i].text, MAC2))
			CHECKF(strcmp(id, want) == 0, "\"%s\": %s, not %s", about[i].text, id,
			       want);
	}
	/* Every request_id on any line is one of a request's, and its text does not repeat
	 * it; start-up and shutdown lines carry none. */
	size_t i;
	json_t *o;
	bool listening = false;
	json_array_foreach(all, i, o)
	{
		const char *id = json_string_value(json_object_get(o, "request_id"));
		const char *m = json_string_value(json_object_get(o, "message"));
		if (m && strstr(m, "listening"))
			listening = true;
		if (!id)
			continue;
		bool known = false;
		size_t k;
		json_t *a;
		json_array_foreach(all, k, a)
		{
			const char *aid = json_string_value(json_object_get(a, "request_id"));
			if (json_object_get(a, "status") && aid && strcmp(aid, id) == 0)
				known = true;
		}
		CHECKF(known, "request_id %s belongs to no request: %s", id, m ? m : "");
		CHECKF(m && !strstr(m, id), "the id is in the text too: %s", m ? m : "");
		CHECKF(listening, "a request_id before \"listening\": %s", m ? m : "");
	}
	json_decref(all);
	free(serial);
	EVP_PKEY_free(dv.key);
	tenv_teardown(&f.t);
}

static const struct t_case cases[] = {
    {"config_keys", config_keys},           {"auth_failures", auth_failures},
    {"public_listener", public_listener},   {"register_devices", register_devices},
    {"import_race", import_race},           {"lookups", lookups},
    {"verify_signature", verify_signature}, {"revoke_and_release", revoke_and_release},
    {"lost_connections", lost_connections}, {"json_log_request_ids", json_log_request_ids},
    {"identifier_forms", identifier_forms}, {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
