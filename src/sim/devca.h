/*
 * Development CAs: a root and an intermediate made with OpenSSL, for the README's run
 * command and the tests. Never for production: a real deployment brings its own CA.
 */
#ifndef CLAIMD_DEVCA_H
#define CLAIMD_DEVCA_H

#include <stdbool.h>
#include <stddef.h>

/**
 * Writes DIR/root.pem, DIR/root.key, DIR/intermediate.pem and DIR/intermediate.key
 * (keys mode 0600). @p keytype is "ec" (P-256) or "rsa2048"/"rsa3072". Returns 0, or -1
 * with a message in @p err.
 */
int devca_create(const char *dir, const char *keytype, char *err, size_t errsz);

#endif
