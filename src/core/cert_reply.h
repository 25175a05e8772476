/*
 * The certificate reply of /claim/verify, byte for byte, and its exact length: one
 * module, so the size checks and the bytes sent cannot drift apart. It knows nothing of
 * HTTP and decides nothing about which flow gets which host; callers say which hosts.
 */
#ifndef CLAIMD_CERT_REPLY_H
#define CLAIMD_CERT_REPLY_H

#include <stddef.h>

#include "lib/config.h"

#define RESPONSE_MAX 3071 /* the firmware's receive buffer, less its NUL */

/* Which of the configured hosts a reply carries; a host that is not configured is
 * left out whatever is asked. */
enum cert_reply_hosts {
	CERT_REPLY_NO_HOSTS = 0,
	CERT_REPLY_MQTT_HOST = 1 << 0,      /* "mqtt_host": claim.mqtt_host */
	CERT_REPLY_MQTT_CRED_HOST = 1 << 1, /* "mqtt_cred_host": claim.mqtt_cred_host */
	CERT_REPLY_ALL_HOSTS = CERT_REPLY_MQTT_HOST | CERT_REPLY_MQTT_CRED_HOST,
};

/**
 * The length of the reply {"certificate":"<leaf>\n<chain>"[,"mqtt_host":"..."]
 * [,"mqtt_cred_host":"..."]} that cert_reply_body() builds from the same arguments.
 * @p leaf_pem is the new certificate and @p chain_pem the issuing CA and chain
 * (ca_chain_pem()), both PEM without a trailing newline; @p cfg gives the hosts and
 * @p hosts says which of them to include. Returns SIZE_MAX when a PEM or host holds
 * anything the firmware cannot read unescaped (only '\n' is escaped; no '"', '\', '\r',
 * control or non-ASCII bytes, no empty line, no newline at either end).
 */
size_t cert_reply_len(const char *leaf_pem, const char *chain_pem, const struct claimd_config *cfg,
                      unsigned hosts);
/**
 * The reply body itself, NUL-terminated, exactly cert_reply_len() bytes, for the caller
 * to free(). Same parameters. Returns NULL when out of memory or when cert_reply_len()
 * would return SIZE_MAX.
 */
char *cert_reply_body(const char *leaf_pem, const char *chain_pem, const struct claimd_config *cfg,
                      unsigned hosts);

#endif
