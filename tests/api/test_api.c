/*
 * API tests: a real claimd subprocess on a real socket, its own PostgreSQL database
 * and a CA made at test time, driven by the firmware simulator and by hand-made
 * requests. Every rule of docs/protocol.md sections 2, 3 and 5 is its own case.
 */
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/authid.h"
#include "sim/sim.h"
#include "lib/util.h"
#include "api_support.h"
#include "harness.h"

static void self_claim_ec(void)
{
	struct fx f;
	struct sim_result res;
	REQUIRE(fx_up(&f, "self_claim_ec", NULL));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	CHECKF(sim_self_claim(&f.d.url, &dv, NULL, f.t.root, &res) == 0, "%s", res.err);
	free(res.certificate);
	/* Recorded: node (node_id = MAC, no user), certificate, spent session, audit trail. */
	CHECK(sql_long(&f.t,
	               "SELECT count(*) FROM nodes WHERE node_id = '%s' AND mac = '%s' AND "
	               "user_id IS NULL",
	               MAC1, MAC1) == 1);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE node_id = '%s'", MAC1) == 1);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM claim_sessions WHERE mac = '%s' AND used",
	               MAC1) == 1);
	CHECK(sql_long(&f.t,
	               "SELECT count(*) FROM audit WHERE mac = '%s' AND outcome = 'ok' AND "
	               "remote_addr = '127.0.0.1'",
	               MAC1) == 2);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM audit a JOIN certificates c USING (serial) "
	                     "WHERE a.event = 'verify'") == 1);
	EVP_PKEY_free(dv.key);
	fx_down(&f);
}

static void self_claim_rsa_device(void)
{
	struct fx f;
	struct sim_result res;
	REQUIRE(fx_up(&f, "self_claim_rsa_device", NULL));
	struct sim_device dv = device(MAC2, "esp32c3", "rsa");
	CHECKF(sim_self_claim(&f.d.url, &dv, NULL, f.t.root, &res) == 0, "%s", res.err);
	free(res.certificate);
	EVP_PKEY_free(dv.key);
	fx_down(&f);
}

static void rsa_intermediates(void)
{
	static const char *types[] = {"rsa2048", "rsa3072"};
	for (int i = 0; i < 2; i++) {
		struct fx f;
		struct sim_result res;
		/* RSA-3072 + RSA-2048 device + both hosts is 3095 bytes: over the limit
		 * (chain_too_big_refused covers refusing it), so one host there. */
		struct topts o = {.ca_type = types[i],
		                  .mqtt_host = "mqtt.example.com",
		                  .mqtt_cred_host = i == 0 ? "creds.example.com" : NULL};
		char name[64];
		snprintf(name, sizeof(name), "rsa_intermediate_%s", types[i]);
		REQUIRE(fx_up(&f, name, &o));
		/* An RSA-2048 device key under an RSA CA is the largest response there is. */
		struct sim_device dv = device(MAC1, "esp32s3", "rsa");
		CHECKF(sim_self_claim(&f.d.url, &dv, NULL, f.t.root, &res) == 0, "%s: %s", types[i],
		       res.err);
		free(res.certificate);
		EVP_PKEY_free(dv.key);
		fx_down(&f);
	}
}

static void framing_success(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	REQUIRE(fx_up(&f, "framing_success", NULL));
	/* Byte-exact firmware initiate: no Content-Type, no whitespace. */
	REQUIRE(post(&f.d, "claim/initiate", "",
	             "{\"mac_addr\":\"" MAC1 "\",\"platform\":\"esp32s3\"}", &r) == 0);
	CHECK(r.status == 200);
	check_framing(&r);
	REQUIRE(sim_firmware_string(r.body, "auth_id", s.auth_id, sizeof(s.auth_id), false));
	REQUIRE(sim_firmware_string(r.body, "challenge", s.challenge, sizeof(s.challenge), false));
	CHECK(strlen(s.auth_id) <= 63 &&
	      strspn(s.auth_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
	                        "nopqrstuvwxyz0123456789_-") == strlen(s.auth_id));
	CHECK(strlen(s.challenge) <= 128);
	for (const char *p = s.challenge; *p; p++)
		CHECK(*p >= 0x21 && *p < 0x7f && *p != '"' && *p != '\\');
	http_response_free(&r);
	EVP_PKEY *k = sim_key_new("ec");
	char *b = verify_body(&s, K1, k, MAC1);
	REQUIRE(verify(&f.d, b, &r) == 0);
	CHECK(r.status == 200);
	check_framing(&r);
	/* In "certificate" the only escape is \n; no \r, \/, \u; no trailing \n; no blank lines. */
	const char *c = strstr(r.body, "\"certificate\":\"");
	REQUIRE(c);
	c += 15;
	const char *end = strchr(c, '"');
	REQUIRE(end);
	for (const char *p = c; p < end; p++)
		if (*p == '\\') {
			CHECKF(p[1] == 'n', "escape \\%c in certificate", p[1]);
			p++;
		}
	CHECK(!(end - c >= 2 && end[-2] == '\\' && end[-1] == 'n'));
	CHECK(!strstr(r.body, "\\n\\n"));
	/* Leaf then the issuing CA. */
	char *cert = malloc(r.len + 1);
	REQUIRE(sim_firmware_string(r.body, "certificate", cert, r.len + 1, true));
	CHECK(strstr(cert, "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----") != NULL);
	char err[256];
	CHECKF(sim_check_chain(cert, k, MAC1, f.t.root, err, sizeof(err)) == 0, "%s", err);
	/* No mqtt hosts unless configured. */
	CHECK(!strstr(r.body, "mqtt_host"));
	free(cert);
	free(b);
	http_response_free(&r);
	EVP_PKEY_free(k);
	fx_down(&f);
}

static void wrong_response_burns(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	struct topts o = {.max_attempts = 3};
	uint8_t wrong[16] = {1};
	REQUIRE(fx_up(&f, "wrong_response_burns", &o));
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	char *bad = verify_body(&s, wrong, k, MAC1), *good = verify_body(&s, K1, k, MAC1);
	for (int i = 0; i < 3; i++) {
		REQUIRE(verify(&f.d, bad, &r) == 0);
		check_failure(&r, 400, "challenge_response: does not match");
		http_response_free(&r);
	}
	/* After max_attempts wrong answers even the right one is refused. */
	REQUIRE(verify(&f.d, good, &r) == 0);
	check_failure(&r, 400, "too many wrong responses");
	http_response_free(&r);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates") == 0);
	CHECK(sql_long(&f.t, "SELECT attempts FROM claim_sessions") == 3);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM audit WHERE reason = 'RESPONSE_WRONG'") == 3);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM audit WHERE reason = 'AUTHID_BURNED'") == 1);
	/* A fresh initiate works again (the device reboots and retries). */
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	free(good);
	good = verify_body(&s, K1, k, MAC1);
	REQUIRE(verify(&f.d, good, &r) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	free(bad);
	free(good);
	EVP_PKEY_free(k);
	fx_down(&f);
}

static void reused_auth_id(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	REQUIRE(fx_up(&f, "reused_auth_id", NULL));
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	char *b = verify_body(&s, K1, k, MAC1);
	REQUIRE(verify(&f.d, b, &r) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	REQUIRE(verify(&f.d, b, &r) == 0);
	check_failure(&r, 400, "auth_id: already used");
	http_response_free(&r);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates") == 1);
	free(b);
	EVP_PKEY_free(k);
	fx_down(&f);
}

static void unknown_mac(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(fx_up(&f, "unknown_mac", NULL));
	REQUIRE(post(&f.d, "claim/initiate", "",
	             "{\"mac_addr\":\"7CDFA1FFFFFF\",\"platform\":\"esp32s3\"}", &r) == 0);
	check_failure(&r, 400, "not registered");
	http_response_free(&r);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM audit WHERE mac = '7CDFA1FFFFFF' AND reason = "
	                     "'UNKNOWN_DEVICE' AND outcome = 'refused'") == 1);
	fx_down(&f);
}

static void platform_mismatch(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(fx_up(&f, "platform_mismatch", NULL));
	REQUIRE(post(&f.d, "claim/initiate", "",
	             "{\"mac_addr\":\"" MAC1 "\",\"platform\":\"esp32c6\"}", &r) == 0);
	check_failure(&r, 400, "platform: does not match");
	http_response_free(&r);
	fx_down(&f);
}

static void cn_mismatch_keeps_challenge(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	REQUIRE(fx_up(&f, "cn_mismatch_keeps_challenge", NULL));
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	char *b = verify_body(&s, K1, k, MAC2);
	REQUIRE(verify(&f.d, b, &r) == 0);
	check_failure(&r, 400, "csr: CN does not match");
	http_response_free(&r);
	free(b);
	/* The challenge was not spent: the same auth_id still works with a good CSR. */
	b = verify_body(&s, K1, k, MAC1);
	REQUIRE(verify(&f.d, b, &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	http_response_free(&r);
	free(b);
	EVP_PKEY_free(k);
	fx_down(&f);
}

static void bad_csr_signature(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	REQUIRE(fx_up(&f, "bad_csr_signature", NULL));
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	/* Sign a CSR for MAC1 with one key but put another key in it. */
	EVP_PKEY *other = sim_key_new("ec");
	X509_REQ *req = X509_REQ_new();
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
	                           (const unsigned char *)MAC1, -1, -1, 0);
	X509_REQ_set_pubkey(req, other);
	X509_REQ_sign(req, k, EVP_sha256());
	BIO *bio = BIO_new(BIO_s_mem());
	PEM_write_bio_X509_REQ(bio, req);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *pem = strndup(data, (size_t)n), *esc = sim_firmware_escape(pem), resp[129], *b;
	sim_challenge_response(K1, s.challenge, resp);
	REQUIRE(asprintf(&b, "{\"auth_id\":\"%s\",\"challenge_response\":\"%s\",\"csr\":\"%s\"}",
	                 s.auth_id, resp, esc) > 0);
	REQUIRE(verify(&f.d, b, &r) == 0);
	check_failure(&r, 400, "csr: signature does not verify");
	http_response_free(&r);
	free(b);
	free(esc);
	free(pem);
	BIO_free(bio);
	X509_REQ_free(req);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
	fx_down(&f);
}

struct bad_case {
	const char *path;
	const char *body;
	int status;
	const char *desc;
};

static void malformed_requests(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(fx_up(&f, "malformed_requests", NULL));
	static const char *resp128 =
	    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	    "000000000000000000000000000000000000000000000";
	char good_id[AUTHID_LEN + 1], ch[CHALLENGE_LEN + 1], valid_verify[1024];
	authid_issue(f.t.secrets, MAC1, now_unix() + 300, good_id, ch);
	snprintf(valid_verify, sizeof(valid_verify),
	         "{\"auth_id\":\"%s\",\"challenge_response\":\"%s\",\"csr\":\"x\"}", good_id,
	         resp128);
	const struct bad_case cases[] = {
	    {"claim/initiate", "", 400, "body: not a valid JSON object"},
	    {"claim/initiate", "{", 400, "body: not a valid JSON object"},
	    {"claim/initiate", "[1,2]", 400, "body: not a valid JSON object"},
	    {"claim/initiate", "\"str\"", 400, "body: not a valid JSON object"},
	    {"claim/initiate",
	     "{\"mac_addr\":\"" MAC1 "\",\"mac_addr\":\"" MAC1 "\",\"platform\":\"esp32s3\"}", 400,
	     "body: not a valid JSON object"},
	    {"claim/initiate", "{\"platform\":\"esp32s3\"}", 400, "mac_addr: missing"},
	    {"claim/initiate", "{\"mac_addr\":12,\"platform\":\"esp32s3\"}", 400,
	     "mac_addr: must be a string"},
	    {"claim/initiate", "{\"mac_addr\":\"7CDFA10000\",\"platform\":\"esp32s3\"}", 400,
	     "mac_addr: must be 12 hex digits"},
	    {"claim/initiate", "{\"mac_addr\":\"7CDFA100000Z\",\"platform\":\"esp32s3\"}", 400,
	     "mac_addr: must be 12 hex digits"},
	    {"claim/initiate", "{\"mac_addr\":\"" MAC1 "\"}", 400, "platform: missing"},
	    {"claim/initiate", "{\"mac_addr\":\"" MAC1 "\",\"platform\":null}", 400,
	     "platform: must be a string"},
	    {"claim/initiate", "{\"mac_addr\":\"" MAC1 "\",\"platform\":\"esp 32\"}", 400,
	     "platform: must be"},
	    {"claim/initiate", "{\"mac_addr\":\"" MAC1 "\",\"platform\":\"esp32s3\\u0000\"}", 400,
	     "body: not a valid JSON object"},
	    {"claim/verify", "{}", 400, "auth_id: missing"},
	    {"claim/verify", "{\"auth_id\":1,\"challenge_response\":\"\",\"csr\":\"\"}", 400,
	     "auth_id: must be a string"},
	    {"claim/verify", "{\"auth_id\":\"abc\",\"challenge_response\":\"\",\"csr\":\"\"}", 400,
	     "auth_id: invalid"},
	    {"claim/verify", "{\"auth_id\":\"abc\",\"csr\":\"\"}", 400,
	     "challenge_response: missing"},
	    {"claim/verify", "{\"auth_id\":\"abc\",\"challenge_response\":[],\"csr\":\"\"}", 400,
	     "challenge_response: must be a string"},
	    {"claim/verify", "{\"auth_id\":\"abc\",\"challenge_response\":\"00\"}", 400,
	     "csr: missing"},
	    {"claim/verify", "{\"auth_id\":\"abc\",\"challenge_response\":\"00\",\"csr\":{}}", 400,
	     "csr: must be a string"},
	    {"claim/verify",
	     "{\"auth_id\":\"abc\",\"challenge_response\":\"00\",\"csr\":\"x\",\"node_policies\":"
	     "5}",
	     400, "node_policies"},
	    {NULL, NULL, 0, NULL},
	};
	for (const struct bad_case *c = cases; c->path; c++) {
		REQUIRE(post(&f.d, c->path, "", c->body, &r) == 0);
		check_failure(&r, c->status, c->desc);
		http_response_free(&r);
	}
	/* With a valid auth_id, the response and CSR fields are checked in turn. */
	char body[1400];
	snprintf(body, sizeof(body),
	         "{\"auth_id\":\"%s\",\"challenge_response\":\"XYZ\",\"csr\":\"x\"}", good_id);
	REQUIRE(post(&f.d, "claim/verify", "", body, &r) == 0);
	check_failure(&r, 400, "challenge_response: must be 128 hex digits");
	http_response_free(&r);
	snprintf(body, sizeof(body),
	         "{\"auth_id\":\"%s\",\"challenge_response\":\"%.127sG\",\"csr\":\"x\"}", good_id,
	         resp128);
	REQUIRE(post(&f.d, "claim/verify", "", body, &r) == 0);
	check_failure(&r, 400, "challenge_response: must be 128 hex digits");
	http_response_free(&r);
	REQUIRE(post(&f.d, "claim/verify", "", valid_verify, &r) == 0);
	check_failure(&r, 400, "csr: PEM armour: ");
	http_response_free(&r);
	/* Nothing was written by any of these. */
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates") == 0);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM nodes") == 0);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM claim_sessions") == 0);
	fx_down(&f);
}

static void oversized_body(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(fx_up(&f, "oversized_body", NULL));
	/* Declared too large: refused before the body is read. */
	REQUIRE(raw(&f.d,
	            "POST /claim/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n{",
	            &r) == 0);
	check_failure(&r, 413, "body: too large");
	http_response_free(&r);
	/* Actually too large. */
	size_t n = 64 * 1024;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	REQUIRE(post(&f.d, "claim/initiate", "", big, &r) == 0);
	check_failure(&r, 413, "body: too large");
	http_response_free(&r);
	/* Chunked upload without a length, too large. */
	char *req = NULL;
	REQUIRE(asprintf(&req,
	                 "POST /claim/initiate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	                 "chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
	                 n, big) > 0);
	REQUIRE(raw(&f.d, req, &r) == 0);
	check_failure(&r, 413, "body: too large");
	http_response_free(&r);
	free(req);
	free(big);
	/* Still healthy. */
	REQUIRE(raw(&f.d, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	fx_down(&f);
}

static void unknown_path_and_method(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(fx_up(&f, "unknown_path_and_method", NULL));
	REQUIRE(post(&f.d, "claim/nope", "", "{}", &r) == 0);
	check_failure(&r, 404, "no such endpoint");
	http_response_free(&r);
	REQUIRE(raw(&f.d, "GET /claim/initiate HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	check_failure(&r, 405, "method not allowed");
	char allow[64];
	CHECK(http_header(&r, "Allow", allow, sizeof(allow)) && strcmp(allow, "POST") == 0);
	http_response_free(&r);
	REQUIRE(raw(&f.d, "PUT /claim/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	            &r) == 0);
	check_failure(&r, 405, "method not allowed");
	http_response_free(&r);
	REQUIRE(raw(&f.d, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", &r) ==
	        0);
	check_failure(&r, 405, "method not allowed");
	/* The Allow header lists the route's methods from the route table. */
	CHECK(http_header(&r, "Allow", allow, sizeof(allow)) && strcmp(allow, "GET, HEAD") == 0);
	http_response_free(&r);
	/* An escaped NUL does not cut the path short ("/crl%00x" is not "/crl"); other
	 * escapes are decoded as before. */
	static const char *const nul_paths[] = {"/crl%00x", "/healthz%00", "/claim/initiate%00x"};
	for (size_t i = 0; i < sizeof(nul_paths) / sizeof(nul_paths[0]); i++) {
		char req[128];
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", nul_paths[i]);
		REQUIRE(raw(&f.d, req, &r) == 0);
		check_failure(&r, 404, "no such endpoint");
		http_response_free(&r);
	}
	REQUIRE(raw(&f.d, "GET /healt%68z HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	fx_down(&f);
}

static void expired_challenge(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	REQUIRE(fx_up(&f, "expired_challenge", NULL));
	/* An auth_id the server itself would have issued, already past its expiry. */
	authid_issue(f.t.secrets, MAC1, now_unix() - 1, s.auth_id, s.challenge);
	EVP_PKEY *k = sim_key_new("ec");
	char *b = verify_body(&s, K1, k, MAC1);
	REQUIRE(verify(&f.d, b, &r) == 0);
	check_failure(&r, 400, "auth_id: challenge expired");
	http_response_free(&r);
	free(b);
	/* And one that really expires with a short TTL. */
	fx_down(&f);
	struct topts o = {.ttl = 5};
	REQUIRE(fx_up(&f, "expired_challenge_ttl", &o));
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	b = verify_body(&s, K1, k, MAC1);
	sleep(7);
	REQUIRE(verify(&f.d, b, &r) == 0);
	check_failure(&r, 400, "auth_id: challenge expired");
	http_response_free(&r);
	free(b);
	EVP_PKEY_free(k);
	fx_down(&f);
}

static void forged_auth_id(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	REQUIRE(fx_up(&f, "forged_auth_id", NULL));
	/* Issued under a different secrets key: looks right, is not ours. */
	uint8_t other[32] = {9};
	struct secrets *sx = secrets_from_bytes(other);
	authid_issue(sx, MAC1, now_unix() + 300, s.auth_id, s.challenge);
	secrets_free(sx);
	EVP_PKEY *k = sim_key_new("ec");
	char *b = verify_body(&s, K1, k, MAC1);
	REQUIRE(verify(&f.d, b, &r) == 0);
	check_failure(&r, 400, "auth_id: invalid");
	http_response_free(&r);
	free(b);
	EVP_PKEY_free(k);
	fx_down(&f);
}

static void path_and_field_normalisation(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(fx_up(&f, "path_and_field_normalisation", NULL));
	/* A base URL ending in '/' makes the firmware send //claim/initiate. */
	struct http_url u = f.d.url;
	strcpy(u.base, "/");
	char err[256];
	const char *body = "{\"mac_addr\":\"7c:df:a1:00:00:01\",\"platform\":\"ESP32S3\"}";
	REQUIRE(http_post(&u, "claim/initiate", "", body, strlen(body), 5000, &r, err,
	                  sizeof(err)) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	http_response_free(&r);
	/* The whole claim through a trailing-slash base. */
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	struct sim_result res;
	CHECKF(sim_self_claim(&u, &dv, NULL, f.t.root, &res) == 0, "%s", res.err);
	free(res.certificate);
	EVP_PKEY_free(dv.key);
	/* Any key order in verify, and a Content-Type that is not JSON is ignored. */
	REQUIRE(post(&f.d, "claim/initiate", "Content-Type: text/plain\r\n",
	             "{\"platform\":\"esp32s3\", \"mac_addr\" : \"7C-DF-A1-00-00-01\"}", &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	http_response_free(&r);
	fx_down(&f);
}

static void reclaim_same_key(void)
{
	struct fx f;
	struct sim_result res;
	REQUIRE(fx_up(&f, "reclaim_same_key", NULL));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	for (int i = 0; i < 3; i++) {
		CHECKF(sim_self_claim(&f.d.url, &dv, NULL, f.t.root, &res) == 0, "%s", res.err);
		free(res.certificate);
	}
	CHECK(sql_long(&f.t, "SELECT count(*) FROM nodes") == 1);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE node_id = '%s'", MAC1) == 3);
	CHECK(sql_long(&f.t, "SELECT count(DISTINCT key_sha256) FROM certificates") == 1);
	CHECK(sql_long(&f.t, "SELECT count(DISTINCT serial) FROM certificates") == 3);
	EVP_PKEY_free(dv.key);
	fx_down(&f);
}

static void two_daemons(void)
{
	struct fx f;
	struct daemon d2;
	struct session s;
	struct http_response r;
	REQUIRE(fx_up(&f, "two_daemons", NULL));
	REQUIRE(daemon_start(&f.t, &d2));
	EVP_PKEY *k = sim_key_new("ec");
	/* Initiate on one, verify on the other. */
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	char *b = verify_body(&s, K1, k, MAC1);
	REQUIRE(verify(&d2, b, &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	http_response_free(&r);
	/* And the spent auth_id is refused by the first. */
	REQUIRE(verify(&f.d, b, &r) == 0);
	check_failure(&r, 400, "already used");
	http_response_free(&r);
	free(b);
	CHECK(daemon_stop(&d2) == 0);
	EVP_PKEY_free(k);
	fx_down(&f);
}

struct racer {
	struct daemon *d;
	const char *body;
	pthread_barrier_t *bar;
	int status;
};

static void *race(void *arg)
{
	struct racer *rc = arg;
	struct http_response r;
	pthread_barrier_wait(rc->bar);
	rc->status = verify(rc->d, rc->body, &r) == 0 ? r.status : -1;
	http_response_free(&r);
	return NULL;
}

static void racing_verifies(void)
{
	struct fx f;
	struct daemon d2;
	/* 20 initiates of one MAC in a second: the per-MAC limit would stop them. */
	struct topts o = {.extra = "limits:\n  mac_per_minute: 0\n"};
	REQUIRE(fx_up(&f, "racing_verifies", &o));
	REQUIRE(daemon_start(&f.t, &d2));
	EVP_PKEY *k = sim_key_new("ec");
	enum { ROUNDS = 20, RACERS = 4 };
	for (int round = 0; round < ROUNDS; round++) {
		struct session s;
		REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
		char *b = verify_body(&s, K1, k, MAC1);
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, RACERS);
		struct racer rc[RACERS];
		pthread_t th[RACERS];
		for (int i = 0; i < RACERS; i++) {
			rc[i] = (struct racer){i % 2 ? &d2 : &f.d, b, &bar, 0};
			pthread_create(&th[i], NULL, race, &rc[i]);
		}
		int ok = 0, refused = 0;
		for (int i = 0; i < RACERS; i++) {
			pthread_join(th[i], NULL);
			ok += rc[i].status == 200;
			refused += rc[i].status == 400;
		}
		CHECKF(ok == 1 && refused == RACERS - 1, "round %d: %d won, %d refused", round, ok,
		       refused);
		pthread_barrier_destroy(&bar);
		free(b);
	}
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates") == ROUNDS);
	CHECK(sql_long(&f.t,
	               "SELECT count(*) FROM audit WHERE event = 'verify' AND outcome = 'ok'") ==
	      ROUNDS);
	/* One row per verify, however it was judged (from the memo or the lookup, or both) */
	CHECK(sql_long(&f.t, "SELECT count(*) FROM audit WHERE event = 'verify'") ==
	      ROUNDS * RACERS);
	CHECK(daemon_stop(&d2) == 0);
	EVP_PKEY_free(k);
	fx_down(&f);
}

struct reclaimer {
	struct daemon *d;
	const char *root;
	pthread_barrier_t *bar; /* NULL: one claim, no waiting */
	int rounds, failed;
};

static void *reclaim_rounds(void *arg)
{
	struct reclaimer *rc = arg;
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	for (int round = 0; round < rc->rounds; round++) {
		struct sim_result res;
		if (rc->bar)
			pthread_barrier_wait(rc->bar);
		if (sim_self_claim(&rc->d->url, &dv, NULL, rc->root, &res) != 0)
			rc->failed++;
		free(res.certificate);
	}
	EVP_PKEY_free(dv.key);
	return NULL;
}

/* Starts @p n claimers of MAC1 (on @p a and @p b in turn) and waits for them. */
static int run_reclaimers(struct fx *f, struct daemon *a, struct daemon *b, int n, int rounds,
                          pthread_barrier_t *bar)
{
	struct reclaimer rc[8];
	pthread_t th[8];
	int failed = 0;
	for (int i = 0; i < n; i++) {
		rc[i] = (struct reclaimer){
		    .d = i % 2 ? b : a, .root = f->t.root, .bar = bar, .rounds = rounds};
		if (pthread_create(&th[i], NULL, reclaim_rounds, &rc[i]) != 0)
			n = i; /* join those started; the count below fails the case */
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		failed += rc[i].failed;
	}
	return failed;
}

/* Another connection that holds MAC1's node row, as a release does first (BEGIN, then
 * SELECT ... FOR UPDATE); the caller commits and finishes it. */
static PGconn *hold_node_row(struct fx *f)
{
	PGconn *hold = PQconnectdb(f->t.conninfo);
	CHECK(PQstatus(hold) == CONNECTION_OK);
	PQclear(PQexec(hold, "BEGIN"));
	PGresult *r = PQexec(hold, "SELECT 1 FROM nodes WHERE mac = '" MAC1 "' FOR UPDATE");
	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
	PQclear(r);
	return hold;
}

/* How many claim commits wait for a lock, once @p n do or after about a second: the
 * holder must let go well within database.timeout_ms (1.5 s), after which a statement
 * that waits is taken for a database that does not answer. */
static long commits_waiting(struct fx *f, long n)
{
	long waiting = 0;
	for (int i = 0; i < 200 && waiting < n; i++) {
		usleep(5 * 1000);
		waiting = sql_long(&f->t, "SELECT count(*) FROM pg_stat_activity WHERE "
		                          "wait_event_type = 'Lock' AND query LIKE 'WITH g AS%%'");
	}
	return waiting;
}

/* Four verifies of MAC1, initiated beforehand, sent together while another connection
 * holds the node's row, which is let go when all four commits wait for it: each
 * statement then began before the others committed. Returns how many got 200. */
static int held_verifies(struct fx *f, struct daemon *b, EVP_PKEY *k)
{
	enum { N = 4 };
	struct session s[N];
	char *body[N];
	struct racer rc[N];
	pthread_t th[N];
	pthread_barrier_t bar;
	int ok = 0;
	for (int i = 0; i < N; i++) {
		if (!initiate(i % 2 ? b : &f->d, MAC1, "esp32s3", &s[i])) {
			CHECKF(false, "initiate %d", i);
			return 0;
		}
		body[i] = verify_body(&s[i], K1, k, MAC1);
	}
	PGconn *hold = hold_node_row(f);
	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		rc[i] = (struct racer){i % 2 ? b : &f->d, body[i], &bar, 0};
		if (pthread_create(&th[i], NULL, race, &rc[i]) != 0)
			abort(); /* the barrier would wait for it forever */
	}
	long waiting = commits_waiting(f, N);
	CHECKF(waiting == N, "%ld of %d claims waited for the node's row", waiting, N);
	PQclear(PQexec(hold, "COMMIT"));
	PQfinish(hold);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ok += rc[i].status == 200;
		free(body[i]);
	}
	pthread_barrier_destroy(&bar);
	return ok;
}

/*
 * Re-claims of one device that overlap, on two daemons: the node ends with one valid
 * certificate, the others revoked as superseded (revocation.on_reclaim's default), as
 * when the claims come one after the other. First four claims whose statements are
 * held at the node's row until all four wait (each then began before the others
 * committed), then four claimers starting eight rounds together.
 */
static void reclaim_race(void)
{
	struct fx f;
	struct daemon d2;
	struct topts o = {.extra = "limits:\n  mac_per_minute: 0\n"};
	REQUIRE(fx_up(&f, "reclaim_race", &o));
	REQUIRE(daemon_start(&f.t, &d2));
	static const char valid[] = "SELECT count(*) FROM certificates WHERE revoked_at IS NULL";
	CHECK(run_reclaimers(&f, &f.d, &d2, 1, 1, NULL) == 0);
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(k);
	CHECK(held_verifies(&f, &d2, k) == 4);
	EVP_PKEY_free(k);
	CHECKF(sql_long(&f.t, valid) == 1, "%ld valid certificates after 4 held claims",
	       sql_long(&f.t, valid));
	/* The three that found the node changed by another's commit were run again. */
	static const char retried[] = "claimd_db_transaction_retries_total{reason=\"conflict\"}";
	long again = metric(&f.d, retried) + metric(&d2, retried);
	CHECKF(again >= 3, "%ld claim statements run again", again);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 4);
	CHECK(run_reclaimers(&f, &f.d, &d2, 4, 8, &bar) == 0);
	pthread_barrier_destroy(&bar);
	long all = sql_long(&f.t, "SELECT count(*) FROM certificates");
	CHECKF(all == 1 + 4 + 32, "%ld certificates", all);
	CHECKF(sql_long(&f.t, valid) == 1, "%ld valid certificates after 32 more",
	       sql_long(&f.t, valid));
	/* Each superseded one says so, and by which request. */
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL AND "
	                     "revocation_reason = 4 AND revoked_by IS NOT NULL") == all - 1);
	CHECK(daemon_stop(&d2) == 0);
	fx_down(&f);
}

/*
 * A re-claim takes the node's row before any of its certificate rows, in the order an
 * operator's release takes them, so the two wait for each other instead of
 * deadlocking. Another connection holds the node's row as a release does, a verify's
 * commit waits for it, and the holder then revokes the node's certificates under a
 * lock_timeout shorter than deadlock_timeout: the verify holds none of them. The verify
 * then finds the node changed, is run again, and the node is claimed again.
 */
static void reclaim_release_order(void)
{
	struct fx f;
	struct session s;
	REQUIRE(fx_up(&f, "reclaim_release_order", NULL));
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(k);
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	char *first = verify_body(&s, K1, k, MAC1);
	struct http_response r;
	REQUIRE(verify(&f.d, first, &r) == 0 && r.status == 200);
	http_response_free(&r);
	free(first);
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	char *body = verify_body(&s, K1, k, MAC1);
	PGconn *hold = hold_node_row(&f);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 1);
	struct racer rc = {&f.d, body, &bar, 0};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, race, &rc) == 0);
	CHECKF(commits_waiting(&f, 1) == 1, "the verify's commit did not wait for the node's row");
	PQclear(PQexec(hold, "SET LOCAL lock_timeout = '300ms'"));
	PGresult *q =
	    PQexec(hold, "UPDATE certificates SET revoked_at = now(), revocation_reason = 5,"
	                 " revoked_by = 'test' WHERE revoked_at IS NULL");
	CHECKF(PQresultStatus(q) == PGRES_COMMAND_OK, "revoking while the verify waits: %s",
	       PQresultErrorMessage(q));
	PQclear(q);
	q = PQexec(hold, "UPDATE nodes SET released_at = now() WHERE mac = '" MAC1 "'");
	PQclear(q);
	PQclear(PQexec(hold, "COMMIT"));
	PQfinish(hold);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&bar);
	CHECKF(rc.status == 200, "the verify: %d", rc.status);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM nodes WHERE mac = '" MAC1
	                     "' AND released_at IS NULL") == 1);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE revoked_at IS NULL") == 1);
	free(body);
	EVP_PKEY_free(k);
	fx_down(&f);
}

static void matter_parameter(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	REQUIRE(fx_up(&f, "matter_parameter", NULL));
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	char *b = verify_body(&s, K1, k, MAC1);
	REQUIRE(post(&f.d, "claim/verify?matter=true", "", b, &r) == 0);
	check_failure(&r, 400, "matter: Matter certificates are not configured");
	http_response_free(&r);
	/* Unknown parameters (older CLIs send test=True) are ignored (protocol.md 1). */
	REQUIRE(post(&f.d, "claim/verify?matter=False&test=True&x", "", b, &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	http_response_free(&r);
	free(b);
	EVP_PKEY_free(k);
	fx_down(&f);
}

static void policies_and_mqtt_hosts(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	struct topts o = {.mqtt_host = "mqtt.example.com", .mqtt_cred_host = "creds.example.com"};
	REQUIRE(fx_up(&f, "policies_and_mqtt_hosts", &o));
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	char resp[129], *csr = sim_csr_pem(k, MAC1, false), *esc = sim_firmware_escape(csr), *b;
	sim_challenge_response(K1, s.challenge, resp);
	REQUIRE(asprintf(&b,
	                 "{\"auth_id\":\"%s\",\"challenge_response\":\"%s\",\"csr\":\"%s\","
	                 "\"node_policies\":\"videostream\"}",
	                 s.auth_id, resp, esc) > 0);
	REQUIRE(verify(&f.d, b, &r) == 0);
	CHECKF(r.status == 200, "%s", r.body);
	check_framing(&r);
	char host[64];
	CHECK(sim_firmware_string(r.body, "mqtt_host", host, sizeof(host), false) &&
	      strcmp(host, "mqtt.example.com") == 0);
	CHECK(sim_firmware_string(r.body, "mqtt_cred_host", host, sizeof(host), false) &&
	      strcmp(host, "creds.example.com") == 0);
	check_cert_reply(r.body, r.len, "mqtt.example.com", "creds.example.com");
	http_response_free(&r);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM nodes WHERE node_policies = 'videostream'") ==
	      1);
	free(b);
	free(esc);
	free(csr);
	EVP_PKEY_free(k);
	fx_down(&f);
}

static void health_ready_metrics(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(fx_up(&f, "health_ready_metrics", NULL));
	REQUIRE(raw(&f.d, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECK(r.status == 200);
	check_framing(&r);
	http_response_free(&r);
	REQUIRE(raw(&f.d, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	REQUIRE(raw(&f.d, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECK(r.status == 200 && strstr(r.body, "claimd_replies_total{code=\"OK\""));
	http_response_free(&r);
	/* With the database gone, ready says 503 and health still 200. */
	char *out = NULL;
	PGconn *admin = PQconnectdb(getenv("CLAIMD_TEST_PG"));
	REQUIRE(PQstatus(admin) == CONNECTION_OK);
	char sql[512];
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s WITH ALLOW_CONNECTIONS false", f.t.name);
	PGresult *pr = PQexec(admin, sql);
	CHECKF(PQresultStatus(pr) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(pr));
	PQclear(pr);
	snprintf(
	    sql, sizeof(sql),
	    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '%s'",
	    f.t.name);
	PQclear(PQexec(admin, sql));
	REQUIRE(raw(&f.d, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	check_failure(&r, 503, "not ready");
	http_response_free(&r);
	/* A claim with the database gone: 503 with the failure body, nothing half-done. */
	REQUIRE(post(&f.d, "claim/initiate", "",
	             "{\"mac_addr\":\"" MAC1 "\",\"platform\":\"esp32s3\"}", &r) == 0);
	check_failure(&r, 503, "service busy");
	char ra[16];
	CHECK(http_header(&r, "Retry-After", ra, sizeof(ra)));
	http_response_free(&r);
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s WITH ALLOW_CONNECTIONS true", f.t.name);
	PQclear(PQexec(admin, sql));
	PQfinish(admin);
	/* The harness's own connection was cut too. */
	PQreset(f.t.pg);
	/* It comes back by itself. */
	REQUIRE(raw(&f.d, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECKF(r.status == 200, "%d", r.status);
	http_response_free(&r);
	free(out);
	fx_down(&f);
}

static void reload_and_shutdown(void)
{
	struct fx f;
	struct sim_result res;
	REQUIRE(fx_up(&f, "reload_and_shutdown", NULL));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	/* SIGHUP with a new mqtt_host: the next claim returns it. */
	f.t.o.mqtt_host = "new.example.com";
	REQUIRE(tenv_write_config(&f.t));
	kill(f.d.pid, SIGHUP);
	usleep(300 * 1000);
	struct session s;
	struct http_response r;
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s));
	char *b = verify_body(&s, K1, dv.key, MAC1);
	REQUIRE(verify(&f.d, b, &r) == 0);
	CHECKF(r.status == 200 && strstr(r.body, "\"mqtt_host\":\"new.example.com\""), "%s",
	       r.body);
	http_response_free(&r);
	free(b);
	/* A broken config is refused and the running one kept. */
	FILE *cf = fopen(f.t.config, "a");
	fputs("bogus_key: 1\n", cf);
	fclose(cf);
	kill(f.d.pid, SIGHUP);
	usleep(300 * 1000);
	CHECKF(sim_self_claim(&f.d.url, &dv, NULL, f.t.root, &res) == 0, "%s", res.err);
	free(res.certificate);
	char *log = NULL;
	t_run(&log, "cat '%s'", f.d.log);
	CHECK(log && strstr(log, "reload refused") && strstr(log, "unknown key 'bogus_key'"));
	free(log);
	EVP_PKEY_free(dv.key);
	fx_down(&f); /* checks SIGTERM gives exit 0 */
}

/* How many times @p needle is in claimd's log. */
static int log_count(const struct daemon *d, const char *needle)
{
	size_t n;
	char *log = file_read_all(d->log, 1 << 24, &n);
	int count = 0;
	for (const char *p = log; p && (p = strstr(p, needle)); p += strlen(needle))
		count++;
	free(log);
	return count;
}

/* Waits up to five seconds for the @p nth "reloaded" line. */
static bool reloaded(const struct daemon *d, int nth)
{
	for (int i = 0; i < 500 && log_count(d, "reloaded ") < nth; i++)
		usleep(10 * 1000);
	return log_count(d, "reloaded ") >= nth;
}

static void reload_restart_keys(void)
{
	struct fx f;
	struct http_response r;
	REQUIRE(fx_up(&f, "reload_restart_keys", NULL));
	/* An unchanged config: nothing to warn about. */
	kill(f.d.pid, SIGHUP);
	REQUIRE(reloaded(&f.d, 1));
	CHECK(log_count(&f.d, "takes effect at the next restart") == 0);
	/* A new listen address and worker count are named; the database URL is the same. */
	REQUIRE(t_run(NULL,
	              "sed -i 's/127\\.0\\.0\\.1:0/127.0.0.1:1/; s/threads: 4/threads: 5/' '%s'",
	              f.t.config) == 0);
	kill(f.d.pid, SIGHUP);
	REQUIRE(reloaded(&f.d, 2));
	CHECK(log_count(&f.d, "server.listen changed: takes effect at the next restart") == 1);
	CHECK(log_count(&f.d, "server.threads changed: takes effect at the next restart") == 1);
	CHECK(log_count(&f.d, "takes effect at the next restart") == 2);
	/* Still serving where it listened before. */
	REQUIRE(raw(&f.d, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	fx_down(&f);
}

static void config_check_mode(void)
{
	struct tenv t;
	char *out = NULL;
	REQUIRE(tenv_setup(&t, "config_check_mode", NULL));
	CHECK(t_run(&out, "'%s' -t -c '%s'", t_bin("claimd"), t.config) == 0);
	free(out);
	FILE *cf = fopen(t.config, "a");
	fputs("claim:\n  bogus: 1\n", cf);
	fclose(cf);
	CHECK(t_run(&out, "'%s' -t -c '%s'", t_bin("claimd"), t.config) != 0);
	/* The duplicate 'claim' section is reported with its position. */
	CHECKF(out && strstr(out, "claimd.yaml:") && strstr(out, "claim: duplicate key"), "%s",
	       out);
	free(out);
	/* A world-readable CA key is refused. */
	REQUIRE(tenv_write_config(&t));
	t_run(NULL, "chmod 644 '%s/intermediate.key'", t.ca_dir);
	CHECK(t_run(&out, "'%s' -t -c '%s'", t_bin("claimd"), t.config) != 0);
	CHECK(out && strstr(out, "group- or world-accessible"));
	free(out);
	tenv_teardown(&t);
}

static void chain_too_big_refused(void)
{
	struct tenv t;
	char *out = NULL, chain[800];
	struct topts o = {.ca_type = "rsa3072"};
	REQUIRE(tenv_setup(&t, "chain_too_big_refused", &o));
	/* Three more RSA-3072 certificates cannot fit in 3071 bytes with the leaf. */
	snprintf(chain, sizeof(chain), "%s/chain.pem", t.dir);
	t_run(NULL, "cat '%s/root.pem' '%s/root.pem' '%s/root.pem' > '%s'", t.ca_dir, t.ca_dir,
	      t.ca_dir, chain);
	t.o.chain = chain;
	REQUIRE(tenv_write_config(&t));
	CHECK(t_run(&out, "'%s' -t -c '%s'", t_bin("claimd"), t.config) != 0);
	CHECKF(out && strstr(out, "over the firmware's limit of 3071"), "%s", out);
	free(out);
	tenv_teardown(&t);
}

/* A self claim's verify body with @p csr as it is (any line ends), by a JSON encoder. */
static char *verify_body_pem(const struct session *s, const char *csr)
{
	char resp[129];
	sim_challenge_response(K1, s->challenge, resp);
	json_t *j = json_pack("{s:s, s:s, s:s}", "auth_id", s->auth_id, "challenge_response", resp,
	                      "csr", csr);
	char *b = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return b;
}

/* CSRs as clients write them (RFC 7468 section 3): wrapped at 76 columns, on one line,
 * with CR LF, each claims; each broken layer is refused with its own description, and
 * a refusal does not spend the challenge. */
static void csr_line_widths(void)
{
	struct fx f;
	struct session s;
	struct http_response r;
	static const struct {
		size_t width;
		const char *eol;
	} forms[] = {{76, "\n"}, {0, "\n"}, {64, "\r\n"}, {76, "\r\n"}, {0, "\r\n"}};
	REQUIRE(fx_up(&f, "csr_line_widths", NULL));
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(k);
	char *pem = sim_csr_pem(k, MAC1, false);
	REQUIRE(pem);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char *csr = t_pem_rewrap(pem, forms[i].width, forms[i].eol), *b;
		REQUIRE(csr && initiate(&f.d, MAC1, "esp32s3", &s));
		b = verify_body_pem(&s, csr);
		REQUIRE(b && verify(&f.d, b, &r) == 0);
		CHECKF(r.status == 200, "width %zu: %d %.*s", forms[i].width, r.status, (int)r.len,
		       r.body);
		if (r.status == 200)
			check_cert_reply(r.body, r.len, NULL, NULL);
		http_response_free(&r);
		free(b);
		free(csr);
	}
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE node_id = '%s'", MAC1) == 5);
	/* Refusals, one per layer, all on one challenge: none of them spends it. */
	const char *nl = strchr(pem, '\n');
	REQUIRE(nl);
	char *bad[4] = {NULL};
	const char *want[4] = {"csr: PEM armour: ", "csr: PEM body is not base64",
	                       "csr: not a DER-encoded PKCS#10",
	                       "csr: signature algorithm must be"};
	REQUIRE(asprintf(&bad[0], "%.*s%s", (int)(nl - pem), pem, nl + 1) > 0);
	REQUIRE(asprintf(&bad[1], "%.*s\nMII %s", (int)(nl - pem), pem, nl + 4) > 0);
	bad[2] =
	    strdup("-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE "
	           "REQUEST-----");
	X509_REQ *q = X509_REQ_new();
	REQUIRE(q && bad[2] &&
	        X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(q), NID_commonName,
	                                   MBSTRING_ASC, (const unsigned char *)MAC1, -1, -1, 0) &&
	        X509_REQ_set_pubkey(q, k) && X509_REQ_sign(q, k, EVP_sha1()) > 0);
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	REQUIRE(bio && PEM_write_bio_X509_REQ(bio, q));
	long n = BIO_get_mem_data(bio, &data);
	bad[3] = strndup(data, (size_t)n);
	BIO_free(bio);
	X509_REQ_free(q);
	REQUIRE(bad[3] && initiate(&f.d, MAC1, "esp32s3", &s));
	for (size_t i = 0; i < 4; i++) {
		char *b = verify_body_pem(&s, bad[i]);
		REQUIRE(b && verify(&f.d, b, &r) == 0);
		check_failure(&r, 400, want[i]);
		http_response_free(&r);
		free(b);
		free(bad[i]);
	}
	char *csr = t_pem_rewrap(pem, 0, "\r\n"), *b = csr ? verify_body_pem(&s, csr) : NULL;
	REQUIRE(b && verify(&f.d, b, &r) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	free(b);
	free(csr);
	free(pem);
	EVP_PKEY_free(k);
	fx_down(&f);
}

/* A CSV as the factory writes it, at @p name in the case's folder. */
static const char *case_csv(struct fx *f, const char *name, const char *text)
{
	static char path[1100];
	snprintf(path, sizeof(path), "%s/%s", f->t.dir, name);
	FILE *o = fopen(path, "w");
	if (!o)
		return NULL;
	fputs(text, o);
	return fclose(o) == 0 ? path : NULL;
}

/* Every spelling through every entry point (README.md, "Registering chips at
 * manufacturing"): claimctl's import of a spreadsheet's CSV (byte-order mark, CRLF, header
 * names in capitals, ESP32-S3 and esp32_s3, an extra platform), then the devices'
 * self claims with the firmware's spelling and others, then claimctl's MAC arguments. */
static void import_spellings_self_claim(void)
{
	struct fx f;
	struct sim_result res;
	struct http_response r;
	struct topts o = {0};
	char *out = NULL;
	/* Appended inside the harness's claim: section, its last. */
	o.extra = "  extra_platforms: [\"ESP32-X9\"]\n";
	REQUIRE(fx_up(&f, "import_spellings_self_claim", &o));
	const char *rows =
	    "\xEF\xBB\xBF"
	    "MAC,Platform,EFUSE_KEY\r\n"
	    "7cdfa1000011,ESP32-S3," K1HEX "\r\n"
	    "7C:DF:A1:00:00:12,esp32_s3,00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\r\n"
	    "7C-DF-A1-00-00-13,esp32-x9," K1HEX "\r\n";
	char *text = NULL;
	REQUIRE(asprintf(&text, "%s7CDFA1000014,esp99," K1HEX "\r\n", rows) > 0);
	const char *bad = case_csv(&f, "bad.csv", text);
	free(text);
	REQUIRE(bad);
	/* An unknown target: FILE:LINE: platform: ..., and nothing from the file is stored. */
	CHECK(t_run(&out, "'%s' -c '%s' devices import '%s'", t_bin("claimctl"), f.t.config, bad) ==
	      1);
	CHECKF(out && strstr(out, "bad.csv:5: platform: not a known IDF target") &&
	           strstr(out, "\"esp99\"") && strstr(out, "nothing stored"),
	       "%s", out ? out : "");
	free(out);
	CHECK(sql_long(&f.t, "SELECT count(*) FROM devices WHERE mac LIKE '7CDFA10000__' AND mac > "
	                     "'7CDFA1000010'") == 0);
	const char *good = case_csv(&f, "good.csv", rows);
	REQUIRE(good);
	CHECK(t_run(&out, "'%s' -c '%s' devices import '%s'", t_bin("claimctl"), f.t.config,
	            good) == 0);
	CHECKF(out && strstr(out, "3 added"), "%s", out ? out : "");
	free(out);
	/* Stored canonical: upper-case MACs, platforms without case or separators. */
	CHECK(sql_long(&f.t, "SELECT count(*) FROM devices WHERE (mac, platform) IN "
	                     "(('7CDFA1000011', 'esp32s3'), ('7CDFA1000012', 'esp32s3'), "
	                     "('7CDFA1000013', 'esp32x9'))") == 3);
	/* The same devices spelt the other way are the same devices. */
	const char *again = case_csv(&f, "again.csv",
	                             "mac,platform,efuse_key\n7C:DF:A1:00:00:11,esp32s3," K1HEX
	                             "\n7cdfa1000013,ESP32_X9," K1HEX "\n");
	REQUIRE(again);
	CHECK(t_run(&out, "'%s' -c '%s' devices import '%s'", t_bin("claimctl"), f.t.config,
	            again) == 0);
	CHECKF(out && strstr(out, "2 unchanged"), "%s", out ? out : "");
	free(out);
	/* Self claims: the firmware's "esp32s3" matches a row written ESP32-S3, and so do
	 * other spellings of it; the extra platform claims like any other. */
	static const char *claims[][2] = {
	    {"7CDFA1000011", "esp32s3"}, {"7CDFA1000012", "ESP32-S3"}, {"7CDFA1000013", "esp32x9"}};
	for (size_t i = 0; i < 3; i++) {
		struct sim_device dv = device(claims[i][0], claims[i][1], "ec");
		CHECKF(sim_self_claim(&f.d.url, &dv, NULL, f.t.root, &res) == 0, "%s %s: %s",
		       claims[i][0], claims[i][1], res.err);
		free(res.certificate);
		EVP_PKEY_free(dv.key);
	}
	CHECK(sql_long(&f.t, "SELECT count(*) FROM certificates WHERE node_id IN ('7CDFA1000011', "
	                     "'7CDFA1000012', '7CDFA1000013')") == 3);
	/* A MAC in lower case with separators and esp32_s3 initiate the same device; another
	 * target is still another target. */
	struct session s;
	CHECK(initiate(&f.d, "7c:df:a1:00:00:12", "esp32_s3", &s));
	REQUIRE(post(&f.d, "claim/initiate", "",
	             "{\"mac_addr\":\"7CDFA1000011\",\"platform\":\"ESP32-C3\"}", &r) == 0);
	check_failure(&r, 400, "platform: does not match");
	http_response_free(&r);
	/* claimctl's MAC arguments take the same spellings. */
	CHECK(t_run(&out, "'%s' -c '%s' nodes show 7c-df-a1-00-00-11", t_bin("claimctl"),
	            f.t.config) == 0);
	CHECKF(out && strstr(out, "node 7CDFA1000011"), "%s", out ? out : "");
	free(out);
	CHECK(t_run(&out, "'%s' -c '%s' devices unlock 7c:df:a1:00:00:13", t_bin("claimctl"),
	            f.t.config) == 0);
	free(out);
	fx_down(&f);
}

/* The metric families docs/operations.md lists: requests by route and status, durations by
 * route, claims by flow and outcome (health and metrics requests are not claims), the
 * build; and the whole page passes promtool's check. */
static void metrics_contract(void)
{
	struct fx f;
	struct http_response r;
	char *out = NULL, path[1100];
	REQUIRE(fx_up(&f, "metrics_contract", NULL));
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	REQUIRE(fx_self_claim(&f, &dv));
	EVP_PKEY_free(dv.key);
	struct session s;
	CHECK(!initiate(&f.d, "7CDFA1FFFFFE", "esp32s3", &s)); /* unknown: 400 */
	REQUIRE(raw(&f.d, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	http_response_free(&r);
	/* A request's counters move when its connection completes: stop nothing, but ask
	 * until the last of them shows. */
	char *page = NULL;
	for (int i = 0; i < 50; i++) {
		REQUIRE(raw(&f.d, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
		free(page);
		page = strdup(r.body ? r.body : "");
		http_response_free(&r);
		if (strstr(page, "claimd_http_requests_total{route=\"/healthz\",code=\"200\"} 1"))
			break;
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	REQUIRE(page);
	static const char *const want[] = {
	    "claimd_http_requests_total{route=\"/claim/initiate\",code=\"200\"} 1\n",
	    "claimd_http_requests_total{route=\"/claim/initiate\",code=\"400\"} 1\n",
	    "claimd_http_requests_total{route=\"/claim/verify\",code=\"200\"} 1\n",
	    "claimd_http_requests_total{route=\"/healthz\",code=\"200\"} 1\n",
	    "claimd_http_request_duration_seconds_count{route=\"/claim/verify\"} 1\n",
	    "claimd_http_request_duration_seconds_bucket{route=\"/claim/verify\",le=\"+Inf\"} 1\n",
	    "claimd_claims_total{flow=\"self\",outcome=\"OK\"} 2\n",
	    "claimd_claims_total{flow=\"self\",outcome=\"UNKNOWN_DEVICE\"} 1\n",
	    "claimd_build_info{version=\"" CLAIMD_VERSION "\"} 1\n",
	    "# TYPE claimd_http_request_duration_seconds histogram\n",
	    "\nclaimd_claims_in_flight 0\n",
	    "\nprocess_resident_memory_bytes ",
	    "\nprocess_open_fds ",
	    "\nprocess_cpu_seconds_total ",
	    "\nprocess_start_time_seconds ",
	    "claimd_certificates_issued_total{flow=\"self\"} 1\n",
	    "claimd_certificates_issued_total{flow=\"user\"} 0\n",
	    "# TYPE claimd_db_transaction_duration_seconds histogram\n",
	    "claimd_db_transactions_total{outcome=\"busy\"} 0\n",
	    "claimd_db_transactions_total{outcome=\"error\"} 0\n",
	    "claimd_db_transaction_retries_total{reason=\"connection\"} 0\n",
	    "\nclaimd_db_connection_errors_total 0\n",
	};
	/* The CA gauge is the intermediate's notAfter: the dev CA's is years away. */
	const char *ca = strstr(page, "\nclaimd_ca_not_after_timestamp_seconds ");
	CHECK(ca && atoll(ca + strlen("\nclaimd_ca_not_after_timestamp_seconds ")) >
	                (long long)time(NULL) + 365LL * 86400);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECKF(strstr(page, want[i]) != NULL, "missing: %s", want[i]);
	/* Every transaction of the claims (initiate, verify, their audit rows) is counted
	 * once, and the histogram holds each of them. */
	const char *ok = strstr(page, "claimd_db_transactions_total{outcome=\"ok\"} ");
	const char *n = strstr(page, "\nclaimd_db_transaction_duration_seconds_count ");
	REQUIRE(ok && n);
	long txs = atol(ok + strlen("claimd_db_transactions_total{outcome=\"ok\"} "));
	CHECKF(txs >= 3, "%ld transactions", txs);
	CHECKF(atol(n + strlen("\nclaimd_db_transaction_duration_seconds_count ")) == txs,
	       "histogram count differs from %ld transactions", txs);
	/* Health and metrics requests are not claims: no flow counts them. */
	CHECK(!strstr(page, "claimd_claims_total{flow=\"self\",outcome=\"OK\"} 3"));
	snprintf(path, sizeof(path), "%s/metrics.txt", f.t.dir);
	FILE *fp = fopen(path, "w");
	REQUIRE(fp);
	fputs(page, fp);
	fclose(fp);
	CHECK(t_run(&out, "promtool check metrics < '%s' 2>&1", path) == 0);
	CHECKF(out && !strstr(out, "error"), "%s", out ? out : "");
	free(out);
	free(page);
	fx_down(&f);
}

static const struct t_case cases[] = {
    {"self_claim_ec", self_claim_ec},
    {"self_claim_rsa_device", self_claim_rsa_device},
    {"rsa_intermediates", rsa_intermediates},
    {"framing_success", framing_success},
    {"wrong_response_burns", wrong_response_burns},
    {"reused_auth_id", reused_auth_id},
    {"unknown_mac", unknown_mac},
    {"platform_mismatch", platform_mismatch},
    {"cn_mismatch_keeps_challenge", cn_mismatch_keeps_challenge},
    {"bad_csr_signature", bad_csr_signature},
    {"malformed_requests", malformed_requests},
    {"oversized_body", oversized_body},
    {"unknown_path_and_method", unknown_path_and_method},
    {"expired_challenge", expired_challenge},
    {"forged_auth_id", forged_auth_id},
    {"path_and_field_normalisation", path_and_field_normalisation},
    {"reclaim_same_key", reclaim_same_key},
    {"two_daemons", two_daemons},
    {"racing_verifies", racing_verifies},
    {"reclaim_race", reclaim_race},
    {"reclaim_release_order", reclaim_release_order},
    {"matter_parameter", matter_parameter},
    {"policies_and_mqtt_hosts", policies_and_mqtt_hosts},
    {"health_ready_metrics", health_ready_metrics},
    {"metrics_contract", metrics_contract},
    {"reload_and_shutdown", reload_and_shutdown},
    {"reload_restart_keys", reload_restart_keys},
    {"config_check_mode", config_check_mode},
    {"chain_too_big_refused", chain_too_big_refused},
    {"import_spellings_self_claim", import_spellings_self_claim},
    {"csr_line_widths", csr_line_widths},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
