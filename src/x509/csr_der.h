/*
 * A strict reader for PKCS#10 certificate requests (RFC 2986): finds the few fields the
 * CA needs in the DER, without OpenSSL's decoders, which cost several times the
 * signature check; and a certificate's serial, which claimd reads from each certificate
 * the signer returns (OpenSSL's d2i_X509 decodes its key through the same decoders). It decides
 * nothing about trust: the signature is checked by the CA module with these fields. Only DER is
 * accepted (definite, shortest lengths, exact ends).
 */
#ifndef CLAIMD_CSR_DER_H
#define CLAIMD_CSR_DER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errors.h"

enum csr_key_alg {
	CSR_KEY_OTHER = 0, /* parsed, but not a key type we sign */
	CSR_KEY_EC_P256,
	CSR_KEY_RSA,
};

enum csr_sig_alg {
	CSR_SIG_OTHER = 0, /* parsed, but not an algorithm we verify */
	CSR_SIG_ECDSA,
	CSR_SIG_RSA, /* PKCS#1 v1.5 */
};

/* One kind of subject attribute: how often it occurs, and the first one's value. */
struct csr_attr {
	unsigned count;
	uint8_t tag; /* the value's ASN.1 tag (0x0c UTF8String, 0x13 PrintableString...) */
	const uint8_t *p;
	size_t len;
};

/* Pointers into the DER the request was parsed from: valid while it is. */
struct csr_fields {
	const uint8_t *info; /* CertificationRequestInfo, tag and length included: what is signed */
	size_t info_len;
	const uint8_t *spki; /* SubjectPublicKeyInfo, tag and length included */
	size_t spki_len;
	enum csr_key_alg key_alg;
	const uint8_t *key; /* the subjectPublicKey bits (after the unused-bits octet) */
	size_t key_len;
	const uint8_t *rsa_n, *rsa_e; /* RSA only: the modulus and exponent, no sign octet */
	size_t rsa_n_len, rsa_e_len;
	enum csr_sig_alg sig_alg;
	unsigned sig_hash;  /* 256, 384 or 512: the SHA-2 digest the signature is over */
	const uint8_t *sig; /* the signature bits */
	size_t sig_len;
	unsigned subject_entries; /* attribute values in the subject, over all its RDNs */
	const uint8_t *cn; /* the value when the only entry is a CN in an ASCII string type */
	size_t cn_len;
	/* For Matter CSRs (protocol.md section 6): the subject's CNs, vendor ids
	 * (1.3.6.1.4.1.37244.2.1) and product ids (1.3.6.1.4.1.37244.2.2), whatever else
	 * the subject holds; subject_entries says whether it holds anything else. */
	struct csr_attr m_cn, m_vid, m_pid;
};

/**
 * Finds the one "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST") PEM block in
 * @p pem, which may have blank lines before it and whitespace after it, nothing else,
 * and decodes its body into @p der (capacity @p cap, length in *@p der_len). The body
 * is base64 in lines of any width, one long line included, each ended by LF or CR LF
 * (RFC 7468 section 3 lets parsers accept widths other than 64).
 * Returns CE_OK, CE_CSR_PEM (no such block, a BEGIN or END line that is not a line of
 * its own, another label, text around the block) or CE_CSR_BASE64 (an empty body, a
 * blank line or a character other than base64 in it, bad padding, too long for @p cap).
 */
enum claimd_err csr_pem_to_der(const char *pem, size_t len, uint8_t *der, size_t cap,
                               size_t *der_len);

/**
 * Parses a DER CertificationRequest (RFC 2986 section 4) into @p f. Returns CE_OK,
 * CE_CSR_VERSION (a well-formed version other than 0) or CE_CSR_DER (anything else
 * that is not one: BER forms, trailing bytes, a malformed subject, key or algorithm).
 * Unknown key and signature algorithms, and parameters we do not take, parse (as
 * CSR_KEY_OTHER and CSR_SIG_OTHER) so the caller can say which part it refuses.
 */
enum claimd_err csr_der_read(const uint8_t *der, size_t len, struct csr_fields *f);

/**
 * Parses a DER SubjectPublicKeyInfo alone into the key fields of @p f (spki, key_alg,
 * key, rsa_n, rsa_e). Returns false if it is not one.
 */
bool csr_spki_parse(const uint8_t *der, size_t len, struct csr_fields *f);

/**
 * A DER X.509 certificate's (RFC 5280 section 4.1) serialNumber and
 * subjectPublicKeyInfo, read with the same strict rules: the Certificate must be one
 * SEQUENCE of a TBSCertificate, an AlgorithmIdentifier and a BIT STRING, ending exactly
 * at @p len; the serial a positive INTEGER in shortest form; signature, issuer, validity
 * and subject SEQUENCEs (passed over, not read), then the key's SEQUENCE. *@p serial
 * points at the serial's magnitude (no sign octet) in @p der, *@p serial_len bytes;
 * *@p spki at the whole SubjectPublicKeyInfo (tag and length included), *@p spki_len
 * bytes (csr_spki_parse() reads it). Returns false if it is not one.
 */
bool cert_der_serial(const uint8_t *der, size_t len, const uint8_t **serial, size_t *serial_len,
                     const uint8_t **spki, size_t *spki_len);

#endif
