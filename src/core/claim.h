/*
 * The claim rules, self and user flows: which device or user may start a claim, how a
 * response is checked, when a challenge is spent, and what is recorded. Inputs are
 * already-parsed C strings; this layer knows nothing of HTTP or JSON, decides every
 * outcome itself, and writes an audit row for each one.
 */
#ifndef CLAIMD_CLAIM_H
#define CLAIMD_CLAIM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/authid.h"
#include "x509/ca.h"
#include "db/db_users.h"
#include "core/runtime.h"

struct authid_memo;

struct claim_ctx {
	struct runtime *rt;
	struct db *db;
	struct authid_memo *memo; /* this process's initiate-to-verify memo, or NULL */
	struct metrics *metrics;  /* counts where self verifies took the device from, or NULL */
	const char *remote_addr;
	const char *request_id;
	const char *user;     /* the token's user (assisted / host-driven), or NULL (self) */
	bool matter;          /* a Matter verify: audited with flow "matter" */
	unsigned retry_after; /* out: seconds for Retry-After with CE_MAC_LOCKED */
	/* out, for the access log: the MAC and node_id a verify turned out to be about
	 * ("" when not known) */
	char mac[MAC_LEN + 1];
	char node_id[NODE_ID_MAX + 1];
};

struct initiate_result {
	char auth_id[AUTHID_LEN + 1];
	char challenge[CHALLENGE_LEN + 1];
};

struct verify_request {
	const char *auth_id;
	size_t auth_id_len;
	const char *response; /* challenge_response */
	size_t response_len;
	const char *csr;
	size_t csr_len;
	const char *node_policies; /* or NULL */
};

/**
 * Starts a self claim for normalised @p mac and @p platform.
 * Errors: CE_UNKNOWN_DEVICE, CE_PLATFORM_MISMATCH, CE_MAC_LOCKED, CE_BUSY, CE_INTERNAL.
 */
enum claimd_err claim_self_initiate(struct claim_ctx *cc, const char *mac, const char *platform,
                                    struct initiate_result *out);
/**
 * Finishes a self claim. On CE_OK *@p leaf_pem is the new certificate (PEM, no trailing
 * newline) for the caller to free. Errors: CE_AUTHID_INVALID, CE_AUTHID_EXPIRED,
 * CE_AUTHID_USED, CE_AUTHID_BURNED, CE_RESPONSE_FORMAT, CE_RESPONSE_WRONG, every
 * CE_CSR_* code, CE_UNKNOWN_DEVICE, CE_MAC_LOCKED, CE_BUSY, CE_SIGNER_DOWN (the signer
 * did not answer), CE_INTERNAL.
 */
enum claimd_err claim_self_verify(struct claim_ctx *cc, const struct verify_request *rq,
                                  char **leaf_pem);
/**
 * Assisted / host-driven initiate: the node_id of (cc->user, @p mac), made on first use
 * (22 random characters of [A-Za-z0-9]) and pending for the challenge TTL.
 * Errors: CE_MAC_HELD (claim.transfer refuse, and another user holds @p mac with a
 * valid certificate), CE_QUOTA, CE_BUSY, CE_INTERNAL.
 */
enum claimd_err claim_user_initiate(struct claim_ctx *cc, const char *mac, const char *platform,
                                    char node_id[NODE_ID_MAX + 1]);
/**
 * Assisted / host-driven verify: the CSR's CN must be a node_id cc->user initiated
 * within the TTL. Under claim.transfer release, another user's node of the same MAC
 * that holds a valid certificate of the CSR's key is released in the same transaction
 * (claim.c, "Ownership transfer"). On CE_OK *@p leaf_pem is the certificate (caller
 * frees). Errors: every CE_CSR_* code, CE_CSR_NOT_INITIATED, CE_MAC_HELD (claim.transfer
 * refuse, another user holds the MAC with a valid certificate), CE_BUSY,
 * CE_SIGNER_DOWN, CE_INTERNAL.
 */
enum claimd_err claim_user_verify(struct claim_ctx *cc, const char *csr, size_t csr_len,
                                  const char *node_policies, char **leaf_pem);
/**
 * Host-driven verify for a Matter DAC (protocol.md section 6, ?matter=true): the CSR
 * is checked by csr_check_matter(); its vendor id must be matter.vendor_id and its
 * product id allowed (matter.product_ids, and the PAI's own product id if it names
 * one); its CN must be a node_id cc->user initiated within the TTL. The DAC is signed
 * by the PAI and recorded like any certificate (profile matter-dac), audited with flow
 * "matter". On CE_OK *@p leaf_pem is the DAC (caller frees; the chain is pai_pem()).
 * Errors: CE_MATTER (no PAI configured), the CE_CSR_* codes of csr_check_matter(),
 * CE_MATTER_KEY, CE_MATTER_SUBJECT, CE_MATTER_VENDOR, CE_MATTER_PRODUCT,
 * CE_CSR_TOO_BIG_FOR_DEVICE, CE_CSR_NOT_INITIATED, CE_MAC_HELD, CE_BUSY, CE_INTERNAL.
 * claim.transfer applies as to claim_user_verify(), keyed by the same MAC.
 */
enum claimd_err claim_matter_verify(struct claim_ctx *cc, const char *csr, size_t csr_len,
                                    const char *node_policies, char **leaf_pem);
#define NODE_ID_RANDOM_LEN 22 /* characters of a new node_id: 22 * log2(62) = 131 bits */

/**
 * Writes a new random node_id, NODE_ID_RANDOM_LEN characters of [A-Za-z0-9] (131 bits,
 * like Espressif's short UUIDs), NUL-terminated, to @p out.
 */
void claim_new_node_id(char out[NODE_ID_MAX + 1]);
/**
 * The user-flow initiate transaction (db_transaction()): a fresh claim_new_node_id()
 * candidate on each try, then db_user_initiate()'s step; @p u and @p a as that step
 * takes them. With u->refuse_held, first whether another user holds the MAC with a
 * valid certificate. DB_OK with u->node_id; DB_NO_ROWS with u->held or u->over_quota;
 * DB_SOFT (busy) or DB_HARD.
 */
enum db_status claim_user_initiate_tx(struct db *db, struct user_initiate *u,
                                      const struct audit_rec *a);

#endif
