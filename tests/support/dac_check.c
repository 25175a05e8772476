/*
 * The Matter DAC profile, rule by rule, for the tests (see dac_check.h). Each rule is
 * one check with its own message, so a negative case shows which rule caught it.
 */
#include "dac_check.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define OID_VID "1.3.6.1.4.1.37244.2.1"
#define OID_PID "1.3.6.1.4.1.37244.2.2"

X509 *dac_read_cert(const char *path)
{
	FILE *f = fopen(path, "rb");
	X509 *x = NULL;

	if (!f)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	if (!x) {
		rewind(f);
		x = d2i_X509_fp(f, NULL);
	}
	fclose(f);
	ERR_clear_error();
	return x;
}

X509 *dac_parse_pem(const char *pem, size_t n)
{
	BIO *b = BIO_new_mem_buf(pem, (int)n);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

/* The one value of attribute @p oid in @p name, or NULL (absent or repeated). */
static const ASN1_STRING *one_attr(const X509_NAME *name, const char *oid, int *count)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	const ASN1_STRING *v = NULL;
	int at = -1;

	*count = 0;
	while (obj && (at = X509_NAME_get_index_by_OBJ(name, obj, at)) >= 0) {
		(*count)++;
		v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
	}
	ASN1_OBJECT_free(obj);
	return *count == 1 ? v : NULL;
}

/* A Matter id in the DN: a UTF8String of exactly four upper-case hex digits. */
static bool matter_id_is(const ASN1_STRING *v, const char *want)
{
	const unsigned char *d = v ? ASN1_STRING_get0_data(v) : NULL;
	if (!v || ASN1_STRING_type(v) != V_ASN1_UTF8STRING || ASN1_STRING_length(v) != 4)
		return false;
	for (int i = 0; i < 4; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'A' && d[i] <= 'F')))
			return false;
	return !want || memcmp(d, want, 4) == 0;
}

/* Critical flag of the one extension @p nid; -1 absent, -2 repeated. */
static int ext_critical(X509 *x, int nid)
{
	int at = X509_get_ext_by_NID(x, nid, -1);
	if (at < 0)
		return -1;
	if (X509_get_ext_by_NID(x, nid, at) >= 0)
		return -2;
	return X509_EXTENSION_get_critical(X509_get_ext(x, at));
}

static const char *subject_rules(X509 *dac, X509 *pai, const char *cn, const char *vid,
                                 const char *pid)
{
	const X509_NAME *s = X509_get_subject_name(dac);
	int n_vid, n_pid, n_cn, pai_pid_n;
	const ASN1_STRING *v_vid = one_attr(s, OID_VID, &n_vid);
	const ASN1_STRING *v_pid = one_attr(s, OID_PID, &n_pid);
	const ASN1_STRING *v_cn = one_attr(s, "2.5.4.3", &n_cn);
	const ASN1_STRING *pai_vid = one_attr(X509_get_subject_name(pai), OID_VID, &pai_pid_n);
	const ASN1_STRING *pai_pid = one_attr(X509_get_subject_name(pai), OID_PID, &pai_pid_n);

	if (!v_vid)
		return "subject: vendor id missing or repeated";
	if (!v_pid)
		return "subject: product id missing or repeated";
	if (!matter_id_is(v_vid, vid))
		return "subject: vendor id not the expected four upper-case hex digits in a "
		       "UTF8String";
	if (!matter_id_is(v_pid, pid))
		return "subject: product id not the expected four upper-case hex digits in a "
		       "UTF8String";
	if (!pai_vid || ASN1_STRING_cmp(pai_vid, v_vid) != 0)
		return "subject: vendor id differs from the PAI's";
	if (pai_pid && ASN1_STRING_cmp(pai_pid, v_pid) != 0)
		return "subject: product id differs from the one the PAI names";
	if (cn && (!v_cn || (size_t)ASN1_STRING_length(v_cn) != strlen(cn) ||
	           memcmp(ASN1_STRING_get0_data(v_cn), cn, strlen(cn)) != 0))
		return "subject: CN is not the node_id";
	if (X509_NAME_entry_count(s) != n_vid + n_pid + n_cn)
		return "subject: attributes other than CN, vendor id and product id";
	if (X509_NAME_cmp(X509_get_issuer_name(dac), X509_get_subject_name(pai)) != 0)
		return "issuer: not the PAI's subject";
	return NULL;
}

static const char *key_rules(X509 *dac)
{
	EVP_PKEY *k = X509_get0_pubkey(dac);
	char group[64];
	size_t glen = 0;
	const unsigned char *bits = NULL;
	int blen = 0;
	X509_PUBKEY *pk = X509_get_X509_PUBKEY(dac);
	const ASN1_OBJECT *alg = NULL;

	if (!k || !EVP_PKEY_is_a(k, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &glen) ||
	    strcmp(group, "prime256v1") != 0)
		return "key: not EC P-256";
	if (!X509_PUBKEY_get0_param((ASN1_OBJECT **)&alg, &bits, &blen, NULL, pk) ||
	    OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey || blen != 65 || bits[0] != 4)
		return "key: not an uncompressed id-ecPublicKey point";
	if (X509_get_signature_nid(dac) != NID_ecdsa_with_SHA256)
		return "signature: not ecdsa-with-SHA256";
	return NULL;
}

static const char *extension_rules(X509 *dac, X509 *pai)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(dac);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(dac);
	const ASN1_OCTET_STRING *pai_ski = X509_get0_subject_key_id(pai);
	unsigned char md[SHA_DIGEST_LENGTH];
	unsigned mdlen = 0;

	if (ext_critical(dac, NID_basic_constraints) != 1)
		return "basicConstraints: missing, repeated or not critical";
	/* Read from the extension itself: X509_check_ca() says 0 for CA:TRUE when the
	 * keyUsage lacks keyCertSign, which would hide exactly this mistake. */
	if ((X509_get_extension_flags(dac) & EXFLAG_CA) || X509_get_pathlen(dac) != -1)
		return "basicConstraints: not CA:FALSE without a path length";
	if (ext_critical(dac, NID_key_usage) != 1)
		return "keyUsage: missing, repeated or not critical";
	if (X509_get_key_usage(dac) != KU_DIGITAL_SIGNATURE)
		return "keyUsage: not digitalSignature alone";
	if (ext_critical(dac, NID_ext_key_usage) != -1)
		return "extendedKeyUsage: present";
	if (ext_critical(dac, NID_subject_key_identifier) != 0 || !ski ||
	    ASN1_STRING_length(ski) != 20)
		return "subjectKeyIdentifier: missing, critical or not 20 octets";
	if (!X509_pubkey_digest(dac, EVP_sha1(), md, &mdlen) || mdlen != 20 ||
	    memcmp(ASN1_STRING_get0_data(ski), md, 20) != 0)
		return "subjectKeyIdentifier: not the SHA-1 of the key";
	if (ext_critical(dac, NID_authority_key_identifier) != 0 || !aki ||
	    ASN1_STRING_length(aki) != 20 || X509_get0_authority_issuer(dac) ||
	    X509_get0_authority_serial(dac))
		return "authorityKeyIdentifier: missing, critical, not a 20-octet keyIdentifier "
		       "alone";
	if (!pai_ski || ASN1_STRING_cmp(aki, pai_ski) != 0)
		return "authorityKeyIdentifier: not the PAI's subjectKeyIdentifier";
	return NULL;
}

static const char *serial_and_time_rules(X509 *dac, X509 *pai)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(dac);
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	bool serial_ok = bn && !BN_is_negative(bn) && !BN_is_zero(bn) && BN_num_bytes(bn) <= 20;
	int day, sec;

	BN_free(bn);
	if (X509_get_version(dac) != X509_VERSION_3)
		return "version: not v3";
	if (!serial_ok)
		return "serial: not positive or over 20 octets";
	if (ASN1_TIME_compare(X509_get0_notBefore(dac), X509_get0_notAfter(dac)) >= 0)
		return "validity: notBefore is not before notAfter";
	if (ASN1_TIME_compare(X509_get0_notBefore(dac), X509_get0_notBefore(pai)) < 0 ||
	    ASN1_TIME_compare(X509_get0_notAfter(dac), X509_get0_notAfter(pai)) > 0)
		return "validity: outside the PAI's";
	if (!ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notBefore(dac)) || day > 0 ||
	    (day == 0 && sec > 0))
		return "validity: starts in the future";
	return NULL;
}

static const char *chain_rules(X509 *dac, X509 *pai, X509 *paa)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *mid = NULL;
	const char *why = NULL;

	if (X509_verify(dac, X509_get0_pubkey(pai)) != 1) {
		why = "signature: the PAI's key does not verify it";
		goto out;
	}
	if (!paa)
		goto out;
	why = "chain: DAC -> PAI -> PAA does not verify";
	if (!(store = X509_STORE_new()) || !(ctx = X509_STORE_CTX_new()) ||
	    !(mid = sk_X509_new_null()) || !X509_STORE_add_cert(store, paa) ||
	    !sk_X509_push(mid, pai) || !X509_STORE_CTX_init(ctx, store, dac, mid))
		goto out;
	if (X509_verify_cert(ctx) == 1)
		why = NULL;
out:
	ERR_clear_error();
	sk_X509_free(mid); /* pai is borrowed */
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return why;
}

const char *dac_profile_check(X509 *dac, X509 *pai, X509 *paa, const char *cn, const char *vid,
                              const char *pid)
{
	const char *why;

	if (!dac || !pai)
		return "no certificate";
	if ((why = serial_and_time_rules(dac, pai)) || (why = key_rules(dac)) ||
	    (why = subject_rules(dac, pai, cn, vid, pid)) || (why = extension_rules(dac, pai)) ||
	    (why = chain_rules(dac, pai, paa)))
		return why;
	return NULL;
}
