/*
 * What the CA files (ca.c, ca_matter.c) share and nothing else sees: small OpenSSL
 * helpers for reading certificates and keys and for writing them out. It adds no
 * policy; each file applies its own profile.
 */
#ifndef CLAIMD_CA_INTERNAL_H
#define CLAIMD_CA_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "x509/csr_der.h"
#include "x509/pkcs11.h"

/** The first certificate of PEM text @p pem, or NULL (logged). */
X509 *pem_first_cert(const char *pem);
/** PEM of one certificate without its trailing newline (malloc'd), or NULL. */
char *cert_pem(X509 *x);
/**
 * Appends every certificate of a PEM file, normalised, to *@p acc joined by '\n', and
 * the first one to *@p first when that is non-NULL and unset. @p key names the config
 * key that gave @p path, for the message. 0, or -1 with a message in @p err.
 */
int append_certs(const char *key, const char *path, char **acc, X509 **first, char *err,
                 size_t errsz);
/**
 * Reads the PEM private key of config key @p cfg_key at @p path, refusing a file that
 * is group- or world-accessible (style.md: secret material). NULL with a message in
 * @p err on failure.
 */
EVP_PKEY *read_key_file(const char *cfg_key, const char *path, char *err, size_t errsz);
/**
 * A private key from @p ref: a PEM file (read_key_file()) or an RFC 7512 pkcs11: URI
 * (pkcs11.h), whose token session goes to *@p p11 (NULL for a file), freed with
 * p11_key_free() after the key. NULL with a message naming @p cfg_key on failure.
 */
EVP_PKEY *load_private_key(const char *cfg_key, const char *ref, struct p11_key **p11, char *err,
                           size_t errsz);
/** "ec-p256" / "rsa-2048"... into @p buf, or NULL for a key type we do not accept. */
const char *key_kind(EVP_PKEY *k, char *buf, size_t bufsz);
/** An extension from OpenSSL's config syntax, @p issuer as the issuer; NULL on failure. */
X509_EXTENSION *make_ext(X509 *issuer, int nid, const char *value);
/** Unix seconds of @p t, or 0 when it cannot be read. */
int64_t asn1_to_unix(const ASN1_TIME *t);

/** @p s (@p n bytes) is a node_id-shaped CN: 1 to NODE_ID_MAX of [A-Za-z0-9_-]. */
bool valid_cn(const unsigned char *s, size_t n);

#endif
