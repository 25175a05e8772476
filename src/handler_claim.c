/*
 * POST /claim/initiate and /claim/verify: JSON in, field checks with messages that name
 * the field, a call into claim.c, JSON out in the exact shape the firmware parses.
 * Requests with an Authorization header are the user flow, which is not built yet.
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

/* Common prologue: the user flow is refused until it exists; the DB must be there. */
static enum claimd_err prologue(struct request *rq, struct MHD_Connection *c, json_t **j,
                                struct claim_ctx *cc)
{
	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))
		return CE_UNAUTHORIZED;
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
	char mac[MAC_LEN + 1], platform[33];
	const char *s;
	size_t n;
	json_t *j = NULL;
	enum claimd_err e;

	if ((e = prologue(rq, c, &j, &cc)) != CE_OK)
		goto fail;
	if ((e = string_field(j, "mac_addr", CE_MAC_MISSING, CE_MAC_TYPE, &s, &n)) != CE_OK)
		goto fail;
	if (!mac_normalize(mac, s, n)) {
		e = CE_MAC_FORMAT;
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
	if ((e = claim_self_initiate(&cc, mac, platform, &out)) != CE_OK)
		return reply_error(rq, c, e);
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

static json_t *certificate_body(const struct runtime *rt, const char *leaf)
{
	const struct claimd_config *cfg = rt->cfg;
	char *chain = NULL;
	json_t *body;

	if (asprintf(&chain, "%s\n%s", leaf, ca_chain_pem(rt->ca)) < 0)
		return NULL;
	body = json_pack("{s:s}", "certificate", chain);
	free(chain);
	if (body && cfg->mqtt_host[0])
		json_object_set_new(body, "mqtt_host", json_string(cfg->mqtt_host));
	if (body && cfg->mqtt_cred_host[0])
		json_object_set_new(body, "mqtt_cred_host", json_string(cfg->mqtt_cred_host));
	return body;
}

enum MHD_Result handle_claim_verify(struct request *rq, struct MHD_Connection *c)
{
	struct claim_ctx cc = {0};
	struct verify_request vr = {0};
	char *leaf = NULL;
	json_t *j = NULL, *pol, *body;
	enum claimd_err e;

	if (matter_requested(c)) {
		e = CE_MATTER;
		goto fail;
	}
	if ((e = prologue(rq, c, &j, &cc)) != CE_OK)
		goto fail;
	if ((e = string_field(j, "auth_id", CE_AUTHID_MISSING, CE_AUTHID_TYPE, &vr.auth_id,
	                      &vr.auth_id_len)) != CE_OK ||
	    (e = string_field(j, "challenge_response", CE_RESPONSE_MISSING, CE_RESPONSE_TYPE,
	                      &vr.response, &vr.response_len)) != CE_OK ||
	    (e = string_field(j, "csr", CE_CSR_MISSING, CE_CSR_TYPE, &vr.csr, &vr.csr_len)) !=
	        CE_OK)
		goto fail;
	pol = json_object_get(j, "node_policies");
	if (pol && !json_is_string(pol)) {
		e = CE_POLICIES_TYPE;
		goto fail;
	}
	if (pol && (json_string_length(pol) > 256 || json_string_length(pol) == 0)) {
		e = CE_POLICIES_TYPE;
		goto fail;
	}
	vr.node_policies = pol ? json_string_value(pol) : NULL;
	if ((e = claim_self_verify(&cc, &vr, &leaf)) != CE_OK)
		goto fail;
	json_decref(j);
	atomic_fetch_add(&rq->app->self_claims, 1);
	body = certificate_body(rq->rt, leaf);
	free(leaf);
	if (!body)
		return reply_error(rq, c, CE_INTERNAL);
	return reply_json(rq, c, 200, body);
fail:
	json_decref(j);
	return reply_error(rq, c, e);
}
