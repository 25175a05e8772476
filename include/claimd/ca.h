/*
 * The signing CA and CSR checks: the only place X.509 is built or parsed on the server
 * side. Certificates are built from our profile alone; nothing from a CSR is copied
 * into a certificate except its public key.
 */
#ifndef CLAIMD_CA_H
#define CLAIMD_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "claimd/db_lifecycle.h"
#include "claimd/errors.h"

#define CSR_MAX_PEM        8192
#define NODE_ID_MAX        64 /* longest CN a CSR may carry */
#define NODE_ID_ISSUED_MAX 22 /* longest node_id this server issues (self: 12) */
#define SERIAL_HEX_LEN     32

struct ca;
struct csr;

struct issued {
	char serial[SERIAL_HEX_LEN + 1]; /* upper-case hex of 16 bytes */
	char *pem;                       /* leaf, PEM, no trailing newline; free() it */
	int64_t not_before, not_after;   /* unix seconds */
};

/**
 * Loads the issuing CA certificate and key and the optional extra chain. Refuses a key
 * file that is group- or world-accessible, a key that does not match, a certificate
 * that is not a CA, and key types other than EC P-256 and RSA 2048-4096.
 * @p chain may be NULL or "". Returns NULL with a message in @p err on failure.
 */
struct ca *ca_load(const char *cert, const char *key, const char *chain, char *err, size_t errsz);
/** Frees @p ca; NULL is a no-op. */
void ca_free(struct ca *ca);
/** The issuing CA and chain as PEM joined by single newlines, no trailing newline. */
const char *ca_chain_pem(const struct ca *ca);
/** "ec-p256" or "rsa-NNNN": the CA key type, for logs and metrics. */
const char *ca_key_type(const struct ca *ca);
/**
 * The leaf PEM (no trailing newline) this CA issues for an RSA-2048 device key (the
 * largest the protocol's devices use) and the longest node_id we issue, signed at load
 * time from a fixed public key, so its size is measured, not guessed.
 */
const char *ca_largest_leaf_pem(const struct ca *ca);

/**
 * Parses and checks a CSR: one PEM block of at most CSR_MAX_PEM bytes, a valid
 * self-signature, subject exactly one CN of 1-64 characters of [A-Za-z0-9_-], and an EC
 * P-256 or RSA 2048-4096 (e = 65537) key. Writes the CN to @p cn.
 * Returns, checked in this order: CE_CSR_TOO_LARGE; CE_CSR_PEM or CE_CSR_BASE64
 * (csr_pem_to_der()); CE_CSR_DER or CE_CSR_VERSION (csr_der_read()); CE_CSR_KEY;
 * CE_CSR_SIG_ALG (not ECDSA for the EC key or PKCS#1 v1.5 for the RSA one, with SHA-256,
 * -384 or -512); CE_CSR_SIGNATURE; CE_CSR_SUBJECT; CE_INTERNAL (out of memory); or
 * CE_OK with *@p out set.
 */
enum claimd_err csr_check(const char *pem, size_t len, struct csr **out, char cn[NODE_ID_MAX + 1]);
/** Frees @p c; NULL is a no-op. */
void csr_free(struct csr *c);
/** SHA-256 of the CSR's SubjectPublicKeyInfo (DER). */
void csr_key_fingerprint(const struct csr *c, uint8_t out[32]);
/**
 * Signs a certificate for @p node_id with the CSR's public key, valid @p days days.
 * Returns 0, or -1 after logging OpenSSL's errors.
 */
int ca_sign(const struct ca *ca, const struct csr *c, const char *node_id, unsigned days,
            struct issued *out);
/** Frees what ca_sign() put in @p i. */
void issued_clear(struct issued *i);

/**
 * Puts a CRL Distribution Points extension (RFC 5280 4.2.1.13) naming @p url in every
 * certificate signed from now on, and measures the largest leaf again; "" does
 * nothing. 0, or -1 with a message in @p err (not one http:// URL of at most 200
 * printable characters without spaces or commas, or OpenSSL refused it).
 */
int ca_set_crl_url(struct ca *ca, const char *url, char *err, size_t errsz);
/**
 * SHA-256 of the CA certificate's SubjectPublicKeyInfo (DER): which CA a stored CRL
 * belongs to. 0, or -1 (logged).
 */
int ca_key_id(const struct ca *ca, uint8_t out[32]);
/**
 * Signs an X.509 v2 CRL (RFC 5280 section 5) for this CA: issuer = the CA's subject,
 * thisUpdate/nextUpdate (unix seconds), the @p n entries @p e (serial, revocation date,
 * reasonCode unless unspecified), cRLNumber @p number and authorityKeyIdentifier,
 * signed with SHA-256. The DER goes to a malloc'd *@p der of *@p len bytes. 0, or -1
 * after logging OpenSSL's errors (an unparsable serial among them).
 */
int ca_crl_sign(const struct ca *ca, int64_t number, const struct revoked_entry *e, size_t n,
                int64_t this_update, int64_t next_update, uint8_t **der, size_t *len);

/**
 * Whether @p sig (@p siglen bytes) is a SHA-256 signature of @p msg by the public key of
 * certificate @p cert_pem: ECDSA (DER), RSA PKCS#1 v1.5, or RSA-PSS (MGF1-SHA-256, any
 * salt length). Sets *@p valid; returns 0, or -1 when the certificate cannot be read
 * (logged). Implemented in ca_verify.c.
 */
int ca_cert_verify_signature(const char *cert_pem, const void *msg, size_t n, const uint8_t *sig,
                             size_t siglen, bool *valid);
/** The issuing CA certificate's notAfter, unix seconds. */
int64_t ca_not_after(const struct ca *ca);
/** The nextUpdate (unix seconds) of DER CRL @p der. 0, or -1 (not a CRL, logged). */
int ca_crl_next_update(const uint8_t *der, size_t len, int64_t *next_update);

#endif
