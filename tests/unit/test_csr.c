/*
 * Unit tests of the CSR reader and checks (x509/csr_der.c, x509/ca.c): profiles, refusals,
 * encodings, Matter subjects: no server, no database. Each case is its own CTest test (label unit).
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
#include "unit_support.h"

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

/* Whether OpenSSL reads @p pem as a request with a valid signature: every width claimd
 * accepts must be one OpenSSL reads too (the fuzz target checks the same). */
static bool openssl_reads(const char *pem)
{
	X509_REQ *r = req_of_pem(pem);
	bool ok = r && X509_REQ_verify(r, X509_REQ_get0_pubkey(r)) == 1;
	X509_REQ_free(r);
	return ok;
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

/* The common name's fallback form of the Matter ids (matter_cn_ids(), Matter Core
 * 6.2.2.2), as the PAI check and the DAC CSR check read it: a table of CNs. */
static void matter_cn_forms(void)
{
	static const struct {
		const char *cn;
		int rc;
		const char *vid, *pid, *rest;
	} cases[] = {
	    {"ACME Matter PAI Mvid:131B", 0, "131B", "", "ACME Matter PAI"},
	    {"ACME PAI Mvid:131B Mpid:0002", 0, "131B", "0002", "ACME PAI"},
	    {"Mpid:0002 Mvid:FFF1", 0, "FFF1", "0002", ""},
	    {"node1 Mvid:131B Mpid:8000", 0, "131B", "8000", "node1"},
	    {"Mvid:131B Mpid:8000 node1", 0, "131B", "8000", "node1"},
	    {"Mvid:131BMpid:8000", 0, "131B", "8000", ""}, /* no space needed */
	    {"Mvid:131B0", 0, "131B", "", "0"},            /* four digits are read */
	    {"Test PAI", 0, "", "", "Test PAI"},           /* nothing: not an error */
	    {"mvid:131B", 0, "", "", "mvid:131B"},         /* the prefix is case-exact */
	    {"PAI Mvid:131b", -1, "", "", NULL},           /* lower-case hex */
	    {"PAI Mvid:13", -1, "", "", NULL},             /* too short */
	    {"PAI Mvid:", -1, "", "", NULL},
	    {"PAI Mvid:G31B", -1, "", "", NULL},
	    {"Mvid:131B Mvid:131B", -1, "", "", NULL},           /* twice, even the same */
	    {"Mvid:131B Mpid:0002 Mpid:0003", -1, "", "", NULL}, /* conflicting */
	    {"Mvid:131B Mpid:00 2", -1, "", "", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char vid[MATTER_ID_LEN + 1] = "x", pid[MATTER_ID_LEN + 1] = "x", rest[80] = "x";
		int rc = matter_cn_ids(cases[i].cn, strlen(cases[i].cn), vid, pid, rest);
		CHECKF(rc == cases[i].rc && strcmp(vid, cases[i].vid) == 0 &&
		           strcmp(pid, cases[i].pid) == 0 &&
		           (!cases[i].rest || strcmp(rest, cases[i].rest) == 0),
		       "'%s': %d '%s' '%s' '%s'", cases[i].cn, rc, vid, pid, rest);
	}
	/* A CN is not NUL-terminated where its length says. */
	char vid[MATTER_ID_LEN + 1], pid[MATTER_ID_LEN + 1];
	CHECK(matter_cn_ids("PAI Mvid:131Bzz", 12, vid, pid, NULL) == -1);
	CHECK(matter_cn_ids("PAI Mvid:131Bzz", 13, vid, pid, NULL) == 0 && !strcmp(vid, "131B"));
}

static const struct t_case cases[] = {
    {"csr_matter_subject", csr_matter_subject},
    {"csr_profile", csr_profile},
    {"csr_refusals", csr_refusals},
    {"csr_encodings", csr_encodings},
    {"csr_pem_widths", csr_pem_widths},
    {"csr_refusal_layers", csr_refusal_layers},
    {"matter_cn_forms", matter_cn_forms},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
