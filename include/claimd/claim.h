/*
 * Self-claim rules: which device may start a claim, how a response is checked, when a
 * challenge is spent, and what is recorded. Inputs are already-parsed C strings; this
 * layer knows nothing of HTTP or JSON, and writes an audit row for every outcome.
 */
#ifndef CLAIMD_CLAIM_H
#define CLAIMD_CLAIM_H

#include <stddef.h>

#include "claimd/authid.h"
#include "claimd/ca.h"
#include "claimd/runtime.h"

struct claim_ctx {
	struct runtime *rt;
	struct db *db;
	const char *remote_addr;
	const char *request_id;
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
 * Errors: CE_UNKNOWN_DEVICE, CE_PLATFORM_MISMATCH, CE_BUSY, CE_INTERNAL.
 */
enum claimd_err claim_self_initiate(struct claim_ctx *cc, const char *mac, const char *platform,
                                    struct initiate_result *out);
/**
 * Finishes a self claim. On CE_OK *@p leaf_pem is the new certificate (PEM, no trailing
 * newline) for the caller to free. Errors: CE_AUTHID_INVALID, CE_AUTHID_EXPIRED,
 * CE_AUTHID_USED, CE_AUTHID_BURNED, CE_RESPONSE_FORMAT, CE_RESPONSE_WRONG, every
 * CE_CSR_* code, CE_UNKNOWN_DEVICE, CE_BUSY, CE_INTERNAL.
 */
enum claimd_err claim_self_verify(struct claim_ctx *cc, const struct verify_request *rq,
                                  char **leaf_pem);
/** Size in bytes of the JSON string holding @p pem once '\n' is escaped. */
size_t claim_escaped_len(const char *pem);

#endif
