/*
 * CA keys in a PKCS#11 token, named by an RFC 7512 "pkcs11:" URI, through libp11. The
 * key never leaves the token's module: what comes back is an OpenSSL key whose
 * signatures the module makes. Used by the CA files only, in the signer and in claimctl.
 */
#ifndef CLAIMD_PKCS11_H
#define CLAIMD_PKCS11_H

#include <openssl/types.h>
#include <stddef.h>

struct p11_key;

/**
 * Loads the module, finds the token and the private key @p uri names, and logs in.
 * The URI's path may name token, manufacturer, serial, model, object (the key's
 * label), id (percent-encoded bytes) and type (only "private"); its query must give
 * module-path and the PIN, as pin-source (a file, "file:" prefix optional, one line)
 * or pin-value. Any other attribute is refused. Exactly one private key must match.
 * Returns NULL with a message beginning with config key @p key ("ca.key: ") in @p err
 * (a wrong PIN says so).
 */
struct p11_key *p11_key_load(const char *key, const char *uri, char *err, size_t errsz);
/** The token's key as an OpenSSL key, borrowed from @p k. */
EVP_PKEY *p11_key_pkey(const struct p11_key *k);
/** Logs out, unloads the module and frees @p k; NULL is a no-op. */
void p11_key_free(struct p11_key *k);

#endif
