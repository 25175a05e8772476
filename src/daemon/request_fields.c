/*
 * Field extraction for the claim endpoints. Strings must be strings (no numbers or
 * nulls standing in), may not hide a NUL, and are canonicalised by canon.c where
 * clients differ (MAC separators and case; platform case, '-' and '_'), exactly as the
 * CSV import canonicalised the registered device.
 */
#include "claimd/request_fields.h"

#include <string.h>

json_t *fields_parse(const char *body, size_t len)
{
	json_t *j;
	if (!body || len == 0)
		return NULL;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A required string field; CE_OK or the missing/type code. */
static enum claimd_err string_field(json_t *j, const char *key, enum claimd_err missing,
                                    enum claimd_err type, const char **s, size_t *n)
{
	json_t *v = json_object_get(j, key);
	if (!v)
		return missing;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return type;
	*s = json_string_value(v);
	*n = json_string_length(v);
	return CE_OK;
}

enum claimd_err fields_initiate(json_t *j, struct initiate_fields *out)
{
	const char *s;
	size_t n;
	enum claimd_err e;

	if ((e = string_field(j, "mac_addr", CE_MAC_MISSING, CE_MAC_TYPE, &s, &n)) != CE_OK)
		return e;
	if (!mac_normalize(out->mac, s, n))
		return CE_MAC_FORMAT;
	if ((e = string_field(j, "platform", CE_PLATFORM_MISSING, CE_PLATFORM_TYPE, &s, &n)) !=
	    CE_OK)
		return e;
	if (!platform_normalize(out->platform, s, n))
		return CE_PLATFORM_FORMAT;
	return CE_OK;
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

enum claimd_err fields_verify_self(json_t *j, struct verify_fields *out)
{
	enum claimd_err e;
	memset(out, 0, sizeof(*out));
	if ((e = string_field(j, "auth_id", CE_AUTHID_MISSING, CE_AUTHID_TYPE, &out->auth_id,
	                      &out->auth_id_len)) != CE_OK ||
	    (e = string_field(j, "challenge_response", CE_RESPONSE_MISSING, CE_RESPONSE_TYPE,
	                      &out->response, &out->response_len)) != CE_OK ||
	    (e = string_field(j, "csr", CE_CSR_MISSING, CE_CSR_TYPE, &out->csr, &out->csr_len)) !=
	        CE_OK)
		return e;
	return policies_field(j, &out->node_policies);
}

enum claimd_err fields_verify_user(json_t *j, struct verify_fields *out)
{
	enum claimd_err e;
	json_t *smh;
	memset(out, 0, sizeof(*out));
	if ((e = string_field(j, "csr", CE_CSR_MISSING, CE_CSR_TYPE, &out->csr, &out->csr_len)) !=
	    CE_OK)
		return e;
	smh = json_object_get(j, "send_mqtt_host");
	if (smh && !json_is_boolean(smh))
		return CE_SEND_MQTT_HOST_TYPE;
	out->send_mqtt_host = smh && json_is_true(smh);
	return policies_field(j, &out->node_policies);
}
