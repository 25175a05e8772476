/*
 * Fuzz target: CSR parsing and checking (PEM, DER, signature, subject, key), checked
 * against OpenSSL's own parser: whatever claimd accepts, OpenSSL must read as the same
 * request, with a valid signature, the same CN and the same key.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x509/ca.h"
#include "lib/secure.h"
#include "x509/csr_der.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void agrees_with_openssl(const uint8_t *data, size_t size, const char *cn,
                                const uint8_t fp[32])
{
	BIO *b = BIO_new_mem_buf(data, (int)size);
	X509_REQ *r = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = r ? X509_REQ_get0_pubkey(r) : NULL;
	unsigned char *spki = NULL, want[32];
	char name[NODE_ID_MAX + 1] = "";
	int n = k ? i2d_PUBKEY(k, &spki) : -1;

	if (!k || X509_REQ_verify(r, k) != 1 || n <= 0)
		abort(); /* claimd accepted a request OpenSSL cannot read or verify */
	X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(r), NID_commonName, name, sizeof(name));
	secure_sha256(want, spki, (size_t)n);
	if (strcmp(name, cn) != 0 || memcmp(want, fp, 32) != 0)
		abort(); /* ... or read it differently */
	OPENSSL_free(spki);
	X509_REQ_free(r);
	BIO_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csr *c = NULL;
	struct csr_fields f;
	char cn[NODE_ID_MAX + 1];
	uint8_t fp[32];

	if (csr_check((const char *)data, size, &c, cn) == CE_OK) {
		csr_key_fingerprint(c, fp);
		csr_free(c);
		agrees_with_openssl(data, size, cn, fp);
	}
	/* The DER reader alone, on the input as raw DER. */
	(void)csr_der_read(data, size, &f);
	(void)csr_spki_parse(data, size, &f);
	/* And the certificate serial reader, which shares its cursor. */
	const uint8_t *serial, *key;
	size_t serial_len, key_len;
	if (cert_der_serial(data, size, &serial, &serial_len, &key, &key_len) &&
	    (serial < data || serial_len == 0 || serial + serial_len > data + size || key < data ||
	     key_len < 2 || key + key_len > data + size))
		abort(); /* a serial or key outside the input */
	return 0;
}
