/*
 * Field extraction for the claim endpoints. Strings must be strings (no numbers or
 * nulls standing in), may not hide a NUL, and are canonicalised by canon.c where
 * clients differ (MAC separators and case; platform case, '-' and '_'), exactly as the
 * CSV import canonicalised the registered device.
 */
#include "daemon/request_fields.h"

#include <string.h>
#include <strings.h>

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

/* The policies the protocol knows (protocol.md section 7), in canonical order. */
static const struct {
	const char *name;
	unsigned bit;
} policies[] = {{"mqtt", POLICY_MQTT}, {"videostream", POLICY_VIDEOSTREAM}};

enum claimd_err policies_parse(const char *s, size_t n, struct policies *out)
{
	const char *end = s + n;

	out->bits = 0;
	out->text[0] = '\0';
	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *a = s, *b = comma ? comma : end;
		bool known = false;
		while (a < b && *a == ' ')
			a++;
		while (b > a && b[-1] == ' ')
			b--;
		for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
			if ((size_t)(b - a) == strlen(policies[i].name) &&
			    strncasecmp(a, policies[i].name, (size_t)(b - a)) == 0) {
				out->bits |= policies[i].bit;
				known = true;
			}
		if (!known)
			return CE_POLICIES_VALUE;
		s = comma ? comma + 1 : end;
		if (comma && s == end)
			return CE_POLICIES_VALUE; /* a trailing comma names an empty policy */
	}
	if (!out->bits)
		out->bits = POLICY_MQTT;
	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
		if (out->bits & policies[i].bit) {
			if (out->text[0])
				strcat(out->text, ",");
			strcat(out->text, policies[i].name);
		}
	return CE_OK;
}

/* node_policies: optional; a string of at most 256 characters holding a list. */
static enum claimd_err policies_field(json_t *j, struct verify_fields *out)
{
	json_t *pol = json_object_get(j, "node_policies");
	out->node_policies = NULL;
	out->policies = (struct policies){POLICY_MQTT, "mqtt"};
	if (!pol)
		return CE_OK;
	if (!json_is_string(pol) || json_string_length(pol) > 256 ||
	    strlen(json_string_value(pol)) != json_string_length(pol))
		return CE_POLICIES_TYPE;
	enum claimd_err e =
	    policies_parse(json_string_value(pol), json_string_length(pol), &out->policies);
	if (e == CE_OK)
		out->node_policies = out->policies.text;
	return e;
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
	return policies_field(j, out);
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
	return policies_field(j, out);
}
