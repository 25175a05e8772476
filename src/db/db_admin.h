/*
 * What the management API reads beyond the other resource files: a node, the nodes of
 * a MAC, and a node's certificates with their PEM (devices: db_device_detail()).
 * Facts only; statuses are named by cert_status_name() and replies built by the handlers.
 */
#ifndef CLAIMD_DB_ADMIN_H
#define CLAIMD_DB_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/db_lifecycle.h"

/* A certificate with the facts listings show and its PEM. */
struct cert_pem {
	struct cert_row facts;
	char *pem; /* malloc'd */
};

/**
 * The certificates of @p node_id, oldest first, as a malloc'd array in *@p out of
 * *@p n; free it with db_cert_pems_free(). DB_OK; DB_NO_ROWS (none; *@p out NULL);
 * DB_SOFT or DB_HARD on failure.
 */
enum db_status db_node_cert_pems(struct db *db, const char *node_id, struct cert_pem **out,
                                 size_t *n);
/** Frees what db_node_cert_pems() returned; NULL is a no-op. */
void db_cert_pems_free(struct cert_pem *c, size_t n);

/* A node as the management API shows it. */
struct node_show {
	char node_id[NODE_ID_MAX + 1], mac[MAC_LEN + 1],
	    user_id[256];    /* user_id "" for a self-claimed node */
	char platform[33];   /* the device's for a self-claimed node */
	int64_t created_at;  /* unix seconds */
	int64_t claimed_at;  /* unix seconds; 0 if never claimed */
	int64_t released_at; /* unix seconds; 0 while live */
};

/**
 * The node @p node_id (live or released) into @p out. DB_OK; DB_NO_ROWS when there is
 * none; DB_SOFT or DB_HARD on failure.
 */
enum db_status db_node_show(struct db *db, const char *node_id, struct node_show *out);
/**
 * Every node (live or released) on normalised MAC @p mac, oldest first, as a malloc'd
 * array in *@p out of *@p n (the caller frees it). DB_OK; DB_NO_ROWS (none; *@p out
 * NULL); DB_SOFT or DB_HARD on failure.
 */
enum db_status db_device_nodes(struct db *db, const char *mac, struct node_show **out, size_t *n);

#endif
