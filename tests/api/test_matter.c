/*
 * Matter device certificates (protocol.md section 6) and what today's clients send
 * (section 7): a PAA and PAI made with the openssl program at test time, the CLI's
 * --matter claim through claimsim, every DAC through the test-side profile checker
 * (tests/support/dac_check.c, itself tested on certificates that break one rule
 * each), refusals, start-up refusals of bad PAIs, node_policies lists, and which
 * refusals may be 401.
 */
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_support.h"
#include "dac_check.h"
#include "harness.h"
#include "matter_pki.h"
#include "proc_scan.h"

#define PID "0002"

/* Moves DIR/NAME.pem's validity to [now + @p nb, now + @p na] (seconds) and signs it
 * again with DIR/CA.key: the openssl command cannot date a certificate in the past. */
static bool redate(const char *dir, const char *name, const char *ca, long nb, long na)
{
	char path[1200];
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	FILE *f;
	bool ok = false;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	if ((f = fopen(path, "r"))) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/%s.key", dir, ca);
	if ((f = fopen(path, "r"))) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	if (x && k && X509_gmtime_adj(X509_getm_notBefore(x), nb) &&
	    X509_gmtime_adj(X509_getm_notAfter(x), na) && X509_sign(x, k, EVP_sha256()) > 0 &&
	    (f = fopen(path, "w"))) {
		ok = PEM_write_X509(f, x) == 1;
		ok = fclose(f) == 0 && ok;
	}
	X509_free(x);
	EVP_PKEY_free(k);
	return ok;
}

struct mfx {
	struct fx f;
	char idp[1200];
	char yaml[2048];
	char dir[1100]; /* T->dir/matter */
};

/* The users: and matter: sections, the PAI given as @p pai (relative to the config). */
static void mfx_yaml(struct mfx *m, const char *pai, const char *products)
{
	char users[512];
	test_users_yaml(users, sizeof(users), 0);
	snprintf(m->yaml, sizeof(m->yaml),
	         "%smatter:\n  pai_certificate: matter/%s.pem\n  pai_key: matter/%s.key\n"
	         "  vendor_id: \"131b\"\n  product_ids: %s\n",
	         users, pai, pai, products);
	m->f.t.o.extra = m->yaml;
}

/* A world with users, the PKI, and Matter configured for products 0002 and 8000. */
static bool mfx_up(struct mfx *m, const char *name, bool start)
{
	struct topts o = {.mqtt_host = "mqtt.test", .mqtt_cred_host = "creds.test"};
	if (!tenv_setup(&m->f.t, name, &o))
		return false;
	snprintf(m->dir, sizeof(m->dir), "%s/matter", m->f.t.dir);
	mfx_yaml(m, "pai", "[\"0002\", \"8000\"]");
	if (!pki_make(m->dir) || !tenv_write_config(&m->f.t) ||
	    !test_idp_create(&m->f.t, "ec", m->idp))
		return false;
	return !start || daemon_start(&m->f.t, &m->f.d);
}

static X509 *cert_at(const struct mfx *m, const char *name)
{
	char path[1200];
	snprintf(path, sizeof(path), "%s/%s.pem", m->dir, name);
	return dac_read_cert(path);
}

/* The checker's verdict on certificate @p name of the PKI. */
static const char *verdict(const struct mfx *m, const char *name, const char *vid, const char *pid)
{
	X509 *dac = cert_at(m, name), *pai = cert_at(m, "pai"), *paa = cert_at(m, "paa");
	const char *why = dac ? dac_profile_check(dac, pai, paa, NULL, vid, pid) : "unreadable";
	X509_free(dac);
	X509_free(pai);
	X509_free(paa);
	return why;
}

/* The checker itself: a good DAC passes, and each broken rule is caught by that rule. */
static void dac_checker_rules(void)
{
	struct mfx m;
	REQUIRE(mfx_up(&m, "dac_checker_rules", false));
	const char *good = "/CN=node1/matterVID=" VID "/matterPID=" PID;
	REQUIRE(pki_issue(m.dir, "good", EC_KEY_CMD, good, "pai", "dac", 365));
	const char *why = verdict(&m, "good", VID, PID);
	CHECKF(why == NULL, "a good DAC: %s", why);
	static const struct {
		const char *name, *keycmd, *subj, *ext;
		int days;
		const char *rule;
	} bad[] = {
	    {"eku", EC_KEY_CMD, "/CN=n/matterVID=131B/matterPID=0002", "dac_eku", 365,
	     "extendedKeyUsage"},
	    {"kunc", EC_KEY_CMD, "/CN=n/matterVID=131B/matterPID=0002", "dac_ku_noncrit", 365,
	     "keyUsage: missing, repeated or not critical"},
	    {"kumore", EC_KEY_CMD, "/CN=n/matterVID=131B/matterPID=0002", "dac_ku_more", 365,
	     "keyUsage: not digitalSignature alone"},
	    {"ca", EC_KEY_CMD, "/CN=n/matterVID=131B/matterPID=0002", "dac_ca", 365,
	     "basicConstraints: not CA:FALSE"},
	    {"noaki", EC_KEY_CMD, "/CN=n/matterVID=131B/matterPID=0002", "dac_no_aki", 365,
	     "authorityKeyIdentifier"},
	    {"rsa", RSA_KEY_CMD, "/CN=n/matterVID=131B/matterPID=0002", "dac", 365,
	     "key: not EC P-256"},
	    {"p384", P384_CMD, "/CN=n/matterVID=131B/matterPID=0002", "dac", 365,
	     "key: not EC P-256"},
	    {"nopid", EC_KEY_CMD, "/CN=n/matterVID=131B", "dac", 365, "product id missing"},
	    {"novid", EC_KEY_CMD, "/CN=n/matterPID=0002", "dac", 365, "vendor id missing"},
	    {"wrongvid", EC_KEY_CMD, "/CN=n/matterVID=FFF1/matterPID=0002", "dac", 365,
	     "subject: vendor id not the expected"},
	    {"lowerhex", EC_KEY_CMD, "/CN=n/matterVID=131b/matterPID=0002", "dac", 365,
	     "subject: vendor id not the expected"},
	    {"extra", EC_KEY_CMD, "/CN=n/O=Acme/matterVID=131B/matterPID=0002", "dac", 365,
	     "attributes other than"},
	    {"outlives", EC_KEY_CMD, "/CN=n/matterVID=131B/matterPID=0002", "dac", 4000,
	     "validity: outside the PAI's"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		REQUIRE(pki_issue(m.dir, bad[i].name, bad[i].keycmd, bad[i].subj, "pai", bad[i].ext,
		                  bad[i].days));
		why = verdict(&m, bad[i].name, VID, PID);
		CHECKF(why && strstr(why, bad[i].rule), "%s: expected '%s', got '%s'", bad[i].name,
		       bad[i].rule, why ? why : "(passed)");
	}
	/* A good DAC checked against other expectations, and against a foreign PAA. */
	why = verdict(&m, "good", VID, "0003");
	CHECKF(why && strstr(why, "product id"), "%s", why ? why : "(passed)");
	REQUIRE(pki_in_dir(m.dir, EC_KEY_CMD
	                   " other.key && openssl req -config m.cnf -new -x509 "
	                   "-key other.key -subj '/CN=Other PAA' -days 30 -extensions paa "
	                   "-out other.pem"));
	X509 *dac = cert_at(&m, "good"), *pai = cert_at(&m, "pai"), *other = cert_at(&m, "other");
	why = dac_profile_check(dac, pai, other, NULL, VID, PID);
	CHECKF(why && strstr(why, "chain"), "%s", why ? why : "(passed)");
	why = dac_profile_check(dac, pai, NULL, "node2", VID, PID);
	CHECKF(why && strstr(why, "CN"), "%s", why ? why : "(passed)");
	/* Signed by the PAA instead of the PAI: the issuer is wrong. */
	X509 *paa = cert_at(&m, "paa");
	why = dac_profile_check(dac, paa, NULL, NULL, VID, PID);
	CHECKF(why != NULL, "a DAC checked against the wrong issuer passed");
	X509_free(paa);
	X509_free(dac);
	X509_free(pai);
	X509_free(other);
	tenv_teardown(&m.f.t);
}

/* A Matter claim as the CLI makes it, from the claimsim program: two DER files. */
static void matter_cli_claim(void)
{
	struct mfx m;
	char *out = NULL;
	REQUIRE(mfx_up(&m, "matter_cli_claim", true));
	char *tok = test_token(m.idp, "alice");
	REQUIRE(tok);
	char paa[1200];
	snprintf(paa, sizeof(paa), "%s/paa.pem", m.dir);
	int rc = t_run(&out,
	               "'%s' cli --matter --vendor-id 131B --product-id 0002 "
	               "--url 'http://127.0.0.1:%u' --token '%s' --mac 7C:DF:A1:00:05:01 "
	               "--out '%s' --root '%s' 2>&1",
	               t_bin("claimsim"), m.f.d.port, tok, m.f.t.dir, paa);
	CHECKF(rc == 0, "%s", out ? out : "");
	char node[65] = "";
	const char *at = out ? strstr(out, "Matter node ") : NULL;
	REQUIRE(at && sscanf(at, "Matter node %64[A-Za-z0-9_-]", node) == 1);
	free(out);
	char dacf[1300], paif[1300];
	snprintf(dacf, sizeof(dacf), "%s/%s.dac.der", m.f.t.dir, node);
	snprintf(paif, sizeof(paif), "%s/%s.pai.der", m.f.t.dir, node);
	X509 *dac = dac_read_cert(dacf), *pai = dac_read_cert(paif), *paa_x = cert_at(&m, "paa");
	REQUIRE(dac && pai && paa_x);
	const char *why = dac_profile_check(dac, pai, paa_x, node, VID, PID);
	CHECKF(why == NULL, "the issued DAC: %s", why);
	/* The second file is the configured PAI itself. */
	X509 *pai_conf = cert_at(&m, "pai");
	CHECK(pai_conf && X509_cmp(pai, pai_conf) == 0);
	X509_free(pai_conf);
	X509_free(dac);
	X509_free(pai);
	X509_free(paa_x);
	/* Recorded like any certificate, with its profile and flow. */
	CHECK(sql_long(&m.f.t,
	               "SELECT count(*) FROM certificates c JOIN nodes n USING (node_id) "
	               "WHERE node_id = '%s' AND profile = 'matter-dac' AND c.node_policies = "
	               "'mqtt' AND n.user_id = 'alice' AND n.mac = '7CDFA1000501'",
	               node) == 1);
	CHECK(sql_long(&m.f.t,
	               "SELECT count(*) FROM audit WHERE flow = 'matter' AND event = 'verify' "
	               "AND outcome = 'ok' AND node_id = '%s' AND serial IS NOT NULL",
	               node) == 1);
	struct http_response r;
	REQUIRE(raw(&m.f.d, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECKF(strstr(r.body, "claimd_claims_total{flow=\"matter\",outcome=\"OK\"} 1\n"), "%s",
	       r.body);
	CHECKF(strstr(r.body, "claimd_certificates_issued_total{flow=\"matter\"} 1\n"), "%s",
	       r.body);
	http_response_free(&r);
	/* claimctl lists and revokes it; the CA's CRL does not carry the PAI's serials. */
	char *serial =
	    sql_value(&m.f.t, "SELECT serial FROM certificates WHERE node_id = '%s'", node);
	REQUIRE(serial);
	char args[256];
	snprintf(args, sizeof(args), "certs list --node %s", node);
	CHECK(fx_claimctl(&m.f, &out, args) == 0 && out && strstr(out, serial) &&
	      strstr(out, "valid"));
	free(out);
	snprintf(args, sizeof(args), "certs revoke %s --reason keyCompromise", serial);
	CHECK(fx_claimctl(&m.f, &out, args) == 0);
	free(out);
	snprintf(args, sizeof(args), "certs list --node %s", node);
	CHECK(fx_claimctl(&m.f, &out, args) == 0 && out && strstr(out, "revoked"));
	free(out);
	CHECK(fx_claimctl(&m.f, &out, "crl") == 0 && out);
	if (out) {
		char *txt = NULL;
		char crl[1300];
		snprintf(crl, sizeof(crl), "%s/ca.crl", m.f.t.dir);
		FILE *f = fopen(crl, "w");
		if (f) {
			fputs(out, f);
			fclose(f);
		}
		CHECK(t_run(&txt, "openssl crl -in '%s' -noout -text", crl) == 0 && txt &&
		      !strstr(txt, serial));
		free(txt);
	}
	free(out);
	free(serial);
	free(tok);
	fx_down(&m.f);
}

/* In-process: videostream brings mqtt_cred_host; a re-claim supersedes the first DAC. */
static void matter_policies_and_reclaim(void)
{
	struct mfx m;
	struct sim_matter_result res;
	char paa[1200];
	REQUIRE(mfx_up(&m, "matter_policies_and_reclaim", true));
	snprintf(paa, sizeof(paa), "%s/paa.pem", m.dir);
	char *tok = test_token(m.idp, "bob");
	REQUIRE(tok);
	EVP_PKEY *k = sim_key_new("ec");
	int rc =
	    sim_matter_claim(&m.f.d.url, tok, "7CDFA1000601", "host", k, VID, "8000", paa, &res);
	CHECKF(rc == 0, "%s", res.u.err);
	CHECK(!strstr(res.u.body ? res.u.body : "", "mqtt_host"));
	char node[65];
	snprintf(node, sizeof(node), "%s", res.u.node_id);
	sim_matter_result_free(&res);
	/* The same device again, asking for videostream: a second DAC, the first superseded. */
	char hdr[4200], body[128], *csr = NULL, *b = NULL;
	struct http_response r;
	snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", tok);
	snprintf(body, sizeof(body), "{\"mac_addr\": \"7CDFA1000601\", \"platform\": \"host\"}");
	REQUIRE(post(&m.f.d, "claim/initiate", hdr, body, &r) == 0 && r.status == 200);
	http_response_free(&r);
	csr = sim_matter_csr_pem(k, node, VID, "8000");
	char *js = sim_json_string(csr, SIM_CLI);
	REQUIRE(asprintf(&b, "{\"csr\": %s, \"node_policies\": \"mqtt, VideoStream\"}", js) > 0);
	REQUIRE(post(&m.f.d, "claim/verify?matter=True&test=True", hdr, b, &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	check_framing(&r);
	char host[64];
	CHECK(sim_firmware_string(r.body, "mqtt_cred_host", host, sizeof(host), false) &&
	      strcmp(host, "creds.test") == 0);
	CHECK(!strstr(r.body, "\"mqtt_host\""));
	http_response_free(&r);
	CHECK(sql_long(&m.f.t,
	               "SELECT count(*) FROM certificates WHERE node_id = '%s' AND profile = "
	               "'matter-dac' AND node_policies = 'mqtt,videostream' AND revoked_at IS NULL",
	               node) == 1);
	CHECK(sql_long(&m.f.t,
	               "SELECT count(*) FROM certificates WHERE node_id = '%s' AND revoked_at IS "
	               "NOT NULL AND revocation_reason = 4",
	               node) == 1);
	free(b);
	free(js);
	free(csr);
	EVP_PKEY_free(k);
	free(tok);
	fx_down(&m.f);
}

/* claim.transfer (release, the default) holds for Matter claims as for any user claim,
 * keyed by the MAC: bob's DAC claim with the key of alice's DAC releases alice's node
 * (her DAC revoked as superseded, a transfer row of flow matter); carol's with another
 * key ends nothing. */
static void matter_transfer(void)
{
	struct mfx m;
	struct sim_matter_result res;
	char paa[1200], nodes[3][65];
	const char *users[3] = {"alice", "bob", "carol"};
	REQUIRE(mfx_up(&m, "matter_transfer", true));
	snprintf(paa, sizeof(paa), "%s/paa.pem", m.dir);
	EVP_PKEY *k = sim_key_new("ec"), *other = sim_key_new("ec");
	for (int i = 0; i < 3; i++) {
		char *tok = test_token(m.idp, users[i]);
		REQUIRE(tok);
		int rc = sim_matter_claim(&m.f.d.url, tok, "7CDFA1000611", "host",
		                          i == 2 ? other : k, VID, "8000", paa, &res);
		CHECKF(rc == 0, "%s: %s", users[i], res.u.err);
		snprintf(nodes[i], sizeof(nodes[i]), "%s", res.u.node_id);
		sim_matter_result_free(&res);
		free(tok);
	}
	CHECK(sql_long(&m.f.t,
	               "SELECT count(*) FROM nodes WHERE node_id = '%s' AND released_at IS "
	               "NOT NULL",
	               nodes[0]) == 1);
	CHECK(sql_long(&m.f.t,
	               "SELECT count(*) FROM certificates WHERE node_id = '%s' AND "
	               "profile = 'matter-dac' AND revocation_reason = 4",
	               nodes[0]) == 1);
	CHECK(
	    sql_long(&m.f.t,
	             "SELECT count(*) FROM audit WHERE event = 'transfer' AND flow = 'matter' AND "
	             "node_id = '%s' AND user_id = 'alice' AND detail = 'to bob'",
	             nodes[0]) == 1);
	CHECK(sql_long(&m.f.t, "SELECT count(*) FROM audit WHERE event = 'transfer'") == 1);
	for (int i = 1; i < 3; i++)
		CHECK(sql_long(
		          &m.f.t,
		          "SELECT count(*) FROM nodes n JOIN certificates c USING (node_id) WHERE "
		          "n.node_id = '%s' AND n.released_at IS NULL AND c.revoked_at IS NULL",
		          nodes[i]) == 1);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
	fx_down(&m.f);
}

/* Posts a Matter verify of @p csr for @p tok; the status, with the body in @p r. */
static int matter_verify(struct mfx *m, const char *tok, const char *csr, struct http_response *r)
{
	char hdr[4200], *js = sim_json_string(csr, SIM_CLI), *b = NULL;
	int rc = -1;
	snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", tok);
	if (js && asprintf(&b, "{\"csr\": %s}", js) > 0 &&
	    post(&m->f.d, "claim/verify?matter=True", hdr, b, r) == 0)
		rc = r->status;
	free(b);
	free(js);
	return rc;
}

static char *initiate_as(struct mfx *m, const char *tok, const char *mac)
{
	char hdr[4200], body[128], node[65];
	struct http_response r;
	snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", tok);
	snprintf(body, sizeof(body), "{\"mac_addr\": \"%s\", \"platform\": \"host\"}", mac);
	if (post(&m->f.d, "claim/initiate", hdr, body, &r) < 0)
		return NULL;
	bool ok =
	    r.status == 200 && sim_firmware_string(r.body, "node_id", node, sizeof(node), false);
	http_response_free(&r);
	return ok ? strdup(node) : NULL;
}

/* Every refusal names its reason, with 400; nothing is recorded but the audit row. */
static void matter_refusals(void)
{
	struct mfx m;
	struct http_response r;
	REQUIRE(mfx_up(&m, "matter_refusals", true));
	char *alice = test_token(m.idp, "alice"), *bob = test_token(m.idp, "bob");
	REQUIRE(alice && bob);
	char *node = initiate_as(&m, alice, "7CDFA1000701");
	char *bobs = initiate_as(&m, bob, "7CDFA1000702");
	REQUIRE(node && bobs);
	EVP_PKEY *ec = sim_key_new("ec"), *rsa = sim_key_new("rsa");
	REQUIRE(ec && rsa);
	static const struct {
		const char *what, *vid, *pid;
		bool rsa, others_node;
		const char *desc;
	} cases[] = {
	    {"RSA key", VID, PID, true, false, "csr: a Matter DAC needs an EC P-256 key"},
	    {"wrong vendor", "FFF1", PID, false, false, "csr: the Matter vendor id is not"},
	    {"product not allowed", VID, "0003", false, false, "csr: the Matter product id"},
	    {"no product id", VID, NULL, false, false, "csr: a Matter CSR's subject must be"},
	    {"no vendor id", NULL, PID, false, false, "csr: a Matter CSR's subject must be"},
	    {"lower-case vendor", "131b", PID, false, false, "csr: a Matter CSR's subject must be"},
	    {"another user's node", VID, PID, false, true, "csr: CN is not a node this user"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *csr =
		    sim_matter_csr_pem(cases[i].rsa ? rsa : ec, cases[i].others_node ? bobs : node,
		                       cases[i].vid, cases[i].pid);
		REQUIRE(csr);
		int st = matter_verify(&m, alice, csr, &r);
		CHECKF(st == 400, "%s: %d %s", cases[i].what, st, r.body);
		check_failure(&r, 400, cases[i].desc);
		http_response_free(&r);
		free(csr);
	}
	/* A plain (non-Matter) CSR is a subject refusal too. */
	char *plain = sim_csr_pem(ec, node, true);
	CHECK(matter_verify(&m, alice, plain, &r) == 400);
	check_failure(&r, 400, "subject must be CN=<node_id> with the Matter vendor id");
	http_response_free(&r);
	free(plain);
	/* A compressed P-256 point: Matter stacks read only the uncompressed form. */
	EVP_PKEY *packed = sim_key_new("ec");
	REQUIRE(packed && EVP_PKEY_set_utf8_string_param(
	                      packed, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	                      OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED) == 1);
	char *packed_csr = sim_matter_csr_pem(packed, node, VID, PID);
	REQUIRE(packed_csr);
	CHECK(matter_verify(&m, alice, packed_csr, &r) == 400);
	check_failure(&r, 400, "csr: a Matter DAC needs an EC P-256 key, uncompressed");
	http_response_free(&r);
	free(packed_csr);
	EVP_PKEY_free(packed);
	/* No token: Matter is host-driven only (400); a bad token: 401, before anything. */
	REQUIRE(post(&m.f.d, "claim/verify?matter=true", "", "{\"csr\":\"x\"}", &r) == 0);
	check_failure(&r, 400, "host-driven claiming only");
	http_response_free(&r);
	REQUIRE(post(&m.f.d, "claim/verify?matter=true", "Authorization: x.y.z\r\n",
	             "{\"csr\":\"x\"}", &r) == 0);
	check_failure(&r, 401, "unauthorized");
	http_response_free(&r);
	CHECK(sql_long(&m.f.t, "SELECT count(*) FROM certificates") == 0);
	CHECK(sql_long(&m.f.t, "SELECT count(*) FROM audit WHERE flow = 'matter' AND outcome = "
	                       "'refused'") == 9);
	CHECK(sql_long(&m.f.t,
	               "SELECT count(*) FROM audit WHERE flow = 'matter' AND reason = "
	               "'MATTER_KEY' AND node_id = '%s'",
	               node) == 2);
	/* After all that, a right CSR still works: refusals do not spend the initiate. */
	char *good = sim_matter_csr_pem(ec, node, VID, PID);
	CHECK(matter_verify(&m, alice, good, &r) == 200);
	http_response_free(&r);
	free(good);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	free(node);
	free(bobs);
	free(alice);
	free(bob);
	fx_down(&m.f);
}

/* claimd -t on the case's config: exit status, and whether the output holds @p want. */
static void refused_with(struct mfx *m, const char *pai, const char *products, const char *want)
{
	char *out = NULL;
	mfx_yaml(m, pai, products);
	REQUIRE(tenv_write_config(&m->f.t));
	int rc = t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), m->f.t.config);
	CHECKF(rc != 0 && out && strstr(out, want), "%s: exit %d: %s", pai, rc, out ? out : "");
	free(out);
}

/* Start-up refuses every PAI that could not sign a valid DAC, and says why. */
static void pai_startup_refusals(void)
{
	struct mfx m;
	char *out = NULL;
	REQUIRE(mfx_up(&m, "pai_startup_refusals", false));
	/* The good one passes, products in any case. */
	mfx_yaml(&m, "pai", "[\"0002\", \"800a\"]");
	REQUIRE(tenv_write_config(&m.f.t));
	CHECKF(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), m.f.t.config) == 0, "%s", out);
	free(out);
	const char *s = "/CN=PAI/matterVID=" VID;
	REQUIRE(pki_issue(m.dir, "rsa", RSA_KEY_CMD, s, "paa", "pai", 365));
	REQUIRE(pki_issue(m.dir, "p384", P384_CMD, s, "paa", "pai", 365));
	REQUIRE(pki_issue(m.dir, "path1", EC_KEY_CMD, s, "paa", "pai_path1", 365));
	REQUIRE(pki_issue(m.dir, "nopath", EC_KEY_CMD, s, "paa", "pai_nopath", 365));
	REQUIRE(pki_issue(m.dir, "nosign", EC_KEY_CMD, s, "paa", "pai_no_certsign", 365));
	REQUIRE(pki_issue(m.dir, "leaf", EC_KEY_CMD, s, "paa", "dac", 365));
	REQUIRE(pki_issue(m.dir, "vid", EC_KEY_CMD, "/CN=PAI/matterVID=FFF1", "paa", "pai", 365));
	REQUIRE(pki_issue(m.dir, "novid", EC_KEY_CMD, "/CN=PAI", "paa", "pai", 365));
	REQUIRE(pki_issue(m.dir, "pidpai", EC_KEY_CMD, "/CN=PAI/matterVID=131B/matterPID=0002",
	                  "paa", "pai", 365));
	/* A subject so long that a DAC and the PAI cannot fit in 3071 bytes. */
	char big[1400] = "/CN=PAI";
	for (int i = 0; i < 14; i++)
		strcat(big, "/OU=ouououououououououououououououououououououououououououououou");
	strcat(big, "/matterVID=" VID);
	REQUIRE(pki_issue(m.dir, "big", EC_KEY_CMD, big, "paa", "pai", 365));
	/* Expired yesterday; valid from tomorrow. */
	REQUIRE(pki_issue(m.dir, "expired", EC_KEY_CMD, s, "paa", "pai", 365));
	REQUIRE(redate(m.dir, "expired", "paa", -2 * 86400, -86400));
	REQUIRE(pki_issue(m.dir, "future", EC_KEY_CMD, s, "paa", "pai", 365));
	REQUIRE(redate(m.dir, "future", "paa", 86400, 2 * 86400));
	refused_with(&m, "rsa", "[]", "the PAI key must be EC P-256");
	refused_with(&m, "p384", "[]", "the PAI key must be EC P-256");
	refused_with(&m, "path1", "[]", "pathLenConstraint 0");
	refused_with(&m, "nopath", "[]", "pathLenConstraint 0");
	refused_with(&m, "nosign", "[]", "keyCertSign");
	refused_with(&m, "leaf", "[]", "not a PAI");
	refused_with(&m, "vid", "[]", "vendor id (FFF1) is not matter.vendor_id (131B)");
	refused_with(&m, "novid", "[]", "vendor id (none, or malformed)");
	refused_with(&m, "pidpai", "[\"0003\"]", "the PAI's subject names product 0002 only");
	refused_with(&m, "big", "[]", "over the firmware's limit of 3071");
	refused_with(&m, "expired", "[]", "has expired: no DAC can be signed under it");
	refused_with(&m, "future", "[]", "is not valid yet: no DAC can be signed under it");
	refused_with(&m, "pai", "[\"12345\"]", "matter.product_ids: '12345' is not 4 hex digits");
	/* A readable key is refused like the CA's. */
	t_run(NULL, "chmod 644 '%s/pai.key'", m.dir);
	refused_with(&m, "pai", "[]", "group- or world-accessible");
	t_run(NULL, "chmod 600 '%s/pai.key'", m.dir);
	/* Half a section is an error with its position. */
	char users[512];
	test_users_yaml(users, sizeof(users), 0);
	snprintf(m.yaml, sizeof(m.yaml), "%smatter:\n  pai_certificate: matter/pai.pem\n", users);
	REQUIRE(tenv_write_config(&m.f.t));
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), m.f.t.config) != 0 && out &&
	      strstr(out, "claimd.yaml:") && strstr(out, "are all required"));
	free(out);
	tenv_teardown(&m.f.t);
}

/* node_policies lists in both flows: canonical per certificate, mqtt_cred_host with
 * videostream, anything else 400. */
static void node_policies_lists(void)
{
	struct mfx m;
	struct http_response r;
	REQUIRE(mfx_up(&m, "node_policies_lists", true));
	char *tok = test_token(m.idp, "carol");
	REQUIRE(tok);
	static const struct {
		const char *sent; /* NULL: no field */
		int status;
		const char *stored; /* certificates.node_policies, or the refusal */
		bool cred_host;
	} cases[] = {
	    {NULL, 200, "mqtt", false},
	    {"", 200, "mqtt", false},
	    {"mqtt", 200, "mqtt", false},
	    {"videostream", 200, "videostream", true},
	    {" videostream , MQTT", 200, "mqtt,videostream", true},
	    {"mqtt,videostream,mqtt", 200, "mqtt,videostream", true},
	    {"bogus", 400, "node_policies: must be a comma-separated list", false},
	    {"mqtt,", 400, "node_policies: must be a comma-separated list", false},
	    {"mqtt,,videostream", 400, "node_policies: must be a comma-separated list", false},
	};
	char hdr[4200];
	snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", tok);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char mac[13];
		snprintf(mac, sizeof(mac), "7CDFA10008%02zu", i);
		char *node = initiate_as(&m, tok, mac);
		REQUIRE(node);
		EVP_PKEY *k = sim_key_new("ec");
		char *csr = sim_csr_pem(k, node, false), *js = sim_json_string(csr, SIM_ANDROID),
		     *b;
		char pol[128] = "";
		if (cases[i].sent)
			snprintf(pol, sizeof(pol), ",\"node_policies\":\"%s\"", cases[i].sent);
		REQUIRE(asprintf(&b, "{\"csr\":%s%s}", js, pol) > 0);
		REQUIRE(post(&m.f.d, "claim/verify", hdr, b, &r) == 0);
		CHECKF(r.status == cases[i].status, "'%s': %d %s", cases[i].sent, r.status, r.body);
		if (cases[i].status == 200) {
			check_cert_reply(r.body, r.len, NULL,
			                 cases[i].cred_host ? "creds.test" : NULL);
			CHECKF(
			    sql_long(&m.f.t,
			             "SELECT count(*) FROM certificates WHERE node_id = '%s' AND "
			             "node_policies = '%s' AND profile = 'node'",
			             node, cases[i].stored) == 1,
			    "'%s' not stored as %s", cases[i].sent, cases[i].stored);
		} else {
			check_failure(&r, cases[i].status, cases[i].stored);
		}
		http_response_free(&r);
		free(b);
		free(js);
		free(csr);
		EVP_PKEY_free(k);
		free(node);
	}
	free(tok);
	fx_down(&m.f);
}

/* 401 only for token problems; unknown query parameters ignored; GET /mqtt_host. */
static void status_rules(void)
{
	struct mfx m;
	struct http_response r;
	REQUIRE(mfx_up(&m, "status_rules", true));
	char *tok = test_token(m.idp, "dave");
	REQUIRE(tok);
	char hdr[4200];
	snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", tok);
	/* Unknown parameters on both endpoints, as older CLIs send them. */
	REQUIRE(post(&m.f.d, "claim/initiate?test=True&x=1", hdr,
	             "{\"mac_addr\": \"7CDFA1000901\", \"platform\": \"host\"}", &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	http_response_free(&r);
	/* Token problems: 401 with the description the iOS app looks for. */
	static const char *const bad[] = {"Authorization: \r\n", "Authorization: Bearer \r\n",
	                                  "Authorization: not-a-jwt\r\n",
	                                  "Authorization: a.b.c\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		REQUIRE(post(&m.f.d, "claim/verify?matter=True", bad[i], "{\"csr\":\"x\"}", &r) ==
		        0);
		check_failure(&r, 401, "unauthorized");
		http_response_free(&r);
	}
	/* Every other refusal a user can meet is not 401: field, CSR, initiate, Matter. */
	static const struct {
		const char *path, *body;
		int status;
	} other[] = {
	    {"claim/verify", "{\"csr\":5}", 400},
	    {"claim/verify", "{\"csr\":\"x\"}", 400},
	    {"claim/verify", "[]", 400},
	    {"claim/verify?matter=True", "{\"csr\":\"x\"}", 400},
	    {"claim/verify", "{\"csr\":\"x\",\"node_policies\":\"camera\"}", 400},
	    {"claim/initiate", "{\"mac_addr\":\"xyz\",\"platform\":\"host\"}", 400},
	};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		REQUIRE(post(&m.f.d, other[i].path, hdr, other[i].body, &r) == 0);
		CHECKF(r.status == other[i].status, "%s %s: %d %s", other[i].path, other[i].body,
		       r.status, r.body);
		http_response_free(&r);
	}
	/* The CLI asks its API host for the MQTT host before every claim. */
	REQUIRE(raw(&m.f.d, "GET /mqtt_host HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECKF(r.status == 200 &&
	           strcmp(r.body,
	                  "{\"mqtt_host\":\"mqtt.test\",\"mqtt_cred_host\":\"creds.test\"}") == 0,
	       "%d %s", r.status, r.body);
	check_framing(&r);
	http_response_free(&r);
	fx_down(&m.f);
	/* Without hosts configured it is a clear 404. */
	struct fx f;
	REQUIRE(fx_up(&f, "status_rules_nohost", NULL));
	REQUIRE(raw(&f.d, "GET /mqtt_host HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	check_failure(&r, 404, "mqtt_host: not configured");
	http_response_free(&r);
	fx_down(&f);
	free(tok);
}

/* One Matter claim through claimsim; true when it succeeded. */
static bool one_matter_claim(struct mfx *m, const char *mac)
{
	char *tok = test_token(m->idp, "alice"), *out = NULL, paa[1200];
	snprintf(paa, sizeof(paa), "%s/paa.pem", m->dir);
	int rc = tok ? t_run(&out,
	                     "'%s' cli --matter --vendor-id 131B --product-id 0002 "
	                     "--url 'http://127.0.0.1:%u' --token '%s' --mac %s "
	                     "--out '%s' --root '%s' 2>&1",
	                     t_bin("claimsim"), m->f.d.port, tok, mac, m->f.t.dir, paa)
	             : -1;
	CHECKF(rc == 0, "%s", out ? out : "");
	free(out);
	free(tok);
	return rc == 0;
}

/* The PAI key is the signer's: after a DAC, claimd's memory holds no copy of its
 * scalar and the signer's does; then the same with the PAI key in a SoftHSM2 token
 * (matter.pai_key a pkcs11: URI), the key file deleted. */
static void pai_only_in_signer(void)
{
	struct mfx m;
	struct needle pai;
	char key[1200], uri[1400];

	REQUIRE(geteuid() == 0);
	REQUIRE(mfx_up(&m, "pai_only_in_signer", true));
	snprintf(key, sizeof(key), "%s/pai.key", m.dir);
	REQUIRE(key_secret(key, &pai));
	CHECK(one_matter_claim(&m, "7C:DF:A1:00:05:21"));
	pid_t sg = signer_of(m.f.d.pid);
	REQUIRE(sg > 0);
	CHECKF(!memory_holds(m.f.d.pid, &pai), "claimd holds the PAI key");
	CHECKF(memory_holds(sg, &pai), "the signer lacks the PAI key");
	CHECK(daemon_stop(&m.f.d) == 0);
	REQUIRE(hsm_token(&m.f.t, key, "1234", uri, sizeof(uri)));
	REQUIRE(unlink(key) == 0);
	char yaml[4096];
	snprintf(yaml, sizeof(yaml), "%s", m.yaml);
	char *at = strstr(yaml, "pai_key: ");
	REQUIRE(at);
	snprintf(at, sizeof(yaml) - (size_t)(at - yaml),
	         "pai_key: \"%s\"\n  vendor_id: \"131b\"\n  product_ids: [\"0002\"]\n", uri);
	m.f.t.o.extra = yaml;
	REQUIRE(tenv_write_config(&m.f.t));
	REQUIRE(daemon_start(&m.f.t, &m.f.d));
	CHECK(one_matter_claim(&m, "7C:DF:A1:00:05:22"));
	CHECKF(!memory_holds(m.f.d.pid, &pai), "claimd holds the PAI key (token)");
	fx_down(&m.f);
	unsetenv("SOFTHSM2_CONF");
}

/* Whether metric @p series reaches @p want within 2 s. */
static bool metric_becomes(struct daemon *d, const char *series, long want)
{
	for (int i = 0; i < 40; i++) {
		if (metric(d, series) == want)
			return true;
		usleep(50000);
	}
	return false;
}

/* The DAC of a 200 Matter reply @p r: signed by @p pai, subject CN=@p node and the ids
 * @p vid / @p pid as the Matter attributes, whatever form the PAI and the CSR used. */
static bool dac_is(const struct http_response *r, X509 *pai, const char *node, const char *vid,
                   const char *pid)
{
	json_t *j = r->status == 200 ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	const char *pem = j ? json_string_value(json_object_get(j, "certificate")) : NULL;
	BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *dac = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = pai ? X509_get0_pubkey(pai) : NULL;
	bool ok = dac && k && X509_verify(dac, k) == 1;
	const X509_NAME *s = dac ? X509_get_subject_name(dac) : NULL;
	const char *want[][2] = {
	    {"2.5.4.3", node}, {"1.3.6.1.4.1.37244.2.1", vid}, {"1.3.6.1.4.1.37244.2.2", pid}};
	for (int i = 0; ok && i < 3; i++) {
		ASN1_OBJECT *o = OBJ_txt2obj(want[i][0], 1);
		int at = o ? X509_NAME_get_index_by_OBJ(s, o, -1) : -1;
		const ASN1_STRING *v =
		    at >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(s, at)) : NULL;
		ok = v && (size_t)ASN1_STRING_length(v) == strlen(want[i][1]) &&
		     memcmp(ASN1_STRING_get0_data(v), want[i][1], strlen(want[i][1])) == 0;
		ASN1_OBJECT_free(o);
	}
	ok = ok && X509_NAME_entry_count(s) == 3;
	X509_free(dac);
	BIO_free(b);
	json_decref(j);
	return ok;
}

/*
 * The vendor and product ids in every encoding Matter Core 6.2.2.2 allows (issue 23,
 * kind 3): the attribute types, or "Mvid:"/"Mpid:" in a common name, in the PAI and in
 * the DAC CSR; attributes before the CN; malformed and conflicting CN forms refused
 * naming the vendor id. Also (kind 5): a PAI without subjectKeyIdentifier is refused
 * naming the extension; `claimd -t` prints the DAC+PAI reply size; Matter verifies
 * refused with 413 and 405 count under flow "matter".
 */
static void matter_id_encodings(void)
{
	struct mfx m;
	struct http_response r;
	char *out = NULL;
	REQUIRE(mfx_up(&m, "matter_id_encodings", false));
	static const struct {
		const char *name, *subj, *ext, *products, *want; /* want NULL: accepted */
	} pais[] = {
	    {"cn_vid", "/CN=ACME Matter PAI Mvid:131B", "pai", "[\"0002\"]", NULL},
	    {"cn_vid_pid", "/O=ACME/CN=ACME PAI Mvid:131B Mpid:0002", "pai", "[\"0002\"]", NULL},
	    {"cn_pid_limits", "/CN=PAI Mpid:0002 Mvid:131B", "pai", "[\"0003\"]",
	     "the PAI's subject names product 0002 only"},
	    {"second_cn", "/CN=Test PAI/CN=Mvid:131B", "pai", "[]", NULL},
	    {"attr_first", "/CN=PAI Mvid:FFF1/matterVID=131B", "pai", "[]", NULL},
	    {"attr_pid_only", "/CN=PAI Mvid:131B/matterPID=0002", "pai", "[]",
	     "vendor id (none, or malformed)"},
	    {"cn_wrong", "/CN=PAI Mvid:FFF1", "pai", "[]",
	     "vendor id (FFF1) is not matter.vendor_id (131B)"},
	    {"cn_lower", "/CN=PAI Mvid:131b", "pai", "[]",
	     "vendor id (none, or malformed) is not matter.vendor_id (131B): it is the attribute "
	     "1.3.6.1.4.1.37244.2.1, or Mvid: in the common name"},
	    {"cn_short", "/CN=PAI Mvid:13", "pai", "[]", "vendor id (none, or malformed)"},
	    {"cn_twice", "/CN=PAI Mvid:131B Mvid:FFF1", "pai", "[]",
	     "vendor id (none, or malformed)"},
	    {"cn_bad_pid", "/CN=PAI Mvid:131B Mpid:XY12", "pai", "[]",
	     "vendor id (none, or malformed)"},
	    {"no_ski", "/CN=PAI/matterVID=131B", "pai_no_ski", "[]",
	     "not a PAI: the subjectKeyIdentifier extension is missing"},
	};
	for (size_t i = 0; i < sizeof(pais) / sizeof(pais[0]); i++) {
		REQUIRE(pki_issue(m.dir, pais[i].name, EC_KEY_CMD, pais[i].subj, "paa", pais[i].ext,
		                  365));
		if (pais[i].want) {
			refused_with(&m, pais[i].name, pais[i].products, pais[i].want);
			continue;
		}
		mfx_yaml(&m, pais[i].name, pais[i].products);
		REQUIRE(tenv_write_config(&m.f.t));
		int rc = t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), m.f.t.config);
		CHECKF(rc == 0 && out && strstr(out, ": OK (") &&
		           strstr(out, "; largest Matter DAC+PAI response ") &&
		           strstr(out, " of 3071 bytes; database"),
		       "%s: exit %d: %s", pais[i].name, rc, out ? out : "");
		free(out);
		out = NULL;
	}
	/* Without a matter: section, -t prints no Matter size. */
	m.f.t.o.extra = NULL;
	REQUIRE(tenv_write_config(&m.f.t));
	CHECK(t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), m.f.t.config) == 0 && out &&
	      strstr(out, "largest certificate response") && !strstr(out, "Matter"));
	free(out);

	/* Serving with the CN-form PAI: DACs in the attribute form, from CSRs in either. */
	mfx_yaml(&m, "cn_vid", "[\"0002\", \"8000\"]");
	REQUIRE(tenv_write_config(&m.f.t));
	REQUIRE(daemon_start(&m.f.t, &m.f.d));
	X509 *pai = cert_at(&m, "cn_vid");
	char *alice = test_token(m.idp, "alice");
	REQUIRE(pai && alice);
	EVP_PKEY *ec = sim_key_new("ec");
	REQUIRE(ec);
	char *n1 = initiate_as(&m, alice, "7CDFA1000801");
	char *csr = n1 ? sim_matter_csr_pem(ec, n1, VID, PID) : NULL;
	REQUIRE(csr);
	CHECK(matter_verify(&m, alice, csr, &r) == 200 && dac_is(&r, pai, n1, VID, PID));
	http_response_free(&r);
	free(csr);
	static const struct {
		const char *before, *after, *vid, *pid, *desc; /* CN: before node_id after */
	} csrs[] = {
	    /* desc NULL: 200 */
	    {"", " Mvid:131B Mpid:8000", VID, "8000", NULL},
	    {"Mpid:0002 Mvid:131B ", "", VID, PID, NULL},
	    {"", " Mvid:FFF1 Mpid:0002", NULL, NULL, "csr: the Matter vendor id is not"},
	    {"", " Mvid:131B Mpid:0003", NULL, NULL, "csr: the Matter product id"},
	    {"", " Mvid:131B", NULL, NULL, "csr: a Matter CSR's subject must be"},
	    {"", " Mvid:131b Mpid:0002", NULL, NULL, "csr: a Matter CSR's subject must be"},
	    {"", " Mvid:131B Mvid:131B Mpid:0002", NULL, NULL,
	     "csr: a Matter CSR's subject must be"},
	    {"", " x Mvid:131B Mpid:0002", NULL, NULL, "csr: a Matter CSR's subject must be"},
	};
	for (size_t i = 0; i < sizeof(csrs) / sizeof(csrs[0]); i++) {
		char mac[13], cn[160];
		snprintf(mac, sizeof(mac), "7CDFA10009%02zu", i);
		char *node = initiate_as(&m, alice, mac);
		REQUIRE(node);
		snprintf(cn, sizeof(cn), "%s%s%s", csrs[i].before, node, csrs[i].after);
		csr = sim_csr_pem(ec, cn, true);
		REQUIRE(csr);
		int st = matter_verify(&m, alice, csr, &r);
		if (!csrs[i].desc)
			CHECKF(st == 200 && dac_is(&r, pai, node, csrs[i].vid, csrs[i].pid),
			       "%s: %d %s", cn, st, r.body);
		else
			check_failure(&r, 400, csrs[i].desc);
		http_response_free(&r);
		free(csr);
		free(node);
	}

	/* Refused before the body is read, still flow "matter": 413 (too large, from the
	 * Content-Length), 405 (GET); ?matter=false stays the user/self flow. */
	REQUIRE(raw(&m.f.d,
	            "POST /claim/verify?matter=True HTTP/1.1\r\nHost: x\r\n"
	            "Content-Length: 1000000\r\n\r\n",
	            &r) == 0);
	CHECK(r.status == 413);
	http_response_free(&r);
	REQUIRE(raw(&m.f.d, "GET /claim/verify?matter=true HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECK(r.status == 405);
	http_response_free(&r);
	REQUIRE(raw(&m.f.d, "GET /claim/verify?matter=false HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECK(r.status == 405);
	http_response_free(&r);
	/* Counted when each request is done, which for a reply that closes the connection
	 * can come just after the client read it (metric_becomes() waits). */
	CHECK(metric_becomes(&m.f.d,
	                     "claimd_claims_total{flow=\"matter\",outcome=\"BODY_TOO_LARGE\"}", 1));
	CHECK(metric_becomes(&m.f.d, "claimd_claims_total{flow=\"matter\",outcome=\"METHOD\"}", 1));
	CHECK(metric_becomes(&m.f.d, "claimd_claims_total{flow=\"self\",outcome=\"METHOD\"}", 1));
	CHECK(metric(&m.f.d, "claimd_claims_total{flow=\"self\",outcome=\"BODY_TOO_LARGE\"}") <= 0);
	if (t_failures)
		daemon_dump_log(&m.f.d);
	X509_free(pai);
	EVP_PKEY_free(ec);
	free(n1);
	free(alice);
	fx_down(&m.f);
}

static const struct t_case cases[] = {
    {"dac_checker_rules", dac_checker_rules},
    {"matter_cli_claim", matter_cli_claim},
    {"matter_policies_and_reclaim", matter_policies_and_reclaim},
    {"matter_transfer", matter_transfer},
    {"matter_refusals", matter_refusals},
    {"pai_startup_refusals", pai_startup_refusals},
    {"node_policies_lists", node_policies_lists},
    {"status_rules", status_rules},
    {"pai_only_in_signer", pai_only_in_signer},
    {"matter_id_encodings", matter_id_encodings},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
