/*
 * Operator actions, in one place for the management API (src/daemon/handler_admin.c)
 * and claimctl (src/ctl/): registering devices, revoking certificates, releasing a
 * node, lifting a lockout, setting a quota. Each function here decides what is checked,
 * what is written and which audit row records it; the callers only parse their input
 * and print or reply the result. Knows nothing of HTTP or of a terminal.
 */
#ifndef CLAIMD_OPERATOR_H
#define CLAIMD_OPERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/db_devices.h"
#include "db/db_lifecycle.h"
#include "lib/csvimport.h"
#include "lib/secure.h"
#include "signer/signer.h"

/* Who acts, as the audit trail names them. */
struct operator_who {
	const char *actor;       /* the token's name, or "claimctl:USER" (ctl_actor()) */
	const char *remote_addr; /* the client's address (the API); NULL for claimctl */
	const char *request_id;  /* the request's id (the API); NULL for claimctl */
	bool api;                /* through the management API (else claimctl) */
};

/*
 * Who seals an eFuse key: the signer (claimd's network process holds no sealing key),
 * or the secrets key loaded here (claimctl's local path). Exactly one is set.
 */
struct operator_sealer {
	struct signer *signer;
	const struct secrets *local;
};

/**
 * Seals @p key for @p mac and computes its tag (efuse_seal(), efuse_tag()), through
 * @p by. CE_OK, CE_SIGNER_DOWN (the signer could not be asked) or CE_INTERNAL.
 */
enum claimd_err operator_seal(const struct operator_sealer *by, const char mac[MAC_LEN + 1],
                              const uint8_t key[EFUSE_KEY_BYTES],
                              uint8_t sealed[SEALED_EFUSE_BYTES], uint8_t tag[EFUSE_TAG_BYTES]);

/*
 * Registering devices, the one implementation for both entry points: begin, one
 * operator_register_row() per checked and sealed device, then finish (or abort). The
 * same rows again change nothing; a known MAC with another key or platform is a
 * conflict, stored only with replace.
 */
/** Starts a registration on @p db (db_import_begin()). DB_OK, DB_SOFT or DB_HARD. */
enum db_status operator_register_begin(struct db *db);
/** Adds device @p row (canonical, its key sealed by operator_seal()). DB_OK or DB_HARD (then
 * the caller aborts). */
enum db_status operator_register_row(struct db *db, const struct csv_row *row,
                                     const uint8_t sealed[SEALED_EFUSE_BYTES],
                                     const uint8_t tag[EFUSE_TAG_BYTES]);
/** Abandons a registration in progress. */
void operator_register_abort(struct db *db);
/**
 * Ends a registration (db_import_finish(): @p replace, @p skip_conflicts, conflicts
 * through @p report, locked MACs through @p locked or not at all) and audits it: through the API,
 * one 'register' row ("N added, M unchanged by ACTOR"); from claimctl devices import, none (the
 * file is the record). DB_OK with @p counts; DB_NO_ROWS on conflicts (nothing stored); DB_SOFT or
 * DB_HARD. A failed audit row is logged, not returned: the devices are stored.
 */
enum db_status operator_register_finish(struct db *db, const struct operator_who *who, bool replace,
                                        bool skip_conflicts, import_report_fn report,
                                        import_report_fn locked, struct import_reporter *r,
                                        struct import_counts *counts);

/**
 * Revokes the certificates @p sel names with RFC 5280 reason @p reason, noting the actor,
 * and audits each ('revoke', detail "REASON by ACTOR"): db_certs_revoke(), with its
 * results (@p matched, @p revoked, @p missing) and statuses.
 */
enum db_status operator_revoke(struct db *db, const struct operator_who *who,
                               const struct cert_selector *sel, int reason, long *matched,
                               long *revoked, char **missing);
/**
 * Releases live node @p node_id: its certificates revoked (cessationOfOperation), its
 * (user, MAC) freed, audited ('release', detail "released by ACTOR"): db_node_release(),
 * with its result @p revoked and statuses.
 */
enum db_status operator_release(struct db *db, const struct operator_who *who, const char *node_id,
                                long *revoked);
/** Lifts the lockout of canonical MAC @p mac (db_mac_unlock()): DB_OK; DB_NO_ROWS when it
 * was not locked; DB_SOFT or DB_HARD. */
enum db_status operator_unlock(struct db *db, const struct operator_who *who, const char *mac);
/** Whether @p user and @p quota are ones operator_set_quota() takes (1-255 characters;
 * 0-OPERATOR_QUOTA_MAX devices, 0 = unlimited). */
bool operator_quota_ok(const char *user, unsigned long quota);
#define OPERATOR_QUOTA_MAX 1000000
/** Sets @p user's quota override (db_user_set_quota()). DB_OK, DB_SOFT or DB_HARD. */
enum db_status operator_set_quota(struct db *db, const struct operator_who *who, const char *user,
                                  unsigned quota);

#endif
