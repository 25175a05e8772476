/*
 * The certificate lifecycle's data: revocations (by an operator, by a re-claim that
 * supersedes, by a release), certificate listings with what is known of each, released
 * nodes, and the CRLs every replica shares. Each function runs its own transaction
 * through the runner; facts out, the meaning (a status name, whether a CRL is stale)
 * is decided by the callers in src/core.
 */
#ifndef CLAIMD_DB_LIFECYCLE_H
#define CLAIMD_DB_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/db_audit.h"
#include "lib/vocab.h"

/* Which certificates an operator names: exactly one of the three. */
struct cert_selector {
	const char *const *serials; /* upper-case hex, n_serials of them */
	size_t n_serials;
	const char *node_id;
	const char *mac;
};

/**
 * Revokes the selected certificates not yet revoked, with RFC 5280 reason code
 * @p reason, noting @p by, and appends one audit row per certificate from @p a (its
 * mac, node_id, user_id and serial filled from each certificate). Idempotent: already
 * revoked ones keep their first revocation. *@p matched gets how many certificates the
 * selector found, *@p revoked how many this call revoked, *@p missing the named serials
 * that do not exist, space-separated and malloc'd (the caller frees it), or NULL when
 * there are none. DB_OK (even when nothing was new), DB_NO_ROWS when nothing matched,
 * DB_SOFT or DB_HARD on failure.
 */
enum db_status db_certs_revoke(struct db *db, const struct cert_selector *sel, int reason,
                               const char *by, const struct audit_rec *a, long *matched,
                               long *revoked, char **missing);

/* A certificate as listings show it: facts, from which cert_status_name() decides. */
struct cert_row {
	char serial[SERIAL_HEX_LEN + 1], node_id[NODE_ID_MAX + 1], mac[MAC_LEN + 1];
	int64_t not_before, not_after, issued_at; /* unix seconds */
	bool revoked;
	int64_t revoked_at; /* unix seconds, 0 if not revoked */
	int64_t reason;     /* RFC 5280 code when revoked */
	bool expired;       /* not_after has passed */
};

/** Which certificates a listing wants; NULL fields do not filter. */
struct cert_filter {
	const char *node_id, *mac;
	bool revoked_only;
	const char *serial; /* 32 upper-case hex digits (cert_serial_parse()), or NULL */
};

/**
 * The certificates @p f selects, oldest first, as a malloc'd array in *@p out of *@p n
 * (the caller frees it). DB_OK; DB_NO_ROWS (none; *@p out NULL); DB_SOFT or DB_HARD.
 */
enum db_status db_certs_list(struct db *db, const struct cert_filter *f, struct cert_row **out,
                             size_t *n);

/**
 * Releases live node @p node_id: revokes its certificates with RFC 5280 reason code
 * @p reason noting @p by, ends any pending initiate, and marks it released so that its (user,
 * MAC) is free and no longer counts toward the quota; appends the audit row @p a (its
 * mac and user filled from the node) and one 'revoke' row per certificate. *@p revoked
 * gets how many certificates this revoked. DB_OK; DB_NO_ROWS when there is no live node
 * of that id; DB_SOFT or DB_HARD on failure.
 */
enum db_status db_node_release(struct db *db, const char *node_id, int reason, const char *by,
                               const struct audit_rec *a, long *revoked);
/**
 * db_node_release() as a step, for a db_transaction() body (claim.c's ownership
 * transfer): the same statement, the same results, in the caller's transaction.
 */
enum db_status db_node_release_step(struct db *db, const char *node_id, int reason, const char *by,
                                    const struct audit_rec *a, long *revoked);

/* A live node with its valid certificates, for registering nodes with a backend. */
struct node_export {
	char node_id[NODE_ID_MAX + 1], mac[MAC_LEN + 1], user_id[256], platform[33];
	char *certs; /* its valid certificates' PEM, oldest first, joined by newlines */
};

/* Where exported rows go: a struct the caller defines for itself. */
struct export_sink;
/** Takes one exported node; 0 to go on, -1 to stop (the export then fails). */
typedef int (*node_export_fn)(struct export_sink *s, const struct node_export *n);

/**
 * Every live node (of @p user, or all with NULL) that has a valid certificate (not
 * revoked, not expired), oldest first, each passed to @p fn. DB_OK; DB_NO_ROWS (none);
 * DB_HARD when @p fn stopped; DB_SOFT or DB_HARD on failure.
 */
enum db_status db_nodes_export(struct db *db, const char *user, node_export_fn fn,
                               struct export_sink *s);

/* One audit row as exported. */
struct audit_export {
	int64_t id;
	char at[40]; /* RFC 3339, UTC, microseconds */
	char event[16], flow[16], outcome[16], reason[65];
	char mac[MAC_LEN + 1], node_id[NODE_ID_MAX + 1], user_id[256], remote_addr[65],
	    request_id[65], serial[SERIAL_HEX_LEN + 1];
	char detail[257];
	bool has_mac, has_node_id, has_user_id, has_remote_addr, has_request_id, has_serial,
	    has_detail;
};

/** Takes one audit row; 0 to go on, -1 to stop (the export then fails). */
typedef int (*audit_export_fn)(struct export_sink *s, const struct audit_export *a);

/**
 * The audit rows recorded at or after @p since and before @p until (RFC 3339 text as
 * PostgreSQL's timestamptz reads it; NULL = unbounded), in the order they were written,
 * each passed to @p fn; read in pages of a few thousand, so memory stays flat for any
 * number of rows. DB_OK (also with none); DB_HARD when @p fn stopped or a bound does not
 * parse; DB_SOFT or DB_HARD on failure.
 */
enum db_status db_audit_export(struct db *db, const char *since, const char *until,
                               audit_export_fn fn, struct export_sink *s);

/* The newest stored CRL of an issuer, and how many revocations exist now. */
struct crl_facts {
	bool have;             /* a CRL of this issuer is stored (else the fields below are 0) */
	int64_t number;        /* its cRLNumber */
	int64_t revoked_count; /* how many revoked certificates it lists */
	int64_t next_update;   /* unix seconds */
	int64_t this_update;   /* unix seconds */
	int64_t revoked_now;   /* revoked certificates committed now */
	int64_t max_number;    /* the highest cRLNumber of any issuer, 0 if none */
};

/**
 * The DER of stored CRL @p number as a malloc'd buffer in *@p der of *@p len bytes.
 * DB_OK; DB_NO_ROWS if there is no such CRL; DB_SOFT or DB_HARD.
 */
enum db_status db_crl_get(struct db *db, int64_t number, uint8_t **der, size_t *len);

/*
 * The steps of a CRL refresh, for a db_transaction() body (revocation.c decides whether
 * to build and signs): take the lock, read the facts, and when a new CRL is due, read
 * every revocation and store the signed CRL. Each is a step: it runs in the caller's
 * transaction and is never retried by itself.
 */
/** A step: takes the database-wide CRL lock (two replicas never build at once and
 * numbers only grow) until the transaction ends. DB_OK or DB_NO_ROWS; DB_SOFT, DB_HARD. */
enum db_status db_crl_lock(struct db *db);
/** A step: reads @p f for the CA whose public key hashes to @p issuer_key_id. DB_OK,
 * DB_SOFT, DB_HARD. */
enum db_status db_crl_facts(struct db *db, const uint8_t issuer_key_id[32], struct crl_facts *f);
/**
 * A step: every revoked certificate, in serial order, as a malloc'd array in *@p e of
 * *@p n entries (the caller frees it). DB_OK; DB_NO_ROWS (none, *@p e NULL); DB_SOFT or
 * DB_HARD.
 */
enum db_status db_crl_revoked(struct db *db, struct revoked_entry **e, size_t *n);
/**
 * A step: stores CRL @p number of the CA @p issuer_key_id, listing @p n revocations,
 * valid @p this_update .. @p next_update (unix seconds), DER @p der of @p len bytes.
 * DB_OK; DB_SOFT or DB_HARD.
 */
enum db_status db_crl_store(struct db *db, int64_t number, const uint8_t issuer_key_id[32],
                            size_t n, int64_t this_update, int64_t next_update, const uint8_t *der,
                            size_t len);

#endif
