/*
 * POST /claim/initiate and /claim/verify: JSON in, field checks with messages that name
 * the field, a call into claim.c, JSON out in the exact shape the clients parse. No
 * Authorization header: self claiming (the device alone). With one: the user flow
 * (the phone apps' assisted claiming and the CLI's host-driven claiming). GET /mqtt_host
 * answers the question the CLI asks its API host before every claim.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cert_reply.h"
#include "core/claim.h"
#include "daemon/http.h"
#include "lib/log.h"
#include "daemon/request_fields.h"

/*
 * Common prologue: who is asking (a token makes it the user flow; a bad token is 401
 * before anything else is looked at, and is the only 401), the JSON body, and this
 * worker's database.
 */
static enum claimd_err prologue(struct request *rq, struct MHD_Connection *c, json_t **j,
                                struct claim_ctx *cc, char user[USER_ID_MAX + 1])
{
	const char *authz =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (authz && !rq->rt->jwks)
		return CE_USERS_DISABLED; /* not the token's fault: no 401 (protocol.md 7) */
	if (authz) {
		const struct claimd_config *cfg = rq->rt->cfg;
		struct auth_policy p = {rq->rt->jwks,      cfg->jwt_issuer,
		                        cfg->jwt_audience, cfg->jwt_user_claim,
		                        now_unix(),        cfg->jwt_audience_claim};
		const char *why = "";
		if (auth_user(&p, authz, user, &why) != CE_OK) {
			log_info("unauthorized: %s", why);
			return CE_UNAUTHORIZED;
		}
		cc->user = user;
		log_escape(rq->user, sizeof(rq->user), user, strlen(user));
		if (!request_allowed(rq, BUCKET_USER, user))
			return CE_RATE_LIMITED;
	}
	if (!(*j = fields_parse(rq->body, rq->len)))
		return CE_BAD_JSON;
	cc->rt = rq->rt;
	cc->memo = rq->app->memo;
	cc->metrics = &rq->app->metrics;
	cc->remote_addr = rq->remote;
	cc->request_id = rq->id;
	if (!(cc->db = app_db(rq->app)))
		return CE_BUSY;
	return CE_OK;
}

enum MHD_Result handle_claim_initiate(struct request *rq, struct MHD_Connection *c)
{
	struct claim_ctx cc = {0};
	struct initiate_result out;
	struct initiate_fields in;
	char user[USER_ID_MAX + 1], node_id[NODE_ID_MAX + 1];
	json_t *j = NULL;
	enum claimd_err e;

	if ((e = prologue(rq, c, &j, &cc, user)) != CE_OK || (e = fields_initiate(j, &in)) != CE_OK)
		goto fail;
	snprintf(rq->mac, sizeof(rq->mac), "%s", in.mac);
	if (!request_allowed(rq, BUCKET_MAC, in.mac)) {
		e = CE_RATE_LIMITED;
		goto fail;
	}
	json_decref(j);
	if (cc.user) {
		if ((e = claim_user_initiate(&cc, in.mac, in.platform, node_id)) != CE_OK)
			return reply_error(rq, c, e);
		snprintf(rq->node_id, sizeof(rq->node_id), "%s", node_id);
		return reply_json(rq, c, 200, json_pack("{s:s}", "node_id", node_id));
	}
	if ((e = claim_self_initiate(&cc, in.mac, in.platform, &out)) != CE_OK) {
		rq->retry_after = cc.retry_after;
		return reply_error(rq, c, e);
	}
	return reply_json(
	    rq, c, 200,
	    json_pack("{s:s, s:s}", "auth_id", out.auth_id, "challenge", out.challenge));
fail:
	json_decref(j);
	return reply_error(rq, c, e);
}

/* What a verify turned out to be about, for the access log. */
static void note_subject(struct request *rq, const struct claim_ctx *cc)
{
	snprintf(rq->mac, sizeof(rq->mac), "%s", cc->mac);
	log_escape(rq->node_id, sizeof(rq->node_id), cc->node_id, strlen(cc->node_id));
}

/* Which configured hosts a user-flow reply carries: mqtt_host when the app asks for it,
 * mqtt_cred_host when videostream was granted (camera firmware needs it, protocol.md 7). */
static unsigned user_hosts(const struct verify_fields *in)
{
	return (in->send_mqtt_host ? CERT_REPLY_MQTT_HOST : 0) |
	       (in->policies.bits & POLICY_VIDEOSTREAM ? CERT_REPLY_MQTT_CRED_HOST : 0);
}

/*
 * The certificate reply, from cert_reply.c: the bytes whose length claim.c checked
 * against the firmware's limit. @p hosts says which configured hosts this flow sends.
 */
static enum MHD_Result reply_certificate(struct request *rq, struct MHD_Connection *c, char *leaf,
                                         const char *chain, unsigned hosts)
{
	char *body = cert_reply_body(leaf, chain, rq->rt->cfg, hosts);

	metrics_issued(&rq->app->metrics, rq->matter    ? FLOW_MATTER
	                                  : rq->user[0] ? FLOW_USER
	                                                : FLOW_SELF);
	free(leaf);
	if (!body)
		return reply_error(rq, c, CE_INTERNAL);
	return reply_text(rq, c, 200, body);
}

/* The user flow's verify: only the CSR (and options); the user and CN say the rest.
 * With ?matter=true the certificate is a Matter DAC and the chain the PAI. */
static enum MHD_Result user_verify(struct request *rq, struct MHD_Connection *c,
                                   struct claim_ctx *cc, json_t *j, bool matter)
{
	struct verify_fields in;
	char *leaf = NULL;
	enum claimd_err e;

	if ((e = fields_verify_user(j, &in)) == CE_OK)
		e = matter ? claim_matter_verify(cc, in.csr, in.csr_len, in.node_policies, &leaf)
		           : claim_user_verify(cc, in.csr, in.csr_len, in.node_policies, &leaf);
	json_decref(j);
	note_subject(rq, cc);
	if (e != CE_OK)
		return reply_error(rq, c, e);
	return reply_certificate(
	    rq, c, leaf, matter ? pai_pem(rq->rt->pai) : ca_chain_pem(rq->rt->ca), user_hosts(&in));
}

enum MHD_Result handle_claim_verify(struct request *rq, struct MHD_Connection *c)
{
	struct claim_ctx cc = {0};
	struct verify_fields in;
	char *leaf = NULL, user[USER_ID_MAX + 1];
	json_t *j = NULL;
	enum claimd_err e;

	/* rq->matter: the server read ?matter= with the headers (ROUTE_MATTER_QUERY). */
	/* A token is checked first: its problems are the only 401s (protocol.md 7). */
	if ((e = prologue(rq, c, &j, &cc, user)) != CE_OK)
		goto fail;
	if (cc.user)
		return user_verify(rq, c, &cc, j, rq->matter);
	if (rq->matter) {
		/* Matter is host-driven only: a DAC needs a user's initiated node_id. */
		e = rq->rt->pai ? CE_MATTER_NO_USER : CE_MATTER;
		goto fail;
	}
	if ((e = fields_verify_self(j, &in)) != CE_OK)
		goto fail;
	struct verify_request vr = {in.auth_id, in.auth_id_len, in.response,     in.response_len,
	                            in.csr,     in.csr_len,     in.node_policies};
	e = claim_self_verify(&cc, &vr, &leaf);
	note_subject(rq, &cc);
	if (e != CE_OK) {
		rq->retry_after = cc.retry_after;
		goto fail;
	}
	json_decref(j);
	return reply_certificate(rq, c, leaf, ca_chain_pem(rq->rt->ca), CERT_REPLY_ALL_HOSTS);
fail:
	json_decref(j);
	return reply_error(rq, c, e);
}

/*
 * GET /mqtt_host: {"mqtt_host":...,"mqtt_cred_host":...}, the RainMaker CLI's first
 * request of a claim (sent to its API host). Public facts, so no token is needed (one
 * that is sent is not looked at).
 *
 * Both members are always there while claim.mqtt_host is set: the CLI's NVS image
 * names the file mqtt_cred_host.info in every claim, and writes it only when the member
 * is a non-empty string, so a reply without it fails the CLI after the certificate was
 * issued. Without claim.mqtt_cred_host the member is the MQTT host: firmware reads that
 * key only for video streaming (protocol.md 7), and a camera given it meets an error at
 * the operator's own broker instead of at a host nobody chose. Without claim.mqtt_host
 * there is nothing the CLI could write into the device, so the answer is 404 naming the
 * key, before the CLI makes a key or claims anything.
 */
enum MHD_Result handle_mqtt_host(struct request *rq, struct MHD_Connection *c)
{
	const struct claimd_config *cfg = rq->rt->cfg;
	json_t *j;

	if (!cfg->mqtt_host[0])
		return reply_error(rq, c, CE_MQTT_HOST_UNSET);
	j = json_pack("{s:s, s:s}", "mqtt_host", cfg->mqtt_host, "mqtt_cred_host",
	              cfg->mqtt_cred_host[0] ? cfg->mqtt_cred_host : cfg->mqtt_host);
	return reply_json(rq, c, 200, j);
}
