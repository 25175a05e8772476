/*
 * A Matter PKI for the tests, made with the openssl program at test time: a PAA, the
 * good PAI, and certificates of any shape the extension sections of its openssl config
 * describe (good ones, and ones that break one rule each).
 */
#ifndef CLAIMD_TEST_MATTER_PKI_H
#define CLAIMD_TEST_MATTER_PKI_H

#include <stdbool.h>

#define VID "131B" /* the vendor id of the PAA and PAI */

#define EC_KEY_CMD  "openssl ecparam -name prime256v1 -genkey -noout -out"
#define P384_CMD    "openssl ecparam -name secp384r1 -genkey -noout -out"
#define RSA_KEY_CMD "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out"

/** Runs @p cmd in @p dir quietly; true on exit status 0 (else prints the output). */
bool pki_in_dir(const char *dir, const char *cmd);
/** A certificate @p name (.key, .pem) in @p dir signed by @p ca with key command
 * @p keycmd, subject @p subj, extension section @p ext and @p days of validity. */
bool pki_issue(const char *dir, const char *name, const char *keycmd, const char *subj,
               const char *ca, const char *ext, int days);
/** The PAA and the good PAI (paa.pem/.key, pai.pem/.key, vendor VID) in @p dir. */
bool pki_make(const char *dir);

#endif
