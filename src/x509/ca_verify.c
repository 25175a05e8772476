/*
 * Checking a device's signature against the certificate claimd issued it: the
 * management API's verify-signature, which backends use for the challenge-response
 * user-node mapping. Part of the CA module's OpenSSL surface; it parses only our own
 * stored certificates and never signs anything.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>

#include "x509/ca.h"
#include "lib/log.h"

/* One SHA-256 verification with @p pad (0 = the key's default). True when it verifies. */
static bool verify_once(EVP_PKEY *k, int pad, const void *msg, size_t n, const uint8_t *sig,
                        size_t siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool ok = false;

	if (!md)
		goto out;
	if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, k) != 1)
		goto out;
	if (pad && EVP_PKEY_CTX_set_rsa_padding(pctx, pad) != 1)
		goto out;
	/* PSS: the MGF1 hash defaults to the message digest; any salt length is accepted. */
	if (pad == RSA_PKCS1_PSS_PADDING &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)
		goto out;
	ok = EVP_DigestVerify(md, sig, siglen, msg, n) == 1;
out:
	EVP_MD_CTX_free(md);
	/* A wrong signature leaves errors on the queue: they are answers, not failures. */
	ERR_clear_error();
	return ok;
}

int ca_cert_verify_signature(const char *cert_pem, const void *msg, size_t n, const uint8_t *sig,
                             size_t siglen, bool *valid)
{
	BIO *b = BIO_new_mem_buf(cert_pem, -1);
	X509 *x = NULL;
	EVP_PKEY *k;
	int rc = -1;

	*valid = false;
	if (!b) {
		log_error("verify-signature: BIO_new_mem_buf");
		goto out;
	}
	if (!(x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		log_error(
		    "verify-signature: PEM_read_bio_X509: a stored certificate does not parse");
		goto out;
	}
	if (!(k = X509_get0_pubkey(x))) {
		log_error("verify-signature: X509_get0_pubkey");
		goto out;
	}
	if (EVP_PKEY_is_a(k, "RSA"))
		*valid = verify_once(k, RSA_PKCS1_PADDING, msg, n, sig, siglen) ||
		         verify_once(k, RSA_PKCS1_PSS_PADDING, msg, n, sig, siglen);
	else
		*valid = verify_once(k, 0, msg, n, sig, siglen);
	rc = 0;
out:
	ERR_clear_error();
	X509_free(x);
	BIO_free(b);
	return rc;
}
