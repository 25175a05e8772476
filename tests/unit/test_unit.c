/*
 * Unit tests of the core library: no server, no database. Each case is its own CTest
 * test (label unit).
 */
#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/authid.h"
#include "x509/ca.h"
#include "lib/canon.h"
#include "core/cert_reply.h"
#include "lib/config.h"
#include "lib/secure.h"
#include "lib/csvimport.h"
#include "sim/devca.h"
#include "daemon/request_fields.h"
#include "sim/sim.h"
#include "lib/util.h"
#include "harness.h"

static void hmac_vector(void)
{
	/* docs/protocol.md section 2.2, checked with openssl. */
	uint8_t key[16];
	char out[129];
	REQUIRE(hex_decode(key, 16, "000102030405060708090A0B0C0D0E0F", 32, false));
	sim_challenge_response(
	    key, "4f7c1e0a9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6", out);
	CHECK(strcmp(out, "92E9DAB07E0F5344694FBC2F9D883FC572A1F59EF5BDBA726AC74FA250C7C7312BF7"
	                  "9187F92458F080B0F509F48B5B3D72EA72A6AB8DB9E46FCB2CEC209BED08") == 0);
}

#define K1HEX_UNIT "000102030405060708090A0B0C0D0E0F"

static char tmpdir[512];

static const char *write_tmp(const char *name, const char *text)
{
	static char path[1024];
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp/unit", getenv("CLAIMD_BUILD_DIR") ?: ".");
	t_run(NULL, "mkdir -p '%s'", tmpdir);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

#define REQUIRED_KEYS "ca:\n  certificate: ca.pem\n  key: ca.key\nsecrets:\n  key_file: s.key\n"

/* Loads @p text and expects failure with @p want somewhere in the message. */
static void config_fails(const char *text, const char *want)
{
	char err[512];
	const char *path = write_tmp("c.yaml", text);
	struct claimd_config *c = config_load(path, err, sizeof(err));
	CHECKF(c == NULL, "config unexpectedly accepted: %s", text);
	CHECKF(c || strstr(err, want), "error '%s' lacks '%s'", err, want);
	config_free(c);
}

static void config_errors(void)
{
	config_fails("server:\n  listen: \"127.0.0.1:80\"\n  bogus: 1\n" REQUIRED_KEYS,
	             "c.yaml:3:3: unknown key 'server.bogus'");
	config_fails("server:\n  threads: 010\n" REQUIRED_KEYS,
	             "c.yaml:2:12: server.threads: expected a whole number");
	config_fails("server:\n  threads: 0x10\n" REQUIRED_KEYS, "c.yaml:2:12:");
	config_fails("server:\n  threads: -1\n" REQUIRED_KEYS, "expected a whole number");
	config_fails("ca:\n  certificate: a\n", "ca.key: required");
	config_fails("server: [1, 2]\n" REQUIRED_KEYS, "c.yaml:1:9: server: expected a mapping");
	config_fails("server:\n  listen: [a]\n" REQUIRED_KEYS,
	             "c.yaml:2:11: server.listen: expected a single value");
	config_fails("server:\n  listen: \"nohost\"\n" REQUIRED_KEYS, "expected host:port");
	config_fails("server:\n  listen: \"a:99999\"\n" REQUIRED_KEYS, "port must be");
	config_fails("server:\n  trusted_proxies: [\"10.0.0.0/33\"]\n" REQUIRED_KEYS,
	             "is not an address or CIDR");
	config_fails("claim:\n  mqtt_host: \"mqtts://x:8883\"\n" REQUIRED_KEYS, "bare hostname");
	config_fails("server:\n  threads: 2\n  threads: 3\n" REQUIRED_KEYS,
	             "c.yaml:3:3: server.threads: duplicate key");
	config_fails("server:\n  listen: \"a\n" REQUIRED_KEYS, "c.yaml:");
	config_fails("", "empty file");
	config_fails("- a\n", "expected a mapping at the top level");
	config_fails("users:\n  jwt:\n    jwks_file: j.json\n" REQUIRED_KEYS,
	             "users.jwt.issuer: required");
	config_fails("server:\n  log_level: loud\n" REQUIRED_KEYS, "log_level");
}

static void config_defaults_and_paths(void)
{
	char err[512];
	const char *path = write_tmp("ok.yaml", REQUIRED_KEYS "claim:\n  mqtt_host: mqtt.x.com\n");
	struct claimd_config *c = config_load(path, err, sizeof(err));
	REQUIRE(c != NULL);
	CHECK(strcmp(c->listen_host, "127.0.0.1") == 0 && c->listen_port == 8080);
	CHECK(c->challenge_ttl == 300 && c->validity_days == 3650 && c->quota == 5);
	CHECK(c->n_trusted_proxies == 2);
	CHECK(strcmp(c->mqtt_host, "mqtt.x.com") == 0);
	/* Relative paths are relative to the config file's folder. */
	char want[1100];
	snprintf(want, sizeof(want), "%s/ca.pem", tmpdir);
	CHECKF(strcmp(c->ca_certificate, want) == 0, "%s", c->ca_certificate);
	config_free(c);
}

static void config_example_in_step(void)
{
	/* The committed example is exactly what the key table generates, and it loads. */
	char *gen = NULL, *committed = NULL, err[512];
	CHECK(t_run(&gen, "'%s' config-example", t_bin("claimctl")) == 0);
	size_t n;
	committed = file_read_all(CLAIMD_SOURCE_DIR "/config/claimd.example.yaml", 1 << 20, &n);
	REQUIRE(gen && committed);
	CHECKF(strcmp(gen, committed) == 0,
	       "config/claimd.example.yaml is stale: regenerate with claimctl config-example");
	const char *path = write_tmp("example.yaml", committed);
	struct claimd_config *c = config_load(path, err, sizeof(err));
	CHECKF(c != NULL, "%s", err);
	config_free(c);
	free(gen);
	free(committed);
}

static struct secrets *test_secrets(uint8_t fill)
{
	uint8_t k[32];
	memset(k, fill, sizeof(k));
	return secrets_from_bytes(k);
}

static void config_restart_keys(void)
{
	/* Only keys read at start-up are named, each once, in table order. */
	static const char a[] = "server:\n  listen: \"127.0.0.1:8080\"\n  threads: 4\n"
	                        "database:\n  url: \"host=/a\"\n"
	                        "claim:\n  mqtt_host: one.example.com\n" REQUIRED_KEYS;
	static const char b[] = "server:\n  listen: \"127.0.0.1:8081\"\n  threads: 5\n"
	                        "database:\n  url: \"host=/b\"\n"
	                        "claim:\n  mqtt_host: two.example.com\n" REQUIRED_KEYS;
	static const char *want[] = {"server.listen", "server.threads", "database.url"};
	char err[512];
	struct claimd_config *x = config_load_buffer("a.yaml", a, strlen(a), err, sizeof(err));
	struct claimd_config *y = config_load_buffer("b.yaml", b, strlen(b), err, sizeof(err));
	const char *key;
	size_t pos = 0, n = 0;

	REQUIRE(x && y);
	while ((key = config_next_restart_change(x, y, &pos)))
		CHECKF(n < 3 && strcmp(key, want[n++]) == 0, "%s", key);
	CHECK(n == 3);
	pos = 0;
	CHECK(config_next_restart_change(x, x, &pos) == NULL);
	config_free(x);
	config_free(y);
}

static void seal_roundtrip(void)
{
	struct secrets *s = test_secrets(7), *other = test_secrets(8);
	uint8_t key[16], sealed[SEALED_EFUSE_BYTES], sealed2[SEALED_EFUSE_BYTES], out[16];
	uint8_t t1[16], t2[16], t3[16];

	secure_random(key, sizeof(key));
	efuse_seal(s, "7CDFA1000001", key, sealed);
	CHECK(efuse_open(s, "7CDFA1000001", sealed, sizeof(sealed), out));
	CHECK(memcmp(out, key, 16) == 0);
	/* Fresh nonce each time: the same key never seals to the same bytes. */
	efuse_seal(s, "7CDFA1000001", key, sealed2);
	CHECK(memcmp(sealed, sealed2, sizeof(sealed)) != 0);
	/* Bound to the MAC, to the key, and tamper-evident in every byte. */
	CHECK(!efuse_open(s, "7CDFA1000002", sealed, sizeof(sealed), out));
	CHECK(!efuse_open(other, "7CDFA1000001", sealed, sizeof(sealed), out));
	for (size_t i = 0; i < sizeof(sealed); i++) {
		sealed[i] ^= 0x01;
		CHECKF(!efuse_open(s, "7CDFA1000001", sealed, sizeof(sealed), out), "byte %zu", i);
		sealed[i] ^= 0x01;
	}
	CHECK(!efuse_open(s, "7CDFA1000001", sealed, sizeof(sealed) - 1, out));
	/* Tags: equal for equal inputs, different otherwise. */
	efuse_tag(s, "7CDFA1000001", key, t1);
	efuse_tag(s, "7CDFA1000001", key, t2);
	key[0] ^= 1;
	efuse_tag(s, "7CDFA1000001", key, t3);
	CHECK(memcmp(t1, t2, 16) == 0 && memcmp(t1, t3, 16) != 0);
	secrets_free(s);
	secrets_free(other);
}

static void secrets_file_rules(void)
{
	char err[256];
	char k[64];
	secrets_keygen(k, sizeof(k));
	strcat(k, "\n");
	const char *p = write_tmp("s.key", k);
	chmod(p, 0644);
	struct secrets *s = secrets_load(p, err, sizeof(err));
	CHECK(s == NULL && strstr(err, "group- or world-accessible"));
	chmod(p, 0600);
	s = secrets_load(p, err, sizeof(err));
	CHECKF(s != NULL, "%s", err);
	secrets_free(s);
	p = write_tmp("bad.key", "bm90IDMyIGJ5dGVz\n");
	chmod(p, 0600);
	CHECK(secrets_load(p, err, sizeof(err)) == NULL && strstr(err, "32 bytes"));
}

static bool charset_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

static void authid_tokens(void)
{
	struct secrets *s = test_secrets(1), *other = test_secrets(2);
	char id[AUTHID_LEN + 1], ch[CHALLENGE_LEN + 1], id2[AUTHID_LEN + 1], ch2[CHALLENGE_LEN + 1];
	char mac[13], ch_back[CHALLENGE_LEN + 1];
	int64_t exp;

	authid_issue(s, "7CDFA1000001", 2000000000, id, ch);
	authid_issue(s, "7CDFA1000001", 2000000000, id2, ch2);
	CHECK(strlen(id) <= 63 && charset_ok(id));
	CHECK(strlen(ch) == 64 && strcspn(ch, "\"\\") == 64);
	CHECK(strcmp(id, id2) != 0 && strcmp(ch, ch2) != 0);
	CHECK(authid_check(s, id, strlen(id), 1900000000, mac, &exp, ch_back) == CE_OK);
	CHECK(strcmp(mac, "7CDFA1000001") == 0 && exp == 2000000000 && strcmp(ch, ch_back) == 0);
	CHECK(authid_check(s, id, strlen(id), 2000000001, mac, &exp, ch_back) == CE_AUTHID_EXPIRED);
	CHECK(authid_check(other, id, strlen(id), 1900000000, mac, &exp, ch_back) ==
	      CE_AUTHID_INVALID);
	for (size_t i = 0; i < strlen(id); i++) {
		char t[AUTHID_LEN + 1];
		strcpy(t, id);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		CHECKF(authid_check(s, t, strlen(t), 1900000000, mac, &exp, ch_back) ==
		           CE_AUTHID_INVALID,
		       "tampered position %zu accepted", i);
	}
	CHECK(authid_check(s, id, strlen(id) - 1, 1900000000, mac, &exp, ch_back) ==
	      CE_AUTHID_INVALID);
	CHECK(authid_check(s, "", 0, 1900000000, mac, &exp, ch_back) == CE_AUTHID_INVALID);
	secrets_free(s);
	secrets_free(other);
}

static void mac_and_hex(void)
{
	char m[13];
	uint8_t b[4];
	CHECK(mac_normalize(m, "7cdfa1000001", 12) && strcmp(m, "7CDFA1000001") == 0);
	CHECK(mac_normalize(m, "7c:df:a1:00:00:01", 17) && strcmp(m, "7CDFA1000001") == 0);
	CHECK(mac_normalize(m, "7C-DF-A1-00-00-01", 17));
	CHECK(!mac_normalize(m, "7C:DF-A1:00:00:01", 17));
	CHECK(!mac_normalize(m, "7CDFA100000", 11));
	CHECK(!mac_normalize(m, "7CDFA100000G", 12));
	CHECK(!mac_normalize(m, "7C:DF:A1:00:00:0", 16));
	CHECK(hex_decode(b, 4, "00 01 0a FF", 11, true) && b[2] == 10 && b[3] == 255);
	CHECK(!hex_decode(b, 4, "00 01 0a FF", 11, false));
	CHECK(!hex_decode(b, 4, "00010aF", 7, false));
	CHECK(!hex_decode(b, 4, "00010aFF00", 10, false));
	char p[33];
	CHECK(platform_normalize(p, "ESP32S3", 7) && strcmp(p, "esp32s3") == 0);
	CHECK(!platform_normalize(p, "esp 32", 6) && !platform_normalize(p, "", 0));
}

/* ---- CSR profile ---- */

static struct ca *test_ca(const char *type)
{
	char dir[700], cert[800], key[800], err[256];
	snprintf(dir, sizeof(dir), "%s/tmp/unit/ca-%s", getenv("CLAIMD_BUILD_DIR") ?: ".", type);
	/* devca_create() makes the last folder only; a case may run first in a fresh tree. */
	t_run(NULL, "mkdir -p '%s'", dir);
	if (devca_create(dir, type, err, sizeof(err)) < 0)
		return NULL;
	snprintf(cert, sizeof(cert), "%s/intermediate.pem", dir);
	snprintf(key, sizeof(key), "%s/intermediate.key", dir);
	struct ca *ca = ca_load(cert, key, NULL, err, sizeof(err));
	if (!ca)
		fprintf(stderr, "ca_load: %s\n", err);
	return ca;
}

static X509 *first_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

static void check_profile(struct ca *ca, EVP_PKEY *k, bool cli_style)
{
	char *pem = sim_csr_pem(k, "7CDFA1000001", cli_style), cn[NODE_ID_MAX + 1];
	struct csr *c = NULL;
	struct issued is;

	REQUIRE(pem);
	CHECK(csr_check(pem, strlen(pem), &c, cn) == CE_OK);
	REQUIRE(c);
	CHECK(strcmp(cn, "7CDFA1000001") == 0);
	REQUIRE(ca_sign_local(ca, c, "7CDFA1000001", 30, &is) == 0);
	CHECK(is.pem[strlen(is.pem) - 1] != '\n');
	X509 *x = first_cert(is.pem);
	REQUIRE(x);
	/* Exactly our five extensions, whatever the CSR asked for. */
	CHECK(X509_get_ext_count(x) == 5);
	int crit = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	CHECK(bc && !bc->ca && crit == 1);
	BASIC_CONSTRAINTS_free(bc);
	CHECK(X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);
	CHECK(X509_get_extended_key_usage(x) == XKU_SSL_CLIENT);
	CHECK(X509_get0_subject_key_id(x) != NULL && X509_get0_authority_key_id(x) != NULL);
	CHECK(X509_NAME_entry_count(X509_get_subject_name(x)) == 1);
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	CHECK(serial->length == 16 && !(serial->data[0] & 0x80) && serial->type == V_ASN1_INTEGER);
	CHECK(strlen(is.serial) == 32);
	CHECK(is.not_after - is.not_before >= 30 * 86400 &&
	      is.not_after - is.not_before <= 30 * 86400 + 7200);
	CHECK(EVP_PKEY_eq(X509_get0_pubkey(x), k) == 1);
	X509_free(x);
	issued_clear(&is);
	csr_free(c);
	free(pem);
}

/* Re-signs a request after changing it, so the signature is valid again. */
static char *pem_of_req(X509_REQ *r)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	PEM_write_bio_X509_REQ(b, r);
	long n = BIO_get_mem_data(b, &data);
	char *out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static X509_REQ *req_of_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509_REQ *r = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	BIO_free(b);
	return r;
}

static enum claimd_err check_pem(const char *pem)
{
	struct csr *c = NULL;
	char cn[NODE_ID_MAX + 1];
	enum claimd_err e = csr_check(pem, strlen(pem), &c, cn);
	csr_free(c);
	return e;
}

static void csr_profile(void)
{
	struct ca *ec = test_ca("ec"), *rsa = test_ca("rsa2048");
	EVP_PKEY *kec = sim_key_new("ec"), *krsa = sim_key_new("rsa");
	REQUIRE(ec && rsa && kec && krsa);
	check_profile(ec, kec, false);
	check_profile(ec, krsa, false);
	check_profile(rsa, kec, true);
	check_profile(rsa, krsa, true);
	ca_free(ec);
	ca_free(rsa);
	EVP_PKEY_free(kec);
	EVP_PKEY_free(krsa);
}

static void csr_refusals(void)
{
	EVP_PKEY *k = sim_key_new("ec"), *p384 = EVP_EC_gen("P-384"), *r1024 = EVP_RSA_gen(1024);
	char *pem, *bad;
	X509_REQ *r;

	REQUIRE(k && p384 && r1024);
	/* A flipped bit in the signed part: the signature no longer verifies. */
	pem = sim_csr_pem(k, "7CDFA1000001", false);
	r = req_of_pem(pem);
	REQUIRE(r);
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(r, &der);
	REQUIRE(n > 100);
	/* The CN's last character sits inside the signed CertificationRequestInfo. */
	unsigned char *cnpos = (unsigned char *)memmem(der, (size_t)n, "7CDFA1000001", 12);
	REQUIRE(cnpos);
	cnpos[11] = '2';
	const unsigned char *p = der;
	X509_REQ *tampered = d2i_X509_REQ(NULL, &p, n);
	REQUIRE(tampered);
	bad = pem_of_req(tampered);
	CHECK(check_pem(bad) == CE_CSR_SIGNATURE);
	free(bad);
	X509_REQ_free(tampered);
	OPENSSL_free(der);

	/* ecdsa-with-SHA256 with explicit NULL parameters is accepted (docs/protocol.md 2.2). */
	const X509_ALGOR *alg = NULL;
	X509_REQ_get0_signature(r, NULL, &alg);
	X509_ALGOR_set0((X509_ALGOR *)alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_NULL, NULL);
	bad = pem_of_req(r);
	CHECKF(check_pem(bad) == CE_OK, "explicit-NULL ECDSA CSR refused: %s",
	       err_name(check_pem(bad)));
	free(bad);
	X509_REQ_free(r);
	free(pem);

	/* Keys we do not accept. */
	pem = sim_csr_pem(p384, "7CDFA1000001", false);
	CHECK(check_pem(pem) == CE_CSR_KEY);
	free(pem);
	pem = sim_csr_pem(r1024, "7CDFA1000001", false);
	CHECK(check_pem(pem) == CE_CSR_KEY);
	free(pem);

	/* Subjects other than exactly one CN of the node_id alphabet. */
	r = X509_REQ_new();
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "O", MBSTRING_ASC,
	                           (const unsigned char *)"x", -1, -1, 0);
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"7CDFA1000001", -1, -1, 0);
	X509_REQ_set_pubkey(r, k);
	X509_REQ_sign(r, k, EVP_sha256());
	pem = pem_of_req(r);
	CHECK(check_pem(pem) == CE_CSR_SUBJECT);
	free(pem);
	X509_REQ_free(r);
	pem = sim_csr_pem(k, "bad cn!", false);
	CHECK(check_pem(pem) == CE_CSR_SUBJECT);
	free(pem);

	/* Not a CSR at all, garbage after it, too large. */
	CHECK(check_pem("hello") == CE_CSR_PEM);
	CHECK(check_pem("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE "
	                "REQUEST-----") == CE_CSR_DER);
	pem = sim_csr_pem(k, "7CDFA1000001", false);
	char *trail = NULL;
	CHECK(asprintf(&trail, "%s\ngarbage", pem) > 0);
	CHECK(check_pem(trail) == CE_CSR_PEM);
	free(trail);
	CHECK(asprintf(&trail, "%s\n\n", pem) > 0);
	CHECK(check_pem(trail) == CE_OK);
	free(trail);
	free(pem);
	char big[CSR_MAX_PEM + 2];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(check_pem(big) == CE_CSR_TOO_LARGE);
	EVP_PKEY_free(k);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(r1024);
}

/* A request for @p k with subject CN=@p cn in string type @p type, signed with @p md. */
static char *req_pem(EVP_PKEY *k, const char *cn, int type, const EVP_MD *md)
{
	X509_REQ *r = X509_REQ_new();
	char *pem = NULL;
	if (r &&
	    X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(r), NID_commonName, type,
	                               (const unsigned char *)cn, -1, -1, 0) &&
	    X509_REQ_set_pubkey(r, k) && X509_REQ_sign(r, k, md) > 0)
		pem = pem_of_req(r);
	X509_REQ_free(r);
	return pem;
}

/* csr_check's verdict on a fresh request for CN=7CDFA1000001. */
static enum claimd_err req_verdict(EVP_PKEY *k, int type, const EVP_MD *md)
{
	char *pem = req_pem(k, "7CDFA1000001", type, md);
	enum claimd_err e = pem ? check_pem(pem) : CE_INTERNAL;
	free(pem);
	return e;
}

/* The DER of @p pem, re-wrapped as PEM after @p edit changed it (no re-signing). */
static char *rewrap(const char *pem, const char *label, void (*edit)(unsigned char **, long *))
{
	unsigned char *der = NULL;
	X509_REQ *r = req_of_pem(pem);
	long n = r ? i2d_X509_REQ(r, &der) : -1;
	char *out = NULL;
	X509_REQ_free(r);
	if (n <= 0)
		return NULL;
	if (edit)
		edit(&der, &n);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio(b, label, "", der, n);
	char *data;
	long m = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)m);
	BIO_free(b);
	OPENSSL_free(der);
	return out;
}

/* The outer SEQUENCE's length in long form with one octet too many: BER, not DER. */
static void long_form_length(unsigned char **der, long *n)
{
	unsigned char *p = OPENSSL_malloc((size_t)*n + 1);
	REQUIRE(p && (*der)[1] == 0x81);
	p[0] = 0x30;
	p[1] = 0x82;
	p[2] = 0x00;
	memcpy(p + 3, *der + 2, (size_t)*n - 2);
	OPENSSL_free(*der);
	*der = p;
	*n += 1;
}

static void trailing_byte(unsigned char **der, long *n)
{
	unsigned char *p = OPENSSL_realloc(*der, (size_t)*n + 1);
	REQUIRE(p);
	p[(*n)++] = 0;
	*der = p;
}

/* What the DER reader accepts and refuses beyond the profile: every PEM and DER form
 * the devices, apps and CLI produce, and none of BER's liberties. */
static void csr_encodings(void)
{
	EVP_PKEY *ec = sim_key_new("ec"), *r3072 = EVP_RSA_gen(3072);
	char *pem, *v;
	REQUIRE(ec && r3072);

	pem = req_pem(ec, "7CDFA1000001", MBSTRING_ASC, EVP_sha256()); /* PrintableString */
	REQUIRE(pem);
	CHECK(check_pem(pem) == CE_OK);
	v = rewrap(pem, "NEW CERTIFICATE REQUEST", NULL);
	CHECK(v && check_pem(v) == CE_OK);
	free(v);
	/* CRLF line ends, blank lines before, whitespace after. */
	size_t n = strlen(pem), k = 0;
	v = malloc(2 * n + 8);
	REQUIRE(v);
	v[k++] = '\n';
	for (size_t i = 0; i < n; i++) {
		if (pem[i] == '\n')
			v[k++] = '\r';
		v[k++] = pem[i];
	}
	strcpy(v + k, "\r\n\t");
	CHECK(check_pem(v) == CE_OK);
	free(v);
	/* BER and trailing data are refused even though OpenSSL would read some of them. */
	v = rewrap(pem, "CERTIFICATE REQUEST", long_form_length);
	CHECK(v && check_pem(v) == CE_CSR_DER);
	free(v);
	v = rewrap(pem, "CERTIFICATE REQUEST", trailing_byte);
	CHECK(v && check_pem(v) == CE_CSR_DER);
	free(v);
	/* Text or spaces before the block, a space or tab inside it, a block of another kind. */
	CHECK(asprintf(&v, "x\n%s", pem) > 0 && check_pem(v) == CE_CSR_PEM);
	free(v);
	CHECK(asprintf(&v, " %s", pem) > 0 && check_pem(v) == CE_CSR_PEM);
	free(v);
	v = strdup(pem);
	REQUIRE(v && strlen(v) > 80);
	v[70] = '\t';
	CHECK(check_pem(v) == CE_CSR_BASE64);
	free(v);
	v = rewrap(pem, "CERTIFICATE", NULL);
	CHECK(v && check_pem(v) == CE_CSR_PEM);
	free(v);
	free(pem);

	/* SHA-384 and SHA-512 signatures verify; SHA-1 is an algorithm we refuse; so is a CN in a
	 * string type that is not ASCII. */
	CHECK(req_verdict(ec, MBSTRING_UTF8, EVP_sha384()) == CE_OK);
	CHECK(req_verdict(r3072, MBSTRING_UTF8, EVP_sha512()) == CE_OK);
	CHECK(req_verdict(ec, MBSTRING_UTF8, EVP_sha1()) == CE_CSR_SIG_ALG);
	CHECK(req_verdict(ec, MBSTRING_BMP, EVP_sha256()) == CE_CSR_SUBJECT);
	/* A compressed point is a P-256 key like any other; an RSA exponent of 3 is not ours. */
	EVP_PKEY *comp = sim_key_new("ec");
	REQUIRE(comp && EVP_PKEY_set_utf8_string_param(
	                    comp, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed") == 1);
	CHECK(req_verdict(comp, MBSTRING_UTF8, EVP_sha256()) == CE_OK);
	EVP_PKEY_free(comp);
	EVP_PKEY *e3 = NULL;
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	BIGNUM *three = BN_new();
	REQUIRE(kc && three && BN_set_word(three, 3) && EVP_PKEY_keygen_init(kc) == 1 &&
	        EVP_PKEY_CTX_set_rsa_keygen_bits(kc, 2048) == 1 &&
	        EVP_PKEY_CTX_set1_rsa_keygen_pubexp(kc, three) == 1 &&
	        EVP_PKEY_keygen(kc, &e3) == 1);
	CHECK(req_verdict(e3, MBSTRING_UTF8, EVP_sha256()) == CE_CSR_KEY);
	EVP_PKEY_free(e3);
	EVP_PKEY_CTX_free(kc);
	BN_free(three);

	/* The certificate carries the request's key bytes exactly, and the fingerprint is
	 * the SHA-256 of the request's SubjectPublicKeyInfo. */
	struct ca *ca = test_ca("ec");
	REQUIRE(ca);
	pem = req_pem(r3072, "7CDFA1000001", MBSTRING_UTF8, EVP_sha256());
	REQUIRE(pem);
	struct csr *c = NULL;
	char cn[NODE_ID_MAX + 1];
	struct issued is;
	REQUIRE(csr_check(pem, strlen(pem), &c, cn) == CE_OK);
	REQUIRE(ca_sign_local(ca, c, cn, 30, &is) == 0);
	X509 *x = first_cert(is.pem);
	unsigned char *spki = NULL, fp[32], want[32];
	int len = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki) : -1;
	REQUIRE(len > 0);
	secure_sha256(want, spki, (size_t)len);
	csr_key_fingerprint(c, fp);
	CHECK(memcmp(fp, want, 32) == 0);
	CHECK(EVP_PKEY_eq(X509_get0_pubkey(x), r3072) == 1);
	OPENSSL_free(spki);
	X509_free(x);
	issued_clear(&is);
	csr_free(c);
	free(pem);
	ca_free(ca);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(r3072);
}

static void ca_load_rules(void)
{
	char dir[700], cert[800], key[800], err[256];
	snprintf(dir, sizeof(dir), "%s/tmp/unit/ca-rules", getenv("CLAIMD_BUILD_DIR") ?: ".");
	t_run(NULL, "mkdir -p '%s'", dir);
	REQUIRE(devca_create(dir, "ec", err, sizeof(err)) == 0);
	snprintf(cert, sizeof(cert), "%s/intermediate.pem", dir);
	snprintf(key, sizeof(key), "%s/intermediate.key", dir);
	chmod(key, 0640);
	CHECK(ca_load(cert, key, NULL, err, sizeof(err)) == NULL &&
	      strstr(err, "group- or world-accessible"));
	chmod(key, 0600);
	/* The root's key does not match the intermediate's certificate. */
	char rootkey[800];
	snprintf(rootkey, sizeof(rootkey), "%s/root.key", dir);
	CHECK(ca_load(cert, rootkey, NULL, err, sizeof(err)) == NULL &&
	      strstr(err, "does not match"));
	struct ca *ca = ca_load(cert, key, NULL, err, sizeof(err));
	REQUIRE(ca);
	const char *chain = ca_chain_pem(ca);
	CHECK(chain[strlen(chain) - 1] != '\n' && !strchr(chain, '\r'));
	CHECK(strcmp(ca_key_type(ca), "ec-p256") == 0);
	ca_free(ca);
}

/* ---- The certificate reply ---- */

/* The reply as the handler built it with jansson before cert_reply.c existed. */
static char *reply_by_jansson(const char *leaf, const char *chain, const char *mqtt_host,
                              const char *mqtt_cred_host)
{
	char *cert = NULL, *text = NULL;
	json_t *o = NULL;

	if (asprintf(&cert, "%s\n%s", leaf, chain) < 0)
		return NULL;
	if ((o = json_pack("{s:s}", "certificate", cert))) {
		if (mqtt_host)
			json_object_set_new(o, "mqtt_host", json_string(mqtt_host));
		if (mqtt_cred_host)
			json_object_set_new(o, "mqtt_cred_host", json_string(mqtt_cred_host));
		text = json_dumps(o, JSON_COMPACT);
	}
	json_decref(o);
	free(cert);
	return text;
}

/*
 * One reply: its predicted length is its length, its bytes are what jansson made of the
 * same fields, '\n' is the only escape, the string has no trailing newline, and exactly
 * the expected hosts are in it.
 */
static void check_reply(const char *leaf, const char *chain, const struct claimd_config *cfg,
                        unsigned hosts, const char *want_mqtt, const char *want_cred)
{
	size_t n = cert_reply_len(leaf, chain, cfg, hosts);
	char *body = cert_reply_body(leaf, chain, cfg, hosts), *want = NULL, *cert = NULL;
	json_t *j = NULL;

	want = reply_by_jansson(leaf, chain, want_mqtt, want_cred);
	CHECKF(body && want && n == strlen(body), "predicted %zu, built %zu", n,
	       body ? strlen(body) : 0);
	CHECKF(body && want && strcmp(body, want) == 0, "built:\n%s\nwant:\n%s", body ? body : "",
	       want ? want : "");
	for (const char *p = body ? body : ""; (p = strchr(p, '\\')); p += 2)
		CHECKF(p[1] == 'n', "escape \\%c", p[1]);
	CHECK(body && !strstr(body, "\\n\""));
	if (body && (j = json_loads(body, 0, NULL)) && asprintf(&cert, "%s\n%s", leaf, chain) > 0) {
		const char *m = json_string_value(json_object_get(j, "mqtt_host"));
		const char *cr = json_string_value(json_object_get(j, "mqtt_cred_host"));
		CHECK(strcmp(json_string_value(json_object_get(j, "certificate")) ?: "", cert) ==
		      0);
		CHECK(json_object_size(j) == 1u + (want_mqtt != NULL) + (want_cred != NULL));
		CHECK(want_mqtt ? m && strcmp(m, want_mqtt) == 0 : !m);
		CHECK(want_cred ? cr && strcmp(cr, want_cred) == 0 : !cr);
	} else {
		CHECKF(0, "not JSON: %s", body);
	}
	json_decref(j);
	free(cert);
	free(want);
	free(body);
}

/* A leaf of @p ca for device key @p k with subject CN=@p cn. */
static char *leaf_for(struct ca *ca, EVP_PKEY *k, const char *cn)
{
	char *pem = sim_csr_pem(k, cn, false), got[NODE_ID_MAX + 1], *leaf = NULL;
	struct csr *c = NULL;
	struct issued is = {0};

	if (pem && csr_check(pem, strlen(pem), &c, got) == CE_OK &&
	    ca_sign_local(ca, c, cn, 3650, &is) == 0) {
		leaf = is.pem;
		is.pem = NULL;
	}
	issued_clear(&is);
	csr_free(c);
	free(pem);
	return leaf;
}

static void cert_reply_exact(void)
{
	static const char *ca_types[] = {"ec", "rsa2048", "rsa3072"};
	static const char *key_types[] = {"ec", "rsa"};
	/* Self claims are named by their MAC, user claims by a 22-character node_id. */
	static const char *cns[] = {"7CDFA1000001", "AbCdEfGhIjKlMnOpQrStUv"};
	struct claimd_config none = {.mqtt_host = "", .mqtt_cred_host = ""};
	struct claimd_config both = {.mqtt_host = "mqtt.example.com",
	                             .mqtt_cred_host = "creds.example.com"};
	struct claimd_config one = {.mqtt_host = "mqtt.example.com", .mqtt_cred_host = ""};
	EVP_PKEY *keys[2] = {sim_key_new(key_types[0]), sim_key_new(key_types[1])};

	for (size_t t = 0; t < 3 && keys[0] && keys[1]; t++) {
		char dir[700], cert[800], key[800], root[800], err[256];
		snprintf(dir, sizeof(dir), "%s/tmp/unit/reply-%s",
		         getenv("CLAIMD_BUILD_DIR") ?: ".", ca_types[t]);
		t_run(NULL, "mkdir -p '%s'", dir);
		REQUIRE(devca_create(dir, ca_types[t], err, sizeof(err)) == 0);
		snprintf(cert, sizeof(cert), "%s/intermediate.pem", dir);
		snprintf(key, sizeof(key), "%s/intermediate.key", dir);
		snprintf(root, sizeof(root), "%s/root.pem", dir);
		/* The issuing CA alone, and with the root appended as ca.chain. */
		for (int with_chain = 0; with_chain < 2; with_chain++) {
			struct ca *ca =
			    ca_load(cert, key, with_chain ? root : NULL, err, sizeof(err));
			REQUIRE(ca);
			const char *chain = ca_chain_pem(ca);
			for (size_t k = 0; k < 2; k++) {
				for (size_t c = 0; c < 2; c++) {
					char *leaf = leaf_for(ca, keys[k], cns[c]);
					REQUIRE(leaf);
					/* The self flow: every configured host. */
					check_reply(leaf, chain, &both, CERT_REPLY_ALL_HOSTS,
					            "mqtt.example.com", "creds.example.com");
					check_reply(leaf, chain, &one, CERT_REPLY_ALL_HOSTS,
					            "mqtt.example.com", NULL);
					check_reply(leaf, chain, &none, CERT_REPLY_ALL_HOSTS, NULL,
					            NULL);
					/* The user flow: mqtt_host when asked for, never
					 * mqtt_cred_host. */
					check_reply(leaf, chain, &both, CERT_REPLY_MQTT_HOST,
					            "mqtt.example.com", NULL);
					check_reply(leaf, chain, &both, CERT_REPLY_NO_HOSTS, NULL,
					            NULL);
					check_reply(leaf, chain, &none, CERT_REPLY_MQTT_HOST, NULL,
					            NULL);
					/* The start-up check's leaf (an RSA-2048 key, the
					 * longest node_id) bounds an RSA CA's real ones; an EC
					 * CA's signatures vary by a byte or two. */
					if (t > 0)
						CHECKF(cert_reply_len(leaf, chain, &both,
						                      CERT_REPLY_ALL_HOSTS) <=
						           cert_reply_len(ca_largest_leaf_pem(ca),
						                          chain, &both,
						                          CERT_REPLY_ALL_HOSTS),
						       "CA %s, key %s", ca_types[t], key_types[k]);
					free(leaf);
				}
			}
			check_reply(ca_largest_leaf_pem(ca), chain, &both, CERT_REPLY_ALL_HOSTS,
			            "mqtt.example.com", "creds.example.com");
			ca_free(ca);
		}
	}
	CHECK(keys[0] && keys[1]);
	EVP_PKEY_free(keys[0]);
	EVP_PKEY_free(keys[1]);
}

static void cert_reply_refusals(void)
{
	/* Anything that would need an escape other than \n is refused, not escaped. */
	static const char *bad[] = {
	    "", "A\n", "\nA", "A\n\nB", "A\r\nB", "A\"B", "A\\B", "A\tB", "A/\x7f", "A\xc3\xa9",
	};
	struct claimd_config cfg = {.mqtt_host = "", .mqtt_cred_host = ""};
	struct claimd_config quoted = {.mqtt_host = "a\"b", .mqtt_cred_host = ""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECKF(cert_reply_len(bad[i], "C", &cfg, CERT_REPLY_ALL_HOSTS) == SIZE_MAX,
		       "leaf %zu", i);
		CHECKF(cert_reply_len("L", bad[i], &cfg, CERT_REPLY_ALL_HOSTS) == SIZE_MAX,
		       "chain %zu", i);
		CHECKF(cert_reply_body(bad[i], "C", &cfg, CERT_REPLY_ALL_HOSTS) == NULL, "leaf %zu",
		       i);
	}
	CHECK(cert_reply_len("L", "C", &quoted, CERT_REPLY_ALL_HOSTS) == SIZE_MAX);
	/* A host that is not asked for is not looked at. */
	CHECK(cert_reply_len("L", "C", &quoted, CERT_REPLY_NO_HOSTS) ==
	      strlen("{\"certificate\":\"L\\nC\"}"));
	char *b = cert_reply_body("L1\nL2", "C", &cfg, CERT_REPLY_ALL_HOSTS);
	CHECK(b && strcmp(b, "{\"certificate\":\"L1\\nL2\\nC\"}") == 0);
	free(b);
}

/* ---- CSV ---- */

struct csv_t {
	int rows;
	int errors;
	long lines[16];
	char reasons[16][640];
	struct csv_row last;
};

static int csv_row_cb(void *arg, const struct csv_row *r)
{
	struct csv_t *t = arg;
	t->rows++;
	t->last = *r;
	return 0;
}

static void csv_err_cb(void *arg, long line, const char *reason)
{
	struct csv_t *t = arg;
	if (t->errors < 16) {
		t->lines[t->errors] = line;
		snprintf(t->reasons[t->errors], sizeof(t->reasons[0]), "%s", reason);
	}
	t->errors++;
}

static int csv_run(const char *text, struct csv_t *t)
{
	struct csv_result res;
	memset(t, 0, sizeof(*t));
	return csv_read_buffer(text, strlen(text), NULL, csv_row_cb, csv_err_cb, t, &res);
}

static void csv_reader(void)
{
	struct csv_t t;
	CHECK(csv_run(
	          "mac,platform,efuse_key\n7CDFA1000001,esp32s3,000102030405060708090A0B0C0D0E0F\n",
	          &t) == 0);
	CHECK(t.rows == 1 && t.errors == 0);
	CHECK(strcmp(t.last.mac, "7CDFA1000001") == 0 && t.last.efuse_key[15] == 15);
	/* Any column order, extra columns, quotes, spaces in the key, CRLF, any case. */
	CHECK(
	    csv_run("serial,EFUSE_KEY,Platform,MAC\r\nA1,\"00 01 02 03 04 05 06 07 08 09 0a 0b 0c "
	            "0d 0e 0f\",ESP32C3,7c:df:a1:00:00:02\r\n\r\n",
	            &t) == 0);
	CHECK(t.rows == 1 && t.errors == 0 && strcmp(t.last.platform, "esp32c3") == 0 &&
	      strcmp(t.last.mac, "7CDFA1000002") == 0 && t.last.line == 2);
	/* Bad rows are reported with their line and the valid ones still come through. */
	CHECK(csv_run("mac,platform,efuse_key\n"
	              "7CDFA1000001,esp32s3,000102030405060708090A0B0C0D0E0F\n"
	              "\n"
	              "XYZ,esp32s3,000102030405060708090A0B0C0D0E0F\n"
	              "7CDFA1000003,esp32s3,0001\n"
	              "7CDFA1000004,esp 32,000102030405060708090A0B0C0D0E0F\n"
	              "7CDFA1000005,\"esp32s3,000102030405060708090A0B0C0D0E0F\n"
	              "7CDFA1000006,esp32s3\n",
	              &t) == 0);
	CHECK(t.rows == 1 && t.errors == 5);
	CHECK(t.lines[0] == 4 && strstr(t.reasons[0], "mac:"));
	CHECK(t.lines[1] == 5 && strstr(t.reasons[1], "efuse_key:"));
	CHECK(t.lines[2] == 6 && strstr(t.reasons[2], "platform:"));
	CHECK(t.lines[3] == 7 && strstr(t.reasons[3], "malformed"));
	CHECK(t.lines[4] == 8 && strstr(t.reasons[4], "missing fields"));
	/* Unusable headers stop the read. */
	CHECK(csv_run("mac,platform\n7CDFA1000001,esp32s3\n", &t) < 0 && t.lines[0] == 1);
	CHECK(csv_run("", &t) < 0 && strstr(t.reasons[0], "empty"));
	CHECK(csv_run("mac,mac,platform,efuse_key\n", &t) < 0 && strstr(t.reasons[0], "twice"));
}

/* Whether OpenSSL reads @p pem as a request with a valid signature: every width claimd
 * accepts must be one OpenSSL reads too (the fuzz target checks the same). */
static bool openssl_reads(const char *pem)
{
	X509_REQ *r = req_of_pem(pem);
	bool ok = r && X509_REQ_verify(r, X509_REQ_get0_pubkey(r)) == 1;
	X509_REQ_free(r);
	return ok;
}

/* RFC 7468 section 3: base64 wrapped at any width, one long line included, LF or CR LF
 * (the widths the fuzz seeds carry too, which must therefore be accepted). */
static void csr_pem_widths(void)
{
	static const size_t widths[] = {64, 76, 0, 1, 3, 63, 65, 128, 254, 255, 256};
	static const char *eols[] = {"\n", "\r\n"};
	static const char *seeds[] = {
	    "209832a3c4534da3476f73ae2cfc7a513ced9567", "61c3f4fa13038c71fcb2df62b7526cee8ac2f1ab",
	    "357d78c3ae8dc62ac959825a1940e7fd2ba79152", "decfe3c0c21057e17e995212c6b49ef9abc07de1",
	    "4661ef4128afaaff0df49ac3ec17c1bc6de10f61", "815cdd391a1f3b38296d5749e5d5ef7f15c1a2db",
	    "5c4d4be619482ab6898d51aeba60a81e837b7516", "dbb373b7fbd0e53e42f9f839ffbf9f1491c78521",
	    "0c75f155842c6fb936624f7277e41a680ac8a4bb", "e9ac39ec294992cecc9b40c9fd64f1b656338825"};
	static const char *types[] = {"ec", "rsa"};

	for (size_t t = 0; t < 2; t++) {
		EVP_PKEY *k = sim_key_new(types[t]);
		REQUIRE(k);
		for (int cli = 0; cli < 2; cli++) {
			char *pem = sim_csr_pem(k, "7CDFA1000001", cli);
			REQUIRE(pem);
			for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++)
				for (size_t e = 0; e < 2; e++) {
					char *v = t_pem_rewrap(pem, widths[w], eols[e]);
					REQUIRE(v);
					CHECKF(check_pem(v) == CE_OK, "%s width %zu eol %zu: %s",
					       types[t], widths[w], e, err_name(check_pem(v)));
					CHECKF(openssl_reads(v), "OpenSSL: %s width %zu", types[t],
					       widths[w]);
					free(v);
				}
			/* Lines of different widths, and a line end after the END line. */
			char *one = t_pem_rewrap(pem, 0, "\n"), *v = NULL;
			REQUIRE(one);
			char *nl = strchr(one, '\n');
			REQUIRE(nl && strlen(nl) > 200);
			CHECK(asprintf(&v, "%.*s\n%.10s\n%.90s\n%s\r\n", (int)(nl - one), one,
			               nl + 1, nl + 11, nl + 101) > 0);
			CHECKF(check_pem(v) == CE_OK && openssl_reads(v), "%s", v);
			free(v);
			free(one);
			free(pem);
		}
		EVP_PKEY_free(k);
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		size_t n = 0;
		char path[1024], *v;
		snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/csr/%s", CLAIMD_SOURCE_DIR,
		         seeds[i]);
		v = file_read_all(path, CSR_MAX_PEM, &n);
		REQUIRE(v);
		struct csr *c = NULL;
		char cn[NODE_ID_MAX + 1];
		CHECKF(csr_check(v, n, &c, cn) == CE_OK && strcmp(cn, "7CDFA1000001") == 0,
		       "seed %s", seeds[i]);
		csr_free(c);
		free(v);
	}
}

/* The version INTEGER (the first 02 01 00 in the DER) made 1. */
static void version_one(unsigned char **der, long *n)
{
	for (long i = 0; i + 2 < *n; i++)
		if ((*der)[i] == 0x02 && (*der)[i + 1] == 0x01 && (*der)[i + 2] == 0x00) {
			(*der)[i + 2] = 0x01;
			return;
		}
}

/* Each layer's refusal has its own code and a description that names it. */
static void csr_refusal_layers(void)
{
	EVP_PKEY *ec = sim_key_new("ec"), *rsa = sim_key_new("rsa"),
	         *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	REQUIRE(ec && rsa && ed);
	char *pem = sim_csr_pem(ec, "7CDFA1000001", false), *v = NULL;
	REQUIRE(pem);
	const char *nl = strchr(pem, '\n'), *endl = strstr(pem, "-----END");
	REQUIRE(nl && endl);
	int head = (int)(nl - pem);

	/* PEM armour. */
	CHECK(check_pem("") == CE_CSR_PEM);
	CHECK(check_pem("MIIBszCCAVkCAQAwFzEVMBMGA1UEAwwMN0NERkExMDAwMDAx") == CE_CSR_PEM);
	CHECK(asprintf(&v, "%.*s", (int)(endl - pem), pem) > 0 && check_pem(v) == CE_CSR_PEM);
	free(v); /* no END line */
	CHECK(asprintf(&v, "%.*s-----END CERTIFICATE-----", (int)(endl - pem), pem) > 0 &&
	      check_pem(v) == CE_CSR_PEM);
	free(v); /* another label */
	CHECK(asprintf(&v, "%.*s%s", head, pem, nl + 1) > 0 && check_pem(v) == CE_CSR_PEM);
	free(v); /* BEGIN and base64 on one line */
	CHECK(asprintf(&v, "%.*s%s", (int)(endl - pem) - 1, pem, endl) > 0 &&
	      check_pem(v) == CE_CSR_PEM);
	free(v); /* END after the base64 on its line */
	CHECK(asprintf(&v, "%s\n.", pem) > 0 && check_pem(v) == CE_CSR_PEM);
	free(v);
	CHECK(asprintf(&v, "%s%s", pem, pem) > 0 && check_pem(v) == CE_CSR_PEM);
	free(v); /* two blocks */
	/* base64. */
	CHECK(asprintf(&v, "%.*s\n\n%s", head, pem, nl + 1) > 0 && check_pem(v) == CE_CSR_BASE64);
	free(v); /* a blank line */
	CHECK(asprintf(&v, "%.*s\nMII*%s", head, pem, nl + 4) > 0 && check_pem(v) == CE_CSR_BASE64);
	free(v);
	CHECK(asprintf(&v, "%.*s\nMII %s", head, pem, nl + 4) > 0 && check_pem(v) == CE_CSR_BASE64);
	free(v);
	CHECK(check_pem("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----") ==
	      CE_CSR_BASE64);
	CHECK(check_pem(
	          "-----BEGIN CERTIFICATE REQUEST-----\nA===\n-----END CERTIFICATE REQUEST-----") ==
	      CE_CSR_BASE64);
	CHECK(check_pem("-----BEGIN CERTIFICATE REQUEST-----\nAA==\nAAAA\n-----END CERTIFICATE "
	                "REQUEST-----") == CE_CSR_BASE64);
	/* DER structure, version. */
	CHECK(check_pem("-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8gd29ybGQ=\n-----END "
	                "CERTIFICATE REQUEST-----") == CE_CSR_DER);
	v = rewrap(pem, "CERTIFICATE REQUEST", version_one);
	CHECK(v && check_pem(v) == CE_CSR_VERSION);
	free(v);
	/* Signature algorithm: SHA-1, RSA-PSS. Key type: Ed25519. */
	CHECK(req_verdict(ec, MBSTRING_UTF8, EVP_sha1()) == CE_CSR_SIG_ALG);
	X509_REQ *r = X509_REQ_new();
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	REQUIRE(r && mc &&
	        X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(r), NID_commonName,
	                                   MBSTRING_ASC, (const unsigned char *)"7CDFA1000001", -1,
	                                   -1, 0) &&
	        X509_REQ_set_pubkey(r, rsa) &&
	        EVP_DigestSignInit(mc, &pc, EVP_sha256(), NULL, rsa) == 1 &&
	        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
	        X509_REQ_sign_ctx(r, mc) > 0);
	v = pem_of_req(r);
	CHECK(v && openssl_reads(v) && check_pem(v) == CE_CSR_SIG_ALG);
	free(v);
	X509_REQ_free(r);
	EVP_MD_CTX_free(mc);
	r = X509_REQ_new();
	REQUIRE(r &&
	        X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(r), NID_commonName,
	                                   MBSTRING_ASC, (const unsigned char *)"7CDFA1000001", -1,
	                                   -1, 0) &&
	        X509_REQ_set_pubkey(r, ed) && X509_REQ_sign(r, ed, NULL) > 0);
	v = pem_of_req(r);
	CHECK(v && check_pem(v) == CE_CSR_KEY);
	free(v);
	X509_REQ_free(r);
	/* Every description is its own and says "csr: ". */
	static const enum claimd_err codes[] = {CE_CSR_PEM,      CE_CSR_BASE64,  CE_CSR_DER,
	                                        CE_CSR_VERSION,  CE_CSR_SIG_ALG, CE_CSR_KEY,
	                                        CE_CSR_SIGNATURE};
	for (size_t i = 0; i < 7; i++) {
		CHECK(strncmp(err_description(codes[i]), "csr: ", 5) == 0 &&
		      err_status(codes[i]) == 400);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(err_description(codes[i]), err_description(codes[j])) != 0);
	}
	free(pem);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}

/* The canonical forms, every spelling the field produces, for each of the three fields
 * and for a whole device (interface.md, "Manufacturing CSV" and its "tolerance"). */
static void canon_fields(void)
{
	static const char *macs[] = {"7CDFA1000001", "7cdfa1000001", "7c:df:a1:00:00:01",
	                             "7C-DF-A1-00-00-01", "7C:df:A1:00:00:01"};
	static const char *bad_macs[] = {"",
	                                 "7CDFA100000",
	                                 "7CDFA10000011",
	                                 "7C:DF-A1:00:00:01",
	                                 "7C:DF:A1:00:00:0G",
	                                 "7CDFA1 000001",
	                                 "7C.DF.A1.00.00.01",
	                                 " 7CDFA1000001"};
	static const char *s3[] = {"esp32s3",  "ESP32S3",  "ESP32-S3",
	                           "esp32_s3", "Esp32-S3", "esp-32-s3"};
	static const char *bad_platforms[] = {"",
	                                      "--",
	                                      "esp 32",
	                                      "esp32.s3",
	                                      "esp32s3\n",
	                                      "ésp32",
	                                      "abcdefghijklmnopqrstuvwxyz0123456"};
	char m[MAC_LEN + 1], p[PLATFORM_MAX + 1];
	uint8_t k[EFUSE_KEY_BYTES];
	struct canon_device d;
	static char x9[] = "esp32x9";
	static char *const extra[] = {x9, NULL};

	for (size_t i = 0; i < sizeof(macs) / sizeof(macs[0]); i++)
		CHECKF(mac_normalize(m, macs[i], strlen(macs[i])) && strcmp(m, "7CDFA1000001") == 0,
		       "%s", macs[i]);
	for (size_t i = 0; i < sizeof(bad_macs) / sizeof(bad_macs[0]); i++)
		CHECKF(!mac_normalize(m, bad_macs[i], strlen(bad_macs[i])), "%s", bad_macs[i]);
	for (size_t i = 0; i < sizeof(s3) / sizeof(s3[0]); i++) {
		CHECKF(platform_normalize(p, s3[i], strlen(s3[i])) && strcmp(p, "esp32s3") == 0,
		       "%s", s3[i]);
		CHECK(canon_device("7CDFA1000001", s3[i], K1HEX_UNIT, NULL, &d) == CE_OK &&
		      strcmp(d.platform, "esp32s3") == 0);
	}
	for (size_t i = 0; i < sizeof(bad_platforms) / sizeof(bad_platforms[0]); i++)
		CHECKF(!platform_normalize(p, bad_platforms[i], strlen(bad_platforms[i])), "%s",
		       bad_platforms[i]);
	/* 32 characters is the limit, separators counted as written. */
	CHECK(platform_normalize(p, "abcdefghijklmnopqrstuvwxyz012345", 32));
	CHECK(platform_normalize(p, "ESP32C61", 8) && strcmp(p, "esp32c61") == 0);
	/* "host" (what the CLI sends) is a platform name, but no IDF target. */
	CHECK(platform_normalize(p, "host", 4) && !platform_known(p, NULL));
	static const char *targets[] = {"esp32",   "esp32s2", "esp32s3",  "esp32c2", "esp32c3",
	                                "esp32c5", "esp32c6", "esp32c61", "esp32h2", "esp32p4"};
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		CHECKF(platform_known(targets[i], NULL), "%s", targets[i]);
	CHECK(!platform_known("esp99", NULL) && !platform_known("esp32s", NULL) &&
	      !platform_known("esp32x9", NULL) && platform_known("esp32x9", extra) &&
	      platform_known("esp32s3", extra) && !platform_known("esp99", extra));
	/* Keys: 32 hex digits, any case, spaces anywhere. */
	CHECK(efuse_key_parse(k, "000102030405060708090a0b0c0d0e0F", 32) && k[0] == 0 &&
	      k[10] == 10 && k[15] == 15);
	CHECK(efuse_key_parse(k, "00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F", 47) &&
	      k[15] == 15);
	CHECK(!efuse_key_parse(k, "000102030405060708090A0B0C0D0E", 30));
	CHECK(!efuse_key_parse(k, "000102030405060708090A0B0C0D0E0F00", 34));
	CHECK(!efuse_key_parse(k, "000102030405060708090A0B0C0D0E0G", 32));
	CHECK(!efuse_key_parse(k, "00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F", 47));
	/* A whole device: the first wrong field decides, each with its own code. */
	CHECK(canon_device("7c-df-a1-00-00-01", "ESP32-C6",
	                   "00 01 02 03 04 05 06 07 08 09 0a 0b "
	                   "0c 0d 0e 0f",
	                   NULL, &d) == CE_OK &&
	      strcmp(d.mac, "7CDFA1000001") == 0 && strcmp(d.platform, "esp32c6") == 0 &&
	      d.efuse_key[15] == 15);
	CHECK(canon_device("7CDFA10000", "esp99", "x", NULL, &d) == CE_DEVICE_MAC);
	CHECK(canon_device("7CDFA1000001", "esp 32", "x", NULL, &d) == CE_DEVICE_PLATFORM);
	CHECK(canon_device("7CDFA1000001", "esp99", "x", NULL, &d) == CE_DEVICE_PLATFORM_UNKNOWN);
	CHECK(canon_device("7CDFA1000001", "ESP32_X9", K1HEX_UNIT, extra, &d) == CE_OK &&
	      strcmp(d.platform, "esp32x9") == 0);
	CHECK(canon_device("7CDFA1000001", "esp32s3", "0001", NULL, &d) == CE_DEVICE_EFUSE_KEY);
	/* The initiate fields: canonical, any platform name ("host" too), no target check. */
	static const char *bodies[][3] = {
	    {"{\"mac_addr\":\"7c:df:a1:00:00:01\",\"platform\":\"ESP32-S3\"}", "7CDFA1000001",
	     "esp32s3"},
	    {"{\"mac_addr\": \"7C-DF-A1-00-00-01\", \"platform\": \"host\"}", "7CDFA1000001",
	     "host"},
	    {"{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"esp99\"}", "7CDFA1000001", "esp99"}};
	for (size_t i = 0; i < 3; i++) {
		struct initiate_fields in;
		json_t *j = fields_parse(bodies[i][0], strlen(bodies[i][0]));
		CHECKF(j && fields_initiate(j, &in) == CE_OK && strcmp(in.mac, bodies[i][1]) == 0 &&
		           strcmp(in.platform, bodies[i][2]) == 0,
		       "%s", bodies[i][0]);
		json_decref(j);
	}
	json_t *j = fields_parse("{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"-_\"}", 43);
	struct initiate_fields in;
	CHECK(j && fields_initiate(j, &in) == CE_PLATFORM_FORMAT);
	json_decref(j);
	CHECK(strncmp(err_description(CE_DEVICE_PLATFORM_UNKNOWN), "platform: ", 10) == 0 &&
	      strncmp(err_description(CE_DEVICE_MAC), "mac: ", 5) == 0 &&
	      strncmp(err_description(CE_DEVICE_EFUSE_KEY), "efuse_key: ", 11) == 0);
}

/* claim.extra_platforms: a list, stored canonical, each item a platform name. */
static void config_extra_platforms(void)
{
	char err[512];
	const char *path = write_tmp("xp.yaml", REQUIRED_KEYS "claim:\n  extra_platforms: "
	                                                      "[\"ESP32-X9\", \"linux_host\"]\n");
	struct claimd_config *c = config_load(path, err, sizeof(err)), *d;
	REQUIRE(c != NULL);
	CHECK(c->n_extra_platforms == 2 && strcmp(c->extra_platforms[0], "esp32x9") == 0 &&
	      strcmp(c->extra_platforms[1], "linuxhost") == 0 && c->extra_platforms[2] == NULL);
	CHECK(platform_known("esp32x9", c->extra_platforms));
	/* The default is an empty list; changing it is a reload, not a restart. */
	path = write_tmp("xp0.yaml", REQUIRED_KEYS);
	d = config_load(path, err, sizeof(err));
	REQUIRE(d != NULL);
	CHECK(d->n_extra_platforms == 0 && d->extra_platforms && d->extra_platforms[0] == NULL);
	CHECK(!platform_known("esp32x9", d->extra_platforms));
	size_t pos = 0;
	CHECK(config_next_restart_change(d, c, &pos) == NULL);
	config_free(c);
	config_free(d);
	config_fails("claim:\n  extra_platforms: [\"esp 32\"]\n" REQUIRED_KEYS,
	             "c.yaml:2:20: claim.extra_platforms: 'esp 32' is not a platform name");
	config_fails("claim:\n  extra_platforms: esp32x9\n" REQUIRED_KEYS,
	             "c.yaml:2:20: claim.extra_platforms: expected a list");
}

/* Every spelling through the CSV reader: a byte-order mark, CRLF, header names in any
 * case, platforms as the flashing tools write them, unknown targets refused with their
 * line, extra platforms honoured. */
static void csv_spellings(void)
{
	struct csv_t t;
	struct csv_result res;
	static char x9[] = "esp32x9";
	static char *const extra[] = {x9, NULL};
	const char *rows =
	    "7cdfa1000001,ESP32-S3," K1HEX_UNIT "\r\n"
	    "7C:DF:A1:00:00:02,esp32_s3," K1HEX_UNIT "\r\n"
	    "7C-DF-A1-00-00-03,Esp32C61,00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\r\n";
	static const char *headers[] = {"mac,platform,efuse_key", "MAC,PLATFORM,EFUSE_KEY",
	                                "Mac, Platform , eFuse_Key",
	                                "\xEF\xBB\xBFmac,platform,efuse_key",
	                                "\xEF\xBB\xBF"
	                                "MAC,Platform,EFUSE_KEY"};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *text = NULL;
		REQUIRE(asprintf(&text, "%s\r\n%s", headers[i], rows) > 0);
		CHECKF(csv_run(text, &t) == 0 && t.rows == 3 && t.errors == 0, "header %zu: %s", i,
		       t.errors ? t.reasons[0] : "");
		CHECK(strcmp(t.last.mac, "7CDFA1000003") == 0 &&
		      strcmp(t.last.platform, "esp32c61") == 0 && t.last.line == 4 &&
		      t.last.efuse_key[15] == 15);
		free(text);
	}
	/* The canonical platform of every row, in order. */
	memset(&t, 0, sizeof(t));
	const char *two = "mac,platform,efuse_key\n7CDFA1000001,ESP32-S3," K1HEX_UNIT "\n";
	CHECK(csv_read_buffer(two, strlen(two), NULL, csv_row_cb, csv_err_cb, &t, &res) == 0 &&
	      t.rows == 1 && strcmp(t.last.platform, "esp32s3") == 0);
	/* A BOM is only a BOM at the very start. */
	CHECK(csv_run("mac,platform,efuse_key\n\xEF\xBB\xBF"
	              "7CDFA1000001,esp32s3," K1HEX_UNIT "\n",
	              &t) == 0 &&
	      t.rows == 0 && t.errors == 1 && strstr(t.reasons[0], "mac: "));
	/* Unknown targets: refused with the line and what was found; the others pass. */
	const char *x = "mac,platform,efuse_key\n"
	                "7CDFA1000001,esp99," K1HEX_UNIT "\n"
	                "7CDFA1000002,ESP32-X9," K1HEX_UNIT "\n"
	                "7CDFA1000003,esp32s3," K1HEX_UNIT "\n";
	CHECK(csv_run(x, &t) == 0 && t.rows == 1 && t.errors == 2);
	CHECKF(t.lines[0] == 2 && strstr(t.reasons[0], "platform: not a known IDF target") &&
	           strstr(t.reasons[0], "\"esp99\""),
	       "%s", t.reasons[0]);
	CHECK(t.lines[1] == 3 && strstr(t.reasons[1], "\"ESP32-X9\""));
	memset(&t, 0, sizeof(t));
	CHECK(csv_read_buffer(x, strlen(x), extra, csv_row_cb, csv_err_cb, &t, &res) == 0 &&
	      t.rows == 2 && t.errors == 1 && t.lines[0] == 2 &&
	      strcmp(t.last.mac, "7CDFA1000003") == 0);
	/* The key is never quoted back; the MAC is. */
	CHECK(csv_run("mac,platform,efuse_key\n7CDFA10000,esp32s3," K1HEX_UNIT "\n"
	              "7CDFA1000001,esp32s3,00SECRET\n",
	              &t) == 0 &&
	      t.errors == 2 && strstr(t.reasons[0], "\"7CDFA10000\"") &&
	      strstr(t.reasons[1], "efuse_key: ") && !strstr(t.reasons[1], "SECRET"));
	/* A header that is not ours says what it found. */
	CHECK(csv_run("MAC Address;Platform;Key\n", &t) < 0 && t.lines[0] == 1);
	CHECKF(strstr(t.reasons[0], "header: ") &&
	           strstr(t.reasons[0], "found: \"MAC Address;Platform;Key\""),
	       "%s", t.reasons[0]);
	CHECK(csv_run("\xEF\xBB\xBFserial,mac,platform\r\n", &t) < 0);
	CHECKF(strstr(t.reasons[0], "found: \"serial\", \"mac\", \"platform\""), "%s",
	       t.reasons[0]);
}

/* node_policies lists (protocol.md 7): canonical text and bits, and what is refused. */
static void policies_lists(void)
{
	static const struct {
		const char *in;
		const char *text; /* NULL: refused */
	} cases[] = {
	    {"", "mqtt"},
	    {"mqtt", "mqtt"},
	    {"videostream", "videostream"},
	    {"videostream,mqtt", "mqtt,videostream"},
	    {" MQTT , VideoStream ", "mqtt,videostream"},
	    {"mqtt,mqtt", "mqtt"},
	    {"camera", NULL},
	    {"mqtt,", NULL},
	    {",mqtt", NULL},
	    {"mqtt,,videostream", NULL},
	    {"mqttvideostream", NULL},
	    {"mqtt;videostream", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policies p;
		enum claimd_err e = policies_parse(cases[i].in, strlen(cases[i].in), &p);
		if (cases[i].text)
			CHECKF(e == CE_OK && strcmp(p.text, cases[i].text) == 0 &&
			           !!(p.bits & POLICY_VIDEOSTREAM) ==
			               !!strstr(cases[i].text, "video"),
			       "'%s': %s '%s'", cases[i].in, err_name(e), p.text);
		else
			CHECKF(e == CE_POLICIES_VALUE, "'%s' accepted", cases[i].in);
	}
}

/* A Matter CSR as the CLI makes it: the subject's CN and ids are read, and a subject
 * with anything else, an id spelt otherwise or a non-P-256 key is refused. */
static void csr_matter_subject(void)
{
	EVP_PKEY *ec = sim_key_new("ec"), *rsa = sim_key_new("rsa");
	struct matter_subject m;
	struct csr *c = NULL;
	char *pem;

	REQUIRE(ec && rsa);
	pem = sim_matter_csr_pem(ec, "node1", "131B", "0002");
	REQUIRE(pem);
	CHECK(csr_check_matter(pem, strlen(pem), &c, &m) == CE_OK && c &&
	      strcmp(m.cn, "node1") == 0 && strcmp(m.vendor_id, "131B") == 0 &&
	      strcmp(m.product_id, "0002") == 0);
	csr_free(c);
	/* The same CSR is no plain CSR: its subject is more than a CN. */
	char cn[NODE_ID_MAX + 1];
	CHECK(csr_check(pem, strlen(pem), &c, cn) == CE_CSR_SUBJECT && !c);
	free(pem);
	static const struct {
		const char *cn, *vid, *pid;
		enum claimd_err want;
	} bad[] = {
	    {"node1", "131B", NULL, CE_MATTER_SUBJECT},
	    {"node1", NULL, "0002", CE_MATTER_SUBJECT},
	    {"node1", "131b", "0002", CE_MATTER_SUBJECT},
	    {"node1", "131B", "02", CE_MATTER_SUBJECT},
	    {"node1", "131B", "00020", CE_MATTER_SUBJECT},
	    {"bad cn", "131B", "0002", CE_MATTER_SUBJECT},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pem = sim_matter_csr_pem(ec, bad[i].cn, bad[i].vid, bad[i].pid);
		REQUIRE(pem);
		enum claimd_err e = csr_check_matter(pem, strlen(pem), &c, &m);
		CHECKF(e == bad[i].want && !c, "case %zu: %s", i, err_name(e));
		free(pem);
	}
	/* A plain CSR has no ids; an RSA key is refused before the subject is looked at. */
	pem = sim_csr_pem(ec, "node1", true);
	CHECK(csr_check_matter(pem, strlen(pem), &c, &m) == CE_MATTER_SUBJECT &&
	      strcmp(m.cn, "node1") == 0);
	free(pem);
	pem = sim_matter_csr_pem(rsa, "node1", "131B", "0002");
	CHECK(csr_check_matter(pem, strlen(pem), &c, &m) == CE_MATTER_KEY && !c);
	free(pem);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

static const struct t_case cases[] = {
    {"hmac_vector", hmac_vector},
    {"policies_lists", policies_lists},
    {"csr_matter_subject", csr_matter_subject},
    {"config_errors", config_errors},
    {"config_defaults_and_paths", config_defaults_and_paths},
    {"config_example_in_step", config_example_in_step},
    {"config_restart_keys", config_restart_keys},
    {"seal_roundtrip", seal_roundtrip},
    {"secrets_file_rules", secrets_file_rules},
    {"authid_tokens", authid_tokens},
    {"mac_and_hex", mac_and_hex},
    {"csr_profile", csr_profile},
    {"csr_refusals", csr_refusals},
    {"csr_encodings", csr_encodings},
    {"ca_load_rules", ca_load_rules},
    {"cert_reply_exact", cert_reply_exact},
    {"cert_reply_refusals", cert_reply_refusals},
    {"csv_reader", csv_reader},
    {"canon_fields", canon_fields},
    {"config_extra_platforms", config_extra_platforms},
    {"csv_spellings", csv_spellings},
    {"csr_pem_widths", csr_pem_widths},
    {"csr_refusal_layers", csr_refusal_layers},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
