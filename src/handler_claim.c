/*
 * POST /claim/initiate and /claim/verify: JSON in, field checks with messages that name
 * the field, a call into claim.c, JSON out in the exact shape the clients parse. No
 * Authorization header: self claiming (the device alone). With one: the user flow
 * (the phone apps' assisted claiming and the CLI's host-driven claiming).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "claimd/claim.h"
#include "claimd/http.h"
#include "claimd/log.h"

/* Fetches a required string field; returns CE_OK or the missing/type code. */
static enum claimd_err string_field(json_t *j, const char *key, enum claimd_err missing,
                                    enum claimd_err type, const char **s, size_t *n)
{
	json_t *v = json_object_get(j, key);
	if (!v)
		return missing;
	if (!json_is_string(v))
		return type;
	*s = json_string_value(v);
	*n = json_string_length(v);
	return CE_OK;
}

/*
 * Common prologue: who is asking (a token makes it the user flow; a bad token is 401
 * before anything else is looked at), the JSON body, and this worker's database.
 */
static enum claimd_err prologue(struct request *rq, struct MHD_Connection *c, json_t **j,
                                struct claim_ctx *cc, char user[USER_ID_MAX + 1])
{
	const char *authz =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (authz) {
		const struct claimd_config *cfg = rq->rt->cfg;
		struct auth_policy p = {rq->rt->jwks, cfg->jwt_issuer, cfg->jwt_audience,
		                        cfg->jwt_user_claim, now_unix()};
		const char *why = "";
		if (auth_user(&p, authz, user, &why) != CE_OK) {
			log_info("%s: unauthorized: %s", rq->id, why);
			return CE_UNAUTHORIZED;
		}
		cc->user = user;
		if (!request_allowed(rq, 'u', user))
			return CE_RATE_LIMITED;
	}
	if (!(*j = request_json(rq)))
		return CE_BAD_JSON;
	cc->rt = rq->rt;
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
	char mac[MAC_LEN + 1], platform[33], user[USER_ID_MAX + 1], node_id[NODE_ID_MAX + 1];
	const char *s;
	size_t n;
	json_t *j = NULL;
	enum claimd_err e;

	if ((e = prologue(rq, c, &j, &cc, user)) != CE_OK)
		goto fail;
	if ((e = string_field(j, "mac_addr", CE_MAC_MISSING, CE_MAC_TYPE, &s, &n)) != CE_OK)
		goto fail;
	if (!mac_normalize(mac, s, n)) {
		e = CE_MAC_FORMAT;
		goto fail;
	}
	if (!request_allowed(rq, 'm', mac)) {
		e = CE_RATE_LIMITED;
		goto fail;
	}
	if ((e = string_field(j, "platform", CE_PLATFORM_MISSING, CE_PLATFORM_TYPE, &s, &n)) !=
	    CE_OK)
		goto fail;
	if (!platform_normalize(platform, s, n)) {
		e = CE_PLATFORM_FORMAT;
		goto fail;
	}
	json_decref(j);
	if (cc.user) {
		if ((e = claim_user_initiate(&cc, mac, platform, node_id)) != CE_OK)
			return reply_error(rq, c, e);
		return reply_json(rq, c, 200, json_pack("{s:s}", "node_id", node_id));
	}
	if ((e = claim_self_initiate(&cc, mac, platform, &out)) != CE_OK) {
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

/* ?matter=False (any case) is the normal flow; anything else asks for Matter. */
static bool matter_requested(struct MHD_Connection *c)
{
	const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "matter");
	return m && strcasecmp(m, "false") != 0;
}

static json_t *certificate_body(const struct runtime *rt, const char *leaf, bool mqtt_host,
                                bool mqtt_cred_host)
{
	const struct claimd_config *cfg = rt->cfg;
	char *chain = NULL;
	json_t *body;

	if (asprintf(&chain, "%s\n%s", leaf, ca_chain_pem(rt->ca)) < 0)
		return NULL;
	body = json_pack("{s:s}", "certificate", chain);
	free(chain);
	if (body && mqtt_host && cfg->mqtt_host[0])
		json_object_set_new(body, "mqtt_host", json_string(cfg->mqtt_host));
	if (body && mqtt_cred_host && cfg->mqtt_cred_host[0])
		json_object_set_new(body, "mqtt_cred_host", json_string(cfg->mqtt_cred_host));
	return body;
}

/* node_policies: optional, 1-256 characters. */
static enum claimd_err policies_field(json_t *j, const char **out)
{
	json_t *pol = json_object_get(j, "node_policies");
	*out = NULL;
	if (!pol)
		return CE_OK;
	if (!json_is_string(pol) || json_string_length(pol) == 0 || json_string_length(pol) > 256 ||
	    strlen(json_string_value(pol)) != json_string_length(pol))
		return CE_POLICIES_TYPE;
	*out = json_string_value(pol);
	return CE_OK;
}

static enum MHD_Result reply_certificate(struct request *rq, struct MHD_Connection *c, char *leaf,
                                         bool mqtt_host, bool mqtt_cred_host)
{
	atomic_fetch_add(&rq->app->self_claims, 1);
	json_t *body = certificate_body(rq->rt, leaf, mqtt_host, mqtt_cred_host);
	free(leaf);
	if (!body)
		return reply_error(rq, c, CE_INTERNAL);
	return reply_json(rq, c, 200, body);
}

/* The user flow's verify: only the CSR (and options); the user and CN say the rest. */
static enum MHD_Result user_verify(struct request *rq, struct MHD_Connection *c,
                                   struct claim_ctx *cc, json_t *j)
{
	const char *csr, *policies;
	size_t csr_len;
	char *leaf = NULL;
	enum claimd_err e;
	json_t *smh = json_object_get(j, "send_mqtt_host");

	if ((e = string_field(j, "csr", CE_CSR_MISSING, CE_CSR_TYPE, &csr, &csr_len)) != CE_OK ||
	    (e = policies_field(j, &policies)) != CE_OK)
		goto fail;
	if (smh && !json_is_boolean(smh)) {
		e = CE_SEND_MQTT_HOST_TYPE;
		goto fail;
	}
	bool want_host = smh && json_is_true(smh);
	if ((e = claim_user_verify(cc, csr, csr_len, policies, &leaf)) != CE_OK)
		goto fail;
	json_decref(j);
	return reply_certificate(rq, c, leaf, want_host, false);
fail:
	json_decref(j);
	return reply_error(rq, c, e);
}

enum MHD_Result handle_claim_verify(struct request *rq, struct MHD_Connection *c)
{
	struct claim_ctx cc = {0};
	struct verify_request vr = {0};
	char *leaf = NULL, user[USER_ID_MAX + 1];
	json_t *j = NULL;
	enum claimd_err e;

	if (matter_requested(c)) {
		e = CE_MATTER;
		goto fail;
	}
	if ((e = prologue(rq, c, &j, &cc, user)) != CE_OK)
		goto fail;
	if (cc.user)
		return user_verify(rq, c, &cc, j);
	if ((e = string_field(j, "auth_id", CE_AUTHID_MISSING, CE_AUTHID_TYPE, &vr.auth_id,
	                      &vr.auth_id_len)) != CE_OK ||
	    (e = string_field(j, "challenge_response", CE_RESPONSE_MISSING, CE_RESPONSE_TYPE,
	                      &vr.response, &vr.response_len)) != CE_OK ||
	    (e = string_field(j, "csr", CE_CSR_MISSING, CE_CSR_TYPE, &vr.csr, &vr.csr_len)) !=
	        CE_OK ||
	    (e = policies_field(j, &vr.node_policies)) != CE_OK)
		goto fail;
	if ((e = claim_self_verify(&cc, &vr, &leaf)) != CE_OK) {
		rq->retry_after = cc.retry_after;
		goto fail;
	}
	json_decref(j);
	return reply_certificate(rq, c, leaf, true, true);
fail:
	json_decref(j);
	return reply_error(rq, c, e);
}
