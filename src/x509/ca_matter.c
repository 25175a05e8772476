/*
 * Matter device attestation certificates (protocol.md section 6): the Product
 * Attestation Intermediate that signs them, checked at load, and the DAC profile of the
 * Matter Core Specification 6.2.2.3. pai_sign() is the only place the PAI key is used
 * and takes everything it needs in one request, so a signer process can take it over.
 * Nothing from a CSR reaches a DAC but its key and the subject values the caller checked.
 */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_internal.h"
#include "x509/pkcs11.h"
#include "x509/ca.h"
#include "lib/secure.h"
#include "lib/log.h"
#include "lib/util.h"

#define OID_MATTER_VID "1.3.6.1.4.1.37244.2.1"
#define OID_MATTER_PID "1.3.6.1.4.1.37244.2.2"

struct pai {
	X509 *cert;
	EVP_PKEY *key;
	char *pem;
	char vendor_id[MATTER_ID_LEN + 1];
	char product_id[MATTER_ID_LEN + 1]; /* "" when the PAI names none */
	int64_t not_before, not_after;
	char *largest_dac;
	struct p11_key *p11; /* the token's session when the key is in one */
};

/*
 * A fixed P-256 public key (public only). A DAC's size depends on the key type only
 * through its length, which is fixed for P-256, so one measured at load is exact.
 */
static const char p256_spki_b64[] =
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3YbFt8iKzeENV2yR5jnB0TN/NlmUb236WJ+GQIqZClpFkvXv"
    "reeGMXlLehVASn4RNOYtOIdZJQmTMynwfqJJbg==";

/* The value of the Matter attribute @p oid in @p name, if it is there once as four
 * upper-case hex digits; "" when absent. -1 when it is there but malformed. */
static int name_matter_id(const X509_NAME *name, const char *oid, char out[MATTER_ID_LEN + 1])
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int at = obj ? X509_NAME_get_index_by_OBJ(name, obj, -1) : -1, rc = -1;

	out[0] = '\0';
	if (!obj)
		goto out;
	if (at < 0) {
		rc = 0;
		goto out;
	}
	if (X509_NAME_get_index_by_OBJ(name, obj, at) >= 0)
		goto out;
	const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
	const unsigned char *d = ASN1_STRING_get0_data(v);
	if (ASN1_STRING_length(v) != MATTER_ID_LEN)
		goto out;
	for (int i = 0; i < MATTER_ID_LEN; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'A' && d[i] <= 'F')))
			goto out;
	memcpy(out, d, MATTER_ID_LEN);
	out[MATTER_ID_LEN] = '\0';
	rc = 0;
out:
	ASN1_OBJECT_free(obj);
	return rc;
}

/* The id after @p prefix in @p cn into @p out: 0 absent, 1 found, -1 malformed. The
 * token's bytes are marked in @p cut (when not NULL) for matter_cn_ids()'s rest. */
static int cn_id(const char *cn, size_t len, const char *prefix, char out[MATTER_ID_LEN + 1],
                 bool *cut)
{
	size_t pl = strlen(prefix), at = len;
	out[0] = '\0';
	for (size_t i = 0; i + pl <= len; i++) {
		if (memcmp(cn + i, prefix, pl) != 0)
			continue;
		if (at != len)
			return -1; /* twice: which one is meant? */
		at = i;
	}
	if (at == len)
		return 0;
	if (at + pl + MATTER_ID_LEN > len)
		return -1;
	for (size_t i = 0; i < MATTER_ID_LEN; i++) {
		char ch = cn[at + pl + i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F')))
			return -1;
		out[i] = ch;
	}
	out[MATTER_ID_LEN] = '\0';
	for (size_t i = 0; cut && i < pl + MATTER_ID_LEN; i++)
		cut[at + i] = true;
	return 1;
}

int matter_cn_ids(const char *cn, size_t len, char vid[MATTER_ID_LEN + 1],
                  char pid[MATTER_ID_LEN + 1], char *rest)
{
	bool cut[256] = {false};
	bool *c = len <= sizeof(cut) ? cut : NULL;
	int rv = cn_id(cn, len, "Mvid:", vid, c), rp = cn_id(cn, len, "Mpid:", pid, c);

	if (rv < 0 || rp < 0) {
		vid[0] = pid[0] = '\0';
		return -1;
	}
	if (rest) {
		size_t o = 0;
		for (size_t i = 0; i < len; i++)
			if (!c || !c[i])
				rest[o++] = cn[i];
		while (o > 0 && rest[o - 1] == ' ')
			o--;
		rest[o] = '\0';
		size_t lead = strspn(rest, " ");
		memmove(rest, rest + lead, o - lead + 1);
	}
	return 0;
}

/*
 * The vendor and product ids of certificate name @p name (a PAI's subject): the Matter
 * attribute types when either is there, else the fallback form in the first common
 * name that has one (matter_cn_ids()). "" for an id that is absent; -1 when one is
 * malformed, repeated, or conflicting within the CN.
 */
static int name_matter_ids(const X509_NAME *name, char vid[MATTER_ID_LEN + 1],
                           char pid[MATTER_ID_LEN + 1])
{
	if (name_matter_id(name, OID_MATTER_VID, vid) < 0 ||
	    name_matter_id(name, OID_MATTER_PID, pid) < 0)
		return -1;
	if (vid[0] || pid[0])
		return 0; /* the attribute form takes precedence over the CN (6.2.2.2) */
	for (int at = -1; (at = X509_NAME_get_index_by_NID(name, NID_commonName, at)) >= 0;) {
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
		const char *d = (const char *)ASN1_STRING_get0_data(v);
		int n = ASN1_STRING_length(v);
		if (n <= 0)
			continue;
		if (matter_cn_ids(d, (size_t)n, vid, pid, NULL) < 0)
			return -1;
		if (vid[0] || pid[0])
			return 0;
	}
	return 0;
}

/* The PAI profile's rules that a wrong file would break (Matter Core 6.2.2.4). */
static int pai_check(struct pai *p, const char *cert, const char *key, const char *vendor_id,
                     char *err, size_t errsz)
{
	char kind[16];

	if (!key_kind(p->key, kind, sizeof(kind)) || strcmp(kind, "ec-p256") != 0) {
		snprintf(err, errsz, "matter.pai_key: %s: the PAI key must be EC P-256", key);
		return -1;
	}
	if (!X509_check_private_key(p->cert, p->key)) {
		snprintf(err, errsz, "matter.pai_key: %s: key does not match %s", key, cert);
		return -1;
	}
	if (!(X509_get_extension_flags(p->cert) & EXFLAG_KUSAGE) ||
	    !(X509_get_key_usage(p->cert) & KU_KEY_CERT_SIGN)) {
		snprintf(err, errsz,
		         "matter.pai_certificate: %s: not a PAI: keyUsage keyCertSign missing",
		         cert);
		return -1;
	}
	/* keyUsage first: X509_check_ca() is 0 for a CA:TRUE certificate whose keyUsage
	 * lacks keyCertSign, and the message should name what is wrong. The path length
	 * must be 0: a PAI signs DACs only. */
	if (X509_check_ca(p->cert) != 1 || X509_get_pathlen(p->cert) != 0) {
		snprintf(err, errsz,
		         "matter.pai_certificate: %s: not a PAI: needs basicConstraints CA:TRUE "
		         "with pathLenConstraint 0",
		         cert);
		return -1;
	}
	/* Each DAC's authorityKeyIdentifier is the PAI's subjectKeyIdentifier (Matter Core
	 * 6.2.2.3, 6.2.2.4): without it no DAC can be built, and the failure would
	 * otherwise surface as the test DAC's signature, blaming the key. */
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(p->cert);
	if (!ski || ASN1_STRING_length(ski) == 0) {
		snprintf(
		    err, errsz,
		    "matter.pai_certificate: %s: not a PAI: the subjectKeyIdentifier extension "
		    "is missing (every DAC's authorityKeyIdentifier is taken from it; Matter "
		    "Core 6.2.2.4)",
		    cert);
		return -1;
	}
	const X509_NAME *subj = X509_get_subject_name(p->cert);
	if (name_matter_ids(subj, p->vendor_id, p->product_id) < 0 ||
	    strcmp(p->vendor_id, vendor_id) != 0) {
		snprintf(err, errsz,
		         "matter.pai_certificate: %s: the subject's vendor id (%s) is not "
		         "matter.vendor_id (%s)%s",
		         cert, p->vendor_id[0] ? p->vendor_id : "none, or malformed", vendor_id,
		         p->vendor_id[0]
		             ? ""
		             : ": it is the attribute 1.3.6.1.4.1.37244.2.1, or Mvid: in "
		               "the common name, with four upper-case hex digits (Matter "
		               "Core 6.2.2.2)");
		return -1;
	}
	p->not_before = asn1_to_unix(X509_get0_notBefore(p->cert));
	p->not_after = asn1_to_unix(X509_get0_notAfter(p->cert));
	/* Every DAC's validity lies inside the PAI's: outside it none can be signed, and
	 * each Matter claim would fail, so say so now. */
	if (X509_cmp_current_time(X509_get0_notAfter(p->cert)) < 0 ||
	    X509_cmp_current_time(X509_get0_notBefore(p->cert)) > 0) {
		snprintf(err, errsz,
		         "matter.pai_certificate: %s: %s: no DAC can be signed under it", cert,
		         X509_cmp_current_time(X509_get0_notAfter(p->cert)) < 0
		             ? "has expired"
		             : "is not valid yet");
		return -1;
	}
	return 0;
}

/* Signs a DAC for the fixed key, the longest node_id and product id FFFF. */
static int measure_largest_dac(struct pai *p, char *err, size_t errsz)
{
	uint8_t spki[128];
	size_t n = 0;
	struct matter_subject subj = {.product_id = "FFFF"};
	struct cert_request rq = {.profile = CERT_PROFILE_MATTER_DAC};
	char *pem;

	memset(subj.cn, 'W', NODE_ID_ISSUED_MAX);
	memcpy(subj.vendor_id, p->vendor_id, sizeof(subj.vendor_id));
	if (!b64_decode(spki, sizeof(spki), &n, p256_spki_b64, strlen(p256_spki_b64))) {
		snprintf(err, errsz, "cannot read the fixed test key");
		return -1;
	}
	rq.spki = spki;
	rq.spki_len = n;
	rq.cn = subj.cn;
	rq.vendor_id = subj.vendor_id;
	rq.product_id = p->product_id[0] ? p->product_id : subj.product_id;
	memset(rq.serial, 0x7f, sizeof(rq.serial));
	rq.not_before = p->not_before;
	rq.not_after = p->not_after;
	uint8_t *der = NULL;
	size_t len = 0;
	if (pai_sign(p, &rq, &der, &len) < 0) {
		snprintf(err, errsz, "matter.pai_key: cannot sign a test DAC with the PAI");
		return -1;
	}
	const unsigned char *q = der;
	X509 *x = d2i_X509(NULL, &q, (long)len);
	pem = x ? cert_pem(x) : NULL;
	X509_free(x);
	free(der);
	if (!pem) {
		snprintf(err, errsz, "matter: cannot encode a test DAC");
		return -1;
	}
	p->largest_dac = pem;
	return 0;
}

int pai_prove(struct pai *p, char *err, size_t errsz)
{
	free(p->largest_dac);
	p->largest_dac = NULL;
	return measure_largest_dac(p, err, errsz);
}

struct pai *pai_load(const char *cert, const char *key, const char *vendor_id, char *err,
                     size_t errsz)
{
	struct pai *p = calloc(1, sizeof(*p));

	if (!p) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (append_certs("matter.pai_certificate", cert, &p->pem, &p->cert, err, errsz) < 0)
		goto fail;
	if (strstr(p->pem + 1, "-----BEGIN")) {
		snprintf(err, errsz, "matter.pai_certificate: %s: expected one certificate", cert);
		goto fail;
	}
	if (!(p->key = load_private_key("matter.pai_key", key, &p->p11, err, errsz)))
		goto fail;
	if (p->p11)
		key =
		    "matter.pai_key (pkcs11: URI)"; /* the URI may hold a PIN: never in a message */
	if (pai_check(p, cert, key, vendor_id, err, errsz) < 0 ||
	    measure_largest_dac(p, err, errsz) < 0)
		goto fail;
	return p;
fail:
	log_openssl("pai_load");
	pai_free(p);
	return NULL;
}

struct pai *pai_public(const char *pem, const char *largest_dac, char *err, size_t errsz)
{
	struct pai *p = calloc(1, sizeof(*p));

	if (!p || !(p->pem = strdup(pem)) || !(p->largest_dac = strdup(largest_dac)) ||
	    !(p->cert = pem_first_cert(pem))) {
		snprintf(err, errsz, "the signer's PAI certificate cannot be read");
		goto fail;
	}
	const X509_NAME *subj = X509_get_subject_name(p->cert);
	if (name_matter_ids(subj, p->vendor_id, p->product_id) < 0) {
		snprintf(err, errsz, "the signer's PAI has malformed Matter ids");
		goto fail;
	}
	p->not_before = asn1_to_unix(X509_get0_notBefore(p->cert));
	p->not_after = asn1_to_unix(X509_get0_notAfter(p->cert));
	return p;
fail:
	pai_free(p);
	return NULL;
}

bool pai_key_in_token(const struct pai *p)
{
	return p->p11 != NULL;
}

void pai_free(struct pai *p)
{
	if (!p)
		return;
	X509_free(p->cert);
	EVP_PKEY_free(p->key);
	p11_key_free(p->p11); /* after the key that uses its session */
	free(p->pem);
	free(p->largest_dac);
	free(p);
}

const char *pai_pem(const struct pai *p)
{
	return p->pem;
}

const char *pai_product_id(const struct pai *p)
{
	return p->product_id;
}

const char *pai_largest_dac_pem(const struct pai *p)
{
	return p->largest_dac;
}

/* Adds one Matter id to @p name as the DAC profile writes it: a UTF8String. */
static int add_matter_id(X509_NAME *name, const char *oid, const char *value)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int ok = obj && X509_NAME_add_entry_by_OBJ(name, obj, V_ASN1_UTF8STRING,
	                                           (const unsigned char *)value, -1, -1, 0);
	ASN1_OBJECT_free(obj);
	return ok;
}

/* The subject of a DAC: CN, then vendor id, then product id, one RDN each. */
static X509_NAME *dac_subject(const struct cert_request *rq)
{
	X509_NAME *n = X509_NAME_new();

	if (!n ||
	    !X509_NAME_add_entry_by_NID(n, NID_commonName, V_ASN1_UTF8STRING,
	                                (const unsigned char *)rq->cn, -1, -1, 0) ||
	    !add_matter_id(n, OID_MATTER_VID, rq->vendor_id) ||
	    !add_matter_id(n, OID_MATTER_PID, rq->product_id)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

/* The DAC extensions (Matter Core 6.2.2.3): basicConstraints critical CA:FALSE, keyUsage
 * critical digitalSignature only, subject and authority key identifiers (SHA-1 of the
 * key bits, 20 octets, as 6.2.2.5 requires); no extendedKeyUsage. */
static int dac_extensions(X509 *x, X509 *issuer)
{
	X509V3_CTX v3;
	static const struct {
		int nid;
		const char *value;
	} ext[] = {
	    {NID_basic_constraints, "critical,CA:FALSE"},
	    {NID_key_usage, "critical,digitalSignature"},
	    {NID_subject_key_identifier, "hash"},
	    {NID_authority_key_identifier, "keyid:always"},
	};

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, ext[i].nid, ext[i].value);
		int ok = e && X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
		if (!ok)
			return -1;
	}
	return 0;
}

/* What the key holder checks again, whoever asks: the request fits this PAI. */
static bool dac_request_ok(const struct pai *p, const struct cert_request *rq)
{
	struct csr_fields f;
	size_t cn = rq->cn ? strlen(rq->cn) : 0;
	/* An uncompressed P-256 point, a node_id CN, within the PAI's own validity. */
	bool ok = rq->profile == CERT_PROFILE_MATTER_DAC && rq->spki_len <= 1024 &&
	          csr_spki_parse(rq->spki, rq->spki_len, &f) && f.key_alg == CSR_KEY_EC_P256 &&
	          f.key_len == 65 && f.key[0] == 4 && !(rq->serial[0] & 0x80) && rq->serial[0] &&
	          cn >= 1 && valid_cn((const unsigned char *)rq->cn, cn) &&
	          rq->not_before >= p->not_before && rq->not_after <= p->not_after &&
	          rq->vendor_id && strcmp(rq->vendor_id, p->vendor_id) == 0 && rq->product_id &&
	          strlen(rq->product_id) == MATTER_ID_LEN &&
	          strspn(rq->product_id, "0123456789ABCDEF") == MATTER_ID_LEN &&
	          (!p->product_id[0] || strcmp(rq->product_id, p->product_id) == 0) &&
	          rq->not_before < rq->not_after;
	if (!ok)
		log_error("pai_sign: not a DAC request this PAI may sign");
	return ok;
}

int pai_sign(const struct pai *p, const struct cert_request *rq, uint8_t **der, size_t *len)
{
	X509 *x = NULL;
	X509_NAME *subj = NULL;
	EVP_PKEY *pub = NULL;
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *nb = NULL, *na = NULL;
	const unsigned char *q = rq->spki;
	unsigned char *out = NULL;
	int rc = -1, n;

	*der = NULL;
	*len = 0;
	if (!p->key) {
		log_error("pai_sign: this process holds no PAI key (the signer signs)");
		return -1;
	}
	if (!dac_request_ok(p, rq))
		return -1;
	if (!(pub = d2i_PUBKEY(NULL, &q, (long)rq->spki_len)) || !EVP_PKEY_is_a(pub, "EC")) {
		log_openssl("pai_sign: d2i_PUBKEY");
		goto out;
	}
	if (!(x = X509_new()) || !X509_set_version(x, X509_VERSION_3) ||
	    !(bn = BN_bin2bn(rq->serial, sizeof(rq->serial), NULL)) ||
	    !(serial = BN_to_ASN1_INTEGER(bn, NULL)) || !X509_set_serialNumber(x, serial)) {
		log_openssl("pai_sign: X509_set_serialNumber");
		goto out;
	}
	if (!(subj = dac_subject(rq)) || !X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(p->cert))) {
		log_openssl("pai_sign: X509_set_subject_name");
		goto out;
	}
	if (!(nb = ASN1_TIME_set(NULL, (time_t)rq->not_before)) ||
	    !(na = ASN1_TIME_set(NULL, (time_t)rq->not_after)) || !X509_set1_notBefore(x, nb) ||
	    !X509_set1_notAfter(x, na) || !X509_set_pubkey(x, pub)) {
		log_openssl("pai_sign: X509_set_pubkey");
		goto out;
	}
	if (dac_extensions(x, p->cert) < 0) {
		log_openssl("pai_sign: X509_add_ext");
		goto out;
	}
	if (!X509_sign(x, p->key, EVP_sha256())) {
		log_openssl("pai_sign: X509_sign");
		goto out;
	}
	if ((n = i2d_X509(x, &out)) <= 0 || !(*der = malloc((size_t)n))) {
		log_openssl("pai_sign: i2d_X509");
		goto out;
	}
	memcpy(*der, out, (size_t)n);
	*len = (size_t)n;
	rc = 0;
out:
	OPENSSL_free(out);
	ASN1_TIME_free(nb);
	ASN1_TIME_free(na);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	X509_NAME_free(subj);
	EVP_PKEY_free(pub);
	X509_free(x);
	return rc;
}

int pai_dac_request(const struct pai *p, const struct csr *c, const struct matter_subject *subj,
                    unsigned days, struct cert_request *rq)
{
	int64_t now = now_unix();

	*rq = (struct cert_request){
	    .profile = CERT_PROFILE_MATTER_DAC,
	    .cn = subj->cn,
	    .vendor_id = subj->vendor_id,
	    .product_id = subj->product_id,
	};
	rq->spki = csr_spki(c, &rq->spki_len);
	/* Backdated an hour like every leaf, but never outside the PAI's validity: a
	 * verifier refuses a DAC that outlives its issuer (Matter Core 6.2.3.1). */
	rq->not_before = now - 3600 > p->not_before ? now - 3600 : p->not_before;
	rq->not_after = now + (int64_t)days * 86400;
	if (rq->not_after > p->not_after)
		rq->not_after = p->not_after;
	if (rq->not_after <= rq->not_before) {
		log_error("pai_dac_request: the PAI's validity has ended");
		return -1;
	}
	cert_random_serial(rq->serial);
	return 0;
}
