/*
 * The self-claim protocol (protocol.md section 2). Cheap, stateless checks (auth_id
 * tag, expiry, CSR) run before the database is touched; the eFuse key is decrypted only
 * for the moment of the HMAC and wiped; success is one statement that spends the
 * challenge and records node, certificate and audit together.
 */
#include "claimd/claim.h"

#include <stdlib.h>
#include <string.h>

#include "claimd/db_claims.h"
#include "claimd/db_users.h"
#include "claimd/log.h"

struct device_q {
	const char *mac;
	struct device_row row;
};

static enum db_status q_device(struct db *db, void *arg)
{
	struct device_q *q = arg;
	return db_device_get(db, q->mac, &q->row);
}

static enum db_status q_audit(struct db *db, void *arg)
{
	return db_audit(db, arg);
}

static enum db_status q_audit_async(struct db *db, void *arg)
{
	return db_audit_async(db, arg);
}

static enum claimd_err from_db(enum db_status s, const struct claim_ctx *cc, const char *what)
{
	if (s == DB_SOFT) {
		log_warn("%s: database busy or unreachable (%s)", cc->request_id, what);
		return CE_BUSY;
	}
	log_error("%s: database error (%s)", cc->request_id, what);
	return CE_INTERNAL;
}

/* Records one event; an audit failure is logged but never changes the answer. */
static void audit(struct claim_ctx *cc, const char *event, enum claimd_err e, const char *mac,
                  const char *node_id, const char *serial)
{
	struct audit_rec a = {
	    .event = event,
	    .flow = cc->user ? "user" : "self",
	    .user_id = cc->user,
	    .outcome = e == CE_OK             ? "ok"
	               : err_status(e) >= 500 ? "error"
	                                      : "refused",
	    .reason = err_name(e),
	    .mac = mac,
	    .node_id = node_id,
	    .remote_addr = cc->remote_addr,
	    .request_id = cc->request_id,
	    .serial = serial,
	};
	/* An initiate writes nothing but this row, so it need not wait for the disk. */
	if (db_run(cc->db, false, strcmp(event, "initiate") == 0 ? q_audit_async : q_audit, &a) <
	    DB_NO_ROWS)
		log_error("%s: could not write the audit row (%s %s)", cc->request_id, event,
		          err_name(e));
}

static enum db_status q_initiate(struct db *db, void *arg)
{
	return db_self_initiate(db, arg);
}

enum claimd_err claim_self_initiate(struct claim_ctx *cc, const char *mac, const char *platform,
                                    struct initiate_result *out)
{
	struct self_initiate q = {
	    .mac = mac,
	    .platform = platform,
	    .remote_addr = cc->remote_addr,
	    .request_id = cc->request_id,
	    .why_unknown = err_name(CE_UNKNOWN_DEVICE),
	    .why_platform = err_name(CE_PLATFORM_MISMATCH),
	    .why_locked = err_name(CE_MAC_LOCKED),
	};
	/* The lookup and the audit row are one statement: the checks below are the ones
	 * db_self_initiate() applied, in the same order, when it wrote the row. */
	enum db_status s = db_run(cc->db, false, q_initiate, &q);

	if (s < DB_NO_ROWS)
		return from_db(s, cc, "initiate");
	if (!q.found)
		return CE_UNKNOWN_DEVICE;
	if (!q.platform_ok)
		return CE_PLATFORM_MISMATCH;
	if (q.locked_for) {
		cc->retry_after = q.locked_for;
		return CE_MAC_LOCKED;
	}
	authid_issue(cc->rt->secrets, mac, now_unix() + cc->rt->cfg->challenge_ttl, out->auth_id,
	             out->challenge);
	return CE_OK;
}

/* The answer is right iff HMAC-SHA512(eFuse key, challenge) equals the response.
 * *@p forgive says whether wrong answers are counted against the MAC. */
static enum claimd_err check_response(struct claim_ctx *cc, const char *mac, const char *challenge,
                                      const uint8_t response[64], bool *forgive)
{
	struct device_q q = {.mac = mac};
	uint8_t key[EFUSE_KEY_BYTES], expect[HMAC_SHA512_BYTES];
	enum db_status s = db_run(cc->db, false, q_device, &q);
	enum claimd_err e;

	if (s < DB_NO_ROWS)
		return from_db(s, cc, "device lookup");
	if (s == DB_NO_ROWS)
		return CE_UNKNOWN_DEVICE;
	/* A locked MAC is refused before its key is even opened, right answer or not. */
	*forgive = q.row.has_failures;
	if (q.row.locked_for) {
		cc->retry_after = q.row.locked_for;
		crypto_wipe(q.row.sealed, sizeof(q.row.sealed));
		return CE_MAC_LOCKED;
	}
	if (!efuse_open(cc->rt->secrets, mac, q.row.sealed, sizeof(q.row.sealed), key)) {
		log_error("%s: the sealed eFuse key of %s does not open: wrong secrets key?",
		          cc->request_id, mac);
		return CE_INTERNAL;
	}
	crypto_hmac_sha512(expect, key, sizeof(key), challenge, strlen(challenge));
	e = crypto_equal(expect, response, sizeof(expect)) ? CE_OK : CE_RESPONSE_WRONG;
	crypto_wipe(key, sizeof(key));
	crypto_wipe(expect, sizeof(expect));
	return e;
}

struct commit_q {
	const struct self_claim *c;
	struct lockout_policy policy;
	struct wrong_result wrong;
	unsigned attempts;
	bool used;
};

static enum db_status q_commit(struct db *db, void *arg)
{
	return db_self_claim_commit(db, ((struct commit_q *)arg)->c);
}

static enum db_status q_wrong(struct db *db, void *arg)
{
	struct commit_q *q = arg;
	return db_session_wrong(db, q->c, &q->policy, &q->wrong);
}

static enum db_status q_state(struct db *db, void *arg)
{
	struct commit_q *q = arg;
	return db_session_state(db, q->c->auth_id, &q->attempts, &q->used);
}

enum claimd_err claim_self_verify(struct claim_ctx *cc, const struct verify_request *rq,
                                  char **leaf_pem)
{
	const struct claimd_config *cfg = cc->rt->cfg;
	char mac[MAC_LEN + 1] = "", challenge[CHALLENGE_LEN + 1], cn[NODE_ID_MAX + 1];
	uint8_t response[HMAC_SHA512_BYTES], fp[32];
	int64_t expires = 0;
	struct csr *csr = NULL;
	struct issued is = {0};
	enum claimd_err e;
	enum db_status s;

	*leaf_pem = NULL;
	e = authid_check(cc->rt->secrets, rq->auth_id, rq->auth_id_len, now_unix(), mac, &expires,
	                 challenge);
	if (e != CE_OK)
		goto out;
	if (rq->response_len != 2 * HMAC_SHA512_BYTES ||
	    !hex_decode(response, sizeof(response), rq->response, rq->response_len, false)) {
		e = CE_RESPONSE_FORMAT;
		goto out;
	}
	/* A bad CSR is refused before the challenge is spent: the device may retry. */
	if ((e = csr_check(rq->csr, rq->csr_len, &csr, cn)) != CE_OK)
		goto out;
	if (strcmp(cn, mac) != 0) {
		e = CE_CSR_CN;
		goto out;
	}
	struct self_claim c = {
	    .auth_id = rq->auth_id,
	    .mac = mac,
	    .challenge = challenge,
	    .expires = expires,
	    .max_attempts = cfg->max_attempts,
	    .node_id = mac,
	    .node_policies = rq->node_policies,
	    .remote_addr = cc->remote_addr,
	    .request_id = cc->request_id,
	};
	struct commit_q q = {
	    .c = &c,
	    .policy = {cfg->lockout_failures, cfg->lockout_seconds, cfg->lockout_max_seconds}};
	if ((e = check_response(cc, mac, challenge, response, &c.forgive)) != CE_OK) {
		if (e == CE_RESPONSE_WRONG) {
			/* The statement audits the attempt itself. */
			s = db_run(cc->db, false, q_wrong, &q);
			if (s < DB_NO_ROWS) {
				e = from_db(s, cc, "count attempt");
			} else {
				log_info("%s: wrong challenge response for %s (attempt %u)",
				         cc->request_id, mac, q.wrong.attempts);
				if (q.wrong.just_locked) {
					log_warn(
					    "%s: %s locked for %u s after repeated wrong responses",
					    cc->request_id, mac, q.wrong.locked_for);
					audit(cc, "verify", CE_MAC_LOCKED, mac, NULL, NULL);
				}
			}
			csr_free(csr);
			return e;
		}
		goto out;
	}
	if (ca_sign(cc->rt->ca, csr, mac, cfg->validity_days, &is) < 0) {
		e = CE_INTERNAL;
		goto out;
	}
	size_t reply_len =
	    cert_reply_len(is.pem, ca_chain_pem(cc->rt->ca), cc->rt->cfg, CERT_REPLY_ALL_HOSTS);
	if (reply_len > RESPONSE_MAX) {
		log_warn("%s: the reply for %s would be %zu bytes, over %d", cc->request_id, mac,
		         reply_len, RESPONSE_MAX);
		e = CE_CSR_TOO_BIG_FOR_DEVICE;
		goto out;
	}
	csr_key_fingerprint(csr, fp);
	c.serial = is.serial;
	c.pem = is.pem;
	c.not_before = is.not_before;
	c.not_after = is.not_after;
	c.key_sha256 = fp;
	s = db_run(cc->db, false, q_commit, &q);
	if (s == DB_OK) {
		log_info("%s: claimed %s, serial %s", cc->request_id, mac, is.serial);
		*leaf_pem = is.pem;
		is.pem = NULL;
		csr_free(csr);
		return CE_OK;
	}
	if (s < DB_NO_ROWS) {
		e = from_db(s, cc, "commit claim");
		goto out;
	}
	/* Nothing was written: the session was spent already. Say how. */
	s = db_run(cc->db, false, q_state, &q);
	e = s == DB_OK && q.attempts >= cfg->max_attempts ? CE_AUTHID_BURNED : CE_AUTHID_USED;
out:
	issued_clear(&is);
	csr_free(csr);
	crypto_wipe(response, sizeof(response));
	audit(cc, "verify", e, mac[0] ? mac : NULL, NULL, NULL);
	return e;
}

void claim_new_node_id(char out[23])
{
	static const char digits[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t b[64];
	int n = 0;

	/* Rejection sampling keeps every character uniform over the 62 digits. */
	while (n < 22) {
		crypto_random(b, sizeof(b));
		for (size_t i = 0; i < sizeof(b) && n < 22; i++)
			if (b[i] < 248)
				out[n++] = digits[b[i] % 62];
	}
	out[22] = '\0';
}

static enum db_status q_user_initiate(struct db *db, void *arg)
{
	struct user_initiate *u = arg;
	/* A fresh candidate each try, in case a random id ever collides. */
	claim_new_node_id(u->new_node_id);
	return db_user_initiate(db, u);
}

enum claimd_err claim_user_initiate(struct claim_ctx *cc, const char *mac, const char *platform,
                                    char node_id[NODE_ID_MAX + 1])
{
	char candidate[23];
	struct user_initiate u = {
	    .user = cc->user,
	    .mac = mac,
	    .platform = platform,
	    .ttl = cc->rt->cfg->challenge_ttl,
	    .default_quota = cc->rt->cfg->quota,
	    .new_node_id = candidate,
	    .remote_addr = cc->remote_addr,
	    .request_id = cc->request_id,
	};
	enum db_status s = db_run(cc->db, true, q_user_initiate, &u);

	if (s == DB_OK) {
		snprintf(node_id, NODE_ID_MAX + 1, "%s", u.node_id);
		return CE_OK;
	}
	enum claimd_err e =
	    s == DB_NO_ROWS && u.over_quota ? CE_QUOTA : from_db(s, cc, "user initiate");
	audit(cc, "initiate", e, mac, NULL, NULL);
	return e;
}

static enum db_status q_user_verify(struct db *db, void *arg)
{
	return db_user_verify(db, arg);
}

enum claimd_err claim_user_verify(struct claim_ctx *cc, const char *csr_pem, size_t csr_len,
                                  const char *node_policies, char **leaf_pem)
{
	char cn[NODE_ID_MAX + 1] = "";
	struct csr *csr = NULL;
	struct issued is = {0};
	uint8_t fp[32];
	enum claimd_err e;

	*leaf_pem = NULL;
	if ((e = csr_check(csr_pem, csr_len, &csr, cn)) != CE_OK)
		goto out;
	if (ca_sign(cc->rt->ca, csr, cn, cc->rt->cfg->validity_days, &is) < 0) {
		e = CE_INTERNAL;
		goto out;
	}
	if (cert_reply_len(is.pem, ca_chain_pem(cc->rt->ca), cc->rt->cfg, CERT_REPLY_ALL_HOSTS) >
	    RESPONSE_MAX) {
		e = CE_CSR_TOO_BIG_FOR_DEVICE;
		goto out;
	}
	csr_key_fingerprint(csr, fp);
	struct user_verify v = {
	    .user = cc->user,
	    .node_id = cn,
	    .node_policies = node_policies,
	    .serial = is.serial,
	    .pem = is.pem,
	    .not_before = is.not_before,
	    .not_after = is.not_after,
	    .key_sha256 = fp,
	    .remote_addr = cc->remote_addr,
	    .request_id = cc->request_id,
	};
	enum db_status s = db_run(cc->db, false, q_user_verify, &v);
	if (s == DB_OK) {
		log_info("%s: claimed node %s (%s) for a user, serial %s", cc->request_id, cn,
		         v.mac, is.serial);
		*leaf_pem = is.pem;
		is.pem = NULL;
		csr_free(csr);
		return CE_OK;
	}
	e = s == DB_NO_ROWS ? CE_CSR_NOT_INITIATED : from_db(s, cc, "user verify");
out:
	issued_clear(&is);
	csr_free(csr);
	audit(cc, "verify", e, NULL, cn[0] ? cn : NULL, NULL);
	return e;
}
