/*
 * The claim rules (protocol.md sections 2 and 4): which device or user may start a
 * claim, how a response is checked, when a challenge is spent, and what the audit trail
 * says. The database reports facts (is the MAC registered, locked, was the session
 * spent); every decision, and the error-table name each audit row records, is made
 * here. Cheap, stateless checks (auth_id tag, expiry, CSR) run before the database is
 * touched. The eFuse key is never decrypted here: the signer process checks the
 * response (signer.h).
 */
#include "core/claim.h"

#include <stdlib.h>
#include <string.h>

#include "core/authid_memo.h"
#include "db/db_claims.h"
#include "db/db_lifecycle.h"
#include "db/db_users.h"
#include "lib/log.h"
#include "core/revocation.h"
#include "signer/signer.h"

static enum claimd_err from_db(enum db_status s, const char *what)
{
	if (s == DB_SOFT) {
		log_warn("database busy or unreachable (%s)", what);
		return CE_BUSY;
	}
	log_error("database error (%s)", what);
	return CE_INTERNAL;
}

/* The audit trail's outcome of @p e: ok, refused (the client's fault) or error. */
static const char *outcome_of(enum claimd_err e)
{
	return e == CE_OK ? "ok" : err_status(e) >= 500 ? "error" : "refused";
}

/* The audit row of outcome @p e: its reason is always e's error-table name. */
static struct audit_rec audit_row(const struct claim_ctx *cc, const char *event, enum claimd_err e,
                                  const char *mac, const char *node_id, const char *serial)
{
	return (struct audit_rec){
	    .event = event,
	    .flow = cc->matter ? "matter"
	            : cc->user ? "user"
	                       : "self",
	    .user_id = cc->user,
	    .outcome = outcome_of(e),
	    .reason = err_name(e),
	    .mac = mac,
	    .node_id = node_id,
	    .remote_addr = cc->remote_addr,
	    .request_id = cc->request_id,
	    .serial = serial,
	};
}

/* Records one outcome; an audit failure is logged but never changes the answer. */
static void audit(struct claim_ctx *cc, const char *event, enum claimd_err e, const char *mac,
                  const char *node_id, const char *serial)
{
	struct audit_rec a = audit_row(cc, event, e, mac, node_id, serial);
	/* An initiate writes nothing but this row, so it need not wait for the disk. */
	enum db_status s =
	    strcmp(event, "initiate") == 0 ? db_audit_async(cc->db, &a) : db_audit(cc->db, &a);
	if (s < DB_NO_ROWS)
		log_error("could not write the audit row (%s %s)", event, err_name(e));
}

/*
 * Whether a device with facts @p f may go on, in the order the protocol's refusals are
 * checked: unknown, then (at initiate, @p check_platform) a platform other than the
 * registered one, then a lockout. The one place this is decided: the initiate's audit
 * row takes it for every combination of facts (db_self_initiate), the reply for the
 * facts found.
 */
static enum claimd_err device_allows(const struct device_facts *f, bool check_platform)
{
	if (!f->found)
		return CE_UNKNOWN_DEVICE;
	if (check_platform && !f->platform_ok)
		return CE_PLATFORM_MISMATCH;
	if (f->locked_for)
		return CE_MAC_LOCKED;
	return CE_OK;
}

enum claimd_err claim_self_initiate(struct claim_ctx *cc, const char *mac, const char *platform,
                                    struct initiate_result *out)
{
	const char *outcome[DEVICE_FACT_COMBINATIONS], *reason[DEVICE_FACT_COMBINATIONS];
	struct audit_rec a = audit_row(cc, "initiate", CE_OK, mac, NULL, NULL);
	struct device_facts f;
	enum claimd_err e;

	/* The decision for every combination of facts, indexed as db_self_initiate() reads
	 * them, so that the lookup and the audit row are one statement. */
	for (int i = 0; i < DEVICE_FACT_COMBINATIONS; i++) {
		struct device_facts c = {.found = i & 4, .platform_ok = i & 2, .locked_for = i & 1};
		e = device_allows(&c, true);
		outcome[i] = outcome_of(e);
		reason[i] = err_name(e);
	}
	enum db_status s = db_self_initiate(cc->db, mac, platform, &a, outcome, reason, &f);
	if (s < DB_NO_ROWS)
		return from_db(s, "initiate");
	if ((e = device_allows(&f, true)) == CE_MAC_LOCKED)
		cc->retry_after = f.locked_for;
	if (e != CE_OK) {
		secure_wipe(f.sealed, sizeof(f.sealed)); /* read for a locked MAC too */
		return e;
	}
	int64_t expires = now_unix() + cc->rt->cfg->challenge_ttl;
	authid_issue(cc->rt->secrets, mac, expires, out->auth_id, out->challenge);
	/* For this auth_id's verify, should it come to this daemon (authid_memo.h). */
	struct memo_device m = {.has_failures = f.has_failures};
	memcpy(m.sealed, f.sealed, sizeof(m.sealed));
	authid_memo_put(cc->memo, out->auth_id, mac, expires, &m);
	secure_wipe(&m, sizeof(m));
	secure_wipe(f.sealed, sizeof(f.sealed));
	return CE_OK;
}

/* A self verify in progress: what the checks found, for the steps after them. */
struct self_verify {
	char mac[MAC_LEN + 1];
	char challenge[CHALLENGE_LEN + 1];
	uint8_t response[HMAC_SHA512_BYTES];
	int64_t expires;
	struct csr *csr;
	struct issued is; /* the certificate, made by the signer with a right answer */
	uint8_t sealed[SEALED_EFUSE_BYTES]; /* the device's key the answer is checked with */
	bool forgive; /* wrong answers are counted against the MAC: a success resets them */
	bool stale;   /* the commit found the device's key replaced (or the device gone) */
	bool audited; /* the outcome's audit row is written already */
};

/* Step 1, no database: the auth_id, the response's format, the CSR and its CN. */
static enum claimd_err self_verify_inputs(struct claim_ctx *cc, const struct verify_request *rq,
                                          struct self_verify *v)
{
	char cn[NODE_ID_MAX + 1];
	enum claimd_err e;

	e = authid_check(cc->rt->secrets, rq->auth_id, rq->auth_id_len, now_unix(), v->mac,
	                 &v->expires, v->challenge);
	if (e != CE_OK)
		return e;
	if (rq->response_len != 2 * HMAC_SHA512_BYTES ||
	    !hex_decode(v->response, sizeof(v->response), rq->response, rq->response_len, false))
		return CE_RESPONSE_FORMAT;
	/* A bad CSR is refused before the challenge is spent: the device may retry. */
	if ((e = csr_check(rq->csr, rq->csr_len, &v->csr, cn)) != CE_OK)
		return e;
	return strcmp(cn, v->mac) == 0 ? CE_OK : CE_CSR_CN;
}

/* Step 2a: the device as the database has it now, and its lockout. */
static enum claimd_err self_verify_device(struct claim_ctx *cc, struct self_verify *v)
{
	struct device_row d = {0}; /* all of it read only when found */
	enum db_status s = db_device_get(cc->db, v->mac, &d);
	enum claimd_err e;

	if (s < DB_NO_ROWS)
		return from_db(s, "device lookup");
	v->forgive = s == DB_OK && d.has_failures;
	memcpy(v->sealed, d.sealed, sizeof(v->sealed));
	secure_wipe(d.sealed, sizeof(d.sealed));
	/* A locked MAC is refused before its key is even opened, right answer or not. */
	struct device_facts f = {
	    .found = s == DB_OK, .platform_ok = true, .locked_for = s == DB_OK ? d.locked_for : 0};
	if ((e = device_allows(&f, false)) == CE_MAC_LOCKED)
		cc->retry_after = f.locked_for;
	return e;
}

/* Step 2b: the answer is right iff HMAC-SHA512(eFuse key, challenge) equals it, the
 * eFuse key being v->sealed's. The signer decides: the eFuse key is opened there and
 * never leaves it. In the same exchange it signs the certificate when, and only when,
 * the answer is right. */
static enum claimd_err self_verify_response(struct claim_ctx *cc, struct self_verify *v)
{
	enum signer_verdict verdict = SIGNER_UNOPENABLE;
	int rc;

	/* self claiming: node_id = MAC (protocol.md 2.2) */
	struct cert_request crq;
	cert_request_device(v->csr, v->mac, cc->rt->cfg->validity_days, &crq);
	rc = signer_check_issue(cc->rt->signer, v->mac, v->sealed, v->challenge, v->response, &crq,
	                        &verdict, &v->is);
	if (rc == SIGNER_DOWN)
		return CE_SIGNER_DOWN;
	if (rc != SIGNER_OK) {
		log_error("the signer refused to check the response of %s or to sign its "
		          "certificate (see its log)",
		          v->mac);
		return CE_INTERNAL;
	}
	if (verdict == SIGNER_UNOPENABLE) {
		log_error("the sealed eFuse key of %s does not open: wrong secrets key?", v->mac);
		return CE_INTERNAL;
	}
	return verdict == SIGNER_RIGHT ? CE_OK : CE_RESPONSE_WRONG;
}

/* signer_issue()'s failure as an error: the signer gone is a 503 the client may retry. */
static enum claimd_err sign_failed(int rc)
{
	return rc == SIGNER_DOWN ? CE_SIGNER_DOWN : CE_INTERNAL;
}

/* A RainMaker node's certificate for @p node_id, signed by the signer. */
static int issue_node(struct claim_ctx *cc, const struct csr *csr, const char *node_id,
                      struct issued *is)
{
	struct cert_request rq;

	cert_request_device(csr, node_id, cc->rt->cfg->validity_days, &rq);
	return signer_issue(cc->rt->signer, &rq, is);
}

/* revocation.on_reclaim: whether a successful claim revokes the node's earlier
 * certificates (reason superseded) in the transaction that records the new one. */
static bool supersedes(const struct claim_ctx *cc)
{
	return cc->rt->cfg->reclaim == RECLAIM_SUPERSEDE;
}

static struct self_claim self_claim_of(const struct claim_ctx *cc, const struct verify_request *rq,
                                       const struct self_verify *v)
{
	return (struct self_claim){
	    .auth_id = rq->auth_id,
	    .mac = v->mac,
	    .challenge = v->challenge,
	    .expires = v->expires,
	    .max_attempts = cc->rt->cfg->max_attempts,
	    .node_id = v->mac, /* self claiming: node_id = MAC (protocol.md 2.2) */
	    .node_policies = rq->node_policies,
	    .sealed = v->sealed,
	    .forgive = v->forgive,
	    .supersede = supersedes(cc),
	    .supersede_reason = CRL_REASON_SUPERSEDED,
	    .superseded_by = cc->request_id,
	};
}

/* Step 3a: a wrong answer is counted against the session and the MAC, and audited. */
static enum claimd_err self_verify_wrong(struct claim_ctx *cc, const struct verify_request *rq,
                                         struct self_verify *v)
{
	const struct claimd_config *cfg = cc->rt->cfg;
	struct self_claim c = self_claim_of(cc, rq, v);
	struct lockout_policy lp = {cfg->lockout_failures, cfg->lockout_seconds,
	                            cfg->lockout_max_seconds};
	struct audit_rec a = audit_row(cc, "verify", CE_RESPONSE_WRONG, v->mac, NULL, NULL);
	struct wrong_result w;
	enum db_status s = db_session_wrong(cc->db, &c, &lp, &a, &w);

	/* The statement writes its audit row; when it fails it wrote nothing at all. */
	v->audited = true;
	if (s < DB_NO_ROWS)
		return from_db(s, "count attempt");
	log_info("wrong challenge response for %s (attempt %u)", v->mac, w.attempts);
	if (w.just_locked) {
		log_warn("%s locked for %u s after repeated wrong responses", v->mac, w.locked_for);
		audit(cc, "verify", CE_MAC_LOCKED, v->mac, NULL, NULL);
	}
	return CE_RESPONSE_WRONG;
}

/* Step 3b: a right answer's certificate, committed with the spent session. */
static enum claimd_err self_verify_commit(struct claim_ctx *cc, const struct verify_request *rq,
                                          struct self_verify *v, char **leaf_pem)
{
	struct issued *is = &v->is;
	struct self_claim c = self_claim_of(cc, rq, v);
	uint8_t fp[32];
	enum db_status s;

	size_t reply_len =
	    cert_reply_len(is->pem, ca_chain_pem(cc->rt->ca), cc->rt->cfg, CERT_REPLY_ALL_HOSTS);
	if (reply_len > RESPONSE_MAX) {
		log_warn("the reply for %s would be %zu bytes, over %d", v->mac, reply_len,
		         RESPONSE_MAX);
		return CE_CSR_TOO_BIG_FOR_DEVICE;
	}
	csr_key_fingerprint(v->csr, fp);
	c.serial = is->serial;
	c.pem = is->pem;
	c.not_before = is->not_before;
	c.not_after = is->not_after;
	c.key_sha256 = fp;
	struct audit_rec a = audit_row(cc, "verify", CE_OK, v->mac, v->mac, is->serial);
	struct commit_facts f;
	s = db_self_claim_commit(cc->db, &c, &a, &f);
	if (s < DB_NO_ROWS)
		return from_db(s, "commit claim");
	if (f.spent) {
		log_info("claimed %s, serial %s", v->mac, is->serial);
		/* A success forgives the wrong answers counted so far. Those counted after
		 * the device was read (a memo's is as old as its initiate) are forgiven
		 * here; the claim stands whatever this answers. */
		if (!c.forgive && f.counted && db_mac_forgive(cc->db, v->mac) < DB_NO_ROWS)
			log_warn("could not forgive the wrong answers counted against %s", v->mac);
		v->audited = true;
		*leaf_pem = is->pem;
		is->pem = NULL;
		return CE_OK;
	}
	/* Nothing was written. The device's key changed (or the device went) after the
	 * answer was checked: the caller checks it again against the record as it is. */
	if (!f.same_key) {
		v->stale = true;
		log_warn("the device record of %s changed after it was read (key replaced or "
		         "device removed): judging the answer again",
		         v->mac);
		return CE_BUSY;
	}
	if (f.locked_for) {
		cc->retry_after = f.locked_for;
		return CE_MAC_LOCKED;
	}
	/* The session was spent already. Say how. */
	unsigned attempts = 0;
	bool used = false;
	s = db_session_state(cc->db, rq->auth_id, &attempts, &used);
	return s == DB_OK && attempts >= cc->rt->cfg->max_attempts ? CE_AUTHID_BURNED
	                                                           : CE_AUTHID_USED;
}

enum claimd_err claim_self_verify(struct claim_ctx *cc, const struct verify_request *rq,
                                  char **leaf_pem)
{
	struct self_verify v = {0};
	enum claimd_err e;
	bool took = false, again = false;

	*leaf_pem = NULL;
	e = self_verify_inputs(cc, rq, &v);
	bool reached_device = e == CE_OK;
	/* At most two passes. The first takes the device from what this daemon's initiate
	 * read (authid_memo.h), when it has it, and is only a shortcut to a right answer:
	 * any other verdict is judged again on the database's record, whose lookup refuses
	 * a locked MAC before its key is opened. (On the first pass the signer has checked
	 * the answer before the commit refuses a MAC locked since the initiate; right and
	 * wrong answers alike then get MAC_LOCKED and nothing is counted.) A commit that
	 * finds the device's record changed since it was read (a key replaced while the
	 * verify ran) is also checked once more; twice is answered busy. */
	for (int pass = 0; e == CE_OK && pass < 2; pass++) {
		struct memo_device m;
		bool memo = pass == 0 && authid_memo_take(cc->memo, rq->auth_id, rq->auth_id_len,
		                                          v.mac, now_unix(), &m);
		again = pass > 0;
		if (memo) {
			took = true;
			memcpy(v.sealed, m.sealed, sizeof(v.sealed));
			v.forgive = m.has_failures;
			secure_wipe(&m, sizeof(m));
			e = self_verify_response(cc, &v);
			if (e != CE_OK && e != CE_SIGNER_DOWN) {
				issued_clear(&v.is);
				e = CE_OK;
				continue;
			}
		} else if ((e = self_verify_device(cc, &v)) == CE_OK) {
			e = self_verify_response(cc, &v);
		}
		if (e == CE_RESPONSE_WRONG)
			e = self_verify_wrong(cc, rq, &v);
		else if (e == CE_OK)
			e = self_verify_commit(cc, rq, &v, leaf_pem);
		if (!v.stale || pass > 0)
			break;
		v.stale = false;
		issued_clear(&v.is);
		e = CE_OK;
	}
	if (reached_device)
		metrics_device_source(cc->metrics, !took   ? DEVICE_FROM_LOOKUP
		                                   : again ? DEVICE_FROM_MEMO_THEN_LOOKUP
		                                           : DEVICE_FROM_MEMO);
	if (!v.audited)
		audit(cc, "verify", e, v.mac[0] ? v.mac : NULL, NULL, NULL);
	snprintf(cc->mac, sizeof(cc->mac), "%s", v.mac);
	csr_free(v.csr);
	issued_clear(&v.is);
	secure_wipe(v.response, sizeof(v.response));
	secure_wipe(v.sealed, sizeof(v.sealed));
	return e;
}

void claim_new_node_id(char out[NODE_ID_MAX + 1])
{
	static const char digits[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t b[64];
	int n = 0;

	/* Rejection sampling keeps every character uniform over the 62 digits. */
	while (n < NODE_ID_RANDOM_LEN) {
		secure_random(b, sizeof(b));
		for (size_t i = 0; i < sizeof(b) && n < NODE_ID_RANDOM_LEN; i++)
			if (b[i] < 248)
				out[n++] = digits[b[i] % 62];
	}
	out[NODE_ID_RANDOM_LEN] = '\0';
}

struct initiate_tx {
	struct user_initiate *u;
	const struct audit_rec *a;
};

/* Whether another user holds @p mac with a valid certificate (any key): DB_OK held,
 * DB_NO_ROWS not, or the failure. */
static enum db_status held_by_another(struct db *db, const char *mac, const char *user)
{
	struct mac_holder *h = NULL;
	size_t n = 0;
	enum db_status s = db_mac_holders(db, mac, user, NULL, &h, &n);

	free(h);
	return s;
}

/* Each try draws a new node_id candidate, in case a random one ever collides. */
static enum db_status user_initiate_tx(struct db *db, void *cls)
{
	const struct initiate_tx *t = cls;
	char candidate[NODE_ID_MAX + 1];

	t->u->held = false;
	/* claim.transfer refuse: say so before a node_id or a quota slot is spent. The
	 * verify decides again under the MAC's lock (the holder may claim in between). */
	if (t->u->refuse_held) {
		enum db_status s = held_by_another(db, t->u->mac, t->u->user);
		if (s == DB_OK) {
			t->u->held = true;
			return DB_NO_ROWS;
		}
		if (s < DB_NO_ROWS)
			return s;
	}
	claim_new_node_id(candidate);
	return db_user_initiate(db, t->u, candidate, t->a);
}

enum db_status claim_user_initiate_tx(struct db *db, struct user_initiate *u,
                                      const struct audit_rec *a)
{
	struct initiate_tx t = {u, a};
	return db_transaction(db, user_initiate_tx, &t);
}

enum claimd_err claim_user_initiate(struct claim_ctx *cc, const char *mac, const char *platform,
                                    char node_id[NODE_ID_MAX + 1])
{
	struct user_initiate u = {
	    .user = cc->user,
	    .mac = mac,
	    .platform = platform,
	    .ttl = cc->rt->cfg->challenge_ttl,
	    .default_quota = cc->rt->cfg->quota,
	    .refuse_held = cc->rt->cfg->transfer_value == TRANSFER_REFUSE,
	};
	struct audit_rec a = audit_row(cc, "initiate", CE_OK, mac, NULL, NULL);
	enum db_status s = claim_user_initiate_tx(cc->db, &u, &a);

	if (s == DB_OK) {
		snprintf(node_id, NODE_ID_MAX + 1, "%s", u.node_id);
		return CE_OK;
	}
	enum claimd_err e = s == DB_NO_ROWS && u.held         ? CE_MAC_HELD
	                    : s == DB_NO_ROWS && u.over_quota ? CE_QUOTA
	                                                      : from_db(s, "user initiate");
	audit(cc, "initiate", e, mac, NULL, NULL);
	return e;
}

/*
 * Ownership transfer (claim.transfer, docs/operations.md): a user verify under release
 * or refuse is one transaction. It takes the MAC's lock, reads which other users hold
 * the MAC with a valid certificate, and then, in the order of this body:
 *  - refuse: any such holder refuses the claim (nothing written);
 *  - release: each holder one of whose valid certificates is of the CSR's key (the
 *    CSR's signature, checked before, proves the claimant has that key: it is the
 *    device) is released, its certificates revoked as superseded (the device goes on
 *    with the same key under a new certificate: it did not cease to operate, and its
 *    key was not compromised), audited as a 'transfer' naming both users. A holder of
 *    another key is left alone: anyone with a token can name any MAC.
 * Then the claim itself is recorded, so the transfer and the claim commit together or
 * not at all. Self-claimed nodes belong to no user and are never ended here.
 */
struct verify_tx {
	const struct claim_ctx *cc;
	struct user_verify *v;
	const struct audit_rec *a;
	char mac[MAC_LEN + 1];
	bool held;         /* out: refused, another user holds the MAC */
	unsigned released; /* out: the other users' nodes this claim ended */
};

/* Releases @p h's node for the claim @p t, with the transfer's audit rows. */
static enum db_status transfer_release(struct db *db, struct verify_tx *t,
                                       const struct mac_holder *h)
{
	char detail[300];
	long revoked = 0;
	struct audit_rec a = audit_row(t->cc, "transfer", CE_OK, t->mac, h->node_id, NULL);

	/* user_id NULL: the statement takes the holder's from the node; the note names
	 * the new one (a user id has at most 255 characters: it fits). */
	a.user_id = NULL;
	snprintf(detail, sizeof(detail), "to %s", t->cc->user);
	a.detail = detail;
	enum db_status s = db_node_release_step(db, h->node_id, CRL_REASON_SUPERSEDED,
	                                        t->cc->request_id, &a, &revoked);
	/* Listed a moment ago under the MAC's lock: a node gone now is a conflict to retry. */
	return s == DB_NO_ROWS ? DB_SOFT : s;
}

static enum db_status user_verify_tx(struct db *db, void *cls)
{
	struct verify_tx *t = cls;
	const struct claimd_config *cfg = t->cc->rt->cfg;
	struct mac_holder *h = NULL;
	size_t n = 0;
	enum db_status s;

	t->held = false;
	t->released = 0;
	if ((s = db_user_verify_lock(db, t->v->user, t->v->node_id, t->mac)) != DB_OK)
		return s;
	s = db_mac_holders(db, t->mac, t->v->user, t->v->key_sha256, &h, &n);
	if (s < DB_NO_ROWS)
		return s;
	if (s == DB_OK && cfg->transfer_value == TRANSFER_REFUSE) {
		t->held = true;
		free(h);
		return DB_NO_ROWS;
	}
	for (size_t i = 0; s == DB_OK && i < n; i++) {
		if (!h[i].same_key)
			continue;
		enum db_status r = transfer_release(db, t, &h[i]);
		if (r < DB_NO_ROWS) {
			free(h);
			return r;
		}
		log_info(
		    "transfer of %s: node %s of its previous holder released (same device key)",
		    t->mac, h[i].node_id);
		t->released++;
	}
	free(h);
	s = db_user_verify_step(db, t->v, t->a);
	/* The node's row is locked by this transaction: it cannot have gone. */
	return s == DB_NO_ROWS && t->released ? DB_HARD : s;
}

/* The verify's record: one statement under keep (today's behaviour, no lock), else the
 * transfer transaction. DB_NO_ROWS with *@p held when refused for another's hold. */
static enum db_status record_user_claim(struct claim_ctx *cc, struct user_verify *v,
                                        const struct audit_rec *a, bool *held)
{
	*held = false;
	if (cc->rt->cfg->transfer_value == TRANSFER_KEEP)
		return db_user_verify(cc->db, v, a);
	struct verify_tx t = {.cc = cc, .v = v, .a = a};
	enum db_status s = db_transaction(cc->db, user_verify_tx, &t);
	*held = s == DB_NO_ROWS && t.held;
	return s;
}

/*
 * The end of a user-flow verify, either profile: the reply must fit the firmware's
 * buffer with @p chain_pem, then the pending initiate of @p cn is spent and @p is
 * recorded with @p profile, in one statement. On CE_OK *@p leaf_pem takes is->pem.
 */
static enum claimd_err user_verify_commit(struct claim_ctx *cc, const struct csr *csr,
                                          const char *cn, const char *node_policies,
                                          struct issued *is, const char *chain_pem,
                                          const char *profile, char **leaf_pem)
{
	uint8_t fp[32];
	enum db_status s;

	if (cert_reply_len(is->pem, chain_pem, cc->rt->cfg, CERT_REPLY_ALL_HOSTS) > RESPONSE_MAX)
		return CE_CSR_TOO_BIG_FOR_DEVICE;
	csr_key_fingerprint(csr, fp);
	struct user_verify v = {
	    .user = cc->user,
	    .node_id = cn,
	    .node_policies = node_policies,
	    .serial = is->serial,
	    .pem = is->pem,
	    .not_before = is->not_before,
	    .not_after = is->not_after,
	    .key_sha256 = fp,
	    .supersede = supersedes(cc),
	    .supersede_reason = CRL_REASON_SUPERSEDED,
	    .superseded_by = cc->request_id,
	    .profile = profile,
	};
	/* The node's MAC is a fact the statement fills in. */
	struct audit_rec a = audit_row(cc, "verify", CE_OK, NULL, cn, is->serial);
	bool held = false;
	s = record_user_claim(cc, &v, &a, &held);
	if (s == DB_OK) {
		log_info("claimed node %s (%s) for a user, serial %s (%s)", cn, v.mac, is->serial,
		         profile);
		snprintf(cc->mac, sizeof(cc->mac), "%s", v.mac);
		*leaf_pem = is->pem;
		is->pem = NULL;
		return CE_OK;
	}
	return s == DB_NO_ROWS ? held ? CE_MAC_HELD : CE_CSR_NOT_INITIATED
	                       : from_db(s, "user verify");
}

enum claimd_err claim_user_verify(struct claim_ctx *cc, const char *csr_pem, size_t csr_len,
                                  const char *node_policies, char **leaf_pem)
{
	char cn[NODE_ID_MAX + 1] = "";
	struct csr *csr = NULL;
	struct issued is = {0};
	enum claimd_err e;

	*leaf_pem = NULL;
	if ((e = csr_check(csr_pem, csr_len, &csr, cn)) != CE_OK)
		goto out;
	int rc = issue_node(cc, csr, cn, &is);
	if (rc < 0) {
		e = sign_failed(rc);
		goto out;
	}
	e = user_verify_commit(cc, csr, cn, node_policies, &is, ca_chain_pem(cc->rt->ca), "node",
	                       leaf_pem);
out:
	issued_clear(&is);
	csr_free(csr);
	if (e != CE_OK)
		audit(cc, "verify", e, NULL, cn[0] ? cn : NULL, NULL);
	snprintf(cc->node_id, sizeof(cc->node_id), "%s", cn);
	return e;
}

/* Whether the configuration lets a DAC name product @p pid (protocol.md section 6). */
static bool product_allowed(const struct runtime *rt, const char *pid)
{
	const struct claimd_config *c = rt->cfg;
	const char *only = pai_product_id(rt->pai);

	if (only[0] && strcmp(only, pid) != 0)
		return false;
	if (!c->n_matter_product_ids)
		return true;
	for (size_t i = 0; i < c->n_matter_product_ids; i++)
		if (strcmp(c->matter_product_ids[i], pid) == 0)
			return true;
	return false;
}

enum claimd_err claim_matter_verify(struct claim_ctx *cc, const char *csr_pem, size_t csr_len,
                                    const char *node_policies, char **leaf_pem)
{
	struct matter_subject subj;
	struct csr *csr = NULL;
	struct issued is = {0};
	enum claimd_err e;

	*leaf_pem = NULL;
	cc->matter = true;
	if (!cc->rt->pai) {
		memset(&subj, 0, sizeof(subj));
		e = CE_MATTER;
		goto out;
	}
	if ((e = csr_check_matter(csr_pem, csr_len, &csr, &subj)) != CE_OK)
		goto out;
	if (strcmp(subj.vendor_id, cc->rt->cfg->matter_vendor_id) != 0) {
		e = CE_MATTER_VENDOR;
		goto out;
	}
	if (!product_allowed(cc->rt, subj.product_id)) {
		e = CE_MATTER_PRODUCT;
		goto out;
	}
	struct cert_request rq;
	int rc = pai_dac_request(cc->rt->pai, csr, &subj, cc->rt->cfg->validity_days, &rq);
	if (rc == 0)
		rc = signer_issue(cc->rt->signer, &rq, &is);
	if (rc < 0) {
		e = sign_failed(rc);
		goto out;
	}
	e = user_verify_commit(cc, csr, subj.cn, node_policies, &is, pai_pem(cc->rt->pai),
	                       "matter-dac", leaf_pem);
out:
	issued_clear(&is);
	csr_free(csr);
	if (e != CE_OK)
		audit(cc, "verify", e, NULL, subj.cn[0] ? subj.cn : NULL, NULL);
	snprintf(cc->node_id, sizeof(cc->node_id), "%s", subj.cn);
	return e;
}
