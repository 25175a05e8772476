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

static const struct t_case cases[] = {
    {"ca_load_rules", ca_load_rules},
    {"cert_serial", cert_serial},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
