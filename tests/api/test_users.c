/*
 * API tests of assisted (phone app) and host-driven (CLI) claiming: real tokens from a
 * development identity provider made at test time, a real daemon and database, the
 * clients' own escaping and separators, hostile tokens, stability and quota races.
 */
#include <jwt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "sim/devidp.h"
#include "lib/util.h"
#include "harness.h"

#define ISSUER   TEST_ISSUER
#define AUDIENCE TEST_AUDIENCE

struct ufx {
	struct fx f;
	char idp[1200];
	char yaml[512];
};

/* A world with users.jwt pointing at a fresh development IdP of @p keytype. */
static bool ufx_up(struct ufx *u, const char *name, const char *keytype, unsigned quota,
                   const char *mqtt_host)
{
	struct topts o = {.mqtt_host = mqtt_host,
	                  .mqtt_cred_host = mqtt_host ? "creds.test" : NULL};

	test_users_yaml(u->yaml, sizeof(u->yaml), quota);
	o.extra = u->yaml;
	if (!tenv_setup(&u->f.t, name, &o))
		return false;
	if (!test_idp_create(&u->f.t, keytype, u->idp))
		return false;
	if (!tenv_add_device(&u->f.t, MAC1, "esp32s3", K1))
		return false;
	return daemon_start(&u->f.t, &u->f.d);
}

static char *token_for(struct ufx *u, const char *user)
{
	return test_token(u->idp, user);
}

static bool claim(struct ufx *u, enum sim_client client, const char *token, const char *mac,
                  struct sim_user_result *res)
{
	EVP_PKEY *k = sim_key_new("ec");
	int rc = sim_user_claim(&u->f.d.url, client, token, mac,
	                        client == SIM_CLI ? "host" : "esp32", k, u->f.t.root, res);
	if (rc < 0)
		fprintf(stderr, "claim of %s: %s\n", mac, res->err);
	EVP_PKEY_free(k);
	return rc == 0;
}

static void res_free(struct sim_user_result *r)
{
	free(r->certificate);
	free(r->body);
	r->certificate = r->body = NULL;
}

static bool valid_node_id(const char *s)
{
	if (strlen(s) != 22)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static void assisted_android(void)
{
	struct ufx u;
	struct sim_user_result r;
	REQUIRE(ufx_up(&u, "assisted_android", "ec", 5, "mqtt.test"));
	char *tok = token_for(&u, "alice");
	REQUIRE(tok);
	REQUIRE(claim(&u, SIM_ANDROID, tok, "7CDFA1000101", &r));
	CHECK(valid_node_id(r.node_id));
	/* send_mqtt_host:true brings mqtt_host; mqtt_cred_host is a self-claim field. */
	char host[64];
	CHECK(sim_firmware_string(r.body, "mqtt_host", host, sizeof(host), false) &&
	      strcmp(host, "mqtt.test") == 0);
	CHECK(!strstr(r.body, "mqtt_cred_host"));
	check_cert_reply(r.body, strlen(r.body), "mqtt.test", NULL);
	CHECK(sql_long(&u.f.t,
	               "SELECT count(*) FROM nodes WHERE node_id = '%s' AND user_id = 'alice' "
	               "AND mac = '7CDFA1000101' AND platform = 'esp32' AND claimed_at IS NOT NULL "
	               "AND pending_until IS NULL",
	               r.node_id) == 1);
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM certificates WHERE node_id = '%s'",
	               r.node_id) == 1);
	CHECK(sql_long(&u.f.t,
	               "SELECT count(*) FROM audit WHERE flow = 'user' AND user_id = 'alice' "
	               "AND outcome = 'ok' AND node_id = '%s'",
	               r.node_id) == 2);
	/* A user claim's certificate counts in /metrics like a self claim's. */
	struct http_response m;
	REQUIRE(raw(&u.f.d, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &m) == 0);
	CHECKF(m.status == 200 &&
	           strstr(m.body, "\nclaimd_certificates_issued_total{flow=\"user\"} 1\n"),
	       "%s", m.body);
	http_response_free(&m);
	res_free(&r);
	free(tok);
	fx_down(&u.f);
}

static void assisted_ios_bearer(void)
{
	struct ufx u;
	struct sim_user_result r;
	REQUIRE(ufx_up(&u, "assisted_ios_bearer", "ec", 5, NULL));
	char *tok = token_for(&u, "bob"), *bearer = NULL;
	REQUIRE(tok && asprintf(&bearer, "Bearer %s", tok) > 0);
	REQUIRE(claim(&u, SIM_IOS, bearer, "7CDFA1000102", &r));
	CHECK(valid_node_id(r.node_id));
	CHECK(!strstr(r.body, "mqtt_host")); /* none configured */
	res_free(&r);
	free(bearer);
	free(tok);
	fx_down(&u.f);
}

static void host_driven_cli(void)
{
	struct ufx u;
	struct sim_user_result r;
	REQUIRE(ufx_up(&u, "host_driven_cli", "rsa", 5, "mqtt.test"));
	char *tok = token_for(&u, "carol"); /* RS256 this time */
	REQUIRE(tok);
	/* The CLI leaves ':' in the MAC, says platform "host" and asks ?matter=False. */
	REQUIRE(claim(&u, SIM_CLI, tok, "7C:DF:A1:00:01:03", &r));
	CHECK(!strstr(r.body, "mqtt_host")); /* the CLI does not send send_mqtt_host */
	check_cert_reply(r.body, strlen(r.body), NULL, NULL);
	CHECK(sql_long(&u.f.t,
	               "SELECT count(*) FROM nodes WHERE node_id = '%s' AND mac = "
	               "'7CDFA1000103' AND platform = 'host'",
	               r.node_id) == 1);
	res_free(&r);
	free(tok);
	fx_down(&u.f);
}

/* The text of DIR/MAC/NAME as the CLI would leave it for its NVS image, or "". */
static void cli_file(const struct ufx *u, const char *mac, const char *name, char *out,
                     size_t outsz)
{
	char path[1400];
	snprintf(path, sizeof(path), "%s/cli/%s/%s", u->f.t.dir, mac, name);
	char *t = file_read_all(path, 1 << 16, NULL);
	snprintf(out, outsz, "%s", t ? t : "");
	free(t);
}

/*
 * The unmodified CLI completes with every valid config: claimsim cli (the CLI's
 * requests, then the files its NVS image reads) against claimd with both MQTT hosts,
 * with the MQTT host only (the example config's shape), and with neither, where the
 * CLI stops at its first request, before anything is claimed. Base URLs with and
 * without the trailing slash the CLI's profile carries.
 */
static void cli_every_config(void)
{
	static const struct {
		const char *mqtt, *cred, *want_cred, *mac;
	} cfgs[] = {
	    {"mqtt.test", NULL, "mqtt.test", "7CDFA1000A01"},
	    {"mqtt.test", "creds.test", "creds.test", "7C:DF:A1:00:0A:02"},
	    {NULL, NULL, NULL, "7cdfa1000a03"},
	};
	for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
		struct ufx u;
		char name[64], text[512], *out = NULL;
		snprintf(name, sizeof(name), "cli_every_config_%zu", i);
		struct topts o = {.mqtt_host = cfgs[i].mqtt, .mqtt_cred_host = cfgs[i].cred};
		test_users_yaml(u.yaml, sizeof(u.yaml), 5);
		o.extra = u.yaml;
		REQUIRE(tenv_setup(&u.f.t, name, &o) && test_idp_create(&u.f.t, "ec", u.idp) &&
		        daemon_start(&u.f.t, &u.f.d));
		char *tok = token_for(&u, "erin");
		REQUIRE(tok);
		/* --out names a directory that does not exist yet: claimsim makes it. */
		int rc = t_run(&out,
		               "'%s' cli --url http://127.0.0.1:%u%s --token '%s' --mac %s --out "
		               "'%s/cli' --root '%s' 2>&1",
		               t_bin("claimsim"), u.f.d.port, i % 2 ? "/" : "", tok, cfgs[i].mac,
		               u.f.t.dir, u.f.t.root);
		if (cfgs[i].mqtt) {
			CHECKF(rc == 0, "%s", out);
			cli_file(&u, cfgs[i].mac, "endpoint.info", text, sizeof(text));
			CHECKF(strcmp(text, cfgs[i].mqtt) == 0, "endpoint.info '%s'", text);
			cli_file(&u, cfgs[i].mac, "mqtt_cred_host.info", text, sizeof(text));
			CHECKF(strcmp(text, cfgs[i].want_cred) == 0, "mqtt_cred_host.info '%s'",
			       text);
			cli_file(&u, cfgs[i].mac, "node.crt", text, sizeof(text));
			CHECK(strncmp(text, "-----BEGIN CERTIFICATE-----", 27) == 0);
		} else {
			/* Refused at GET /mqtt_host, naming the key; nothing initiated. */
			CHECKF(rc != 0 && out && strstr(out, "GET /mqtt_host") &&
			           strstr(out, "claim.mqtt_host"),
			       "%s", out);
			CHECK(sql_long(&u.f.t, "SELECT count(*) FROM nodes") == 0);
			/* ...and claimd -t says so before anyone tries. */
			char *chk = NULL;
			CHECK(t_run(&chk, "'%s' -t --no-database -c '%s' 2>&1", t_bin("claimd"),
			            u.f.t.config) == 0 &&
			      chk && strstr(chk, "warning: users.jwt is set but claim.mqtt_host"));
			free(chk);
		}
		free(out);
		free(tok);
		fx_down(&u.f);
	}
}

static void node_id_stability(void)
{
	struct ufx u;
	struct sim_user_result r1, r2, r3, r4;
	REQUIRE(ufx_up(&u, "node_id_stability", "ec", 5, "mqtt.test"));
	char *alice = token_for(&u, "alice"), *bob = token_for(&u, "bob");
	REQUIRE(alice && bob);
	REQUIRE(claim(&u, SIM_ANDROID, alice, "7CDFA1000201", &r1));
	REQUIRE(claim(&u, SIM_CLI, alice, "7c-df-a1-00-02-01", &r2));
	REQUIRE(claim(&u, SIM_ANDROID, bob, "7CDFA1000201", &r3));
	CHECK(strcmp(r1.node_id, r2.node_id) == 0); /* same user, same MAC */
	CHECK(strcmp(r1.node_id, r3.node_id) != 0); /* another user */
	/* A registered, already self-claimed MAC can still be taken by a user. */
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	struct sim_result sr;
	CHECKF(sim_self_claim(&u.f.d.url, &dv, NULL, u.f.t.root, &sr) == 0, "%s", sr.err);
	free(sr.certificate);
	EVP_PKEY_free(dv.key);
	REQUIRE(claim(&u, SIM_ANDROID, alice, MAC1, &r4));
	CHECK(strcmp(r4.node_id, MAC1) != 0 && valid_node_id(r4.node_id));
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM nodes WHERE mac = '%s'", MAC1) == 2);
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM nodes WHERE mac = '7CDFA1000201'") == 2);
	/* claimctl shows the mappings. */
	char *out = NULL;
	CHECK(t_run(&out, "'%s' -c '%s' nodes list --user alice", t_bin("claimctl"),
	            u.f.t.config) == 0);
	CHECK(out && strstr(out, r1.node_id) && strstr(out, r4.node_id) &&
	      !strstr(out, r3.node_id));
	free(out);
	CHECK(t_run(&out, "'%s' -c '%s' nodes show 7C:DF:A1:00:00:01", t_bin("claimctl"),
	            u.f.t.config) == 0);
	CHECK(out && strstr(out, "node " MAC1) && strstr(out, "(self-claimed)") &&
	      strstr(out, r4.node_id) && strstr(out, "certificate "));
	free(out);
	res_free(&r1);
	res_free(&r2);
	res_free(&r3);
	res_free(&r4);
	free(alice);
	free(bob);
	fx_down(&u.f);
}

/* POSTs with a user's token (raw); returns the reply. */
static int upost(struct ufx *u, const char *token, const char *path, const char *body,
                 struct http_response *r)
{
	return user_post(&u->f.d, token, path, body, r);
}

static char *user_initiate(struct ufx *u, const char *token, const char *mac)
{
	char body[128], node[65];
	struct http_response r;
	snprintf(body, sizeof(body), "{\"mac_addr\":\"%s\",\"platform\":\"esp32\"}", mac);
	if (upost(u, token, "claim/initiate", body, &r) < 0)
		return NULL;
	bool ok =
	    r.status == 200 && sim_firmware_string(r.body, "node_id", node, sizeof(node), false);
	if (!ok)
		fprintf(stderr, "initiate: %d %s\n", r.status, r.body);
	http_response_free(&r);
	return ok ? strdup(node) : NULL;
}

static int user_verify(struct ufx *u, const char *token, const char *cn, const char *extra,
                       struct http_response *r)
{
	EVP_PKEY *k = sim_key_new("ec");
	char *csr = sim_csr_pem(k, cn, false), *js = sim_json_string(csr, SIM_ANDROID), *b = NULL;
	int rc = asprintf(&b, "{\"csr\":%s%s}", js, extra) < 0
	             ? -1
	             : upost(u, token, "claim/verify", b, r);
	free(b);
	free(js);
	free(csr);
	EVP_PKEY_free(k);
	return rc;
}

static void parallel_devices_and_correlation(void)
{
	struct ufx u;
	struct http_response r;
	REQUIRE(ufx_up(&u, "parallel_devices_and_correlation", "ec", 5, NULL));
	char *alice = token_for(&u, "alice"), *bob = token_for(&u, "bob");
	REQUIRE(alice && bob);
	/* Two devices initiated, verified in the other order: both work. */
	char *a = user_initiate(&u, alice, "7CDFA1000301"),
	     *b = user_initiate(&u, alice, "7CDFA1000302");
	REQUIRE(a && b);
	REQUIRE(user_verify(&u, alice, b, "", &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	http_response_free(&r);
	REQUIRE(user_verify(&u, alice, a, ",\"node_policies\":\"videostream\"", &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	http_response_free(&r);
	CHECK(sql_long(&u.f.t,
	               "SELECT count(*) FROM nodes WHERE node_id = '%s' AND node_policies = "
	               "'videostream'",
	               a) == 1);
	/* Single use: the same node again without a new initiate is refused. */
	REQUIRE(user_verify(&u, alice, a, "", &r) == 0);
	check_failure(&r, 400, "csr: CN is not a node this user initiated");
	http_response_free(&r);
	/* Another user's node, and a node nobody initiated. */
	char *c = user_initiate(&u, alice, "7CDFA1000303");
	REQUIRE(c);
	REQUIRE(user_verify(&u, bob, c, "", &r) == 0);
	check_failure(&r, 400, "csr: CN is not a node this user initiated");
	http_response_free(&r);
	REQUIRE(user_verify(&u, alice, "AAAAAAAAAAAAAAAAAAAAAA", "", &r) == 0);
	check_failure(&r, 400, "csr: CN is not a node this user initiated");
	http_response_free(&r);
	/* An initiate older than the TTL no longer counts. */
	PQclear(PQexec(u.f.t.pg, "UPDATE nodes SET pending_until = now() - interval '1 second'"));
	REQUIRE(user_verify(&u, alice, c, "", &r) == 0);
	check_failure(&r, 400, "or the initiate expired");
	http_response_free(&r);
	/* Escapes as the apps write them (\u003d, \u002d, \/) are decoded, not refused. */
	char *e = user_initiate(&u, alice, "7CDFA1000304");
	REQUIRE(e);
	EVP_PKEY *k = sim_key_new("ec");
	char *csr = sim_csr_pem(k, e, false), *esc = malloc(strlen(csr) * 6 + 64), *o = esc, *vb;
	for (const char *q = csr; *q; q++)
		o += *q == '-' || *q == '=' ? sprintf(o, "\\u%04x", *q)
		     : *q == '\n'           ? sprintf(o, "\\n")
		     : *q == '/'            ? sprintf(o, "\\/")
		                            : sprintf(o, "%c", *q);
	REQUIRE(strstr(esc, "\\u002d") &&
	        asprintf(&vb, "{\"csr\":\"%s\",\"send_mqtt_host\":true}", esc) > 0);
	REQUIRE(upost(&u, alice, "claim/verify", vb, &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	http_response_free(&r);
	free(vb);
	free(esc);
	free(csr);
	free(e);
	EVP_PKEY_free(k);
	/* Field checks of the user verify. */
	REQUIRE(upost(&u, alice, "claim/verify", "{\"send_mqtt_host\":true}", &r) == 0);
	check_failure(&r, 400, "csr: missing");
	http_response_free(&r);
	c = (free(c), user_initiate(&u, alice, "7CDFA1000303"));
	REQUIRE(user_verify(&u, alice, c, ",\"send_mqtt_host\":\"yes\"", &r) == 0);
	check_failure(&r, 400, "send_mqtt_host: must be true or false");
	http_response_free(&r);
	REQUIRE(upost(&u, alice, "claim/verify?matter=true", "{\"csr\":\"x\"}", &r) == 0);
	check_failure(&r, 400, "Matter");
	http_response_free(&r);
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM audit WHERE flow = 'user' AND reason = "
	                       "'CSR_NOT_INITIATED'") == 4);
	free(a);
	free(b);
	free(c);
	free(alice);
	free(bob);
	fx_down(&u.f);
}

static void quota_rules(void)
{
	struct ufx u;
	struct http_response r;
	REQUIRE(ufx_up(&u, "quota_rules", "ec", 2, NULL));
	char *alice = token_for(&u, "alice");
	REQUIRE(alice);
	char *a = user_initiate(&u, alice, "7CDFA1000401"),
	     *b = user_initiate(&u, alice, "7CDFA1000402");
	REQUIRE(a && b);
	REQUIRE(upost(&u, alice, "claim/initiate",
	              "{\"mac_addr\":\"7CDFA1000403\",\"platform\":\"esp32\"}", &r) == 0);
	check_failure(&r, 400, "quota: this user has claimed as many devices as allowed");
	http_response_free(&r);
	/* Re-claiming a MAC already held never counts again. */
	char *a2 = user_initiate(&u, alice, "7CDFA1000401");
	CHECK(a2 && strcmp(a, a2) == 0);
	/* A per-user override, then unlimited. */
	char *out = NULL;
	CHECK(t_run(&out, "'%s' -c '%s' users quota alice 3", t_bin("claimctl"), u.f.t.config) ==
	      0);
	free(out);
	char *c = user_initiate(&u, alice, "7CDFA1000403");
	CHECK(c != NULL);
	CHECK(user_initiate(&u, alice, "7CDFA1000404") == NULL);
	CHECK(t_run(&out, "'%s' -c '%s' users quota alice 0", t_bin("claimctl"), u.f.t.config) ==
	      0);
	free(out);
	char *d = user_initiate(&u, alice, "7CDFA1000404");
	CHECK(d != NULL);
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM audit WHERE reason = 'QUOTA'") == 2);
	free(a);
	free(a2);
	free(b);
	free(c);
	free(d);
	free(alice);
	fx_down(&u.f);
}

/* ---- hostile tokens ---- */

static char *b64url_json(const char *json)
{
	char *out = malloc(strlen(json) * 2 + 8);
	b64url_encode(out, strlen(json) * 2 + 8, (const uint8_t *)json, strlen(json));
	return out;
}

static void expect_401(struct ufx *u, const char *what, const char *token)
{
	struct http_response r;
	if (upost(u, token, "claim/initiate",
	          "{\"mac_addr\":\"7CDFA1000501\",\"platform\":\"esp32\"}", &r) < 0) {
		CHECKF(false, "%s: no reply", what);
		return;
	}
	CHECKF(r.status == 401, "%s: status %d %s", what, r.status, r.body);
	check_failure(&r, 401, "unauthorized");
	http_response_free(&r);
}

static void hostile_tokens(void)
{
	struct ufx u;
	char err[256], *t, *pub;
	size_t publen;
	REQUIRE(ufx_up(&u, "hostile_tokens", "rsa", 5, NULL));
	long now = (long)time(NULL);
	struct devtoken base = {.key_file = u.idp,
	                        .kid = "k1",
	                        .issuer = ISSUER,
	                        .audience = AUDIENCE,
	                        .user = "mallory",
	                        .ttl = 600};

	/* A good token works, so the refusals below are about the token alone. */
	t = devidp_token(&base, err, sizeof(err));
	REQUIRE(t);
	char *node = user_initiate(&u, t, "7CDFA1000501");
	CHECK(node != NULL);
	free(node);
	/* Tampered payload: same signature, another user. */
	char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
	char payload[256];
	snprintf(payload, sizeof(payload),
	         "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"admin\",\"exp\":%ld}",
	         now + 600);
	char *p64 = b64url_json(payload), *forged = NULL;
	REQUIRE(asprintf(&forged, "%.*s.%s%s", (int)(dot1 - t), t, p64, dot2) > 0);
	expect_401(&u, "tampered payload", forged);
	free(forged);
	/* alg none, with and without a signature part. */
	char *h64 = b64url_json("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}");
	REQUIRE(asprintf(&forged, "%s.%s.", h64, p64) > 0);
	expect_401(&u, "alg none", forged);
	free(forged);
	REQUIRE(asprintf(&forged, "%s.%s.%s", h64, p64, dot2 + 1) > 0);
	expect_401(&u, "alg none with a signature", forged);
	free(forged);
	free(h64);
	/* HS256 keyed with the public key (the classic algorithm confusion). */
	char jwks_path[1200];
	snprintf(jwks_path, sizeof(jwks_path), "%s/idp/jwks.json", u.f.t.dir);
	char keypath[1200];
	snprintf(keypath, sizeof(keypath), "%s/idp/pub.pem", u.f.t.dir);
	t_run(NULL, "openssl pkey -in '%s' -pubout -out '%s'", u.idp, keypath);
	pub = file_read_all(keypath, 65536, &publen);
	REQUIRE(pub);
	jwt_t *j = NULL;
	REQUIRE(jwt_new(&j) == 0);
	jwt_add_header(j, "kid", "k1");
	jwt_add_grant(j, "iss", ISSUER);
	jwt_add_grant(j, "aud", AUDIENCE);
	jwt_add_grant(j, "sub", "mallory");
	jwt_add_grant_int(j, "exp", now + 600);
	jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)pub, (int)publen);
	forged = jwt_encode_str(j);
	REQUIRE(forged);
	expect_401(&u, "HS256 with the public key", forged);
	free(forged);
	jwt_free(j);
	free(pub);
	/* Unknown kid; a key that is not the IdP's. */
	struct devtoken bad = base;
	bad.kid = "nope";
	char *x = devidp_token(&bad, err, sizeof(err));
	expect_401(&u, "unknown kid", x);
	free(x);
	char other[1200], otherkey[1300];
	snprintf(other, sizeof(other), "%s/other", u.f.t.dir);
	REQUIRE(devidp_create(other, "rsa", "k1", err, sizeof(err)) == 0);
	snprintf(otherkey, sizeof(otherkey), "%s/idp.key", other);
	bad = base;
	bad.key_file = otherkey;
	x = devidp_token(&bad, err, sizeof(err));
	expect_401(&u, "signed by another key with the same kid", x);
	free(x);
	/* Claims: expired, wrong audience, wrong issuer, no user, not yet valid. */
	bad = base;
	bad.ttl = -120;
	x = devidp_token(&bad, err, sizeof(err));
	expect_401(&u, "expired", x);
	free(x);
	bad = base;
	bad.audience = "someone-else";
	x = devidp_token(&bad, err, sizeof(err));
	expect_401(&u, "wrong audience", x);
	free(x);
	bad = base;
	bad.audience = NULL;
	x = devidp_token(&bad, err, sizeof(err));
	expect_401(&u, "no audience", x);
	free(x);
	/* The log says which: a token naming another audience, or none at all. */
	char *seen = file_read_all(u.f.d.log, 1 << 22, NULL);
	CHECKF(seen && strstr(seen, "unauthorized: wrong audience") &&
	           strstr(seen, "unauthorized: missing audience"),
	       "%s", seen ? seen : "");
	free(seen);
	bad = base;
	bad.issuer = "https://evil.invalid/";
	x = devidp_token(&bad, err, sizeof(err));
	expect_401(&u, "wrong issuer", x);
	free(x);
	bad = base;
	bad.user_claim = "email";
	x = devidp_token(&bad, err, sizeof(err));
	expect_401(&u, "no sub claim", x);
	free(x);
	/* Garbage in every shape. */
	expect_401(&u, "empty", "");
	expect_401(&u, "bearer only", "Bearer ");
	expect_401(&u, "two parts", "abc.def");
	expect_401(&u, "four parts", "a.b.c.d");
	expect_401(&u, "not base64", "!!!.???.***");
	expect_401(&u, "header not JSON", "YWJj.YWJj.YWJj");
	/* The failure body is exactly what the iOS app recognises. */
	struct http_response r;
	REQUIRE(upost(&u, "x.y.z", "claim/verify", "{\"csr\":\"x\"}", &r) == 0);
	CHECK(r.status == 401 &&
	      strcmp(r.body, "{\"status\":\"failure\",\"description\":\"unauthorized\"}") == 0);
	http_response_free(&r);
	/* No token ever reaches the log. */
	char *log = NULL;
	t_run(&log, "cat '%s'", u.f.d.log);
	CHECK(log && !strstr(log, t) && !strstr(log, dot2 + 1));
	free(log);
	free(p64);
	free(t);
	fx_down(&u.f);
}

static void jwks_reload(void)
{
	struct ufx u;
	char err[256], dir[1200];
	REQUIRE(ufx_up(&u, "jwks_reload", "ec", 5, NULL));
	char *old = token_for(&u, "alice");
	char *n = user_initiate(&u, old, "7CDFA1000601");
	CHECK(n != NULL);
	free(n);
	/* The IdP rotates its key; SIGHUP re-reads the JWKS. */
	snprintf(dir, sizeof(dir), "%s/idp", u.f.t.dir);
	REQUIRE(devidp_create(dir, "ec", "k1", err, sizeof(err)) == 0);
	kill(u.f.d.pid, SIGHUP);
	usleep(300 * 1000);
	char *fresh = token_for(&u, "alice");
	expect_401(&u, "token of the rotated-out key", old);
	n = user_initiate(&u, fresh, "7CDFA1000601");
	CHECK(n != NULL);
	free(n);
	free(old);
	free(fresh);
	fx_down(&u.f);
}

/* ---- races across two daemons ---- */

struct racer {
	struct ufx *u;
	struct daemon *d;
	const char *token;
	char mac[13];
	pthread_barrier_t *bar;
	char node[65];
	int status;
};

static void *race_initiate(void *arg)
{
	struct racer *rc = arg;
	char body[128], hdr[9000];
	struct http_response r;
	snprintf(body, sizeof(body), "{\"mac_addr\":\"%s\",\"platform\":\"esp32\"}", rc->mac);
	snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", rc->token);
	pthread_barrier_wait(rc->bar);
	rc->status = post(rc->d, "claim/initiate", hdr, body, &r) == 0 ? r.status : -1;
	if (rc->status == 200)
		sim_firmware_string(r.body, "node_id", rc->node, sizeof(rc->node), false);
	http_response_free(&r);
	return NULL;
}

static void run_race(struct racer *rc, int n)
{
	pthread_barrier_t bar;
	pthread_t th[16];
	pthread_barrier_init(&bar, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		rc[i].bar = &bar;
		pthread_create(&th[i], NULL, race_initiate, &rc[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
}

static void concurrent_same_mac(void)
{
	struct ufx u;
	struct daemon d2;
	REQUIRE(ufx_up(&u, "concurrent_same_mac", "ec", 0, NULL)); /* unlimited */
	REQUIRE(daemon_start(&u.f.t, &d2));
	char *tok = token_for(&u, "alice");
	for (int round = 0; round < 10; round++) {
		struct racer rc[8];
		for (int i = 0; i < 8; i++) {
			rc[i] = (struct racer){.u = &u, .d = i % 2 ? &d2 : &u.f.d, .token = tok};
			snprintf(rc[i].mac, sizeof(rc[i].mac), "7CDFA10007%02X", round);
		}
		run_race(rc, 8);
		for (int i = 0; i < 8; i++) {
			CHECKF(rc[i].status == 200, "round %d racer %d: %d", round, i,
			       rc[i].status);
			CHECKF(strcmp(rc[i].node, rc[0].node) == 0, "round %d: two node_ids",
			       round);
		}
	}
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM nodes WHERE user_id = 'alice'") == 10);
	free(tok);
	CHECK(daemon_stop(&d2) == 0);
	fx_down(&u.f);
}

static void quota_race(void)
{
	struct ufx u;
	struct daemon d2;
	enum { QUOTA = 3 };
	REQUIRE(ufx_up(&u, "quota_race", "ec", QUOTA, NULL));
	REQUIRE(daemon_start(&u.f.t, &d2));
	for (int round = 0; round < 5; round++) {
		char user[32];
		snprintf(user, sizeof(user), "racer%d", round);
		char *tok = token_for(&u, user);
		struct racer rc[QUOTA + 1];
		for (int i = 0; i < QUOTA + 1; i++) {
			rc[i] = (struct racer){.u = &u, .d = i % 2 ? &d2 : &u.f.d, .token = tok};
			snprintf(rc[i].mac, sizeof(rc[i].mac), "7CDFA108%02X%02X", round, i);
		}
		run_race(rc, QUOTA + 1);
		int ok = 0, refused = 0;
		for (int i = 0; i < QUOTA + 1; i++) {
			ok += rc[i].status == 200;
			refused += rc[i].status == 400;
		}
		CHECKF(ok == QUOTA && refused == 1, "round %d: %d allowed, %d refused", round, ok,
		       refused);
		CHECK(sql_long(&u.f.t, "SELECT count(*) FROM nodes WHERE user_id = '%s'", user) ==
		      QUOTA);
		free(tok);
	}
	CHECK(daemon_stop(&d2) == 0);
	fx_down(&u.f);
}

static void user_rate_limit(void)
{
	struct ufx u;
	struct http_response r;
	REQUIRE(ufx_up(&u, "user_rate_limit", "ec", 0, NULL));
	/* Restart with a tight per-user bucket. */
	REQUIRE(daemon_stop(&u.f.d) == 0);
	u.f.t.o.extra = NULL;
	char extra[700];
	snprintf(extra, sizeof(extra), "%slimits:\n  user_per_minute: 6\n  user_burst: 3\n",
	         u.yaml);
	u.f.t.o.extra = extra;
	REQUIRE(tenv_write_config(&u.f.t));
	REQUIRE(daemon_start(&u.f.t, &u.f.d));
	char *alice = token_for(&u, "alice"), *bob = token_for(&u, "bob");
	int st[4];
	for (int i = 0; i < 4; i++) {
		char body[96];
		snprintf(body, sizeof(body),
		         "{\"mac_addr\":\"7CDFA10009%02X\",\"platform\":\"esp32\"}", i);
		REQUIRE(upost(&u, alice, "claim/initiate", body, &r) == 0);
		st[i] = r.status;
		if (i == 3)
			check_failure(&r, 429, "too many requests");
		http_response_free(&r);
	}
	CHECKF(st[0] == 200 && st[1] == 200 && st[2] == 200 && st[3] == 429, "%d %d %d %d", st[0],
	       st[1], st[2], st[3]);
	/* Another user has a bucket of its own. */
	char *n = user_initiate(&u, bob, "7CDFA1000999");
	CHECK(n != NULL);
	free(n);
	free(alice);
	free(bob);
	fx_down(&u.f);
}

static void no_idp_configured(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(fx_up(&f, "no_idp_configured", NULL));
	/* Not the token's fault: a 401 would make the apps refresh and replay it forever,
	 * or log the user out (protocol.md 7). */
	REQUIRE(post(&f.d, "claim/initiate", "Authorization: a.b.c\r\n",
	             "{\"mac_addr\":\"" MAC1 "\",\"platform\":\"esp32\"}", &r) == 0);
	check_failure(&r, 403, "authorization: this server takes no user tokens");
	http_response_free(&r);
	fx_down(&f);
}

static const struct t_case cases[] = {
    {"assisted_android", assisted_android},
    {"assisted_ios_bearer", assisted_ios_bearer},
    {"host_driven_cli", host_driven_cli},
    {"cli_every_config", cli_every_config},
    {"node_id_stability", node_id_stability},
    {"parallel_devices_and_correlation", parallel_devices_and_correlation},
    {"quota_rules", quota_rules},
    {"hostile_tokens", hostile_tokens},
    {"jwks_reload", jwks_reload},
    {"concurrent_same_mac", concurrent_same_mac},
    {"quota_race", quota_race},
    {"no_idp_configured", no_idp_configured},
    {"user_rate_limit", user_rate_limit},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
