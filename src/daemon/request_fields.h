/*
 * The claim requests' fields: JSON in, checked C values out, one error code naming the
 * field that was wrong. Pure (no HTTP, no database), so the handlers and the fuzzer
 * run exactly the same checks.
 */
#ifndef CLAIMD_REQUEST_FIELDS_H
#define CLAIMD_REQUEST_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/errors.h"
#include "lib/canon.h"

struct initiate_fields {
	char mac[MAC_LEN + 1];           /* canonical (canon.h) */
	char platform[PLATFORM_MAX + 1]; /* canonical: "ESP32-S3" is "esp32s3" */
};

enum policy_bits { POLICY_MQTT = 1 << 0, POLICY_VIDEOSTREAM = 1 << 1 };

/* A node_policies list, read: which policies, and the canonical text that is stored. */
struct policies {
	unsigned bits; /* enum policy_bits */
	char text[24]; /* "mqtt", "videostream" or "mqtt,videostream" */
};

struct verify_fields {
	const char *auth_id, *response, *csr; /* borrowed from the JSON */
	size_t auth_id_len, response_len, csr_len;
	const char *node_policies; /* canonical (policies.text), or NULL when not sent */
	struct policies policies;  /* what was asked; mqtt when nothing was */
	bool send_mqtt_host;
};

/**
 * Parses a request body as a JSON object (whatever the Content-Type), refusing
 * duplicate keys. NULL for anything else.
 */
json_t *fields_parse(const char *body, size_t len);
/**
 * mac_addr and platform (docs/protocol.md 2.1 and 4.1), canonicalised by
 * mac_normalize() and platform_normalize(). Any platform name is accepted here, "host"
 * included: only registration requires a known IDF target; a self claim then compares
 * the canonical forms. Errors: CE_MAC_MISSING, CE_MAC_TYPE, CE_MAC_FORMAT,
 * CE_PLATFORM_MISSING, CE_PLATFORM_TYPE, CE_PLATFORM_FORMAT.
 */
enum claimd_err fields_initiate(json_t *j, struct initiate_fields *out);
/**
 * A self claim's verify: auth_id, challenge_response, csr, optional node_policies.
 * Errors: CE_AUTHID_MISSING/TYPE, CE_RESPONSE_MISSING/TYPE, CE_CSR_MISSING/TYPE,
 * CE_POLICIES_TYPE, CE_POLICIES_VALUE (policies_parse()).
 */
enum claimd_err fields_verify_self(json_t *j, struct verify_fields *out);
/**
 * A user claim's verify: csr, optional send_mqtt_host and node_policies.
 * Errors: CE_CSR_MISSING/TYPE, CE_SEND_MQTT_HOST_TYPE, CE_POLICIES_TYPE,
 * CE_POLICIES_VALUE.
 */
enum claimd_err fields_verify_user(json_t *j, struct verify_fields *out);
/**
 * Reads a node_policies list (protocol.md section 7): @p n bytes of comma-separated
 * policy names, mqtt and videostream, in any case, spaces around names ignored; empty
 * means mqtt. Fills @p out (bits and the canonical text, names in the order mqtt,
 * videostream, each once). CE_OK, or CE_POLICIES_VALUE for an unknown or empty name.
 */
enum claimd_err policies_parse(const char *s, size_t n, struct policies *out);

#endif
