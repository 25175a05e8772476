/*
 * The certificate lifecycle against a real daemon and database: revocation through
 * claimctl, superseding on re-claim, the CRL (parsed and verified with OpenSSL) on
 * /crl and from claimctl, its number across two daemons, released nodes, and a quota
 * that counts only what a user holds.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
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

/* GET /crl from @p d: the parsed CRL, or NULL. *@p etag gets its ETag when asked. */
static X509_CRL *get_crl(struct daemon *d, const char *extra, int *status, char *etag,
                         size_t etagsz)
{
	char req[512], err[256];
	struct http_response r;
	X509_CRL *crl = NULL;

	snprintf(req, sizeof(req), "GET /crl HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n",
	         extra ? extra : "");
	if (http_exchange(&d->url, req, strlen(req), 10000, &r, err, sizeof(err)) < 0) {
		fprintf(stderr, "GET /crl: %s\n", err);
		return NULL;
	}
	*status = r.status;
	if (etag) {
		const char *e = strstr(r.headers ? r.headers : "", "ETag: ");
		snprintf(etag, etagsz, "%.*s", e ? (int)strcspn(e + 6, "\r\n") : 0, e ? e + 6 : "");
	}
	if (r.status == 200) {
		CHECK(strstr(r.headers, "Content-Type: application/pkix-crl") != NULL);
		CHECK(r.content_length == (long)r.len && !r.chunked);
		const unsigned char *p = (const unsigned char *)r.body;
		crl = d2i_X509_CRL(NULL, &p, (long)r.len);
		CHECK(crl && p == (const unsigned char *)r.body + r.len);
	}
	http_response_free(&r);
	return crl;
}

/* The CRL's cRLNumber, or -1. */
static long crl_number(X509_CRL *crl)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	long v = n ? ASN1_INTEGER_get(n) : -1;
	ASN1_INTEGER_free(n);
	return v;
}

/* The CRL is signed by the case's intermediate CA and valid for @p hours. */
static void check_crl_signed(struct fx *f, X509_CRL *crl, int hours)
{
	char path[1100];
	snprintf(path, sizeof(path), "%s/intermediate.pem", f->t.ca_dir);
	FILE *fp = fopen(path, "r");
	X509 *ca = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
	if (fp)
		fclose(fp);
	REQUIRE(ca);
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1) {
		t_failures++;
		fprintf(stderr, "FAIL: the CRL's signature does not verify:\n");
		ERR_print_errors_fp(stderr);
		PEM_write_X509_CRL(stderr, crl);
	}
	CHECK(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0);
	CHECK(X509_CRL_get_version(crl) == X509_CRL_VERSION_2);
	int days = 0, secs = 0;
	CHECK(ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl),
	                     X509_CRL_get0_nextUpdate(crl)) == 1);
	CHECKF(days * 86400 + secs == hours * 3600, "validity %d s", days * 86400 + secs);
	AUTHORITY_KEYID *aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
	CHECK(aki && aki->keyid && ski && ASN1_OCTET_STRING_cmp(aki->keyid, ski) == 0);
	AUTHORITY_KEYID_free(aki);
	X509_free(ca);
}

static char *serial_of(struct fx *f, const char *node, int nth)
{
	return sql_value(&f->t,
	                 "SELECT serial FROM certificates WHERE node_id = '%s' ORDER BY issued_at, "
	                 "serial OFFSET %d LIMIT 1",
	                 node, nth);
}

/* claimctl certs revoke and list: reasons, idempotence, the audit trail, refusals. */
static void revoke_and_list(void)
{
	struct fx f;
	char *out = NULL, cmd[256];
	REQUIRE(fx_up(&f, "revoke_and_list", NULL));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	REQUIRE(fx_self_claim(&f, &dv));
	char *serial = serial_of(&f, MAC1, 0);
	REQUIRE(serial);
	CHECK(fx_claimctl(&f, &out, "certs list --mac 7c:df:a1:00:00:01") == 0);
	CHECKF(out && strstr(out, serial) && strstr(out, "valid"), "%s", out);
	free(out);
	/* Lower case with ':' separators names the same serial. */
	char typed[80] = "", *o = typed;
	for (int i = 0; serial[i]; i++)
		o += sprintf(o, "%s%c", i && i % 2 == 0 ? ":" : "", serial[i] | 0x20);
	snprintf(cmd, sizeof(cmd), "certs revoke %s --reason keyCompromise", typed);
	CHECK(fx_claimctl(&f, &out, cmd) == 0);
	CHECKF(out && strstr(out, "1 certificate(s) revoked (keyCompromise), 0 already"), "%s",
	       out);
	free(out);
	/* Again: nothing new, still success. */
	CHECK(fx_claimctl(&f, &out, cmd) == 0);
	CHECKF(out && strstr(out, "0 certificate(s) revoked (keyCompromise), 1 already"), "%s",
	       out);
	free(out);
	CHECK(sql_long(&f.t, "SELECT revocation_reason FROM certificates WHERE serial = '%s'",
	               serial) == 1);
	CHECK(
	    sql_long(&f.t,
	             "SELECT count(*) FROM audit WHERE event = 'revoke' AND flow = 'operator' AND "
	             "serial = '%s' AND mac = '%s' AND detail LIKE 'keyCompromise by claimctl:%%'",
	             serial, MAC1) == 1);
	CHECK(fx_claimctl(&f, &out, "certs list --revoked --json") == 0);
	CHECKF(out && strstr(out, "\"status\": \"revoked\"") &&
	           strstr(out, "\"reason\": \"keyCompromise\""),
	       "%s", out);
	free(out);
	/* Refusals: an unknown serial, a bad reason, a malformed serial, two selectors. */
	CHECK(fx_claimctl(&f, &out, "certs revoke 0123456789ABCDEF0123456789ABCDEF") == 1);
	CHECK(out && strstr(out, "no such certificate"));
	free(out);
	snprintf(cmd, sizeof(cmd), "certs revoke %s --reason stolen", serial);
	CHECK(fx_claimctl(&f, &out, cmd) == 2);
	CHECK(out && strstr(out, "not an RFC 5280 reason name"));
	free(out);
	/* One that is an RFC 5280 reason, in any case, but not one claimd does. */
	snprintf(cmd, sizeof(cmd), "certs revoke %s --reason removefromcrl", serial);
	CHECK(fx_claimctl(&f, &out, cmd) == 2);
	CHECKF(out && strstr(out, "removeFromCRL is an RFC 5280 reason but is not supported") &&
	           !strstr(out, "not an RFC 5280 reason name"),
	       "%s", out);
	free(out);
	CHECK(fx_claimctl(&f, &out, "certs revoke 12345") == 2);
	free(out);
	CHECK(fx_claimctl(&f, &out, "certs revoke --node A --mac 7CDFA1000001") == 2);
	free(out);
	CHECK(fx_claimctl(&f, &out, "certs --help") == 0);
	free(out);
	/* A mistyped serial among good ones: the good one is revoked, the other named, and
	 * the exit status says it. */
	REQUIRE(fx_self_claim(&f, &dv));
	char *second = serial_of(&f, MAC1, 1);
	REQUIRE(second);
	snprintf(cmd, sizeof(cmd), "certs revoke %s 0123456789ABCDEF0123456789ABCDEF", second);
	CHECK(fx_claimctl(&f, &out, cmd) == 1);
	CHECKF(out && strstr(out, "no such certificate: 0123456789ABCDEF0123456789ABCDEF") &&
	           strstr(out, "1 certificate(s) revoked"),
	       "%s", out);
	free(out);
	free(second);
	/* --reason is revoke's; output that cannot be written is a failure. */
	CHECK(fx_claimctl(&f, &out, "certs list --reason keyCompromise") == 2);
	CHECK(out && strstr(out, "--reason goes with revoke only"));
	free(out);
	CHECK(t_run(NULL, "'%s' -c '%s' crl --der > /dev/full", t_bin("claimctl"), f.t.config) ==
	      1);
	CHECK(t_run(NULL, "'%s' -c '%s' certs list > /dev/full", t_bin("claimctl"), f.t.config) ==
	      1);
	free(serial);
	EVP_PKEY_free(dv.key);
	fx_down(&f);
}

/* A re-claim supersedes the node's earlier certificates; with on_reclaim: keep it does not. */
static void supersede_on_reclaim(void)
{
	struct fx f;
	char *out = NULL;
	REQUIRE(fx_up(&f, "supersede_on_reclaim", NULL));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	REQUIRE(fx_self_claim(&f, &dv));
	REQUIRE(fx_self_claim(&f, &dv));
	char *first = serial_of(&f, MAC1, 0), *second = serial_of(&f, MAC1, 1);
	REQUIRE(first && second);
	CHECK(sql_long(&f.t, "SELECT revocation_reason FROM certificates WHERE serial = '%s'",
	               first) == 4);
	CHECK(sql_long(&f.t,
	               "SELECT count(*) FROM certificates WHERE serial = '%s' AND revoked_at "
	               "IS NULL",
	               second) == 1);
	CHECK(fx_claimctl(&f, &out, "certs list --node " MAC1) == 0);
	CHECKF(out && strstr(out, "superseded") && strstr(out, "valid"), "%s", out);
	free(out);
	free(first);
	free(second);
	/* keep: both stay valid. */
	CHECK(daemon_stop(&f.d) == 0);
	f.t.o.extra = "revocation:\n  on_reclaim: keep\n";
	REQUIRE(tenv_write_config(&f.t));
	REQUIRE(daemon_start(&f.t, &f.d));
	REQUIRE(fx_self_claim(&f, &dv));
	REQUIRE(fx_self_claim(&f, &dv));
	/* The second of the first two, and both of the last two. */
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE revoked_at IS NULL") == 3);
	EVP_PKEY_free(dv.key);
	fx_down(&f);
}

/* /crl and claimctl crl: signed by the CA, the revocations with their reasons, a number
 * that grows with each revocation and is the same on two daemons, and ETag revalidation. */
static void crl_served(void)
{
	struct fx f;
	struct daemon d2;
	char *out = NULL, cmd[256], etag[40], inm[80];
	int status = 0;
	struct topts o = {.extra = "revocation:\n  crl_hours: 6\n"};
	REQUIRE(fx_up(&f, "crl_served", &o));
	REQUIRE(daemon_start(&f.t, &d2));
	/* No revocation yet: an empty CRL, number 1. */
	X509_CRL *crl = get_crl(&f.d, NULL, &status, etag, sizeof(etag));
	REQUIRE(crl);
	CHECK(crl_number(crl) == 1);
	CHECK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0); /* no list at all: -1 */
	check_crl_signed(&f, crl, 6);
	X509_CRL_free(crl);
	/* Revalidation with the ETag: 304, no body. */
	snprintf(inm, sizeof(inm), "If-None-Match: %s\r\n", etag);
	crl = get_crl(&f.d, inm, &status, NULL, 0);
	CHECK(!crl && status == 304);
	/* A revocation reaches both daemons' /crl within a few seconds, same number. */
	struct sim_device dv = device(MAC1, "esp32s3", "ec"), dv2 = device(MAC2, "esp32c3", "rsa");
	REQUIRE(fx_self_claim(&f, &dv));
	struct sim_result res;
	REQUIRE(sim_self_claim(&d2.url, &dv2, NULL, f.t.root, &res) == 0);
	free(res.certificate);
	char *s1 = serial_of(&f, MAC1, 0), *s2 = serial_of(&f, MAC2, 0);
	REQUIRE(s1 && s2);
	snprintf(cmd, sizeof(cmd), "certs revoke %s --reason keyCompromise", s1);
	CHECK(fx_claimctl(&f, NULL, cmd) == 0);
	CHECK(fx_claimctl(&f, NULL, "certs revoke --mac " MAC2 " --reason cessationOfOperation") ==
	      0);
	long n1 = -1, n2 = -2;
	for (int i = 0; i < 50 && (n1 != n2 || n1 < 2); i++) {
		X509_CRL *a = get_crl(&f.d, NULL, &status, NULL, 0);
		X509_CRL *b = get_crl(&d2, NULL, &status, NULL, 0);
		n1 = a && crl_reason_of(a, s1) == 1 && crl_reason_of(a, s2) == 5 ? crl_number(a)
		                                                                 : -1;
		n2 = b && crl_reason_of(b, s1) == 1 && crl_reason_of(b, s2) == 5 ? crl_number(b)
		                                                                 : -2;
		if (a && n1 == n2 && n1 >= 2)
			check_crl_signed(&f, a, 6);
		X509_CRL_free(a);
		X509_CRL_free(b);
		if (n1 != n2 || n1 < 2) {
			struct timespec ts = {0, 200 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	CHECKF(n1 == n2 && n1 >= 2, "CRL numbers %ld and %ld", n1, n2);
	/* claimctl crl prints the same CRL as PEM (or DER), parsed by openssl. */
	CHECK(fx_claimctl(&f, &out, "crl") == 0);
	CHECK(out && strstr(out, "-----BEGIN X509 CRL-----"));
	free(out);
	char path[1100], der_cmd[1200];
	snprintf(path, sizeof(path), "%s/crl.der", f.t.dir);
	snprintf(der_cmd, sizeof(der_cmd), "crl --der > '%s'", path);
	CHECK(fx_claimctl(&f, NULL, der_cmd) == 0);
	CHECK(t_run(&out, "openssl crl -inform DER -in '%s' -noout -text", path) == 0);
	CHECKF(out && strstr(out, "Key Compromise") && strstr(out, "Cessation Of Operation"), "%s",
	       out);
	free(out);
	CHECK(sql_long(&f.t, "SELECT count(DISTINCT number) FROM crls") ==
	      sql_long(&f.t, "SELECT count(*) FROM crls"));
	free(s1);
	free(s2);
	EVP_PKEY_free(dv.key);
	EVP_PKEY_free(dv2.key);
	CHECK(daemon_stop(&d2) == 0);
	fx_down(&f);
}

struct ufx {
	struct fx f;
	char idp[1200];
	char yaml[512];
};

static bool ufx_up(struct ufx *u, const char *name, unsigned quota, unsigned ttl)
{
	/* The CLI claims here, and it asks for the MQTT hosts first. */
	struct topts o = {.ttl = ttl, .mqtt_host = "mqtt.test"};

	test_users_yaml(u->yaml, sizeof(u->yaml), quota);
	o.extra = u->yaml;
	return fx_users_up(&u->f, name, &o, "ec", u->idp);
}

static char *token_for(struct ufx *u, const char *user)
{
	return test_token(u->idp, user);
}

static bool user_claim(struct ufx *u, const char *token, const char *mac, char node[65])
{
	struct sim_user_result res;
	EVP_PKEY *k = sim_key_new("ec");
	int rc = sim_user_claim(&u->f.d.url, SIM_CLI, token, mac, "host", k, u->f.t.root, &res);
	if (rc < 0)
		fprintf(stderr, "claim of %s: %d %s\n", mac, res.status, res.err);
	else
		snprintf(node, 65, "%s", res.node_id);
	free(res.certificate);
	free(res.body);
	EVP_PKEY_free(k);
	return rc == 0;
}

/* An initiate alone; the HTTP status, the reply in *@p r. */
static int user_initiate(struct ufx *u, const char *token, const char *mac, struct http_response *r)
{
	char hdr[9000], body[128];
	snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", token);
	snprintf(body, sizeof(body), "{\"mac_addr\":\"%s\",\"platform\":\"esp32\"}", mac);
	return post(&u->f.d, "claim/initiate", hdr, body, r) < 0 ? -1 : r->status;
}

/* nodes release: certificates revoked (cessationOfOperation), quota slot freed, a new
 * node_id for the next claim of the same (user, MAC), history kept. */
static void release_node(void)
{
	struct ufx u;
	char *out = NULL, cmd[256], node[65], again[65];
	struct http_response r;
	REQUIRE(ufx_up(&u, "release_node", 1, 0));
	char *alice = token_for(&u, "alice");
	REQUIRE(alice);
	REQUIRE(user_claim(&u, alice, "7CDFA1000401", node));
	/* Quota 1: a second MAC is refused with 400 naming the quota, never 401. */
	CHECK(user_initiate(&u, alice, "7CDFA1000402", &r) == 400);
	check_failure(&r, 400, "quota");
	http_response_free(&r);
	snprintf(cmd, sizeof(cmd), "nodes release %s", node);
	CHECK(fx_claimctl(&u.f, &out, cmd) == 0);
	CHECKF(out && strstr(out, "1 certificate(s) revoked"), "%s", out);
	free(out);
	CHECK(sql_long(&u.f.t, "SELECT revocation_reason FROM certificates WHERE node_id = '%s'",
	               node) == 5);
	CHECK(sql_long(&u.f.t,
	               "SELECT count(*) FROM audit WHERE event = 'release' AND node_id = "
	               "'%s' AND user_id = 'alice' AND mac = '7CDFA1000401'",
	               node) == 1);
	/* Released twice: there is no live node of that id. */
	CHECK(fx_claimctl(&u.f, &out, cmd) == 1);
	CHECK(out && strstr(out, "no live node"));
	free(out);
	/* The slot is free; the same MAC gets a new node_id; the old node stays. */
	REQUIRE(user_claim(&u, alice, "7CDFA1000401", again));
	CHECK(strcmp(node, again) != 0);
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM nodes WHERE mac = '7CDFA1000401'") == 2);
	CHECK(sql_long(&u.f.t,
	               "SELECT count(*) FROM nodes WHERE node_id = '%s' AND released_at IS "
	               "NOT NULL",
	               node) == 1);
	free(alice);
	fx_down(&u.f);
}

/* An initiate that was never verified stops counting toward the quota when its TTL
 * passes (protocol.md section 7). */
static void quota_counts_held(void)
{
	struct ufx u;
	struct http_response r;
	char node[65];
	REQUIRE(ufx_up(&u, "quota_counts_held", 2, 0));
	char *bob = token_for(&u, "bob");
	REQUIRE(bob);
	CHECK(user_initiate(&u, bob, "7CDFA1000501", &r) == 200);
	http_response_free(&r);
	CHECK(user_initiate(&u, bob, "7CDFA1000502", &r) == 200);
	http_response_free(&r);
	/* Two pending: a third is over quota. */
	CHECK(user_initiate(&u, bob, "7CDFA1000503", &r) == 400);
	check_failure(&r, 400, "quota");
	http_response_free(&r);
	/* Their TTL passes, never verified: they no longer count. */
	PQclear(PQexec(u.f.t.pg, "UPDATE nodes SET pending_until = now() - interval '1 second'"));
	REQUIRE(user_claim(&u, bob, "7CDFA1000503", node));
	CHECK(user_initiate(&u, bob, "7CDFA1000504", &r) == 200);
	http_response_free(&r);
	/* One claimed and one pending: full again. */
	CHECK(user_initiate(&u, bob, "7CDFA1000505", &r) == 400);
	http_response_free(&r);
	free(bob);
	fx_down(&u.f);
}

/* nodes export and audit export: what a backend and an auditor read. */
static void exports(void)
{
	struct fx f;
	char *out = NULL;
	REQUIRE(fx_up(&f, "exports", NULL));
	struct sim_device dv = device(MAC1, "esp32s3", "ec"), dv2 = device(MAC2, "esp32c3", "ec");
	REQUIRE(fx_self_claim(&f, &dv));
	REQUIRE(fx_self_claim(&f, &dv)); /* the first is superseded */
	REQUIRE(fx_self_claim(&f, &dv2));
	CHECK(fx_claimctl(&f, NULL, "certs revoke --mac " MAC2) == 0);
	char *valid = serial_of(&f, MAC1, 1);
	char *pem = sql_value(&f.t, "SELECT pem FROM certificates WHERE serial = '%s'", valid);
	REQUIRE(valid && pem);
	/* Only MAC1 has a valid certificate: one row, its one valid PEM, quoted. */
	CHECK(t_run(&out, "'%s' -c '%s' nodes export", t_bin("claimctl"), f.t.config) == 0);
	REQUIRE(out);
	const char *row1 =
	    "node_id,mac,user,platform,certs\n\"" MAC1 "\",\"" MAC1 "\",\"\",\"esp32s3\",";
	CHECKF(strncmp(out, row1, strlen(row1)) == 0, "%s", out);
	CHECK(strstr(out, pem) != NULL);
	CHECK(strstr(out, MAC2) == NULL);
	const char *first = strstr(out, "-----BEGIN CERTIFICATE-----");
	CHECK(first && !strstr(first + 1, "-----BEGIN CERTIFICATE-----"));
	free(out);
	/* The audit trail: every row, oldest first, as JSON lines and as CSV. */
	long rows = sql_long(&f.t, "SELECT count(*) FROM audit");
	CHECK(rows >= 7); /* three initiates, three verifies, one revoke */
	CHECK(t_run(&out, "'%s' -c '%s' audit export | wc -l", t_bin("claimctl"), f.t.config) == 0);
	CHECKF(out && atol(out) == rows, "%s lines, %ld rows", out ? out : "?", rows);
	free(out);
	CHECK(t_run(&out, "'%s' -c '%s' audit export --format jsonl | head -n 1", t_bin("claimctl"),
	            f.t.config) == 0);
	CHECKF(out && strstr(out, "\"event\":\"initiate\"") && strstr(out, "\"detail\":null"), "%s",
	       out);
	free(out);
	CHECK(t_run(&out, "'%s' -c '%s' audit export --format csv | tail -n 1", t_bin("claimctl"),
	            f.t.config) == 0);
	CHECKF(out && strstr(out, ",\"revoke\",\"operator\",\"ok\",\"OK\",\"" MAC2 "\",") &&
	           strstr(out, "unspecified by claimctl:"),
	       "%s", out);
	free(out);
	CHECK(fx_claimctl(&f, &out, "audit export --since 2999-01-01T00:00:00Z") == 0);
	CHECKF(out && strstr(out, "audit export: 0 row(s)"), "%s", out);
	free(out);
	CHECK(fx_claimctl(&f, &out,
	                  "audit export --until 2999-01-01 --since 2000-01-01T00:00:00.5+02:00 "
	                  "--format csv") == 0);
	CHECK(out && strstr(out, "row(s)"));
	free(out);
	/* Times are checked to the day of the month, and offsets to what PostgreSQL reads. */
	static const char *const bad[] = {"yesterday",
	                                  "2026-02-31",
	                                  "2025-02-29",
	                                  "0000-01-01",
	                                  "+202-11-29",
	                                  "2026- 1- 1",
	                                  "2026-11-29T-1:00:00Z",
	                                  "2026-11-29T00:-1:00Z",
	                                  "2026-11-29T00:00:00+-1:00",
	                                  "2026-11-29T00:00:00+16:00",
	                                  "2026-11-29T24:00:00Z",
	                                  "2026-11-29T00:00:00",
	                                  "2016-12-31T23:59:60.5Z"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char arg[96];
		snprintf(arg, sizeof(arg), "audit export --since '%s'", bad[i]);
		CHECKF(fx_claimctl(&f, &out, arg) == 2 && out &&
		           strstr(out, "not an RFC 3339 time"),
		       "%s: %s", bad[i], out ? out : "");
		free(out);
	}
	CHECK(fx_claimctl(&f, &out,
	                  "audit export --since 2024-02-29 --until 2999-12-31T23:59:60-15:59") ==
	      0);
	free(out);
	/* A self node is released by its MAC in any spelling (its node_id is the MAC). */
	CHECK(fx_claimctl(&f, &out, "nodes release 7c:df:a1:00:00:01") == 0);
	CHECKF(out && strstr(out, MAC1 " released"), "%s", out);
	free(out);
	free(valid);
	free(pem);
	EVP_PKEY_free(dv.key);
	EVP_PKEY_free(dv2.key);
	fx_down(&f);
}

/* ca.crl_url puts a CRL Distribution Point in every certificate issued; a bad URL is
 * refused at start-up with the key's name. */
static void crl_url_in_certificates(void)
{
	struct fx f;
	struct sim_result res;
	char *out = NULL;
	/* tenv writes the ca: section itself: the key is added to it. */
	REQUIRE(tenv_setup(&f.t, "crl_url_in_certificates", NULL));
	REQUIRE(tenv_add_device(&f.t, MAC1, "esp32s3", K1));
	CHECK(t_run(NULL,
	            "sed -i 's|^ca:$|ca:\\n  crl_url: http://pki.example.com/claimd.crl|' '%s'",
	            f.t.config) == 0);
	REQUIRE(daemon_start(&f.t, &f.d));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	REQUIRE(sim_self_claim(&f.d.url, &dv, NULL, f.t.root, &res) == 0);
	char path[1100];
	snprintf(path, sizeof(path), "%s/leaf.pem", f.t.dir);
	FILE *fp = fopen(path, "w");
	REQUIRE(fp);
	fputs(res.certificate, fp);
	fclose(fp);
	free(res.certificate);
	CHECK(t_run(&out, "openssl x509 -in '%s' -noout -ext crlDistributionPoints", path) == 0);
	CHECKF(out && strstr(out, "URI:http://pki.example.com/claimd.crl"), "%s", out);
	free(out);
	/* A URL with a comma (an extension separator to OpenSSL) is refused by name. */
	CHECK(t_run(NULL, "sed -i 's|claimd.crl|a,b|' '%s'", f.t.config) == 0);
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), f.t.config) != 0);
	CHECKF(out && strstr(out, "ca.crl_url"), "%s", out);
	free(out);
	EVP_PKEY_free(dv.key);
	fx_down(&f);
}

struct reclaimer {
	struct daemon *d;
	const char *root;
	int ok, failed;
};

static void *reclaim_thread(void *arg)
{
	struct reclaimer *r = arg;
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	for (int i = 0; i < 4; i++) {
		struct sim_result res;
		if (sim_self_claim(&r->d->url, &dv, NULL, r->root, &res) == 0) {
			r->ok++;
		} else {
			r->failed++;
			fprintf(stderr, "racing re-claim: %s\n", res.err);
		}
		free(res.certificate);
	}
	EVP_PKEY_free(dv.key);
	return NULL;
}

/* One device re-claiming from six threads on two daemons while an operator revokes its
 * certificates: every claim succeeds, one node, every certificate kept, only the
 * reasons of those two, and after one more claim only the newest is valid. */
static void racing_reclaims_and_revoke(void)
{
	struct fx f;
	struct daemon d2;
	enum { N = 6 };
	struct reclaimer r[N];
	pthread_t th[N];
	/* One MAC re-claiming 24 times: its initiate rate limit is not under test. */
	struct topts o = {.extra = "limits:\n  mac_per_minute: 0\n"};
	REQUIRE(fx_up(&f, "racing_reclaims_and_revoke", &o));
	REQUIRE(daemon_start(&f.t, &d2));
	for (int i = 0; i < N; i++) {
		r[i] = (struct reclaimer){i % 2 ? &d2 : &f.d, f.t.root, 0, 0};
		pthread_create(&th[i], NULL, reclaim_thread, &r[i]);
	}
	for (int i = 0; i < 3; i++)
		CHECK(fx_claimctl(&f, NULL, "certs revoke --mac " MAC1 " --reason keyCompromise") <=
		      1);
	int ok = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		CHECKF(r[i].failed == 0, "thread %d: %d claims failed", i, r[i].failed);
		ok += r[i].ok;
	}
	CHECK(ok == N * 4);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM nodes") == 1);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates") == ok);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL AND "
	                     "revocation_reason NOT IN (1, 4)") == 0);
	/* Two re-claims committed at the same instant do not see each other's certificate
	 * (each statement supersedes what was committed when it began), so both may stay
	 * valid for now; the device's next claim supersedes every one of them. */
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	REQUIRE(fx_self_claim(&f, &dv));
	EVP_PKEY_free(dv.key);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE revoked_at IS NULL") == 1);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE revoked_at IS NULL AND "
	                     "issued_at = (SELECT max(issued_at) FROM certificates)") == 1);
	CHECK(daemon_stop(&d2) == 0);
	fx_down(&f);
}

/* The CRL outlives a database outage until its nextUpdate (a broker's refresh job keeps
 * working), and If-None-Match is read as HTTP says: lists, weak tags, "*". */
static void crl_through_outage(void)
{
	struct fx f;
	char etag[40], inm[160];
	int status = 0;
	REQUIRE(fx_up(&f, "crl_through_outage", NULL));
	X509_CRL *crl = get_crl(&f.d, NULL, &status, etag, sizeof(etag));
	REQUIRE(crl && status == 200);
	long number = crl_number(crl);
	X509_CRL_free(crl);
	snprintf(inm, sizeof(inm), "If-None-Match: W/\"x\", W/%s\r\n", etag);
	CHECK(!get_crl(&f.d, inm, &status, NULL, 0) && status == 304);
	CHECK(!get_crl(&f.d, "If-None-Match: *\r\n", &status, NULL, 0) && status == 304);
	CHECK((crl = get_crl(&f.d, "If-None-Match: \"0\", \"x\"\r\n", &status, NULL, 0)));
	X509_CRL_free(crl);
	/* The database refuses claimd's connections: the cached CRL is still served. (The
	 * switch is made from the server's own database: not from the one it closes.) */
	PGconn *admin = PQconnectdb(getenv("CLAIMD_TEST_PG"));
	char sql[512];
	REQUIRE(PQstatus(admin) == CONNECTION_OK);
	snprintf(sql, sizeof(sql),
	         "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS false;"
	         "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'",
	         PQdb(f.t.pg), PQdb(f.t.pg));
	PGresult *r = PQexec(admin, sql);
	CHECKF(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	struct timespec ts = {2, 200 * 1000000L}; /* past the 2 s check interval */
	nanosleep(&ts, NULL);
	crl = get_crl(&f.d, NULL, &status, NULL, 0);
	CHECKF(crl && status == 200 && crl_number(crl) == number, "status %d", status);
	X509_CRL_free(crl);
	/* A claim meanwhile is refused as busy, not an error. */
	struct session s;
	struct http_response hr;
	memset(&s, 0, sizeof(s));
	char body[96];
	snprintf(body, sizeof(body), "{\"mac_addr\":\"%s\",\"platform\":\"esp32s3\"}", MAC1);
	CHECK(post(&f.d, "claim/initiate", "", body, &hr) == 0 && hr.status == 503);
	http_response_free(&hr);
	snprintf(sql, sizeof(sql), "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS true", PQdb(f.t.pg));
	r = PQexec(admin, sql);
	CHECKF(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(admin);
	/* The harness's own connection was ended too. */
	PQreset(f.t.pg);
	/* Back: claims work again without a restart. */
	CHECK(initiate(&f.d, MAC1, "esp32s3", &s));
	char *log = NULL;
	t_run(&log, "cat '%s'", f.d.log);
	CHECK(log && strstr(log, "serving CRL number"));
	free(log);
	fx_down(&f);
}

static const struct t_case cases[] = {
    {"revoke_and_list", revoke_and_list},
    {"supersede_on_reclaim", supersede_on_reclaim},
    {"crl_served", crl_served},
    {"release_node", release_node},
    {"quota_counts_held", quota_counts_held},
    {"exports", exports},
    {"crl_url_in_certificates", crl_url_in_certificates},
    {"racing_reclaims_and_revoke", racing_reclaims_and_revoke},
    {"crl_through_outage", crl_through_outage},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
