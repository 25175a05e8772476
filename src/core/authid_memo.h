/*
 * What a self initiate read of its device, kept in process memory for that auth_id's
 * verify, so that a verify served by the daemon that served its initiate (nearly all:
 * a device sends both within a second) needs no device lookup before the response is
 * checked. A shortcut only, never an authority: the verify's commit checks in the
 * database, in the statement that spends the session, that the device still has the
 * sealed key the answer was checked with and is not locked (db_self_claim_commit), and
 * any answer the memo does not lead to a success takes the full path (claim.c). A
 * verify on another daemon, or after its entry was evicted, simply finds nothing.
 *
 * Fixed memory: MEMO_SETS sets of MEMO_WAYS entries; a new entry takes the oldest
 * place in its set. Keys are hashed with a random per-process key. The sealed key is
 * the database's ciphertext (the eFuse key under the secrets key, which only the signer
 * holds); entries are wiped when taken or replaced.
 */
#ifndef CLAIMD_AUTHID_MEMO_H
#define CLAIMD_AUTHID_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/authid.h"
#include "lib/secure.h"

#define MEMO_SETS 4096
#define MEMO_WAYS 4

/* What the initiate read of the device the auth_id was issued to. */
struct memo_device {
	uint8_t sealed[SEALED_EFUSE_BYTES]; /* devices.efuse_key_sealed */
	bool has_failures;                  /* wrong answers were counted against the MAC */
};

struct authid_memo;

/** An empty memo of MEMO_SETS * MEMO_WAYS entries (2.4 MiB). NULL when out of memory. */
struct authid_memo *authid_memo_new(void);
/** Wipes and frees @p m; NULL is a no-op. */
void authid_memo_free(struct authid_memo *m);
/**
 * Keeps @p d for the auth_id @p auth_id (AUTHID_LEN characters) issued to @p mac (12
 * upper-case hex digits), valid until @p expires (unix seconds). Replaces the oldest
 * entry of its set. Does nothing for an auth_id of another length.
 */
void authid_memo_put(struct authid_memo *m, const char *auth_id, const char *mac, int64_t expires,
                     const struct memo_device *d);
/**
 * Takes (removes) the entry for @p auth_id (@p len bytes) when it exists, names @p mac
 * and has not expired at @p now (unix seconds), copying it to @p out. Returns false
 * otherwise (@p out untouched). An entry is taken at most once.
 */
bool authid_memo_take(struct authid_memo *m, const char *auth_id, size_t len, const char *mac,
                      int64_t now, struct memo_device *out);

#endif
