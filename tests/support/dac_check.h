/*
 * A test-side checker of the Matter Device Attestation Certificate profile, written
 * from the Matter Core Specification's rules (6.2.2.3 DAC, 6.2.2.5 key identifiers,
 * 6.1.1 the Matter DN attributes) independently of the server's own profile code, so a
 * drift in either shows. It reads certificates with OpenSSL and decides nothing else.
 */
#ifndef CLAIMD_TEST_DAC_CHECK_H
#define CLAIMD_TEST_DAC_CHECK_H

#include <openssl/x509.h>

/**
 * Checks @p dac against the DAC profile, issued by @p pai (itself checked to chain to
 * @p paa when that is not NULL), for subject CN @p cn (NULL: not compared), vendor
 * id @p vid and product id @p pid (four upper-case hex digits). Returns NULL when every
 * rule holds, else a short description of the first rule broken (a static string).
 */
const char *dac_profile_check(X509 *dac, X509 *pai, X509 *paa, const char *cn, const char *vid,
                              const char *pid);
/** Reads one PEM or DER certificate from @p path; NULL if it cannot. */
X509 *dac_read_cert(const char *path);
/** Parses one PEM certificate from @p pem (@p n bytes); NULL if it cannot. */
X509 *dac_parse_pem(const char *pem, size_t n);

#endif
