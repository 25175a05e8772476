/*
 * Claim data: registered devices (read side), claim sessions, nodes, certificates and
 * MAC lockouts. Each function runs its own transaction through the runner (one
 * statement, so one commit); the database reports facts through out-parameters and
 * claim.c decides what they mean. Audited statements take the row claim.c built.
 */
#ifndef CLAIMD_DB_CLAIMS_H
#define CLAIMD_DB_CLAIMS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/secure.h"
#include "db/db.h"
#include "db/db_audit.h"

/* A self claim's session and what it produced, for the commit and the wrong answer. */
struct self_claim {
	const char *auth_id, *mac, *challenge;
	int64_t expires; /* the auth_id's expiry, unix seconds */
	unsigned max_attempts;
	const char *node_id;
	const char *node_policies; /* or NULL */
	const char *serial, *pem;
	int64_t not_before, not_after; /* unix seconds */
	const uint8_t *key_sha256;     /* 32 bytes: SHA-256 of the SubjectPublicKeyInfo */
	const uint8_t *sealed;         /* SEALED_EFUSE_BYTES: the key the answer was checked with */
	bool forgive;                  /* also reset the MAC's count of wrong answers */
	bool supersede;                /* revoke the node's earlier certificates ... */
	int supersede_reason;          /* ... with this RFC 5280 reason code ... */
	const char *superseded_by;     /* ... noting this */
};

/* A registered device, as the claim path needs it. */
struct device_row {
	char platform[33];
	uint8_t sealed[SEALED_EFUSE_BYTES];
	unsigned locked_for; /* seconds its lockout still runs, 0 if none */
	bool has_failures;   /* wrong answers are counted against it */
};

/**
 * Looks up a registered device and its lockout. DB_OK with @p out filled, DB_NO_ROWS
 * when the MAC is not registered, DB_SOFT (busy) or DB_HARD on failure.
 */
enum db_status db_device_get(struct db *db, const char *mac, struct device_row *out);
/* What the database knows of a MAC when a device starts a self claim. */
struct device_facts {
	bool found;          /* the MAC is registered */
	bool platform_ok;    /* with the platform the device named */
	unsigned locked_for; /* seconds its lockout still runs, 0 if none */
	/* set when found, for the verify (authid_memo.h): */
	uint8_t sealed[SEALED_EFUSE_BYTES]; /* its sealed eFuse key */
	bool has_failures;                  /* wrong answers are counted against it */
};

/* The facts' combinations, as db_self_initiate() indexes them: found * 4 +
 * platform_ok * 2 + locked. */
#define DEVICE_FACT_COMBINATIONS 8

/**
 * The self initiate in one statement (one round trip): looks up @p mac's facts and
 * appends the audit row @p a whose outcome and reason are the ones the caller decided
 * for those facts, given for every combination in @p outcome and @p reason (indexed as
 * above; a->outcome and a->reason are not used). The row is committed without waiting
 * for the disk. DB_OK with @p out set (with the device's sealed key and whether it has
 * failures counted, when found); DB_SOFT (busy) or DB_HARD (then nothing was written).
 */
enum db_status db_self_initiate(struct db *db, const char *mac, const char *platform,
                                const struct audit_rec *a,
                                const char *const outcome[DEVICE_FACT_COMBINATIONS],
                                const char *const reason[DEVICE_FACT_COMBINATIONS],
                                struct device_facts *out);
/* What a self claim's commit found. */
struct commit_facts {
	bool spent;          /* the session was spent and everything recorded */
	bool same_key;       /* the device still has the sealed key c->sealed */
	unsigned locked_for; /* seconds the MAC's lockout still runs, 0 if none */
	bool counted;        /* wrong answers are counted against the MAC, read in the statement */
};
/**
 * Spends the claim session (single use, fewer than max_attempts wrong answers) and
 * records the node (live again if it was released), the certificate and the audit row
 * @p a, and with c->supersede revokes the node's earlier certificates, in one statement;
 * but only when, read in that statement, the device still has the sealed key c->sealed
 * and its MAC is not locked. DB_OK with @p out filled: out->spent when committed;
 * otherwise nothing was written, and out->same_key false (the device's key was replaced
 * or the device deleted), out->locked_for non-zero (the MAC is locked), or neither (the
 * session was already used or burned); out->counted either way: whether the MAC had wrong
 * answers counted when the statement read it (with c->forgive they are reset when spent).
 * With c->supersede, a statement that finds the node changed by a claim committed after
 * its start fails with SQLSTATE 40001 and is run again (db_run()), so that it revokes
 * that claim's certificate too; still so after the last try: DB_SOFT. DB_SOFT (busy) or
 * DB_HARD on failure; then nothing was written either.
 */
enum db_status db_self_claim_commit(struct db *db, const struct self_claim *c,
                                    const struct audit_rec *a, struct commit_facts *out);

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
 * for twice as long as last time up to the policy's longest, when its failures reach
 * the policy's threshold) and appends the audit row @p a, in one statement.
 * DB_OK with @p out filled; DB_SOFT (busy) or DB_HARD on failure.
 */
enum db_status db_session_wrong(struct db *db, const struct self_claim *c,
                                const struct lockout_policy *lp, const struct audit_rec *a,
                                struct wrong_result *out);
/** Lifts a MAC's lockout and forgets its failures. DB_OK; DB_NO_ROWS if it had none. */
enum db_status db_mac_unlock(struct db *db, const char *mac);
/**
 * Forgets the wrong answers counted against MAC @p mac (12 upper-case hex digits), but
 * not its lockouts or a lock that runs. DB_OK; DB_NO_ROWS when it had none counted;
 * DB_SOFT (busy) or DB_HARD on failure.
 */
enum db_status db_mac_forgive(struct db *db, const char *mac);
/**
 * Reads a session's state: wrong answers so far and whether it was spent. DB_OK;
 * DB_NO_ROWS when it has no row (never verified); DB_SOFT or DB_HARD on failure.
 */
enum db_status db_session_state(struct db *db, const char *auth_id, unsigned *attempts, bool *used);
/** Deletes sessions expired for more than an hour; *@p n gets the count. DB_OK or failure. */
enum db_status db_sessions_gc(struct db *db, long *n);

#endif
