/*
 * Claim data: registered devices (read side), claim sessions, nodes, certificates and
 * the audit trail. Every function is one prepared statement, so with autocommit each
 * is one transaction and one commit.
 */
#ifndef CLAIMD_DB_CLAIMS_H
#define CLAIMD_DB_CLAIMS_H

#include <stdbool.h>
#include <stdint.h>

#include "claimd/crypto.h"
#include "claimd/db.h"

struct audit_rec {
	const char *event;   /* "initiate" | "verify" */
	const char *flow;    /* "self" | "user" */
	const char *outcome; /* "ok" | "refused" | "error" */
	const char *reason;  /* err_name() */
	const char *mac, *node_id, *user_id, *remote_addr, *request_id, *serial; /* or NULL */
};

struct self_claim {
	const char *auth_id, *mac, *challenge;
	int64_t expires;
	unsigned max_attempts;
	const char *node_id;
	const char *node_policies; /* or NULL */
	const char *serial, *pem;
	int64_t not_before, not_after;
	const uint8_t *key_sha256; /* 32 bytes */
	const char *remote_addr, *request_id;
};

/**
 * Looks up a registered device. DB_OK with @p platform and @p sealed filled,
 * DB_NO_ROWS when the MAC is not registered, DB_SOFT/DB_HARD on failure.
 */
enum db_status db_device_get(struct db *db, const char *mac, char platform[33],
                             uint8_t sealed[SEALED_EFUSE_BYTES]);
/** Appends one audit row. */
enum db_status db_audit(struct db *db, const struct audit_rec *a);
/**
 * Consumes the claim session (single use, fewer than max_attempts wrong answers),
 * records the node and certificate and an 'ok' audit row, in one statement.
 * DB_OK: committed. DB_NO_ROWS: the session was already used or burned; nothing written.
 */
enum db_status db_self_claim_commit(struct db *db, const struct self_claim *c);
/**
 * Counts a wrong challenge response against the session and audits it, in one
 * statement; *@p attempts gets the new count.
 */
enum db_status db_session_wrong(struct db *db, const struct self_claim *c, unsigned *attempts);
/** Reads a session's state: DB_NO_ROWS when it has no row yet. */
enum db_status db_session_state(struct db *db, const char *auth_id, unsigned *attempts, bool *used);
/** Deletes sessions expired for more than an hour; *@p n gets the count. */
enum db_status db_sessions_gc(struct db *db, long *n);

#endif
