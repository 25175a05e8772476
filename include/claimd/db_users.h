/*
 * The user flow's data: node_ids reserved per (user, MAC) at initiate, the quota, the
 * verify that turns a pending initiate into a certificate, and the operator's views of
 * nodes. C structs in and out; no SQL leaves the db files.
 */
#ifndef CLAIMD_DB_USERS_H
#define CLAIMD_DB_USERS_H

#include <stdbool.h>
#include <stdint.h>

#include "claimd/db.h"

struct user_initiate {
	const char *user, *mac, *platform;
	unsigned ttl;           /* seconds the initiate stays pending */
	unsigned default_quota; /* users.quota; 0 = unlimited */
	char *new_node_id;      /* used if the (user, MAC) has no node yet */
	const char *remote_addr, *request_id;
	/* out */
	char node_id[65];
	bool over_quota;
	bool created;
};

struct user_verify {
	const char *user, *node_id, *node_policies;
	const char *serial, *pem;
	int64_t not_before, not_after;
	const uint8_t *key_sha256;
	const char *remote_addr, *request_id;
	/* out */
	char mac[13];
};

/**
 * In one transaction: the (user, MAC)'s node_id (made from new_node_id on first use,
 * under a per-user lock that makes the quota exact with several daemons), marked
 * pending for ttl seconds, and an audit row. DB_OK, or DB_NO_ROWS with over_quota.
 */
enum db_status db_user_initiate(struct db *db, void *user_initiate);
/**
 * Spends the user's pending initiate of node_id and records the certificate and an
 * audit row, in one statement. DB_OK with mac, or DB_NO_ROWS when this user has no
 * pending initiate of that node_id.
 */
enum db_status db_user_verify(struct db *db, void *user_verify);
/** Sets a user's quota override (0 = unlimited). */
enum db_status db_user_set_quota(struct db *db, const char *user, unsigned quota);

struct node_info {
	const char *node_id, *mac, *user_id, *platform, *policies;
	const char *created_at, *claimed_at; /* text timestamps; claimed_at may be "" */
	long certificates;
};

struct cert_info {
	const char *serial, *not_before, *not_after, *issued_at, *key_sha256;
};

/** Calls @p fn for each node of @p user (or, with @p user NULL, of MAC/node_id @p key). */
enum db_status db_nodes_find(struct db *db, const char *user, const char *key,
                             void (*fn)(void *, const struct node_info *), void *arg);
/** Calls @p fn for each certificate of @p node_id, oldest first. */
enum db_status db_node_certs(struct db *db, const char *node_id,
                             void (*fn)(void *, const struct cert_info *), void *arg);

#endif
