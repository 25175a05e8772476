/*
 * The audit trail: one append-only row per claim request's outcome. The row's reason
 * is always the error-table name that claim.c decided (err_name()); the database only
 * stores it. C structs in, a status out.
 */
#ifndef CLAIMD_DB_AUDIT_H
#define CLAIMD_DB_AUDIT_H

#include "db/db.h"

struct audit_rec {
	const char *event;   /* "initiate" | "verify" */
	const char *flow;    /* "self" | "user" */
	const char *outcome; /* "ok" | "refused" | "error" */
	const char *reason;  /* err_name(): "OK" or the refusal's error-table name */
	const char *mac, *node_id, *user_id, *remote_addr, *request_id, *serial; /* or NULL */
	const char *detail; /* operator actions: who, and why (or NULL) */
};

/**
 * Appends one audit row, through the transaction runner. DB_OK; DB_SOFT when retries
 * are exhausted; DB_HARD on any other error (a value the schema refuses, say).
 */
enum db_status db_audit(struct db *db, const struct audit_rec *a);
/**
 * The same, but its commit does not wait for the disk (a crash can lose the last
 * fraction of a second of these). For initiates, which change nothing else.
 */
enum db_status db_audit_async(struct db *db, const struct audit_rec *a);

#endif
