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
	bool forgive; /* also reset the MAC's count of wrong answers */
};

/* A registered device, as the verify needs it. */
struct device_row {
	char platform[33];
	uint8_t sealed[SEALED_EFUSE_BYTES];
	unsigned locked_for; /* seconds its lockout still runs, 0 if none */
	bool has_failures;   /* wrong answers are counted against it */
};

/**
 * Looks up a registered device. DB_OK with @p out filled, DB_NO_ROWS when the MAC is
 * not registered, DB_SOFT/DB_HARD on failure.
 */
enum db_status db_device_get(struct db *db, const char *mac, struct device_row *out);
/* A self-claim initiate: the device looked up and the audit row written together. */
struct self_initiate {
	const char *mac, *platform, *remote_addr, *request_id;
	/* The error names the audit row records for each refusal. */
	const char *why_unknown, *why_platform, *why_locked;
	bool found, platform_ok; /* out */
	unsigned locked_for;     /* out: seconds the MAC's lockout still runs, 0 if none */
};

/**
 * Looks up @p q's device and appends the initiate's audit row in one statement,
 * committed without waiting for the disk: refused as why_unknown, why_platform or
 * why_locked (checked in that order), else OK. DB_OK with the outputs of @p q set,
 * DB_SOFT/DB_HARD on failure (then no row was written).
 */
enum db_status db_self_initiate(struct db *db, struct self_initiate *q);
/** Appends one audit row. */
enum db_status db_audit(struct db *db, const struct audit_rec *a);
/**
 * Appends one audit row without waiting for its commit to reach disk (a crash can lose
 * the last fraction of a second of these). For initiates, which change nothing else.
 */
enum db_status db_audit_async(struct db *db, const struct audit_rec *a);
/**
 * Consumes the claim session (single use, fewer than max_attempts wrong answers),
 * records the node and certificate and an 'ok' audit row, in one statement.
 * DB_OK: committed. DB_NO_ROWS: the session was already used or burned; nothing written.
 */
enum db_status db_self_claim_commit(struct db *db, const struct self_claim *c);
struct lockout_policy {
	unsigned failures;    /* wrong answers that lock the MAC; 0 = never */
	unsigned seconds;     /* the first lock */
	unsigned max_seconds; /* the longest lock */
};

struct wrong_result {
	unsigned attempts;   /* wrong answers to this auth_id so far */
	unsigned locked_for; /* seconds the MAC's lock runs (0: not locked) */
	bool just_locked;    /* this answer locked it */
};

/**
 * Counts a wrong challenge response against the session and the MAC (locking the MAC,
 * for twice as long as last time, when it reaches the policy's threshold) and audits
 * it, in one statement.
 */
enum db_status db_session_wrong(struct db *db, const struct self_claim *c,
                                const struct lockout_policy *lp, struct wrong_result *out);
/** Lifts a MAC's lockout and forgets its failures. DB_NO_ROWS if it had none. */
enum db_status db_mac_unlock(struct db *db, const char *mac);
/** Reads a session's state: DB_NO_ROWS when it has no row yet. */
enum db_status db_session_state(struct db *db, const char *auth_id, unsigned *attempts, bool *used);
/** Deletes sessions expired for more than an hour; *@p n gets the count. */
enum db_status db_sessions_gc(struct db *db, long *n);

#endif
