/*
 * Where keys are, for the signer's tests: reading another process's memory (every
 * readable mapping of /proc/PID/mem searched for a byte string; needs root for a
 * process of another user or one that is not dumpable, the signer), and putting a key
 * in a SoftHSM2 token made at test time.
 */
#ifndef CLAIMD_TEST_PROC_SCAN_H
#define CLAIMD_TEST_PROC_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A byte string to look for, in both byte orders (OpenSSL keeps a BIGNUM's limbs
 * little-endian in memory). */
struct needle {
	const char *what;
	uint8_t be[512], le[512];
	size_t n;
};

/** Sets @p nd to the @p n bytes at @p b (at most 512), named @p what for messages. */
void needle_set(struct needle *nd, const char *what, const uint8_t *b, size_t n);
/**
 * Whether process @p pid's readable memory holds @p nd in either order. Mappings over
 * 1 GiB (a sanitizer's shadow, reserved) are skipped; a scan that finds nothing must
 * have read over 1 MiB, else the case fails.
 */
bool memory_holds(pid_t pid, const struct needle *nd);
/** The claimd-signer child of claimd @p parent, or -1. */
pid_t signer_of(pid_t parent);
/** The private scalar (EC) or first prime (RSA) of the PEM key at @p path. */
bool key_secret(const char *path, struct needle *nd);

struct tenv;
/**
 * A SoftHSM2 token (label claimd-ca) in the case's folder holding the PEM key at
 * @p key_pem, imported with PIN 1234 and label "ca"; @p pin_in_file is what the
 * pin-source file says (a wrong one for the refusal tests). The token's files belong
 * to nobody, the signer's user in the tests, and SOFTHSM2_CONF is set for claimd to
 * inherit. Writes the pkcs11: URI to @p uri.
 */
bool hsm_token(const struct tenv *t, const char *key_pem, const char *pin_in_file, char *uri,
               size_t urisz);

#endif
