/*
 * The certificate reply, built by hand: one walk over the same pieces either counts the
 * bytes or writes them, so a predicted length is the length sent. It must not escape
 * anything but '\n' (the firmware's parser knows no other escape), so it refuses input
 * that would need one instead of escaping it.
 */
#include "core/cert_reply.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Where a walk writes: nowhere (p == NULL, counting only) or a buffer large enough. */
struct out {
	char *p;
	size_t n;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->p)
		memcpy(o->p + o->n, s, n);
	o->n += n;
}

/* A PEM inside a JSON string: each newline becomes the two characters \n. */
static void put_escaped(struct out *o, const char *s)
{
	for (;;) {
		size_t run = strcspn(s, "\n");
		put(o, s, run);
		if (!s[run])
			return;
		put(o, "\\n", 2);
		s += run + 1;
	}
}

/* Printable ASCII that JSON carries as itself; newlines only inside, one at a time. */
static bool carryable(const char *s, bool newlines)
{
	if (s[0] == '\n')
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '\n') {
			if (!newlines || p[1] == '\n' || p[1] == '\0')
				return false;
			continue;
		}
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			return false;
	}
	return true;
}

static const char *host(const char *configured, unsigned hosts, unsigned which)
{
	return (hosts & which) && configured && configured[0] ? configured : NULL;
}

static size_t walk(struct out *o, const char *leaf_pem, const char *chain_pem,
                   const struct claimd_config *cfg, unsigned hosts)
{
	const char *mqtt = host(cfg->mqtt_host, hosts, CERT_REPLY_MQTT_HOST);
	const char *cred = host(cfg->mqtt_cred_host, hosts, CERT_REPLY_MQTT_CRED_HOST);

	if (!leaf_pem[0] || !chain_pem[0] || !carryable(leaf_pem, true) ||
	    !carryable(chain_pem, true) || (mqtt && !carryable(mqtt, false)) ||
	    (cred && !carryable(cred, false)))
		return SIZE_MAX;
	put(o, "{\"certificate\":\"", 16);
	put_escaped(o, leaf_pem);
	put(o, "\\n", 2);
	put_escaped(o, chain_pem);
	put(o, "\"", 1);
	if (mqtt) {
		put(o, ",\"mqtt_host\":\"", 14);
		put(o, mqtt, strlen(mqtt));
		put(o, "\"", 1);
	}
	if (cred) {
		put(o, ",\"mqtt_cred_host\":\"", 19);
		put(o, cred, strlen(cred));
		put(o, "\"", 1);
	}
	put(o, "}", 1);
	return o->n;
}

size_t cert_reply_len(const char *leaf_pem, const char *chain_pem, const struct claimd_config *cfg,
                      unsigned hosts)
{
	struct out count = {NULL, 0};
	return walk(&count, leaf_pem, chain_pem, cfg, hosts);
}

char *cert_reply_body(const char *leaf_pem, const char *chain_pem, const struct claimd_config *cfg,
                      unsigned hosts)
{
	const char *mqtt = host(cfg->mqtt_host, hosts, CERT_REPLY_MQTT_HOST);
	const char *cred = host(cfg->mqtt_cred_host, hosts, CERT_REPLY_MQTT_CRED_HOST);
	/* One walk that writes, into room for the worst case (every byte of the PEMs a
	 * newline, escaped as two), instead of a walk that counts and one that writes:
	 * the reply is built on every claim. */
	size_t room = 2 * (strlen(leaf_pem) + strlen(chain_pem)) + (mqtt ? strlen(mqtt) : 0) +
	              (cred ? strlen(cred) : 0) + 64;
	struct out o = {malloc(room), 0};
	size_t n;

	if (!o.p)
		return NULL;
	if ((n = walk(&o, leaf_pem, chain_pem, cfg, hosts)) == SIZE_MAX) {
		free(o.p);
		return NULL;
	}
	o.p[n] = '\0';
	return o.p;
}
