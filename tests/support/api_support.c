/*
 * Helpers shared by the API test programs: a case's world (database, CA, devices,
 * daemon), requests, and the checks every reply must pass.
 */
#include "api_support.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cert_reply.h"
#include "sim/devidp.h"
#include "signer/signer.h"
#include "lib/util.h"

uint8_t K1[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

bool fx_users_up(struct fx *f, const char *name, const struct topts *o, const char *keytype,
                 char idp[1200])
{
	return tenv_setup(&f->t, name, o) && test_idp_create(&f->t, keytype, idp) &&
	       daemon_start(&f->t, &f->d);
}

/* A case's world: database, CA, two registered devices and a running daemon. */
bool fx_up(struct fx *f, const char *name, const struct topts *o)
{
	if (!tenv_setup(&f->t, name, o))
		return false;
	if (!tenv_add_device(&f->t, MAC1, "esp32s3", K1) ||
	    !tenv_add_device(&f->t, MAC2, "esp32c3", K1))
		return false;
	return daemon_start(&f->t, &f->d);
}

void fx_down(struct fx *f)
{
	int failures = t_failures;
	int st = daemon_stop(&f->d);
	CHECKF(st == 0, "claimd exited with %d", st);
	if (failures || st != 0)
		daemon_dump_log(&f->d);
	tenv_teardown(&f->t);
}

int post(struct daemon *d, const char *path, const char *extra, const char *body,
         struct http_response *r)
{
	char err[256];
	int rc = http_post(&d->url, path, extra, body, strlen(body), 10000, r, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "POST %s: %s\n", path, err);
	return rc;
}

int raw(struct daemon *d, const char *req, struct http_response *r)
{
	char err[256];
	int rc = http_exchange(&d->url, req, strlen(req), 10000, r, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "raw: %s\n", err);
	return rc;
}

/* Framing every reply must have: Content-Length > 0 that matches, never chunked, ASCII. */
long metric(struct daemon *d, const char *series)
{
	struct http_response r;
	char pat[200];
	long n = -1;
	if (raw(d, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r) < 0)
		return -1;
	snprintf(pat, sizeof(pat), "\n%s ", series);
	const char *p = r.body ? strstr(r.body, pat) : NULL;
	if (p)
		n = atol(p + strlen(pat));
	http_response_free(&r);
	return n;
}

bool initiate_then_fin(struct http_conn *c, size_t short_by, struct timespec *t0,
                       struct http_response *r)
{
	static const char body[] = "{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"esp32s3\"}";
	char req[256], err[256] = "";
	int n = snprintf(req, sizeof(req),
	                 "POST /claim/initiate HTTP/1.1\r\nHost: localhost\r\n"
	                 "Content-Length: %zu\r\n\r\n%s",
	                 strlen(body), body);

	memset(r, 0, sizeof(*r));
	if (http_conn_open(c, 5000, err, sizeof(err)) < 0)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, t0);
	if (http_conn_write(c, req, (size_t)n - short_by) < 0 || http_conn_shutdown_write(c) < 0) {
		snprintf(err, sizeof(err), "write: %s", strerror(errno));
		goto fail;
	}
	if (short_by)
		return true;
	/* Nothing more to send: read the one reply. */
	if (http_conn_exchange(c, "", 0, 5000, r, err, sizeof(err)) < 0)
		goto fail;
	check_framing(r);
	if (r->status == 200 && r->body && strstr(r->body, "auth_id"))
		return true;
	snprintf(err, sizeof(err), "reply %d %s", r->status, r->body ? r->body : "");
fail:
	fprintf(stderr, "initiate then FIN: %s\n", err);
	return false;
}

void check_framing(const struct http_response *r)
{
	CHECKF(r->content_length > 0, "Content-Length %ld", r->content_length);
	CHECK((size_t)r->content_length == r->len);
	CHECK(!r->chunked);
	CHECK(r->len <= 3071);
	for (size_t i = 0; i < r->len; i++)
		CHECKF((unsigned char)r->body[i] < 0x80, "non-ASCII byte at %zu", i);
}

void check_cert_reply(const char *body, size_t len, const char *mqtt_host,
                      const char *mqtt_cred_host)
{
	static const char end_marker[] = "-----END CERTIFICATE-----";
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *cert = json_string_value(json_object_get(j, "certificate"));
	const char *end = cert ? strstr(cert, end_marker) : NULL;
	struct claimd_config cfg = {.mqtt_host = (char *)(mqtt_host ? mqtt_host : ""),
	                            .mqtt_cred_host =
	                                (char *)(mqtt_cred_host ? mqtt_cred_host : "")};

	CHECKF(end && end[strlen(end_marker)] == '\n', "no leaf and chain in %.*s", (int)len, body);
	if (end && end[strlen(end_marker)] == '\n') {
		size_t leaf_len = (size_t)(end - cert) + strlen(end_marker);
		char *leaf = strndup(cert, leaf_len);
		char *want =
		    leaf ? cert_reply_body(leaf, cert + leaf_len + 1, &cfg, CERT_REPLY_ALL_HOSTS)
		         : NULL;
		CHECKF(want && strlen(want) == len && memcmp(want, body, len) == 0,
		       "sent:\n%.*s\ncert_reply_body:\n%s", (int)len, body, want ? want : "");
		free(want);
		free(leaf);
	}
	json_decref(j);
}

/* The failure body: a string-to-string map, status "failure", a description. */
void check_failure(const struct http_response *r, int status, const char *desc)
{
	check_framing(r);
	CHECKF(r->status == status, "status %d, want %d: %s", r->status, status, r->body);
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	CHECKF(j && json_is_object(j), "not a JSON object: %s", r->body);
	if (!j)
		return;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) CHECKF(json_is_string(v), "non-string value for %s", k);
	CHECK(json_object_size(j) == 2);
	CHECK(strcmp(json_string_value(json_object_get(j, "status")) ?: "", "failure") == 0);
	const char *d = json_string_value(json_object_get(j, "description"));
	CHECKF(d && strstr(d, desc), "description '%s' lacks '%s'", d ? d : "", desc);
	json_decref(j);
}

bool initiate(struct daemon *d, const char *mac, const char *platform, struct session *s)
{
	char body[256];
	struct http_response r;
	snprintf(body, sizeof(body), "{\"mac_addr\":\"%s\",\"platform\":\"%s\"}", mac, platform);
	if (post(d, "claim/initiate", "", body, &r) < 0)
		return false;
	bool ok =
	    r.status == 200 &&
	    sim_firmware_string(r.body, "auth_id", s->auth_id, sizeof(s->auth_id), false) &&
	    sim_firmware_string(r.body, "challenge", s->challenge, sizeof(s->challenge), false);
	if (!ok)
		fprintf(stderr, "initiate: %d %s\n", r.status, r.body ? r.body : "");
	http_response_free(&r);
	return ok;
}

/* A firmware-style verify body; the caller frees it. */
char *verify_body(const struct session *s, const uint8_t key[16], EVP_PKEY *k, const char *cn)
{
	char resp[129], *csr = sim_csr_pem(k, cn, false), *esc = sim_firmware_escape(csr), *b;
	sim_challenge_response(key, s->challenge, resp);
	if (asprintf(&b, "{\"auth_id\":\"%s\",\"challenge_response\":\"%s\",\"csr\":\"%s\"}",
	             s->auth_id, resp, esc) < 0)
		b = NULL;
	free(csr);
	free(esc);
	return b;
}

int verify(struct daemon *d, const char *body, struct http_response *r)
{
	return post(d, "claim/verify", "", body, r);
}

struct sim_device device(const char *mac, const char *platform, const char *keytype)
{
	struct sim_device dv = {0};
	snprintf(dv.mac, sizeof(dv.mac), "%s", mac);
	snprintf(dv.platform, sizeof(dv.platform), "%s", platform);
	memcpy(dv.efuse_key, K1, 16);
	dv.key = sim_key_new(keytype);
	return dv;
}

void test_users_yaml(char *buf, size_t bufsz, unsigned quota)
{
	snprintf(buf, bufsz,
	         "users:\n  jwt:\n    jwks_file: idp/jwks.json\n    issuer: \"" TEST_ISSUER "\"\n"
	         "    audience: \"" TEST_AUDIENCE "\"\n  quota: %u\n",
	         quota);
}

bool test_idp_create(const struct tenv *t, const char *keytype, char key[1200])
{
	char err[256], dir[1050];
	snprintf(dir, sizeof(dir), "%s/idp", t->dir);
	snprintf(key, 1200, "%s/idp.key", dir);
	if (devidp_create(dir, keytype, "k1", err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return false;
	}
	return true;
}

char *test_token(const char *key, const char *user)
{
	char err[256];
	struct devtoken t = {.key_file = key,
	                     .kid = "k1",
	                     .issuer = TEST_ISSUER,
	                     .audience = TEST_AUDIENCE,
	                     .user = user,
	                     .ttl = 600};
	char *tok = devidp_token(&t, err, sizeof(err));
	if (!tok)
		fprintf(stderr, "token: %s\n", err);
	return tok;
}

bool fx_self_claim(struct fx *f, const struct sim_device *dv)
{
	struct sim_result res;
	int rc = sim_self_claim(&f->d.url, dv, NULL, f->t.root, &res);
	if (rc != 0)
		fprintf(stderr, "self claim: %s\n", res.err);
	free(res.certificate);
	return rc == 0;
}

int fx_claimctl(struct fx *f, char **out, const char *args)
{
	return t_run(out, "'%s' -c '%s' %s 2>&1", t_bin("claimctl"), f->t.config, args);
}

int crl_reason_of(X509_CRL *crl, const char *serial)
{
	STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
	for (int i = 0; i < sk_X509_REVOKED_num(rev); i++) {
		X509_REVOKED *r = sk_X509_REVOKED_value(rev, i);
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		/* Leading zeros differ between the two spellings: compare without them. */
		const char *want = serial, *got = hex ? hex : "";
		while (*want == '0')
			want++;
		while (*got == '0')
			got++;
		bool same = hex && strcmp(got, want) == 0;
		OPENSSL_free(hex);
		BN_free(bn);
		if (!same)
			continue;
		ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
		int code = e ? (int)ASN1_ENUMERATED_get(e) : 0;
		ASN1_ENUMERATED_free(e);
		return code;
	}
	return -1;
}

int user_post(struct daemon *d, const char *token, const char *path, const char *body,
              struct http_response *r)
{
	char hdr[9000];
	snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", token);
	return post(d, path, hdr, body, r);
}

bool dev_key_new(struct dev_key *d)
{
	int n;

	*d = (struct dev_key){0};
	d->k = EVP_EC_gen("P-256");
	n = d->k ? i2d_PUBKEY(d->k, &d->spki) : -1;
	d->spki_len = n > 0 ? (size_t)n : 0;
	return n > 0;
}

void dev_key_free(struct dev_key *d)
{
	OPENSSL_free(d->spki);
	EVP_PKEY_free(d->k);
	*d = (struct dev_key){0};
}

int issue_checked(struct signer *s, const struct dev_key *d, const char *cn, bool *mine)
{
	struct cert_request rq = {.profile = CERT_PROFILE_DEVICE,
	                          .spki = d->spki,
	                          .spki_len = d->spki_len,
	                          .cn = cn,
	                          .vendor_id = "",
	                          .product_id = "",
	                          .not_before = now_unix() - 3600,
	                          .not_after = now_unix() + 86400};
	struct issued is;
	char got[NODE_ID_MAX + 1];
	int rc = signer_issue(s, &rq, &is);

	*mine = false;
	if (rc == SIGNER_OK) {
		BIO *b = BIO_new_mem_buf(is.pem, -1);
		X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		*mine = x && EVP_PKEY_eq(X509_get0_pubkey(x), d->k) == 1 &&
		        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, got,
		                                  sizeof(got)) > 0 &&
		        strcmp(got, cn) == 0;
		X509_free(x);
		BIO_free(b);
	}
	issued_clear(&is);
	return rc;
}
