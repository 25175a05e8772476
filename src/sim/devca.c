/*
 * Makes a root and an intermediate CA for development and tests. Uses OpenSSL X.509
 * directly (like ca.c) because it is tool-side code that the daemon never runs.
 */
#include "sim/devca.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/secure.h"
#include "lib/log.h"

static EVP_PKEY *make_key(const char *type)
{
	if (strcmp(type, "ec") == 0)
		return EVP_EC_gen("P-256");
	if (strcmp(type, "rsa2048") == 0)
		return EVP_RSA_gen(2048);
	if (strcmp(type, "rsa3072") == 0)
		return EVP_RSA_gen(3072);
	return NULL;
}

static int ext(X509 *x, X509 *issuer, int nid, const char *v)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, v);
	int ok = e && X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *bc)
{
	X509 *x = X509_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;

	secure_random(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	if (!x || !ai || !X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, ai))
		goto fail;
	X509_NAME *n = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"claimd dev",
	                                -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
	                                0))
		goto fail;
	if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), 3650 * 3, 0, NULL) || !X509_set_pubkey(x, key))
		goto fail;
	if (ext(x, issuer ? issuer : x, NID_basic_constraints, bc) < 0 ||
	    ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash") < 0)
		goto fail;
	if (issuer && ext(x, issuer, NID_authority_key_identifier, "keyid:always") < 0)
		goto fail;
	if (!X509_sign(x, issuer_key, EVP_sha256()))
		goto fail;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return x;
fail:
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	X509_free(x);
	return NULL;
}

static int write_pem(const char *dir, const char *name, X509 *x, EVP_PKEY *k)
{
	char path[4096];
	int fd;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, k ? 0600 : 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (k)
		fchmod(fd, 0600);
	ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	return fclose(f) == 0 && ok ? 0 : -1;
}

int devca_create(const char *dir, const char *keytype, char *err, size_t errsz)
{
	EVP_PKEY *rk = make_key(keytype), *ik = make_key(keytype);
	X509 *root = NULL, *inter = NULL;
	int rc = -1;

	if (!rk || !ik) {
		snprintf(err, errsz, "key type must be ec, rsa2048 or rsa3072");
		goto out;
	}
	mkdir(dir, 0755);
	root = make_cert(rk, "claimd dev root", NULL, rk, "critical,CA:TRUE");
	inter =
	    root ? make_cert(ik, "claimd dev intermediate", root, rk, "critical,CA:TRUE,pathlen:0")
	         : NULL;
	if (!inter) {
		snprintf(err, errsz, "cannot build the CA certificates");
		goto out;
	}
	if (write_pem(dir, "root.pem", root, NULL) < 0 ||
	    write_pem(dir, "root.key", NULL, rk) < 0 ||
	    write_pem(dir, "intermediate.pem", inter, NULL) < 0 ||
	    write_pem(dir, "intermediate.key", NULL, ik) < 0) {
		snprintf(err, errsz, "%s: cannot write the CA files", dir);
		goto out;
	}
	rc = 0;
out:
	log_openssl("devca");
	X509_free(root);
	X509_free(inter);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ik);
	return rc;
}
