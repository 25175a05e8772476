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

#include "lib/errors.h"
#include "lib/vocab.h"

#define CSR_MAX_PEM        8192
#define NODE_ID_ISSUED_MAX 22 /* longest node_id this server issues (self: 12) */

struct ca;
struct csr;

/*
 * The certificate profiles the signer knows. The number travels in the signer
 * protocol (signer.h), so a value is never reused; a new profile takes the next one.
 */
enum cert_profile {
	CERT_PROFILE_DEVICE = 1,     /* RainMaker node: CN=<node_id>, clientAuth, CA:FALSE */
	CERT_PROFILE_MATTER_DAC = 2, /* Matter Core Specification 6.2.2.3, by the PAI */
};

/* Everything a signer needs to build one certificate of a profile; it looks nothing up. */
struct cert_request {
	enum cert_profile profile;
	const uint8_t *spki; /* the subject's public key: SubjectPublicKeyInfo, DER */
	size_t spki_len;
	const char *cn;                     /* 1-64 of [A-Za-z0-9_-] */
	const char *vendor_id, *product_id; /* a DAC's subject: 4 hex digits each; else "" */
	uint8_t serial[16];                 /* positive: top bit clear, first byte non-zero */
	int64_t not_before, not_after;      /* unix seconds */
};

/* A CRL's contents (RFC 5280 section 5), signed by ca_crl_sign(). */
struct crl_request {
	int64_t number, this_update, next_update;
	const struct revoked_entry *e;
	size_t n;
};

struct issued {
	char serial[SERIAL_HEX_LEN + 1]; /* upper-case hex of 16 bytes */
	char *pem;                       /* leaf, PEM, no trailing newline; free() it */
	int64_t not_before, not_after;   /* unix seconds */
};

/**
 * Loads the issuing CA certificate and key and the optional extra chain; @p key is a
 * PEM file or an RFC 7512 pkcs11: URI (pkcs11.h). Refuses a key file that is group- or
 * world-accessible, a key that does not match, a certificate that is not a CA, and key
 * types other than EC P-256 and RSA 2048-4096.
 * @p chain may be NULL or "". Returns NULL with a message in @p err on failure.
 */
struct ca *ca_load(const char *cert, const char *key, const char *chain, char *err, size_t errsz);
/**
 * The public side of a CA, for the network-facing process: the certificates of
 * @p chain_pem (the issuing CA first, as ca_chain_pem() gives it), the largest leaf
 * and key type as the key holder measured them, and no key (ca_sign_local() and
 * ca_crl_sign() refuse it; the signer signs, signer.h). Returns NULL with a message in
 * @p err when @p chain_pem holds no certificate.
 */
struct ca *ca_public(const char *chain_pem, const char *largest_leaf, const char *key_type,
                     char *err, size_t errsz);
/** Frees @p ca; NULL is a no-op. */
void ca_free(struct ca *ca);
/** The issuing CA and chain as PEM joined by single newlines, no trailing newline. */
const char *ca_chain_pem(const struct ca *ca);
/** Whether the key is a PKCS#11 token's (ca.key was a pkcs11: URI). */
bool ca_key_in_token(const struct ca *ca);
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
#define MATTER_ID_LEN 4 /* hex digits of a Matter vendor or product id */

/* A Matter CSR's subject, read (protocol.md section 6). */
struct matter_subject {
	char cn[NODE_ID_MAX + 1];          /* "" when there is no single valid CN */
	char vendor_id[MATTER_ID_LEN + 1]; /* four upper-case hex digits */
	char product_id[MATTER_ID_LEN + 1];
};

/**
 * The Matter vendor and product ids in a common name's fallback form (Matter Core
 * Specification 6.2.2.2, for CAs that cannot write the Matter attribute types):
 * "Mvid:" then four upper-case hex digits, "Mpid:" likewise, anywhere in @p cn
 * (@p len bytes), e.g. "ACME PAI Mvid:131B" or "<node_id> Mvid:131B Mpid:0002". Writes
 * each id found to @p vid / @p pid ("" when its prefix is absent) and, when @p rest is
 * not NULL, the CN without the tokens found and without the spaces at its ends
 * (@p len + 1 bytes). Returns 0; -1 when a prefix is not followed by four upper-case
 * hex digits or occurs twice (malformed or conflicting: read neither way). The
 * attribute form takes precedence: callers read the CN only when the subject holds
 * neither Matter attribute (as the Matter SDK's certificate checks do).
 */
int matter_cn_ids(const char *cn, size_t len, char vid[MATTER_ID_LEN + 1],
                  char pid[MATTER_ID_LEN + 1], char *rest);

/**
 * Parses and checks a CSR for a Matter DAC: the checks of csr_check() up to the
 * signature, then an EC P-256 key and a subject of exactly a CN (as csr_check()
 * allows), the Matter vendor id and the product id, each once, the ids as UTF8String
 * of four upper-case hex digits, in any order and RDN layout; or, when the subject holds
 * neither Matter attribute, a CN alone of the node_id and the ids in the fallback form
 * (matter_cn_ids(): "<node_id> Mvid:131B Mpid:0002", tokens in any order), whose
 * cn is then the node_id alone. Fills @p subj (its cn
 * also on refusals after the signature, for the audit trail). Whether the ids are
 * allowed is the caller's decision. Returns the codes of csr_check() up to
 * CE_CSR_SIGNATURE, then CE_MATTER_KEY, CE_MATTER_SUBJECT, or CE_OK with *@p out set.
 */
enum claimd_err csr_check_matter(const char *pem, size_t len, struct csr **out,
                                 struct matter_subject *subj);
/** Frees @p c; NULL is a no-op. */
void csr_free(struct csr *c);
/** The CSR's SubjectPublicKeyInfo, DER (*@p len bytes), valid while @p c is. */
const uint8_t *csr_spki(const struct csr *c, size_t *len);
/** SHA-256 of the CSR's SubjectPublicKeyInfo (DER). */
void csr_key_fingerprint(const struct csr *c, uint8_t out[32]);
/** A fresh certificate serial: 16 random bytes, top bit clear (a positive DER INTEGER of
 * 16 bytes, well under RFC 5280's 20 octets), first byte non-zero. The signer draws the
 * serial of everything it signs with it (server.c). */
void cert_random_serial(uint8_t serial[16]);
/**
 * The request for a RainMaker node's certificate: the CSR's public key (borrowed from
 * @p c, valid while it is), CN @p node_id (borrowed), valid @p days days from an hour
 * ago (loose device clocks), a fresh random 16-byte serial. Whoever holds the key signs
 * it: the signer (signer_issue()) or this process (ca_issue()).
 */
void cert_request_device(const struct csr *c, const char *node_id, unsigned days,
                         struct cert_request *rq);
/**
 * Fills @p out from signed certificate @p der (@p len bytes) made from @p rq: its
 * serial as upper-case hex, its validity, its PEM. 0, or -1 (not exactly one DER
 * certificate, with nothing after it, as cert_der_serial() reads one: its outer
 * structure, serial and key, not the rest of the TBSCertificate, which the signer made;
 * its serial is not @p rq's; its public key is not @p rq's spki's; or out of memory).
 */
int issued_from_der(const struct cert_request *rq, const uint8_t *der, size_t len,
                    struct issued *out);
/**
 * Signs a node certificate with the key this process holds (cert_request_device(),
 * ca_issue(), issued_from_der()): the local keyed path of tests, tools and the
 * largest-leaf measurement; claimd's network process asks the signer instead. 0, or -1
 * after logging OpenSSL's errors (also for a ca_public() CA, which has no key).
 */
int ca_sign_local(const struct ca *ca, const struct csr *c, const char *node_id, unsigned days,
                  struct issued *out);
/**
 * Builds and signs the leaf @p rq describes with this process's key (the signer's
 * side of ca_sign()). Checks everything it is given: a profile it knows, an EC P-256
 * or RSA 2048-4096 (e = 65537) SubjectPublicKeyInfo, a valid CN, a positive serial and
 * not_before < not_after. The DER goes to a malloc'd *@p der of *@p len bytes.
 * 0, or -1 (refused or OpenSSL failed; logged).
 */
int ca_issue(const struct ca *ca, const struct cert_request *rq, uint8_t **der, size_t *len);
/**
 * The start-up proof, made again where the key will serve (the signer, once confined):
 * signs the largest test leaf with the key and keeps it (ca_largest_leaf_pem()). 0, or
 * -1 with "cannot sign a test certificate with the CA" in @p err (a token whose files
 * the process cannot reach, a key that will not sign).
 */
int ca_prove(struct ca *ca, char *err, size_t errsz);
/** Frees what issued_from_der() put in @p i. */
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
 * signed with SHA-256, with the key this process holds (claimctl crl's local path, and
 * the signer's). The DER goes to a malloc'd *@p der of *@p len bytes. 0, or -1 after
 * logging OpenSSL's errors (an unparsable serial among them; a ca_public() CA, which
 * has no key).
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

/* ---- Matter: the Product Attestation Intermediate and its DACs (ca_matter.c) ---- */

struct pai;

/**
 * Loads the Matter PAI certificate and key (config/claimd.example.yaml, matter.*; the key a PEM
 * file or a pkcs11: URI, as ca.key): refuses a key file that is group- or world-accessible, a key
 * that does not match, a key other than EC P-256, a certificate that is not a CA with
 * pathLenConstraint 0 and keyCertSign, or whose subject's vendor id (1.3.6.1.4.1.37244.2.1) is not
 * @p vendor_id (four upper-case hex digits). Measures the largest DAC it would issue
 * (pai_largest_dac_pem()). NULL with a message in @p err on failure.
 */
struct pai *pai_load(const char *cert, const char *key, const char *vendor_id, char *err,
                     size_t errsz);
/** Frees @p p; NULL is a no-op. */
void pai_free(struct pai *p);
/** The PAI certificate, PEM without a trailing newline: the reply's chain. */
const char *pai_pem(const struct pai *p);
/** The product id the PAI's subject names (four hex digits), or "" when it names none. */
const char *pai_product_id(const struct pai *p);
/** A DAC (PEM) for the longest node_id and product id FFFF, signed at load time. */
const char *pai_largest_dac_pem(const struct pai *p);

/**
 * The public side of the PAI, for the network-facing process: the certificate @p pem
 * and the largest DAC as the signer measured it, no key (pai_sign() refuses it). NULL
 * with a message in @p err when @p pem is not a certificate.
 */
struct pai *pai_public(const char *pem, const char *largest_dac, char *err, size_t errsz);
/** Whether the PAI key is a PKCS#11 token's (matter.pai_key was a pkcs11: URI). */
bool pai_key_in_token(const struct pai *p);
/** The PAI's start-up proof made again (as ca_prove()): signs the largest test DAC and
 * keeps it (pai_largest_dac_pem()). 0, or -1 with a message in @p err. */
int pai_prove(struct pai *p, char *err, size_t errsz);
/**
 * Signs @p rq with the PAI's key (the signer's side; a pai_public() PAI refuses).
 * The signing side checks the request against the PAI: profile CERT_PROFILE_MATTER_DAC,
 * an EC SubjectPublicKeyInfo, the PAI's vendor id (and product id, when the PAI names
 * one), a CN of 1-64 characters, a positive serial. The certificate goes to a
 * malloc'd *@p der of *@p len bytes. 0, or -1 (refused or OpenSSL failed; logged).
 */
int pai_sign(const struct pai *p, const struct cert_request *rq, uint8_t **der, size_t *len);
/**
 * The request for a DAC for the checked Matter CSR @p c (its key borrowed) and subject
 * @p subj (borrowed), valid @p days days from an hour ago, clamped to the PAI's own
 * validity, with a fresh random serial; the signer signs it (signer_issue()). 0, or -1
 * (logged) when the PAI's validity has ended.
 */
int pai_dac_request(const struct pai *p, const struct csr *c, const struct matter_subject *subj,
                    unsigned days, struct cert_request *rq);

#endif
