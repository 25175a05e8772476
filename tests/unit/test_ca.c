/*
 * Unit tests of loading the CA: which keys and certificates are refused: no server, no database.
 * Each case is its own CTest test (label unit).
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
#include "x509/csr_der.h"
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

/* A self-signed P-256 certificate with @p serial (@p n bytes, big-endian), version
 * @p v1 ? 1 : 3; its DER in *@p der (OPENSSL_free it), its key's SubjectPublicKeyInfo in
 * @p spki (at most 128 bytes), *@p spki_len bytes. */
static int make_cert(const uint8_t *serial, size_t n, bool v1, unsigned char **der,
                     uint8_t spki[128], size_t *spki_len)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIGNUM *bn = BN_bin2bn(serial, (int)n, NULL);
	ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	int len = -1;

	if (k && x && ai && X509_set_version(x, v1 ? X509_VERSION_1 : X509_VERSION_3) &&
	    X509_set_serialNumber(x, ai) && X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_set_pubkey(x, k) &&
	    X509_sign(x, k, EVP_sha256()) > 0 && i2d_PUBKEY(k, NULL) <= 128) {
		unsigned char *w = spki;
		*spki_len = (size_t)i2d_PUBKEY(k, &w);
		len = i2d_X509(x, der);
	}
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(k);
	return len;
}

/* cert_der_serial() reads the serial and key OpenSSL wrote, and refuses what is not
 * exactly one certificate; issued_from_der() stores a certificate only under its own
 * serial and only for the key asked for. */
static void cert_serial(void)
{
	uint8_t serial[16], top[16], spki[128], other[128];
	unsigned char *der = NULL, *der2 = NULL;
	const uint8_t *p, *k;
	size_t n, kn, spki_len = 0, other_len = 0;

	cert_random_serial(serial);
	memcpy(top, serial, sizeof(top));
	top[0] |= 0x80; /* DER adds a zero octet before it */
	for (int v1 = 0; v1 < 2; v1++) {
		int len = make_cert(serial, sizeof(serial), v1, &der, spki, &spki_len);
		REQUIRE(len > 0);
		CHECK(cert_der_serial(der, (size_t)len, &p, &n, &k, &kn) && n == 16 &&
		      memcmp(p, serial, 16) == 0 && kn == spki_len && memcmp(k, spki, kn) == 0);
		CHECK(!cert_der_serial(der, (size_t)len - 1, &p, &n, &k, &kn));
		unsigned char *longer = malloc((size_t)len + 1);
		REQUIRE(longer);
		memcpy(longer, der, (size_t)len);
		longer[len] = 0;
		CHECK(!cert_der_serial(longer, (size_t)len + 1, &p, &n, &k, &kn));
		free(longer);
		struct cert_request rq = {
		    .not_before = 1, .not_after = 2, .spki = spki, .spki_len = spki_len};
		struct issued is;
		memcpy(rq.serial, serial, 16);
		CHECK(issued_from_der(&rq, der, (size_t)len, &is) == 0 &&
		      strlen(is.serial) == SERIAL_HEX_LEN && is.pem &&
		      strncmp(is.pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
		issued_clear(&is);
		/* The same serial for another key: a reply meant for another request. */
		REQUIRE(make_cert(serial, sizeof(serial), v1, &der2, other, &other_len) > 0);
		rq.spki = other;
		rq.spki_len = other_len;
		CHECK(issued_from_der(&rq, der, (size_t)len, &is) < 0 && !is.pem);
		rq.spki = spki;
		rq.spki_len = spki_len;
		OPENSSL_free(der2);
		der2 = NULL;
		rq.serial[15] ^= 1;
		CHECK(issued_from_der(&rq, der, (size_t)len, &is) < 0 && !is.pem);
		OPENSSL_free(der);
		der = NULL;
	}
	int len = make_cert(top, sizeof(top), false, &der, spki, &spki_len);
	REQUIRE(len > 0);
	CHECK(cert_der_serial(der, (size_t)len, &p, &n, &k, &kn) && n == 16 &&
	      memcmp(p, top, 16) == 0);
	CHECK(!cert_der_serial((const uint8_t *)"\x30\x00", 2, &p, &n, &k, &kn));
	OPENSSL_free(der);
}

/* The device leaf as OpenSSL's X509 API builds it from the profile as RFC 5280 and
 * the first waves wrote it, from the same inputs as ca_issue() gets: the reference its
 * own encoding is compared with. NULL on failure. */
static X509 *reference_leaf(X509 *cacert, EVP_PKEY *cakey, const struct cert_request *rq,
                            const char *crl_url)
{
	static const struct {
		int nid;
		const char *value;
	} exts[] = {
	    {NID_basic_constraints, "critical,CA:FALSE"},
	    {NID_key_usage, "critical,digitalSignature"},
	    {NID_ext_key_usage, "clientAuth"},
	    {NID_subject_key_identifier, "hash"},
	    {NID_authority_key_identifier, "keyid:always"},
	};
	const unsigned char *p = rq->spki;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)rq->spki_len);
	BIGNUM *bn = BN_bin2bn(rq->serial, sizeof(rq->serial), NULL);
	ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	X509 *x = X509_new();
	X509V3_CTX v3;
	bool ok = k && serial && x && X509_set_version(x, X509_VERSION_3) &&
	          X509_set_serialNumber(x, serial) &&
	          X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, MBSTRING_ASC,
	                                     (const unsigned char *)rq->cn, -1, -1, 0) &&
	          X509_set_issuer_name(x, X509_get_subject_name(cacert)) &&
	          ASN1_TIME_set(X509_getm_notBefore(x), (time_t)rq->not_before) &&
	          ASN1_TIME_set(X509_getm_notAfter(x), (time_t)rq->not_after) &&
	          X509_set_pubkey(x, k);
	X509V3_set_ctx(&v3, cacert, x, NULL, NULL, 0);
	for (size_t i = 0; ok && i < sizeof(exts) / sizeof(exts[0]); i++) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
		ok = e && X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	if (ok && crl_url) {
		char v[300];
		snprintf(v, sizeof(v), "URI:%s", crl_url);
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_crl_distribution_points, v);
		ok = e && X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	ok = ok && X509_sign(x, cakey, EVP_sha256()) > 0;
	EVP_PKEY_free(k);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* The first element of the DER SEQUENCE @p der (a certificate's tbsCertificate), as
 * it is encoded; false when @p der is not a SEQUENCE holding one. */
static bool first_element(const uint8_t *der, size_t len, const uint8_t **p, size_t *n)
{
	const unsigned char *q = der;
	long l;
	int tag, cls;

	if (ASN1_get_object(&q, &l, &tag, &cls, (long)len) & 0x80 || tag != V_ASN1_SEQUENCE)
		return false;
	const unsigned char *start = q;
	if (ASN1_get_object(&q, &l, &tag, &cls, (long)(len - (size_t)(q - der))) & 0x80)
		return false;
	*p = start;
	*n = (size_t)(q - start) + (size_t)l;
	return true;
}

/*
 * ca_issue() writes the device leaf's DER itself. For CA keys of both kinds, device
 * keys of every kind accepted (P-256 uncompressed and compressed, RSA 2048 and 3072),
 * CNs of 1, 12 and 64 characters, validity ends either side of 2050 (where UTCTime
 * gives way to GeneralizedTime) and with and without a CRL URL, its tbsCertificate is
 * byte for byte the one OpenSSL's X509 API builds from the same inputs (with an RSA CA
 * key, whose signatures are deterministic, the whole certificate is), its signature
 * verifies with the CA's key, and OpenSSL parses it back whole.
 */
static void leaf_matches_openssl(void)
{
	static const char *const ca_kinds[] = {"ec", "rsa2048"};
	static const char *const cns[] = {
	    "A", "7CDFA1000001",
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"};
	static const int64_t ends[] = {2524607999 /* 2049-12-31T23:59:59Z */,
	                               2524608000 /* 2050-01-01 */, 4102444800 /* 2100 */};
	EVP_PKEY *dev[4] = {EVP_EC_gen("P-256"), EVP_EC_gen("P-256"), EVP_RSA_gen(2048),
	                    EVP_RSA_gen(3072)};
	int compared = 0;

	REQUIRE(dev[0] && dev[1] && dev[2] && dev[3]);
	REQUIRE(EVP_PKEY_set_utf8_string_param(dev[1], OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	                                       "compressed"));
	for (size_t ck = 0; ck < 2; ck++) {
		char dir[700], cert[800], key[800], err[256];
		snprintf(dir, sizeof(dir), "%s/tmp/unit/leaf-%s", getenv("CLAIMD_BUILD_DIR") ?: ".",
		         ca_kinds[ck]);
		t_run(NULL, "mkdir -p '%s'", dir);
		REQUIRE(devca_create(dir, ca_kinds[ck], err, sizeof(err)) == 0);
		snprintf(cert, sizeof(cert), "%s/intermediate.pem", dir);
		snprintf(key, sizeof(key), "%s/intermediate.key", dir);
		struct ca *ca = ca_load(cert, key, NULL, err, sizeof(err));
		REQUIRE(ca);
		FILE *f = fopen(cert, "r"), *kf = fopen(key, "r");
		REQUIRE(f && kf);
		X509 *cacert = PEM_read_X509(f, NULL, NULL, NULL);
		EVP_PKEY *cakey = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
		fclose(f);
		fclose(kf);
		REQUIRE(cacert && cakey);
		for (int url = 0; url < 2; url++) {
			const char *crl = url ? "http://pki.example.com/claimd.crl" : NULL;
			if (crl)
				REQUIRE(ca_set_crl_url(ca, crl, err, sizeof(err)) == 0);
			for (size_t d = 0; d < 4; d++)
				for (size_t c = 0; c < 3; c++)
					for (size_t e = 0; e < 3; e++) {
						unsigned char *spki = NULL;
						int spki_len = i2d_PUBKEY(dev[d], &spki);
						REQUIRE(spki_len > 0);
						struct cert_request rq = {
						    .profile = CERT_PROFILE_DEVICE,
						    .spki = spki,
						    .spki_len = (size_t)spki_len,
						    .cn = cns[c],
						    .vendor_id = "",
						    .product_id = "",
						    .not_before = 1764000000 + (int64_t)e,
						    .not_after = ends[e],
						};
						cert_random_serial(rq.serial);
						uint8_t *der = NULL;
						size_t len = 0;
						const uint8_t *tbs, *rtbs;
						size_t tbs_len, rtbs_len;
						unsigned char *renc = NULL;
						X509 *ref = reference_leaf(cacert, cakey, &rq, crl);
						int rlen = ref ? i2d_X509(ref, &renc) : -1;
						CHECK(ca_issue(ca, &rq, &der, &len) == 0);
						CHECK(rlen > 0);
						if (der && rlen > 0 &&
						    first_element(der, len, &tbs, &tbs_len) &&
						    first_element(renc, (size_t)rlen, &rtbs,
						                  &rtbs_len)) {
							CHECKF(tbs_len == rtbs_len &&
							           memcmp(tbs, rtbs, tbs_len) == 0,
							       "CA %s, device key %zu, CN %zu, end "
							       "%zu, url %d: "
							       "tbsCertificate differs (%zu "
							       "against %zu bytes)",
							       ca_kinds[ck], d, c, e, url, tbs_len,
							       rtbs_len);
							const unsigned char *p = der;
							X509 *got = d2i_X509(NULL, &p, (long)len);
							CHECK(got && p == der + len &&
							      X509_verify(got, X509_get0_pubkey(
							                           cacert)) == 1 &&
							      /* PKCS#1 v1.5 signatures are
							       * deterministic: the whole
							       * certificate is the same */
							      (ck == 0 ||
							       (len == (size_t)rlen &&
							        memcmp(der, renc, len) == 0)) &&
							      ASN1_INTEGER_cmp(
							          X509_get0_serialNumber(got),
							          X509_get0_serialNumber(ref)) ==
							          0);
							X509_free(got);
							compared++;
						}
						free(der);
						OPENSSL_free(renc);
						OPENSSL_free(spki);
						X509_free(ref);
					}
		}
		X509_free(cacert);
		EVP_PKEY_free(cakey);
		ca_free(ca);
	}
	CHECKF(compared == 2 * 2 * 4 * 3 * 3, "%d leaves compared", compared);
	for (int i = 0; i < 4; i++)
		EVP_PKEY_free(dev[i]);
}

/* A self-signed CA certificate for @p k whose subject has six attributes, four of 64
 * characters (over 256 bytes of DER: the issuer's length takes two octets). */
static X509 *long_subject_ca(EVP_PKEY *k)
{
	static const char *const attrs[] = {"C", "ST", "L", "O", "OU", "CN"};
	static const char *const ext[][2] = {{"basicConstraints", "critical,CA:TRUE"},
	                                     {"keyUsage", "critical,keyCertSign,cRLSign"},
	                                     {"subjectKeyIdentifier", "hash"}};
	char v[65];
	X509 *x = X509_new();
	X509_NAME *n = x ? X509_get_subject_name(x) : NULL;
	X509V3_CTX v3;
	bool ok = n && X509_set_version(x, X509_VERSION_3) &&
	          ASN1_INTEGER_set(X509_get_serialNumber(x), 4242) &&
	          X509_gmtime_adj(X509_getm_notBefore(x), -86400) &&
	          X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 3650) && X509_set_pubkey(x, k);

	for (size_t i = 0; ok && i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		memset(v, 'a' + (int)i, 64);
		v[i == 0 ? 2 : i < 5 ? 64 : 40] = '\0';
		ok = X509_NAME_add_entry_by_txt(n, attrs[i], MBSTRING_ASC, (const unsigned char *)v,
		                                -1, -1, 0);
	}
	ok = ok && X509_set_issuer_name(x, n);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	for (size_t i = 0; ok && i < sizeof(ext) / sizeof(ext[0]); i++) {
		X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, ext[i][0], ext[i][1]);
		ok = e && X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	if (!(ok && X509_sign(x, k, EVP_sha256()) > 0)) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/*
 * The leaf's DER where lengths take long forms: a CA whose subject (the leaf's issuer)
 * is over 256 bytes, a CRL URL of 200 characters (the longest ca.crl_url takes), an
 * RSA-4096 device key and a CN of 64 characters. With CA keys P-256, RSA-2048 and
 * RSA-4096 (a 512-byte signature) the tbsCertificate is OpenSSL's own encoding (with
 * RSA, whose signatures are deterministic, the whole certificate is), and the leaf
 * verifies with OpenSSL's chain verification for TLS client use.
 */
static void leaf_long_forms(void)
{
	char dir[700], cert[800], key[800], err[256], url[201];
	EVP_PKEY *dev = EVP_RSA_gen(4096);
	EVP_PKEY *cakeys[3] = {EVP_EC_gen("P-256"), EVP_RSA_gen(2048), EVP_RSA_gen(4096)};
	static const char cn[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
	unsigned char *spki = NULL;
	int spki_len = dev ? i2d_PUBKEY(dev, &spki) : -1;

	REQUIRE(spki_len > 0 && cakeys[0] && cakeys[1] && cakeys[2] && strlen(cn) == 64);
	memcpy(url, "http://", 7);
	memset(url + 7, 'u', sizeof(url) - 12);
	memcpy(url + sizeof(url) - 5, ".crl", 5);
	REQUIRE(strlen(url) == 200);
	snprintf(dir, sizeof(dir), "%s/tmp/unit/leaf-long", getenv("CLAIMD_BUILD_DIR") ?: ".");
	t_run(NULL, "mkdir -p '%s'", dir);
	for (int ck = 0; ck < 3; ck++) {
		X509 *cacert = long_subject_ca(cakeys[ck]);
		REQUIRE(cacert);
		CHECK(i2d_X509_NAME(X509_get_subject_name(cacert), NULL) > 256);
		snprintf(cert, sizeof(cert), "%s/ca%d.pem", dir, ck);
		snprintf(key, sizeof(key), "%s/ca%d.key", dir, ck);
		FILE *f = fopen(cert, "w"), *kf = fopen(key, "w");
		REQUIRE(f && kf);
		CHECK(PEM_write_X509(f, cacert) &&
		      PEM_write_PrivateKey(kf, cakeys[ck], NULL, NULL, 0, NULL, NULL));
		fclose(f);
		fclose(kf);
		chmod(key, 0600);
		struct ca *ca = ca_load(cert, key, NULL, err, sizeof(err));
		CHECKF(ca, "%s", err);
		if (!ca) {
			X509_free(cacert);
			continue;
		}
		CHECKF(ca_set_crl_url(ca, url, err, sizeof(err)) == 0, "%s", err);
		struct cert_request rq = {
		    .profile = CERT_PROFILE_DEVICE,
		    .spki = spki,
		    .spki_len = (size_t)spki_len,
		    .cn = cn,
		    .vendor_id = "",
		    .product_id = "",
		    .not_before = 1764000000,
		    .not_after = 4102444800,
		};
		cert_random_serial(rq.serial);
		uint8_t *der = NULL;
		size_t len = 0;
		unsigned char *renc = NULL;
		const uint8_t *tbs = NULL, *rtbs = NULL;
		size_t tbs_len = 0, rtbs_len = 0;
		X509 *ref = reference_leaf(cacert, cakeys[ck], &rq, url);
		int rlen = ref ? i2d_X509(ref, &renc) : -1;
		CHECK(rlen > 0);
		CHECK(ca_issue(ca, &rq, &der, &len) == 0);
		CHECKF(der && rlen > 0 && first_element(der, len, &tbs, &tbs_len) &&
		           first_element(renc, (size_t)rlen, &rtbs, &rtbs_len) &&
		           tbs_len == rtbs_len && memcmp(tbs, rtbs, tbs_len) == 0,
		       "CA key %d: tbsCertificate differs (%zu against %zu bytes)", ck, tbs_len,
		       rtbs_len);
		const unsigned char *p = der;
		X509 *got = der ? d2i_X509(NULL, &p, (long)len) : NULL;
		CHECK(got && p == der + len &&
		      (ck == 0 || (len == (size_t)rlen && memcmp(der, renc, len) == 0)));
		X509_STORE *st = X509_STORE_new();
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();
		REQUIRE(st && ctx && X509_STORE_add_cert(st, cacert));
		if (got && X509_STORE_CTX_init(ctx, st, got, NULL)) {
			X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
			int v = X509_verify_cert(ctx);
			CHECKF(v == 1, "CA key %d: verify: %s", ck,
			       X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		}
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(st);
		X509_free(got);
		X509_free(ref);
		OPENSSL_free(renc);
		free(der);
		ca_free(ca);
		X509_free(cacert);
	}
	OPENSSL_free(spki);
	EVP_PKEY_free(dev);
	for (int i = 0; i < 3; i++)
		EVP_PKEY_free(cakeys[i]);
}

static const struct t_case cases[] = {
    {"ca_load_rules", ca_load_rules},
    {"leaf_matches_openssl", leaf_matches_openssl},
    {"leaf_long_forms", leaf_long_forms},
    {"cert_serial", cert_serial},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
