/*
 * The user flow's data: node_ids reserved per (user, MAC) at initiate, the quota, the
 * verify that turns a pending initiate into a certificate, and the operator's views of
 * nodes. Each function runs its own transaction through the runner; C structs in and
 * out, facts only: claim.c decides what they mean. No SQL leaves the db files.
 */
#ifndef CLAIMD_DB_USERS_H
#define CLAIMD_DB_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/db_audit.h"
#include "lib/vocab.h"

struct user_initiate {
	const char *user, *mac, *platform;
	unsigned ttl;           /* seconds the initiate stays pending */
	unsigned default_quota; /* users.quota; 0 = unlimited */
	bool refuse_held;       /* claim_user_initiate_tx: refuse a MAC another user holds */
	/* out */
	char node_id[NODE_ID_MAX + 1];
	bool over_quota; /* the user holds as many MACs as the quota allows */
	bool held;       /* with refuse_held: another user holds the MAC (nothing written) */
	bool created;    /* the (user, MAC) got its node_id just now */
};

struct user_verify {
	const char *user, *node_id, *node_policies;
	const char *serial, *pem;
	int64_t not_before, not_after; /* unix seconds */
	const uint8_t *key_sha256;     /* 32 bytes */
	bool supersede;                /* revoke the node's earlier certificates ... */
	int supersede_reason;          /* ... with this RFC 5280 reason code ... */
	const char *superseded_by;     /* ... noting this */
	const char *profile;           /* "node" (the CA's) or "matter-dac" (the PAI's) */
	/* out */
	char mac[MAC_LEN + 1];
};

/**
 * A step, for a db_transaction() body (claim.c writes the transaction): the (user,
 * MAC)'s node_id (@p candidate, at most NODE_ID_MAX characters of [A-Za-z0-9_-], on
 * first use, under a per-user lock that makes the quota exact with several daemons),
 * marked pending for ttl seconds, and the audit row @p a (its node_id and mac filled in
 * here). DB_OK with node_id; DB_NO_ROWS with over_quota (nothing written); DB_SOFT when
 * @p candidate collided with another node_id (the body runs again with a new one) or
 * the database was busy; DB_HARD on failure.
 */
enum db_status db_user_initiate(struct db *db, struct user_initiate *u, const char *candidate,
                                const struct audit_rec *a);
/**
 * Spends the user's pending initiate of node_id and records the certificate and the
 * audit row @p a (its mac filled from the node), in one statement. DB_OK with mac;
 * DB_NO_ROWS when this user has no pending initiate of that node_id (nothing written);
 * DB_SOFT (busy) or DB_HARD on failure.
 */
enum db_status db_user_verify(struct db *db, struct user_verify *v, const struct audit_rec *a);
/**
 * db_user_verify() as a step, for a db_transaction() body (claim.c writes the
 * transaction): the same statement in the caller's transaction. The same results.
 */
enum db_status db_user_verify_step(struct db *db, struct user_verify *v, const struct audit_rec *a);
/**
 * A step: takes the per-MAC lock of the MAC of @p user's pending initiate of @p node_id
 * (held to the end of the transaction; every verify that reads the MAC's other holders
 * takes it first, on any daemon) and locks that node's row. DB_OK with @p mac (12
 * upper-case hex digits); DB_NO_ROWS when @p user has no pending initiate of that
 * node_id; DB_SOFT (busy, deadlock) or DB_HARD on failure.
 */
enum db_status db_user_verify_lock(struct db *db, const char *user, const char *node_id,
                                   char mac[MAC_LEN + 1]);

/* Another user's live node of a MAC that holds a valid certificate. */
struct mac_holder {
	char node_id[NODE_ID_MAX + 1];
	char user_id[256];
	bool same_key; /* one of its valid certificates is of the key asked about */
};

/**
 * A step: the live nodes of users other than @p user that hold an unrevoked, unexpired
 * certificate of @p mac (self-claimed nodes are no user's and are not listed), each
 * with whether one of those certificates is of the key whose SubjectPublicKeyInfo has
 * SHA-256 @p key_sha256 (32 bytes; NULL: same_key is false). A malloc'd array in
 * *@p out (the caller frees it) of *@p n entries. DB_OK; DB_NO_ROWS (none, *@p out
 * NULL); DB_SOFT or DB_HARD on failure.
 */
enum db_status db_mac_holders(struct db *db, const char *mac, const char *user,
                              const uint8_t *key_sha256, struct mac_holder **out, size_t *n);
/** Sets a user's quota override (0 = unlimited). DB_OK, DB_SOFT or DB_HARD. */
enum db_status db_user_set_quota(struct db *db, const char *user, unsigned quota);

struct node_info {
	char node_id[NODE_ID_MAX + 1], mac[MAC_LEN + 1], user_id[256], platform[33], policies[257];
	char created_at[48],
	    claimed_at[48]; /* PostgreSQL's text timestamps; claimed_at "" if never */
	int64_t certificates;
};

struct cert_info {
	char serial[SERIAL_HEX_LEN + 1], not_before[48], not_after[48], issued_at[48];
	char key_sha256[65]; /* hex */
};

/**
 * The nodes of @p user or, with @p user NULL, of MAC or node_id @p key, oldest first,
 * as a malloc'd array in *@p out (the caller frees it) of *@p n entries. DB_OK;
 * DB_NO_ROWS (none; *@p out NULL); DB_SOFT or DB_HARD on failure.
 */
enum db_status db_nodes_find(struct db *db, const char *user, const char *key,
                             struct node_info **out, size_t *n);
/** The certificates of @p node_id, oldest first; as db_nodes_find(). */
enum db_status db_node_certs(struct db *db, const char *node_id, struct cert_info **out, size_t *n);

#endif
