/*
 * OpenSSL X.509 for the server: CA loading, CSR checking and certificate signing.
 * Functions that own OpenSSL objects free them at one 'out:' label and drain the error
 * queue into the log. It never logs key material and never trusts CSR extensions.
 */
/* The CSR's signature is checked with OpenSSL's low-level EC_KEY/RSA calls, deprecated
 * in 3.0 but kept: building a key through the provider layer (decoders, fetches under
 * a global lock) cost more than the verification itself. See csr_verify(). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "x509/ca.h"

#include "ca_internal.h"

#include <errno.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/secure.h"
#include "x509/csr_der.h"
#include "x509/der_write.h"
#include "lib/log.h"
#include "x509/pkcs11.h"
#include "lib/util.h"

struct ca {
	X509 *cert;
	EVP_PKEY *key;
	/* Made once at load: per-certificate algorithm fetches and extension parsing are
	 * what OpenSSL 3 spends its time (and its global lock) on. */
	EVP_MD *sha256, *sha1;
	X509_EXTENSION *ext_bc, *ext_ku, *ext_eku, *ext_aki;
	X509_EXTENSION *ext_cdp; /* CRL Distribution Points (ca.crl_url), or NULL */
	/* The device leaf's parts that are the same in every leaf, DER (leaf_parts()): the
	 * signature algorithm, the issuer, the extensions before the subject key identifier
	 * and after it, and the public-key algorithm of each kind of device key. */
	struct der d_sigalg, d_issuer, d_ext_head, d_ext_tail, d_alg_ec, d_alg_rsa;
	char *chain_pem;
	char key_type[16];
	char *largest_leaf;  /* see ca_largest_leaf_pem() */
	bool in_token;       /* key is a PKCS#11 token's */
	struct p11_key *p11; /* the token's module and session, when in_token */
};

struct csr {
	uint8_t *der; /* owned: the request's DER (or a bare SubjectPublicKeyInfo) */
	struct csr_fields f;
};

char *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (!b || !PEM_write_bio_X509(b, x))
		goto out;
	n = BIO_get_mem_data(b, &data);
	while (n > 0 && data[n - 1] == '\n')
		n--;
	out = strndup(data, (size_t)n);
out:
	BIO_free(b);
	return out;
}

int append_certs(const char *key, const char *path, char **acc, X509 **first, char *err,
                 size_t errsz)
{
	/* Opened with stdio, not BIO_new_file(): a missing file is then errno's plain
	 * reason, not two lines of OpenSSL's error queue. */
	FILE *f = fopen(path, "r");
	BIO *b = NULL;
	X509 *x = NULL;
	int count = 0, rc = -1;

	if (!f) {
		snprintf(err, errsz, "%s: %s: cannot open: %s", key, path, strerror(errno));
		goto out;
	}
	if (!(b = BIO_new_fp(f, BIO_CLOSE))) {
		fclose(f);
		snprintf(err, errsz, "%s: out of memory", path);
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		char *p = cert_pem(x), *joined = NULL;
		if (!p || asprintf(&joined, "%s%s%s", *acc ? *acc : "", *acc ? "\n" : "", p) < 0) {
			free(p);
			snprintf(err, errsz, "%s: out of memory", path);
			goto out;
		}
		free(p);
		free(*acc);
		*acc = joined;
		if (first && !*first) {
			*first = x;
			x = NULL;
		}
		X509_free(x);
		x = NULL;
		count++;
	}
	ERR_clear_error(); /* the read that ends the loop always "fails" */
	if (count == 0) {
		snprintf(err, errsz, "%s: no PEM certificate found", path);
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	BIO_free(b);
	return rc;
}

const char *key_kind(EVP_PKEY *k, char *buf, size_t bufsz)
{
	if (EVP_PKEY_is_a(k, "EC")) {
		char group[64];
		size_t glen = 0;
		if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                    sizeof(group), &glen) ||
		    strcmp(group, "prime256v1") != 0)
			return NULL;
		snprintf(buf, bufsz, "ec-p256");
		return buf;
	}
	if (EVP_PKEY_is_a(k, "RSA")) {
		BIGNUM *e = NULL;
		int bits = EVP_PKEY_get_bits(k);
		bool ok = EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) &&
		          BN_is_word(e, RSA_F4) && bits >= 2048 && bits <= 4096;
		BN_free(e);
		if (!ok)
			return NULL;
		snprintf(buf, bufsz, "rsa-%d", bits);
		return buf;
	}
	return NULL;
}

/*
 * A fixed RSA-2048 public key (public only: nothing can be signed with it). RSA-2048 is
 * the largest device key the protocol names, so a leaf for it is the largest a device
 * normally receives; measuring one at load time makes the start-up size check exact.
 */
static const char rsa2048_spki_b64[] =
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA0mhh/okpyfG7t96IyXbjKPvvyk81wJNS"
    "0P6DvBcnJWjQxM1x1rMqK+TjimGpVjLlviyRlQ6oSzpqZogKUF2wRGq4G3nb/KsOQqSlBjpE57B0"
    "mfzN5fHEHDo4Gm1UULy73RC4VfitGckqSArOq8PYap80j2FItdeGg4iKKqE/tp8hx1TRBmCRxhPL"
    "kuPWMNPy2h2mXWYScOD26oJi9t5Srcp78EG6dlhdA/wIFuitRy2zaW4by7oCHepz6JEAA4dK0Zjz"
    "Z1bL41ZJEMQ6zO91uL+FCbAps0D/OMNT/XNcX9GPy9QvACSJe1LzyxTREI8Ss01cJ6bIAh8qmZLf"
    "6VHG6QIDAQAB";

static int measure_max_leaf(struct ca *ca, char *err, size_t errsz)
{
	uint8_t der[400];
	size_t dlen = 0;
	struct csr c = {.der = der};
	struct issued is = {0};
	char cn[NODE_ID_MAX + 1];
	int rc = -1;

	memset(cn, 'W', NODE_ID_ISSUED_MAX);
	cn[NODE_ID_ISSUED_MAX] = '\0';
	if (!b64_decode(der, sizeof(der), &dlen, rsa2048_spki_b64, strlen(rsa2048_spki_b64)) ||
	    !csr_spki_parse(der, dlen, &c.f) || ca_sign_local(ca, &c, cn, 36500, &is) < 0)
		goto out;
	ca->largest_leaf = is.pem;
	is.pem = NULL;
	rc = 0;
out:
	if (rc < 0)
		snprintf(err, errsz, "cannot sign a test certificate with the CA");
	issued_clear(&is);
	return rc;
}

int ca_prove(struct ca *ca, char *err, size_t errsz)
{
	free(ca->largest_leaf);
	ca->largest_leaf = NULL;
	return measure_max_leaf(ca, err, errsz);
}

X509_EXTENSION *make_ext(X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer, NULL, NULL, NULL, 0);
	return X509V3_EXT_conf_nid(NULL, &v3, nid, value);
}

/* Appends @p n bytes that OpenSSL encoded at @p enc (n <= 0: it could not) and frees
 * them. */
static void put_encoded(struct der *d, unsigned char *enc, int n)
{
	if (n <= 0)
		d->bad = true;
	else
		der_put(d, enc, (size_t)n);
	OPENSSL_free(enc);
}

/* Appends the AlgorithmIdentifier (RFC 5280 4.1.1.2) of @p nid with parameter
 * @p ptype / @p pval (X509_ALGOR_set0()). */
static void put_algorithm(struct der *d, int nid, int ptype, void *pval)
{
	X509_ALGOR *a = X509_ALGOR_new();
	unsigned char *enc = NULL;
	int n = -1;

	if (a && X509_ALGOR_set0(a, OBJ_nid2obj(nid), ptype, pval))
		n = i2d_X509_ALGOR(a, &enc);
	put_encoded(d, enc, n);
	X509_ALGOR_free(a);
}

/* Appends extension @p x's DER. */
static void put_extension(struct der *d, X509_EXTENSION *x)
{
	unsigned char *enc = NULL;
	int n = i2d_X509_EXTENSION(x, &enc);

	put_encoded(d, enc, n);
}

/* The extensions after the subject key identifier: the authority key identifier and,
 * with ca.crl_url, the CRL distribution points. */
static int leaf_tail(struct ca *ca)
{
	der_free(&ca->d_ext_tail);
	put_extension(&ca->d_ext_tail, ca->ext_aki);
	if (ca->ext_cdp)
		put_extension(&ca->d_ext_tail, ca->ext_cdp);
	return ca->d_ext_tail.bad ? -1 : 0;
}

/*
 * The leaf's fixed parts as ca_issue() writes them, encoded once by OpenSSL: the
 * signature algorithm is the one X509_sign() would write for the CA's key with SHA-256
 * (ecdsa-with-SHA256 without parameters, RFC 5758 3.2; sha256WithRSAEncryption with
 * NULL parameters, RFC 4055 5), the issuer is the CA certificate's subject as encoded
 * there, and the device keys' algorithms are those of RFC 5480 2.1.1 and RFC 3279
 * 2.3.1.
 */
static int leaf_parts(struct ca *ca)
{
	unsigned char *enc = NULL;
	int n = i2d_X509_NAME(X509_get_subject_name(ca->cert), &enc);
	bool ec = EVP_PKEY_is_a(ca->key, "EC");

	put_encoded(&ca->d_issuer, enc, n);
	put_algorithm(&ca->d_sigalg, ec ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption,
	              ec ? V_ASN1_UNDEF : V_ASN1_NULL, NULL);
	put_algorithm(&ca->d_alg_ec, NID_X9_62_id_ecPublicKey, V_ASN1_OBJECT,
	              OBJ_nid2obj(NID_X9_62_prime256v1));
	put_algorithm(&ca->d_alg_rsa, NID_rsaEncryption, V_ASN1_NULL, NULL);
	put_extension(&ca->d_ext_head, ca->ext_bc);
	put_extension(&ca->d_ext_head, ca->ext_ku);
	put_extension(&ca->d_ext_head, ca->ext_eku);
	return ca->d_issuer.bad || ca->d_sigalg.bad || ca->d_alg_ec.bad || ca->d_alg_rsa.bad ||
	               ca->d_ext_head.bad || leaf_tail(ca) < 0
	           ? -1
	           : 0;
}

/* Everything of the certificate profile that is the same for every leaf. */
static int prepare_profile(struct ca *ca)
{
	ca->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	ca->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	ca->ext_bc = make_ext(ca->cert, NID_basic_constraints, "critical,CA:FALSE");
	ca->ext_ku = make_ext(ca->cert, NID_key_usage, "critical,digitalSignature");
	ca->ext_eku = make_ext(ca->cert, NID_ext_key_usage, "clientAuth");
	ca->ext_aki = make_ext(ca->cert, NID_authority_key_identifier, "keyid:always");
	return ca->sha256 && ca->sha1 && ca->ext_bc && ca->ext_ku && ca->ext_eku && ca->ext_aki
	           ? leaf_parts(ca)
	           : -1;
}

EVP_PKEY *read_key_file(const char *cfg_key, const char *path, char *err, size_t errsz)
{
	struct stat st;
	BIO *kb = NULL;
	EVP_PKEY *k = NULL;

	if (stat(path, &st) < 0) {
		snprintf(err, errsz, "%s: %s: cannot open: %s", cfg_key, path, strerror(errno));
		return NULL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errsz, "%s: %s: the key is group- or world-accessible (chmod 600)",
		         cfg_key, path);
		return NULL;
	}
	char why[256];
	if (key_file_access(path, &st, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "%s: %s: %s", cfg_key, path, why);
		return NULL;
	}
	kb = BIO_new_file(path, "r");
	if (!kb || !(k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)))
		snprintf(err, errsz, "%s: %s: not a PEM private key (or encrypted)", cfg_key, path);
	BIO_free(kb);
	return k;
}

EVP_PKEY *load_private_key(const char *cfg_key, const char *ref, struct p11_key **p11, char *err,
                           size_t errsz)
{
	EVP_PKEY *k;

	*p11 = NULL;
	if (strncmp(ref, "pkcs11:", 7) != 0)
		return read_key_file(cfg_key, ref, err, errsz);
	if (!(*p11 = p11_key_load(cfg_key, ref, err, errsz)))
		return NULL;
	k = p11_key_pkey(*p11);
	EVP_PKEY_up_ref(k);
	return k;
}

struct ca *ca_load(const char *cert, const char *key, const char *chain, char *err, size_t errsz)
{
	struct ca *ca = calloc(1, sizeof(*ca));

	if (!ca) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (append_certs("ca.certificate", cert, &ca->chain_pem, &ca->cert, err, errsz) < 0)
		goto fail;
	if (!(ca->key = load_private_key("ca.key", key, &ca->p11, err, errsz)))
		goto fail;
	ca->in_token = ca->p11 != NULL;
	if (ca->in_token)
		key = "ca.key (pkcs11: URI)"; /* the URI may hold a PIN: never in a message */
	if (!X509_check_private_key(ca->cert, ca->key)) {
		snprintf(err, errsz, "%s: key does not match %s", key, cert);
		goto fail;
	}
	if (X509_check_ca(ca->cert) < 1) {
		snprintf(err, errsz, "%s: not a CA certificate (basicConstraints CA:TRUE needed)",
		         cert);
		goto fail;
	}
	if (!key_kind(ca->key, ca->key_type, sizeof(ca->key_type))) {
		snprintf(err, errsz, "%s: CA key must be EC P-256 or RSA 2048-4096", key);
		goto fail;
	}
	if (chain && chain[0] &&
	    append_certs("ca.chain", chain, &ca->chain_pem, NULL, err, errsz) < 0)
		goto fail;
	if (X509_cmp_current_time(X509_get0_notAfter(ca->cert)) < 0)
		log_warn("%s: the CA certificate has expired", cert);
	if (prepare_profile(ca) < 0) {
		snprintf(err, errsz, "%s: cannot prepare the certificate profile", cert);
		goto fail;
	}
	if (measure_max_leaf(ca, err, errsz) < 0)
		goto fail;
	return ca;
fail:
	log_openssl("ca_load");
	ca_free(ca);
	return NULL;
}

X509 *pem_first_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	if (!x)
		log_openssl("pem_first_cert");
	BIO_free(b);
	return x;
}

struct ca *ca_public(const char *chain_pem, const char *largest_leaf, const char *key_type,
                     char *err, size_t errsz)
{
	struct ca *ca = calloc(1, sizeof(*ca));

	if (!ca || !(ca->chain_pem = strdup(chain_pem)) ||
	    !(ca->largest_leaf = strdup(largest_leaf)) || !(ca->cert = pem_first_cert(chain_pem))) {
		snprintf(err, errsz, "the signer's CA certificates cannot be read");
		ca_free(ca);
		return NULL;
	}
	snprintf(ca->key_type, sizeof(ca->key_type), "%s", key_type);
	return ca;
}

void ca_free(struct ca *ca)
{
	if (!ca)
		return;
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	p11_key_free(ca->p11); /* after the key that uses its session */
	EVP_MD_free(ca->sha256);
	EVP_MD_free(ca->sha1);
	X509_EXTENSION_free(ca->ext_bc);
	X509_EXTENSION_free(ca->ext_ku);
	X509_EXTENSION_free(ca->ext_eku);
	X509_EXTENSION_free(ca->ext_aki);
	X509_EXTENSION_free(ca->ext_cdp);
	der_free(&ca->d_sigalg);
	der_free(&ca->d_issuer);
	der_free(&ca->d_ext_head);
	der_free(&ca->d_ext_tail);
	der_free(&ca->d_alg_ec);
	der_free(&ca->d_alg_rsa);
	free(ca->chain_pem);
	free(ca->largest_leaf);
	free(ca);
}

const char *ca_chain_pem(const struct ca *ca)
{
	return ca->chain_pem;
}

bool ca_key_in_token(const struct ca *ca)
{
	return ca->in_token;
}

const char *ca_key_type(const struct ca *ca)
{
	return ca->key_type;
}

const char *ca_largest_leaf_pem(const struct ca *ca)
{
	return ca->largest_leaf;
}

bool valid_cn(const unsigned char *s, size_t n)
{
	if (n < 1 || n > NODE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* RSA 2048-4096 bits with e = 65537, or an EC P-256 point in either SEC 1 form. */
static bool csr_key_ok(const struct csr_fields *f)
{
	if (f->key_alg == CSR_KEY_EC_P256)
		return (f->key_len == 65 && f->key[0] == 4) ||
		       (f->key_len == 33 && (f->key[0] == 2 || f->key[0] == 3));
	if (f->key_alg == CSR_KEY_RSA) {
		size_t bits = (f->rsa_n_len - 1) * 8;
		for (unsigned top = f->rsa_n[0]; top; top >>= 1)
			bits++;
		return bits >= 2048 && bits <= 4096 && f->rsa_e_len == 3 && f->rsa_e[0] == 1 &&
		       f->rsa_e[1] == 0 && f->rsa_e[2] == 1;
	}
	return false;
}

/* ECDSA for an EC key, PKCS#1 v1.5 for an RSA one, over a SHA-2 digest csr_verify()
 * knows: anything else is an algorithm we do not verify, not a bad signature. */
static bool sig_fits_key(const struct csr_fields *f)
{
	bool hash_ok = f->sig_hash == 256 || f->sig_hash == 384 || f->sig_hash == 512;
	return hash_ok && ((f->sig_alg == CSR_SIG_ECDSA && f->key_alg == CSR_KEY_EC_P256) ||
	                   (f->sig_alg == CSR_SIG_RSA && f->key_alg == CSR_KEY_RSA));
}

static EC_GROUP *p256;
static void p256_init(void)
{
	p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
}

static unsigned char *sha256_sodium(const unsigned char *in, size_t n, unsigned char *md)
{
	secure_sha256(md, in, n); /* libsodium: no OpenSSL algorithm fetch per call */
	return md;
}

static const struct {
	unsigned bits;
	int nid;
	unsigned char *(*digest)(const unsigned char *, size_t, unsigned char *);
} csr_hashes[] = {
    {256, NID_sha256, sha256_sodium}, {384, NID_sha384, SHA384}, {512, NID_sha512, SHA512}};

/*
 * The request's self-signature. The key is built straight from its bytes (the point
 * is checked to be on the curve by EC_KEY_oct2key) and the signature checked with
 * ECDSA_verify/RSA_verify, which insist on DER signatures and PKCS#1 v1.5 encodings.
 */
static bool csr_verify(const struct csr_fields *f)
{
	unsigned char md[64];
	unsigned mdlen = 0;
	int nid = NID_undef;
	bool ok = false;

	for (size_t i = 0; i < sizeof(csr_hashes) / sizeof(csr_hashes[0]); i++)
		if (csr_hashes[i].bits == f->sig_hash) {
			csr_hashes[i].digest(f->info, f->info_len, md);
			mdlen = f->sig_hash / 8;
			nid = csr_hashes[i].nid;
			break;
		}
	if (nid == NID_undef)
		return false;
	if (f->sig_alg == CSR_SIG_ECDSA && f->key_alg == CSR_KEY_EC_P256 && f->sig_len <= INT_MAX) {
		static pthread_once_t once = PTHREAD_ONCE_INIT;
		pthread_once(&once, p256_init);
		EC_KEY *k = EC_KEY_new();
		ok = k && p256 && EC_KEY_set_group(k, p256) &&
		     EC_KEY_oct2key(k, f->key, f->key_len, NULL) &&
		     ECDSA_verify(0, md, (int)mdlen, f->sig, (int)f->sig_len, k) == 1;
		EC_KEY_free(k);
	} else if (f->sig_alg == CSR_SIG_RSA && f->key_alg == CSR_KEY_RSA &&
	           f->sig_len <= UINT_MAX) {
		RSA *r = RSA_new();
		BIGNUM *n = BN_bin2bn(f->rsa_n, (int)f->rsa_n_len, NULL);
		BIGNUM *e = BN_bin2bn(f->rsa_e, (int)f->rsa_e_len, NULL);
		if (r && n && e && RSA_set0_key(r, n, e, NULL)) {
			n = e = NULL; /* owned by r now */
			ok = RSA_verify(nid, md, mdlen, f->sig, (unsigned)f->sig_len, r) == 1;
		}
		BN_free(n);
		BN_free(e);
		RSA_free(r);
	}
	return ok;
}

/*
 * What every CSR must pass, whatever profile it is for: size, PEM, DER, a key we sign
 * and its self-signature, in the order csr_check() documents.
 */
static enum claimd_err csr_read_verified(const char *pem, size_t len, struct csr **out)
{
	enum claimd_err rc = CE_INTERNAL;
	struct csr *c = NULL;
	size_t dlen = 0, cap = len / 4 * 3 + 3;

	*out = NULL;
	if (len > CSR_MAX_PEM)
		return CE_CSR_TOO_LARGE;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->der = malloc(cap)))
		goto out;
	if ((rc = csr_pem_to_der(pem, len, c->der, cap, &dlen)) != CE_OK ||
	    (rc = csr_der_read(c->der, dlen, &c->f)) != CE_OK)
		goto out;
	rc = CE_CSR_KEY;
	if (!csr_key_ok(&c->f))
		goto out;
	rc = CE_CSR_SIG_ALG;
	if (!sig_fits_key(&c->f))
		goto out;
	rc = CE_CSR_SIGNATURE;
	if (!csr_verify(&c->f))
		goto out;
	rc = CE_OK;
	*out = c;
	c = NULL;
out:
	ERR_clear_error(); /* a refused CSR is the client's problem, not a log line */
	csr_free(c);
	return rc;
}

enum claimd_err csr_check(const char *pem, size_t len, struct csr **out, char cn[NODE_ID_MAX + 1])
{
	struct csr *c = NULL;
	enum claimd_err rc = csr_read_verified(pem, len, &c);

	*out = NULL;
	if (rc != CE_OK)
		return rc;
	if (!c->f.cn || !valid_cn(c->f.cn, c->f.cn_len)) {
		csr_free(c);
		return CE_CSR_SUBJECT;
	}
	memcpy(cn, c->f.cn, c->f.cn_len);
	cn[c->f.cn_len] = '\0';
	*out = c;
	return CE_OK;
}

/* A Matter vendor or product id as the DAC profile writes it: a UTF8String of four
 * upper-case hex digits (Matter Core Specification 6.1.1, 6.2.2.2). */
static bool matter_id_ok(const struct csr_attr *a, char out[MATTER_ID_LEN + 1])
{
	if (a->count != 1 || a->tag != 0x0c || a->len != MATTER_ID_LEN)
		return false;
	for (size_t i = 0; i < MATTER_ID_LEN; i++) {
		char ch = (char)a->p[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F')))
			return false;
		out[i] = ch;
	}
	out[MATTER_ID_LEN] = '\0';
	return true;
}

enum claimd_err csr_check_matter(const char *pem, size_t len, struct csr **out,
                                 struct matter_subject *subj)
{
	struct csr *c = NULL;
	enum claimd_err rc = csr_read_verified(pem, len, &c);
	const struct csr_fields *f;

	*out = NULL;
	memset(subj, 0, sizeof(*subj));
	if (rc != CE_OK)
		return rc;
	f = &c->f;
	bool text_cn = f->m_cn.count == 1 &&
	               (f->m_cn.tag == 0x0c || f->m_cn.tag == 0x13 || f->m_cn.tag == 0x16);
	/* The ids in the CN's fallback form (Matter Core 6.2.2.2), read only when the
	 * subject holds neither attribute: "<node_id> Mvid:131B Mpid:0002" is node_id's
	 * request with those ids. The DAC is written in the attribute form either way. */
	bool fallback = text_cn && f->m_vid.count == 0 && f->m_pid.count == 0 &&
	                f->subject_entries == 1 && f->m_cn.len <= NODE_ID_MAX + 20;
	char rest[NODE_ID_MAX + 21] = "";
	bool fallback_ok = fallback &&
	                   matter_cn_ids((const char *)f->m_cn.p, f->m_cn.len, subj->vendor_id,
	                                 subj->product_id, rest) == 0 &&
	                   subj->vendor_id[0] && subj->product_id[0];
	/* The CN is kept for the audit row even when the rest is refused. */
	size_t rest_len = strlen(rest);
	if (fallback_ok && valid_cn((const unsigned char *)rest, rest_len))
		memcpy(subj->cn, rest, rest_len + 1); /* valid_cn(): at most NODE_ID_MAX */
	else if (text_cn && valid_cn(f->m_cn.p, f->m_cn.len)) {
		memcpy(subj->cn, f->m_cn.p, f->m_cn.len);
		subj->cn[f->m_cn.len] = '\0';
	}
	/* Uncompressed: Matter stacks (and the DAC profile checker) read only that form. */
	if (f->key_alg != CSR_KEY_EC_P256 || f->key_len != 65)
		rc = CE_MATTER_KEY;
	else if (fallback ? !fallback_ok || !subj->cn[0]
	                  : f->subject_entries != 3 || !subj->cn[0] ||
	                        !matter_id_ok(&f->m_vid, subj->vendor_id) ||
	                        !matter_id_ok(&f->m_pid, subj->product_id))
		rc = CE_MATTER_SUBJECT;
	if (rc == CE_OK)
		*out = c;
	else
		csr_free(c);
	return rc;
}

const uint8_t *csr_spki(const struct csr *c, size_t *len)
{
	*len = c->f.spki_len;
	return c->f.spki;
}

void csr_free(struct csr *c)
{
	if (!c)
		return;
	free(c->der);
	free(c);
}

void csr_key_fingerprint(const struct csr *c, uint8_t out[32])
{
	secure_sha256(out, c->f.spki, c->f.spki_len);
}

int64_t asn1_to_unix(const ASN1_TIME *t)
{
	struct tm tm;
	if (!ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

/* Whether ca_issue() may sign @p rq: it checks again what the caller should have. */
static bool leaf_request_ok(const struct cert_request *rq, struct csr_fields *f)
{
	if (rq->profile != CERT_PROFILE_DEVICE) {
		log_error("ca_issue: unknown certificate profile %d", (int)rq->profile);
		return false;
	}
	if (!csr_spki_parse(rq->spki, rq->spki_len, f) || !csr_key_ok(f)) {
		log_error("ca_issue: not an EC P-256 or RSA 2048-4096 public key");
		return false;
	}
	if (!rq->cn || !valid_cn((const unsigned char *)rq->cn, strlen(rq->cn))) {
		log_error("ca_issue: not a valid subject CN");
		return false;
	}
	if ((rq->serial[0] & 0x80) || rq->serial[0] == 0 || rq->not_before >= rq->not_after) {
		log_error("ca_issue: serial not positive or validity empty");
		return false;
	}
	return true;
}

/* Appends @p t as a Time (RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from
 * 2050), as OpenSSL's ASN1_TIME_set() chooses. */
static void put_time(struct der *d, int64_t t)
{
	ASN1_TIME *a = ASN1_TIME_set(NULL, (time_t)t);
	unsigned char *enc = NULL;
	int n = a ? i2d_ASN1_TIME(a, &enc) : -1;

	put_encoded(d, enc, n);
	ASN1_TIME_free(a);
}

/* The TBSCertificate (RFC 5280 4.1) of the device leaf @p rq, key @p f, subject key
 * identifier @p ski (20 bytes), into @p t. Written directly: building an X509 object
 * and encoding it took OpenSSL half as many instructions again as the signature. */
static void leaf_tbs(const struct ca *ca, const struct cert_request *rq, const struct csr_fields *f,
                     const uint8_t ski[20], struct der *t)
{
	static const uint8_t v3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};      /* [0] version 2 (v3) */
	static const uint8_t cn_oid[] = {0x06, 0x03, 0x55, 0x04, 0x03};  /* id-at-commonName */
	static const uint8_t ski_oid[] = {0x06, 0x03, 0x55, 0x1d, 0x0e}; /* id-ce-subjectKeyId */
	const struct der *alg = f->key_alg == CSR_KEY_EC_P256 ? &ca->d_alg_ec : &ca->d_alg_rsa;
	uint8_t ski_os[22] = {0x04, 20};
	size_t tbs = der_open(t), a, b, c;

	der_put(t, v3, sizeof(v3));
	/* leaf_request_ok(): positive, first octet non-zero, so no sign octet (X.690 8.3) */
	der_put_tlv(t, 0x02, rq->serial, sizeof(rq->serial));
	der_put(t, ca->d_sigalg.p, ca->d_sigalg.len);
	der_put(t, ca->d_issuer.p, ca->d_issuer.len);
	a = der_open(t);
	put_time(t, rq->not_before);
	put_time(t, rq->not_after);
	der_close(t, a, 0x30);
	/* subject: one RDN, the CN as a UTF8String (RFC 5280 4.1.2.6, 4.1.2.4) */
	a = der_open(t);
	b = der_open(t);
	c = der_open(t);
	der_put(t, cn_oid, sizeof(cn_oid));
	der_put_tlv(t, 0x0c, rq->cn, strlen(rq->cn));
	der_close(t, c, 0x30);
	der_close(t, b, 0x31);
	der_close(t, a, 0x30);
	/* subjectPublicKeyInfo: the key bits the CSR signed, no unused bits */
	a = der_open(t);
	der_put(t, alg->p, alg->len);
	b = der_open(t);
	der_put(t, "", 1);
	der_put(t, f->key, f->key_len);
	der_close(t, b, 0x03);
	der_close(t, a, 0x30);
	/* [3] extensions: the fixed ones, the subject key identifier, the fixed ones */
	a = der_open(t);
	b = der_open(t);
	der_put(t, ca->d_ext_head.p, ca->d_ext_head.len);
	c = der_open(t);
	der_put(t, ski_oid, sizeof(ski_oid));
	memcpy(ski_os + 2, ski, 20);
	der_put_tlv(t, 0x04, ski_os, sizeof(ski_os));
	der_close(t, c, 0x30);
	der_put(t, ca->d_ext_tail.p, ca->d_ext_tail.len);
	der_close(t, b, 0x30);
	der_close(t, a, 0xa3);
	der_close(t, tbs, 0x30);
}

int ca_issue(const struct ca *ca, const struct cert_request *rq, uint8_t **der, size_t *len)
{
	struct csr_fields f;
	struct der t = {0}, c = {0};
	unsigned char ski[EVP_MAX_MD_SIZE], *sig = NULL;
	unsigned int ski_len = 0;
	size_t sig_len = 0, at;
	EVP_MD_CTX *mctx = NULL;
	int rc = -1;

	*der = NULL;
	*len = 0;
	if (!ca->key || !ca->d_sigalg.len || ca->d_ext_tail.bad || !leaf_request_ok(rq, &f))
		goto out;
	/* The subject key identifier is the SHA-1 of the public key bits (RFC 5280
	 * 4.2.1.2 (1)). */
	if (!EVP_Digest(f.key, f.key_len, ski, &ski_len, ca->sha1, NULL) || ski_len != 20)
		goto out;
	leaf_tbs(ca, rq, &f, ski, &t);
	if (t.bad || EVP_PKEY_get_size(ca->key) <= 0)
		goto out;
	sig_len = (size_t)EVP_PKEY_get_size(ca->key);
	if (!(sig = OPENSSL_malloc(sig_len)) || !(mctx = EVP_MD_CTX_new()) ||
	    EVP_DigestSignInit(mctx, NULL, ca->sha256, NULL, ca->key) != 1 ||
	    EVP_DigestSign(mctx, sig, &sig_len, t.p, t.len) != 1)
		goto out;
	/* Certificate: tbsCertificate, signatureAlgorithm, signatureValue (RFC 5280 4.1.1) */
	at = der_open(&c);
	der_put(&c, t.p, t.len);
	der_put(&c, ca->d_sigalg.p, ca->d_sigalg.len);
	size_t bits = der_open(&c);
	der_put(&c, "", 1);
	der_put(&c, sig, sig_len);
	der_close(&c, bits, 0x03);
	der_close(&c, at, 0x30);
	if (c.bad)
		goto out;
	*der = c.p;
	*len = c.len;
	c = (struct der){0};
	rc = 0;
out:
	if (rc < 0)
		log_openssl("ca_issue");
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(sig);
	der_free(&t);
	der_free(&c);
	return rc;
}

/* PEM of a DER certificate, lines of 64, no trailing newline; NULL when out of memory. */
static char *der_to_pem(const uint8_t *der, size_t n)
{
	static const char head[] = "-----BEGIN CERTIFICATE-----\n",
	                  tail[] = "-----END CERTIFICATE-----";
	size_t cap = sizeof(head) + (n + 2) / 3 * 4 + n / 48 + 2 + sizeof(tail);
	char *out = malloc(cap), *p;

	if (!out)
		return NULL;
	p = out + strlen(head);
	memcpy(out, head, strlen(head));
	for (size_t i = 0; i < n; i += 48) {
		size_t chunk = n - i < 48 ? n - i : 48;
		p += b64_encode(p, cap - (size_t)(p - out), der + i, chunk);
		*p++ = '\n';
	}
	memcpy(p, tail, sizeof(tail));
	return out;
}

void cert_random_serial(uint8_t serial[16])
{
	secure_random(serial, 16);
	serial[0] &= 0x7f;
	serial[0] |= 0x01;
}

void cert_request_device(const struct csr *c, const char *node_id, unsigned days,
                         struct cert_request *rq)
{
	int64_t now = now_unix();

	*rq = (struct cert_request){
	    .profile = CERT_PROFILE_DEVICE,
	    .spki = c->f.spki,
	    .spki_len = c->f.spki_len,
	    .cn = node_id,
	    .vendor_id = "",
	    .product_id = "",
	    /* Backdated a little: devices and verifiers have loose clocks. */
	    .not_before = now - 3600,
	    .not_after = now + (int64_t)days * 86400,
	};
	cert_random_serial(rq->serial);
}

int issued_from_der(const struct cert_request *rq, const uint8_t *der, size_t len,
                    struct issued *out)
{
	const uint8_t *serial, *spki;
	size_t serial_len, spki_len;
	struct csr_fields asked, got;
	/* The serial stored is the one in the certificate, never only the one announced.
	 * Read from the DER by hand: d2i_X509 would decode the whole certificate, its key
	 * through OpenSSL 3's provider decoders, about as many instructions as the rest of
	 * a claim in this process. cert_der_serial() refuses bytes after the certificate;
	 * cert_random_serial() serials have no sign octet. */
	bool same = cert_der_serial(der, len, &serial, &serial_len, &spki, &spki_len) &&
	            serial_len == sizeof(rq->serial) &&
	            memcmp(serial, rq->serial, sizeof(rq->serial)) == 0;
	/* And it certifies the key asked for: a reply meant for another request (signer
	 * requests are pipelined, signer/client.c) is never handed to this device. The key
	 * is compared, not the SubjectPublicKeyInfo's bytes, which the signer encodes anew. */
	bool key = same && csr_spki_parse(spki, spki_len, &got) &&
	           csr_spki_parse(rq->spki, rq->spki_len, &asked) && got.key_alg == asked.key_alg &&
	           got.key_len == asked.key_len && memcmp(got.key, asked.key, got.key_len) == 0;
	memset(out, 0, sizeof(*out));
	if (!key) {
		log_error("issued_from_der: %s",
		          same ? "the certificate is not for the key asked for"
		               : "not one whole certificate with the serial announced");
		return -1;
	}
	hex_encode_upper(out->serial, rq->serial, sizeof(rq->serial));
	out->serial[SERIAL_HEX_LEN] = '\0';
	out->not_before = rq->not_before;
	out->not_after = rq->not_after;
	out->pem = der_to_pem(der, len);
	return out->pem ? 0 : -1;
}

int ca_sign_local(const struct ca *ca, const struct csr *c, const char *node_id, unsigned days,
                  struct issued *out)
{
	struct cert_request rq;
	uint8_t *der = NULL;
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	cert_request_device(c, node_id, days, &rq);
	if (ca_issue(ca, &rq, &der, &len) < 0)
		return -1;
	int rc = issued_from_der(&rq, der, len, out);
	free(der);
	return rc;
}

void issued_clear(struct issued *i)
{
	free(i->pem);
	i->pem = NULL;
}

int ca_set_crl_url(struct ca *ca, const char *url, char *err, size_t errsz)
{
	char value[256];
	size_t n = strlen(url);

	if (!n)
		return 0;
	/* One http URI, printable, no ',' (a separator to OpenSSL's extension syntax). */
	if (n > 200 || strncmp(url, "http://", 7) != 0 || n == 7 || strpbrk(url, ", \t\"\\")) {
		snprintf(err, errsz,
		         "ca.crl_url: expected one http:// URL of at most 200 characters "
		         "without spaces or commas");
		return -1;
	}
	for (const char *p = url; *p; p++)
		if (*p < 0x21 || *p > 0x7e) {
			snprintf(err, errsz, "ca.crl_url: only printable ASCII");
			return -1;
		}
	snprintf(value, sizeof(value), "URI:%s", url);
	X509_EXTENSION_free(ca->ext_cdp);
	if (!(ca->ext_cdp = make_ext(ca->cert, NID_crl_distribution_points, value)) ||
	    leaf_tail(ca) < 0) {
		log_openssl("ca.crl_url");
		snprintf(err, errsz, "ca.crl_url: OpenSSL refused it");
		return -1;
	}
	/* The largest leaf grew by the extension: measure again. */
	free(ca->largest_leaf);
	ca->largest_leaf = NULL;
	return measure_max_leaf(ca, err, errsz);
}

int ca_key_id(const struct ca *ca, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(X509_get0_pubkey(ca->cert), &der);

	if (n <= 0) {
		log_openssl("i2d_PUBKEY");
		return -1;
	}
	secure_sha256(out, der, (size_t)n);
	OPENSSL_free(der);
	return 0;
}

/* One CRL entry: serial, revocation date and (unless unspecified) its reason code. */
static X509_REVOKED *crl_entry(const struct revoked_entry *e)
{
	X509_REVOKED *r = X509_REVOKED_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	bool ok = false;

	if (!r || !BN_hex2bn(&bn, e->serial) || !(serial = BN_to_ASN1_INTEGER(bn, NULL)) ||
	    !X509_REVOKED_set_serialNumber(r, serial)) {
		log_openssl("CRL entry serial");
		goto out;
	}
	if (!(when = ASN1_TIME_set(NULL, (time_t)e->revoked_at)) ||
	    !X509_REVOKED_set_revocationDate(r, when)) {
		log_openssl("CRL entry date");
		goto out;
	}
	/* RFC 5280 5.3.1: the reason code unspecified (0) should be left out. */
	if (e->reason != 0 &&
	    (!(reason = ASN1_ENUMERATED_new()) || !ASN1_ENUMERATED_set(reason, (long)e->reason) ||
	     !X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0))) {
		log_openssl("CRL entry reason");
		goto out;
	}
	ok = true;
out:
	BN_free(bn);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	ASN1_ENUMERATED_free(reason);
	if (!ok) {
		X509_REVOKED_free(r);
		r = NULL;
	}
	return r;
}

int ca_crl_sign(const struct ca *ca, int64_t number, const struct revoked_entry *e, size_t n,
                int64_t this_update, int64_t next_update, uint8_t **der, size_t *len)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *tu = NULL, *nu = NULL;
	ASN1_INTEGER *num = NULL;
	X509_EXTENSION *aki = NULL;
	X509V3_CTX ctx;
	unsigned char *out = NULL;
	int rc = -1, dlen;

	*der = NULL;
	*len = 0;
	if (!ca->key) {
		log_error("ca_crl_sign: this process holds no CA key (the signer signs)");
		return -1;
	}
	crl = X509_CRL_new();
	if (!crl || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert))) {
		log_openssl("X509_CRL_set_issuer_name");
		goto out;
	}
	if (!(tu = ASN1_TIME_set(NULL, (time_t)this_update)) ||
	    !(nu = ASN1_TIME_set(NULL, (time_t)next_update)) ||
	    !X509_CRL_set1_lastUpdate(crl, tu) || !X509_CRL_set1_nextUpdate(crl, nu)) {
		log_openssl("X509_CRL_set1_nextUpdate");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		X509_REVOKED *r = crl_entry(&e[i]);
		if (!r)
			goto out;
		if (!X509_CRL_add0_revoked(crl, r)) {
			X509_REVOKED_free(r);
			log_openssl("X509_CRL_add0_revoked");
			goto out;
		}
	}
	/* RFC 5280 5.2.3 cRLNumber and 5.2.1 authorityKeyIdentifier, both required. */
	if (!(num = ASN1_INTEGER_new()) || !ASN1_INTEGER_set_int64(num, number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0)) {
		log_openssl("CRL number");
		goto out;
	}
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	if (!(aki =
	          X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) ||
	    !X509_CRL_add_ext(crl, aki, -1)) {
		log_openssl("CRL authorityKeyIdentifier");
		goto out;
	}
	if (!X509_CRL_sort(crl) || !X509_CRL_sign(crl, ca->key, ca->sha256)) {
		log_openssl("X509_CRL_sign");
		goto out;
	}
	if ((dlen = i2d_X509_CRL(crl, &out)) <= 0 || !(*der = malloc((size_t)dlen))) {
		log_openssl("i2d_X509_CRL");
		goto out;
	}
	memcpy(*der, out, (size_t)dlen);
	*len = (size_t)dlen;
	rc = 0;
out:
	OPENSSL_free(out);
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	X509_CRL_free(crl);
	return rc;
}

int ca_crl_next_update(const uint8_t *der, size_t len, int64_t *next_update)
{
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	const ASN1_TIME *nu = crl ? X509_CRL_get0_nextUpdate(crl) : NULL;
	int rc = -1;

	if (nu) {
		*next_update = asn1_to_unix(nu);
		rc = 0;
	} else {
		log_openssl("d2i_X509_CRL");
	}
	X509_CRL_free(crl);
	return rc;
}

int64_t ca_not_after(const struct ca *ca)
{
	return asn1_to_unix(X509_get0_notAfter(ca->cert));
}
