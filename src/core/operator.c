/*
 * Operator actions (operator.h): the one implementation of each, shared by the
 * management API and claimctl, with the audit rows they write. The database does the
 * work in one transaction per action; this file decides what it is asked and records.
 */
#include "core/operator.h"

#include <stdio.h>
#include <string.h>

#include "core/revocation.h"
#include "db/db_audit.h"
#include "db/db_claims.h"
#include "db/db_users.h"
#include "lib/log.h"

enum claimd_err operator_seal(const struct operator_sealer *by, const char mac[MAC_LEN + 1],
                              const uint8_t key[EFUSE_KEY_BYTES],
                              uint8_t sealed[SEALED_EFUSE_BYTES], uint8_t tag[EFUSE_TAG_BYTES])
{
	if (by->local) {
		efuse_seal(by->local, mac, key, sealed);
		efuse_tag(by->local, mac, key, tag);
		return CE_OK;
	}
	int rc = signer_seal(by->signer, mac, key, sealed, tag);
	return rc == SIGNER_OK ? CE_OK : rc == SIGNER_DOWN ? CE_SIGNER_DOWN : CE_INTERNAL;
}

enum db_status operator_register_begin(struct db *db)
{
	return db_import_begin(db);
}

enum db_status operator_register_row(struct db *db, const struct csv_row *row,
                                     const uint8_t sealed[SEALED_EFUSE_BYTES],
                                     const uint8_t tag[EFUSE_TAG_BYTES])
{
	return db_import_row(db, row->line, row->mac, row->platform, sealed, tag);
}

void operator_register_abort(struct db *db)
{
	db_import_abort(db);
}

enum db_status operator_register_finish(struct db *db, const struct operator_who *who, bool replace,
                                        bool skip_conflicts, import_report_fn report,
                                        import_report_fn locked, struct import_reporter *r,
                                        struct import_counts *counts)
{
	char detail[160];
	enum db_status s = db_import_finish(db, replace, skip_conflicts, report, locked, r, counts);

	if (s != DB_OK || !who->api)
		return s;
	snprintf(detail, sizeof(detail), "%ld added, %ld unchanged by %s", counts->added,
	         counts->unchanged, who->actor);
	struct audit_rec a = {.event = "register",
	                      .flow = "operator",
	                      .outcome = "ok",
	                      .reason = "OK",
	                      .remote_addr = who->remote_addr,
	                      .request_id = who->request_id,
	                      .detail = detail};
	if (db_audit(db, &a) < DB_NO_ROWS)
		log_error("registered %ld device(s) but could not audit it", counts->added);
	return s;
}

enum db_status operator_revoke(struct db *db, const struct operator_who *who,
                               const struct cert_selector *sel, int reason, long *matched,
                               long *revoked, char **missing)
{
	char detail[160];

	snprintf(detail, sizeof(detail), "%s by %s", crl_reason_name(reason), who->actor);
	struct audit_rec a = {.event = "revoke",
	                      .flow = "operator",
	                      .outcome = "ok",
	                      .reason = "OK",
	                      .remote_addr = who->remote_addr,
	                      .request_id = who->request_id,
	                      .detail = detail};
	return db_certs_revoke(db, sel, reason, who->actor, &a, matched, revoked, missing);
}

enum db_status operator_release(struct db *db, const struct operator_who *who, const char *node_id,
                                long *revoked)
{
	char detail[160];

	snprintf(detail, sizeof(detail), "released by %s", who->actor);
	struct audit_rec a = {.event = "release",
	                      .flow = "operator",
	                      .outcome = "ok",
	                      .reason = "OK",
	                      .node_id = node_id,
	                      .remote_addr = who->remote_addr,
	                      .request_id = who->request_id,
	                      .detail = detail};
	return db_node_release(db, node_id, CRL_REASON_CESSATION_OF_OPERATION, who->actor, &a,
	                       revoked);
}

enum db_status operator_unlock(struct db *db, const struct operator_who *who, const char *mac)
{
	(void)who; /* no audit row: claimctl devices unlock never wrote one */
	return db_mac_unlock(db, mac);
}

bool operator_quota_ok(const char *user, unsigned long quota)
{
	return quota <= OPERATOR_QUOTA_MAX && user[0] && strlen(user) <= 255;
}

enum db_status operator_set_quota(struct db *db, const struct operator_who *who, const char *user,
                                  unsigned quota)
{
	(void)who; /* no audit row: claimctl users quota never wrote one */
	return db_user_set_quota(db, user, quota);
}
