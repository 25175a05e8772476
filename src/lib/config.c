/*
 * Config loading with libyaml. The key table below is the whole schema: a key that is
 * not in it is an error, every scalar is read as text and converted explicitly, and
 * every error carries file:line:column. Nothing here opens the files a key names.
 */
#include "lib/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "lib/canon.h"

/* K_KEYREF: a path, or an RFC 7512 "pkcs11:" URI taken as it is. */
enum ktype { K_STR, K_PATH, K_KEYREF, K_UINT, K_LIST, K_HOST };

/* When a changed value takes effect: at the next SIGHUP, or only when the process
 * starts (the listening socket, the worker pool and its connections are made once). */
enum kwhen { RELOAD, RESTART };

struct key {
	const char *name; /* dotted path */
	enum ktype type;
	size_t off;
	const char *def; /* NULL: no default */
	unsigned min, max;
	enum kwhen when;
	const char *doc;
};

/* The index of @p v in the NULL-terminated @p names (the enum's order), or -1. */
static int choice(const char *v, const char *const names[])
{
	for (int i = 0; names[i]; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	return -1;
}

#define O(f) offsetof(struct claimd_config, f)

static const struct key keys[] = {
    {"server.listen", K_STR, O(listen), "127.0.0.1:8080", 0, 0, RESTART,
     "host:port to listen on (IPv6 as [addr]:port); put a TLS reverse proxy in front"},
    {"server.trusted_proxies", K_LIST, O(trusted_proxies), "[\"127.0.0.1/32\", \"::1/128\"]", 0, 0,
     RELOAD, "CIDRs whose X-Forwarded-For / X-Real-IP headers are believed"},
    {"server.threads", K_UINT, O(threads), "8", 1, 256, RESTART,
     "worker threads; each holds one PostgreSQL connection"},
    {"server.max_body_bytes", K_UINT, O(max_body_bytes), "16384", 1024, 1048576, RELOAD,
     "largest request body; larger ones get 413 before the rest is read"},
    {"server.connection_timeout_seconds", K_UINT, O(connection_timeout), "10", 1, 3600, RESTART,
     "idle connections are closed after this long"},
    {"server.log_level", K_STR, O(log_level), "info", 0, 0, RELOAD, "debug, info, warn or error"},
    {"server.event_loop", K_STR, O(event_loop), "poll", 0, 0, RESTART,
     "poll, or epoll: libmicrohttpd's epoll mode can keep a connection whose client "
     "half-closed after its request until connection_timeout_seconds (docs/operations.md)"},
    {"server.listen_sharing", K_STR, O(listen_sharing), "exclusive", 0, 0, RESTART,
     "exclusive: a second process on a listening address taken is refused; shared: "
     "SO_REUSEPORT, the kernel spreads connections over every claimd sharing it (each "
     "with the same database and secrets key)"},
    {"server.metrics", K_STR, O(metrics_on), "public", 0, 0, RELOAD,
     "where /metrics is served: public (server.listen and admin.listen) or admin (only "
     "admin.listen, behind its tokens; the public listener answers 404)"},
    {"server.user", K_STR, O(server_user), "claimd", 0, 0, RESTART,
     "the network process's user when claimd starts as root (a name or a numeric uid; it "
     "must not be able to read a key); an external signer accepts only this uid"},
    {"server.run_as_root", K_STR, O(run_as_root_text), "no", 0, 0, RESTART,
     "yes: the network process stays root when started as root (no separation of users: "
     "code execution in it can read the keys); for tests and debugging only"},
    {"database.url", K_STR, O(db_url), "postgresql:///claimd?host=/run/postgresql", 0, 0, RESTART,
     "any libpq connection string or URI; claimd adds keepalives, tcp_user_timeout=2000, "
     "connect_timeout=2 and application_name=claimd where it leaves them out, and "
     "target_session_attrs=read-write when it lists several hosts (docs/operations.md)"},
    {"database.timeout_ms", K_UINT, O(db_timeout_ms), "1500", 100, 60000, RESTART,
     "the longest a request waits for the database: for a connection (all hosts together) "
     "and for each reply; past it the database counts as not answering and requests get "
     "503 at once until it answers again (must stay well under the firmware's 5 s)"},
    {"ca.certificate", K_PATH, O(ca_certificate), NULL, 0, 0, RELOAD,
     "the signing (intermediate) CA certificate, PEM"},
    {"ca.key", K_KEYREF, O(ca_key), NULL, 0, 0, RELOAD,
     "its private key: a PEM file (P-256 or RSA 2048/3072; mode 0600), or an RFC 7512 "
     "pkcs11: URI (docs/operations.md)"},
    {"ca.chain", K_PATH, O(ca_chain), "", 0, 0, RELOAD,
     "optional: certificates appended after the issuing CA in every response"},
    {"ca.crl_url", K_STR, O(ca_crl_url), "", 0, 0, RELOAD,
     "optional: http:// URL of the CRL, put in issued certificates (CRL Distribution Points)"},
    {"ca.validity_days", K_UINT, O(validity_days), "3650", 1, 36500, RELOAD,
     "lifetime of issued device certificates"},
    {"secrets.key_file", K_PATH, O(secrets_key_file), NULL, 0, 0, RELOAD,
     "output of 'claimctl keygen'; encrypts eFuse keys at rest and signs auth_ids; mode 0600"},
    {"claim.challenge_ttl_seconds", K_UINT, O(challenge_ttl), "300", 5, 86400, RELOAD,
     "how long an auth_id and its challenge stay valid"},
    {"claim.max_attempts", K_UINT, O(max_attempts), "3", 1, 100, RELOAD,
     "wrong challenge responses before an auth_id is burned"},
    {"claim.mqtt_host", K_HOST, O(mqtt_host), "", 0, 0, RELOAD,
     "bare hostname returned as \"mqtt_host\"; the RainMaker CLI needs it"},
    {"claim.mqtt_cred_host", K_HOST, O(mqtt_cred_host), "", 0, 0, RELOAD,
     "optional: bare hostname returned as \"mqtt_cred_host\" (GET /mqtt_host: else mqtt_host)"},
    {"claim.extra_platforms", K_LIST, O(extra_platforms), "[]", 0, 0, RELOAD,
     "platforms the device import accepts besides the known IDF targets (esp32, esp32s3, ...); "
     "any case, '-' and '_' ignored"},
    {"claim.transfer", K_STR, O(transfer), "release", 0, 0, RELOAD,
     "a user's claim of a MAC another user holds: release (with the same device key, the "
     "other user's node is released and its certificates revoked), keep (both nodes stay "
     "valid) or refuse (400 while the other user holds a valid certificate)"},
    {"users.jwt.jwks_file", K_PATH, O(jwt_jwks_file), "", 0, 0, RELOAD,
     "identity provider public keys (RFC 7517); empty disables assisted claiming"},
    {"users.jwt.issuer", K_STR, O(jwt_issuer), "", 0, 0, RELOAD,
     "required \"iss\" of access tokens"},
    {"users.jwt.audience", K_STR, O(jwt_audience), "", 0, 0, RELOAD,
     "required value of the audience claim; empty: not checked"},
    {"users.jwt.audience_claim", K_STR, O(jwt_audience_claim), "aud", 0, 0, RELOAD,
     "which claim carries the audience: aud, or client_id for Cognito access tokens "
     "(which have no aud)"},
    {"users.jwt.user_claim", K_STR, O(jwt_user_claim), "sub", 0, 0, RELOAD,
     "which claim names the user"},
    {"users.quota", K_UINT, O(quota), "5", 0, 1000000, RELOAD,
     "distinct devices one user may claim; 0 = unlimited"},
    {"limits.address_per_minute", K_UINT, O(address_per_minute), "3000", 0, 10000000, RELOAD,
     "requests per minute per client address (a factory behind one NAT is one address); 0 = off"},
    {"limits.address_burst", K_UINT, O(address_burst), "300", 1, 10000000, RELOAD,
     "requests one client address may send at once before its rate applies"},
    {"limits.mac_per_minute", K_UINT, O(mac_per_minute), "30", 0, 1000000, RELOAD,
     "initiates per minute per MAC address; 0 = off"},
    {"limits.mac_burst", K_UINT, O(mac_burst), "10", 1, 1000000, RELOAD,
     "initiates one MAC may make at once"},
    {"limits.user_per_minute", K_UINT, O(user_per_minute), "300", 0, 1000000, RELOAD,
     "claim requests per minute per user; 0 = off"},
    {"limits.user_burst", K_UINT, O(user_burst), "60", 1, 1000000, RELOAD,
     "claim requests one user may make at once"},
    {"limits.lockout_failures", K_UINT, O(lockout_failures), "10", 0, 1000000, RELOAD,
     "wrong challenge responses for one MAC before it is locked (shared by all daemons); 0 = off"},
    {"limits.lockout_seconds", K_UINT, O(lockout_seconds), "300", 1, 31536000, RELOAD,
     "the first lock's length; each further lock of the MAC doubles it"},
    {"limits.lockout_max_seconds", K_UINT, O(lockout_max_seconds), "86400", 1, 31536000, RELOAD,
     "the longest a lock grows to"},
    {"limits.claims_in_flight", K_UINT, O(claims_in_flight), "256", 1, 100000, RELOAD,
     "claim requests one process handles at once, from headers to reply; more get 503"},
    {"limits.request_seconds", K_UINT, O(request_seconds), "15", 1, 3600, RELOAD,
     "longest time to receive one request body; slower clients get 408 and are cut off"},
    {"limits.max_connections", K_UINT, O(max_connections), "1024", 1, 1000000, RESTART,
     "open connections per process"},
    {"limits.max_connections_per_address", K_UINT, O(max_connections_per_address), "0", 0, 1000000,
     RESTART, "open connections per peer address (the proxy, behind one); 0 = unlimited"},
    {"limits.connection_memory_bytes", K_UINT, O(connection_memory_bytes), "32768", 8192, 1048576,
     RESTART, "memory for one connection's request line and headers; larger ones are refused"},
    {"revocation.crl_hours", K_UINT, O(crl_hours), "24", 1, 8760, RELOAD,
     "nextUpdate of each CRL, in hours after thisUpdate; a CRL is re-issued at half-life"},
    {"revocation.on_reclaim", K_STR, O(on_reclaim), "supersede", 0, 0, RELOAD,
     "supersede (a re-claim revokes the node's earlier certificates) or keep"},
    {"log.format", K_STR, O(log_format), "text", 0, 0, RELOAD,
     "text, or json: one object per line (time, level, message; request lines add "
     "request_id, route, method, status, duration_ms, mac or node_id, user)"},
    {"admin.listen", K_STR, O(admin_listen), "", 0, 0, RESTART,
     "optional: host:port of the management API (bearer tokens); empty = off"},
    {"admin.tokens_file", K_PATH, O(admin_tokens_file), "", 0, 0, RELOAD,
     "lines \"sha256-hex-of-token name\" accepted by the management API; mode 0600"},
    {"matter.pai_certificate", K_PATH, O(matter_pai_certificate), "", 0, 0, RELOAD,
     "optional: the Matter PAI (P-256, CA with pathLenConstraint 0) that signs DACs for "
     "?matter=true; empty = Matter refused with 400"},
    {"matter.pai_key", K_KEYREF, O(matter_pai_key), "", 0, 0, RELOAD,
     "the PAI's private key: a PEM file (P-256; mode 0600) or a pkcs11: URI, as ca.key"},
    {"matter.vendor_id", K_STR, O(matter_vendor_id), "", 0, 0, RELOAD,
     "the Matter vendor id, 4 hex digits (e.g. \"131B\"); must match the PAI's subject"},
    {"matter.product_ids", K_LIST, O(matter_product_ids), "[]", 0, 0, RELOAD,
     "product ids (4 hex digits each) a DAC may be issued for; empty = any"},
    {"signer.user", K_STR, O(signer_user), "claimd-signer", 0, 0, RELOAD,
     "the key-holding signer process's user when claimd starts as root (must exist)"},
    {"signer.timeout_seconds", K_UINT, O(signer_timeout), "3", 1, 60, RELOAD,
     "a signer silent this long is killed: 503, and claimd exits for its supervisor (under the "
     "firmware's 5 s wait for a reply); /readyz is not ready while it does not answer"},
    {"signer.socket", K_PATH, O(signer_socket), "", 0, 0, RESTART,
     "optional: the Unix socket of an external signer (claimd --signer -c FILE listens on it, "
     "claimd connects to it); empty = claimd starts its own signer"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct loader {
	struct claimd_config *c;
	bool seen[NKEYS];
	char *err;
	size_t errsz;
};

static int fail_at(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	int k = n ? snprintf(L->err, L->errsz, "%s:%zu:%zu: ", L->c->file, n->start_mark.line + 1,
	                     n->start_mark.column + 1)
	          : snprintf(L->err, L->errsz, "%s: ", L->c->file);
	if (k < 0 || (size_t)k >= L->errsz)
		return -1;
	va_start(ap, fmt);
	vsnprintf(L->err + k, L->errsz - (size_t)k, fmt, ap);
	va_end(ap);
	return -1;
}

static char **field_str(struct claimd_config *c, const struct key *k)
{
	return (char **)((char *)c + k->off);
}

static bool parse_uint(const char *s, unsigned long *out)
{
	/* Digits only, no sign, no leading zero: "010" and "0x10" never change meaning. */
	if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 9)
		return false;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	*out = strtoul(s, NULL, 10);
	return true;
}

static bool valid_host(const char *s)
{
	size_t n = strlen(s);
	if (n == 0)
		return true; /* unset */
	if (n > 253)
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			return false;
	return s[0] != '.' && s[0] != '-';
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static int set_scalar(struct loader *L, const struct key *k, const char *v, const yaml_node_t *n)
{
	struct claimd_config *c = L->c;
	unsigned long u;

	switch (k->type) {
	case K_UINT:
		if (!parse_uint(v, &u) || u < k->min || u > k->max)
			return fail_at(L, n, "%s: expected a whole number from %u to %u", k->name,
			               k->min, k->max);
		*(unsigned *)((char *)c + k->off) = (unsigned)u;
		return 0;
	case K_HOST:
		if (!valid_host(v))
			return fail_at(L, n, "%s: expected a bare hostname (no scheme, no port)",
			               k->name);
		break;
	case K_PATH:
	case K_KEYREF:
		if (v[0] && v[0] != '/' && (k->type == K_PATH || strncmp(v, "pkcs11:", 7) != 0)) {
			char *p = NULL;
			if (asprintf(&p, "%s/%s", c->dir, v) < 0)
				return fail_at(L, n, "out of memory");
			free(*field_str(c, k));
			*field_str(c, k) = p;
			return 0;
		}
		break;
	case K_STR:
		break;
	case K_LIST:
		return fail_at(L, n, "%s: expected a list", k->name);
	}
	char *d = strdup(v);
	if (!d)
		return fail_at(L, n, "out of memory");
	free(*field_str(c, k));
	*field_str(c, k) = d;
	return 0;
}

static char ***field_list(struct claimd_config *c, const struct key *k)
{
	return (char ***)((char *)c + k->off);
}

/* Each list (NULL-terminated) and the count kept beside it. */
static const struct {
	size_t list, count;
} list_counts[] = {
    {O(trusted_proxies), O(n_trusted_proxies)},
    {O(extra_platforms), O(n_extra_platforms)},
    {O(matter_product_ids), O(n_matter_product_ids)},
};

static size_t count_off(const struct key *k)
{
	for (size_t i = 0; i < sizeof(list_counts) / sizeof(list_counts[0]); i++)
		if (list_counts[i].list == k->off)
			return list_counts[i].count;
	abort(); /* a K_LIST key missing from list_counts: a programming error */
}

static size_t *field_count(struct claimd_config *c, const struct key *k)
{
	return (size_t *)((char *)c + count_off(k));
}

/* A list: NULL-terminated, its count beside it (list_counts). */
static int set_list(struct loader *L, const struct key *k, yaml_document_t *doc,
                    const yaml_node_t *n)
{
	struct claimd_config *c = L->c;
	size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	char **l = calloc(cnt + 1, sizeof(*l));
	size_t i = 0;

	if (!l)
		return fail_at(L, n, "out of memory");
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *e = yaml_document_get_node(doc, *it);
		if (!e || e->type != YAML_SCALAR_NODE) {
			free_list(l, i);
			return fail_at(L, e ? e : n, "%s: items must be strings", k->name);
		}
		l[i] = strdup((const char *)e->data.scalar.value);
		if (!l[i]) {
			free_list(l, i);
			return fail_at(L, e, "out of memory");
		}
	}
	free_list(*field_list(c, k), *field_count(c, k));
	*field_list(c, k) = l;
	*field_count(c, k) = cnt;
	return 0;
}

static bool is_section(const char *path)
{
	size_t n = strlen(path);
	for (size_t i = 0; i < NKEYS; i++)
		if (strncmp(keys[i].name, path, n) == 0 && keys[i].name[n] == '.')
			return true;
	return false;
}

static int walk(struct loader *L, yaml_document_t *doc, yaml_node_t *map, const char *prefix)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = yaml_document_get_node(doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(doc, p->value);
		char path[128];

		if (!kn || kn->type != YAML_SCALAR_NODE)
			return fail_at(L, kn, "keys must be plain strings");
		int w = snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "",
		                 (const char *)kn->data.scalar.value);
		if (w < 0 || (size_t)w >= sizeof(path))
			return fail_at(L, kn, "unknown key");
		if (is_section(path)) {
			if (vn->type != YAML_MAPPING_NODE)
				return fail_at(L, vn, "%s: expected a mapping", path);
			for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
				yaml_node_t *qk = yaml_document_get_node(doc, q->key);
				if (qk && qk->type == YAML_SCALAR_NODE &&
				    strcmp((char *)qk->data.scalar.value,
				           (char *)kn->data.scalar.value) == 0)
					return fail_at(L, kn, "%s: duplicate key", path);
			}
			if (walk(L, doc, vn, path) < 0)
				return -1;
			continue;
		}
		size_t i;
		for (i = 0; i < NKEYS; i++)
			if (strcmp(keys[i].name, path) == 0)
				break;
		if (i == NKEYS)
			return fail_at(L, kn, "unknown key '%s'", path);
		if (L->seen[i])
			return fail_at(L, kn, "%s: duplicate key", path);
		L->seen[i] = true;
		if (keys[i].type == K_LIST) {
			if (vn->type != YAML_SEQUENCE_NODE)
				return fail_at(L, vn, "%s: expected a list", path);
			if (set_list(L, &keys[i], doc, vn) < 0)
				return -1;
		} else {
			if (vn->type != YAML_SCALAR_NODE)
				return fail_at(L, vn, "%s: expected a single value", path);
			if (set_scalar(L, &keys[i], (const char *)vn->data.scalar.value, vn) < 0)
				return -1;
		}
	}
	return 0;
}

static int set_defaults(struct loader *L)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (!k->def)
			continue;
		if (k->type == K_LIST) {
			/* Two list defaults: loopback proxies, and empty. */
			static const char *d[] = {"127.0.0.1/32", "::1/128"};
			size_t n = strcmp(k->def, "[]") == 0 ? 0 : 2;
			char **l = calloc(n + 1, sizeof(char *));
			if (!l)
				return fail_at(L, NULL, "out of memory");
			*field_list(L->c, k) = l;
			for (size_t j = 0; j < n; j++) {
				if (!(l[j] = strdup(d[j])))
					return fail_at(L, NULL, "out of memory");
				*field_count(L->c, k) = j + 1;
			}
			continue;
		}
		if (set_scalar(L, k, k->def, NULL) < 0)
			return -1;
	}
	return 0;
}

static bool valid_cidr(const char *s)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned char buf[16];
	unsigned long bits = 0;
	int maxbits;

	if (n == 0 || n >= sizeof(addr))
		return false;
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, buf) == 1)
		maxbits = 32;
	else if (inet_pton(AF_INET6, addr, buf) == 1)
		maxbits = 128;
	else
		return false;
	if (!slash)
		return true;
	return parse_uint(slash + 1, &bits) && bits <= (unsigned long)maxbits;
}

/* Splits listen key @p key's value @p s into *@p host_out (malloc'd) and *@p port_out. */
static int split_listen(struct loader *L, const yaml_node_t *n, const char *key, const char *s,
                        char **host_out, unsigned *port_out)
{
	const char *colon;
	unsigned long port;
	char *host;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return fail_at(L, n, "%s: expected host:port", key);
		host = strndup(s + 1, (size_t)(end - s - 1));
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || colon == s)
			return fail_at(L, n, "%s: expected host:port", key);
		host = strndup(s, (size_t)(colon - s));
	}
	if (!host)
		return fail_at(L, n, "out of memory");
	if (!parse_uint(colon + 1, &port) || port > 65535) {
		free(host);
		return fail_at(L, n, "%s: port must be 0-65535", key);
	}
	free(*host_out);
	*host_out = host;
	*port_out = (unsigned)port;
	return 0;
}

static const yaml_node_t *node_of(yaml_document_t *doc, const char *path)
{
	/* Finds the value node of a dotted key, for error positions after the walk. */
	yaml_node_t *n = yaml_document_get_root_node(doc);
	char buf[128];
	char *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && n; tok = strtok_r(NULL, ".", &save)) {
		yaml_node_t *next = NULL;
		if (n->type != YAML_MAPPING_NODE)
			return NULL;
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			if (k && k->type == YAML_SCALAR_NODE &&
			    strcmp((char *)k->data.scalar.value, tok) == 0)
				next = yaml_document_get_node(doc, p->value);
		}
		n = next;
	}
	return n;
}

/* Four hex digits, upper-cased in place (the form Matter certificates carry). */
static bool matter_id(char *s)
{
	if (strlen(s) != 4)
		return false;
	for (char *p = s; *p; p++) {
		if (!isxdigit((unsigned char)*p))
			return false;
		*p = (char)toupper((unsigned char)*p);
	}
	return true;
}

/* The matter section: all of it or none of it, ids in canonical form. */
static int check_matter(struct loader *L, yaml_document_t *doc)
{
	struct claimd_config *c = L->c;
	bool any = c->matter_pai_certificate[0] || c->matter_pai_key[0] || c->matter_vendor_id[0] ||
	           c->n_matter_product_ids;

	if (!any)
		return 0;
	if (!c->matter_pai_certificate[0] || !c->matter_pai_key[0] || !c->matter_vendor_id[0])
		return fail_at(L, node_of(doc, "matter"),
		               "matter: pai_certificate, pai_key and vendor_id are all required "
		               "when Matter is configured");
	if (!matter_id(c->matter_vendor_id))
		return fail_at(L, node_of(doc, "matter.vendor_id"),
		               "matter.vendor_id: expected 4 hex digits");
	for (size_t i = 0; i < c->n_matter_product_ids; i++)
		if (!matter_id(c->matter_product_ids[i]))
			return fail_at(L, node_of(doc, "matter.product_ids"),
			               "matter.product_ids: '%.16s' is not 4 hex digits",
			               c->matter_product_ids[i]);
	return 0;
}

static int validate(struct loader *L, yaml_document_t *doc)
{
	struct claimd_config *c = L->c;

	for (size_t i = 0; i < NKEYS; i++) {
		if (!keys[i].def && !L->seen[i])
			return fail_at(L, yaml_document_get_root_node(doc), "%s: required",
			               keys[i].name);
	}
	if (split_listen(L, node_of(doc, "server.listen"), "server.listen", c->listen,
	                 &c->listen_host, &c->listen_port) < 0)
		return -1;
	if (c->admin_listen[0] &&
	    split_listen(L, node_of(doc, "admin.listen"), "admin.listen", c->admin_listen,
	                 &c->admin_listen_host, &c->admin_listen_port) < 0)
		return -1;
	if (c->admin_listen[0] && !c->admin_tokens_file[0])
		return fail_at(L, node_of(doc, "admin"),
		               "admin.tokens_file: required when admin.listen is set");
	for (size_t i = 0; i < c->n_trusted_proxies; i++)
		if (!valid_cidr(c->trusted_proxies[i]))
			return fail_at(L, node_of(doc, "server.trusted_proxies"),
			               "server.trusted_proxies: '%s' is not an address or CIDR",
			               c->trusted_proxies[i]);
	static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
	static const char *const loops[] = {"epoll", "poll", NULL};
	static const char *const sharings[] = {"exclusive", "shared", NULL};
	static const char *const listeners[] = {"public", "admin", NULL};
	static const char *const reclaims[] = {"supersede", "keep", NULL};
	static const char *const transfers[] = {"release", "keep", "refuse", NULL};
	static const char *const formats[] = {"text", "json", NULL};
	int v;
	/* Each word-valued key becomes its C enum here, once; the code compares enums. */
	if ((v = choice(c->log_level, levels)) < 0)
		return fail_at(L, node_of(doc, "server.log_level"),
		               "server.log_level: expected debug, info, warn or error");
	c->log_level_value = (enum log_level)v;
	if ((v = choice(c->event_loop, loops)) < 0)
		return fail_at(L, node_of(doc, "server.event_loop"),
		               "server.event_loop: expected epoll or poll");
	c->loop = (enum event_loop_kind)v;
	if ((v = choice(c->listen_sharing, sharings)) < 0)
		return fail_at(L, node_of(doc, "server.listen_sharing"),
		               "server.listen_sharing: expected exclusive or shared");
	c->sharing = (enum listen_sharing_kind)v;
	if ((v = choice(c->metrics_on, listeners)) < 0)
		return fail_at(L, node_of(doc, "server.metrics"),
		               "server.metrics: expected public or admin");
	c->metrics_where = (enum metrics_listener)v;
	if (c->metrics_where == METRICS_ADMIN && !c->admin_listen[0])
		return fail_at(
		    L, node_of(doc, "server.metrics"),
		    "server.metrics: admin needs admin.listen (else /metrics is nowhere)");
	if ((v = choice(c->on_reclaim, reclaims)) < 0)
		return fail_at(L, node_of(doc, "revocation.on_reclaim"),
		               "revocation.on_reclaim: expected supersede or keep");
	c->reclaim = (enum reclaim_policy)v;
	if ((v = choice(c->transfer, transfers)) < 0)
		return fail_at(L, node_of(doc, "claim.transfer"),
		               "claim.transfer: expected release, keep or refuse");
	c->transfer_value = (enum transfer_policy)v;
	if (strcmp(c->run_as_root_text, "yes") && strcmp(c->run_as_root_text, "no"))
		return fail_at(L, node_of(doc, "server.run_as_root"),
		               "server.run_as_root: expected yes or no");
	c->run_as_root = strcmp(c->run_as_root_text, "yes") == 0;
	if (!c->server_user[0] || !c->signer_user[0])
		return fail_at(L, node_of(doc, c->server_user[0] ? "signer.user" : "server.user"),
		               "%s: a user name or uid is required",
		               c->server_user[0] ? "signer.user" : "server.user");
	if (strcmp(c->server_user, c->signer_user) == 0)
		return fail_at(L, node_of(doc, "server.user"),
		               "server.user: must differ from signer.user (the network process "
		               "must not be able to read the keys)");
	if (strlen(c->signer_socket) >= 108)
		return fail_at(L, node_of(doc, "signer.socket"),
		               "signer.socket: a Unix socket path is at most 107 bytes");
	if ((v = choice(c->log_format, formats)) < 0)
		return fail_at(L, node_of(doc, "log.format"), "log.format: expected text or json");
	c->log_format_value = (enum log_format)v;
	/* Stored canonical, as canon.c compares them; a spelling that is no platform
	 * name at all is refused here rather than never matching. */
	for (size_t i = 0; i < c->n_extra_platforms; i++) {
		char canon[PLATFORM_MAX + 1];
		char *p = c->extra_platforms[i];
		if (!platform_normalize(canon, p, strlen(p)))
			return fail_at(
			    L, node_of(doc, "claim.extra_platforms"),
			    "claim.extra_platforms: '%.64s' is not a platform name (1-32 "
			    "characters of [A-Za-z0-9_-])",
			    p);
		memcpy(p, canon, strlen(canon) + 1);
	}
	if (check_matter(L, doc) < 0)
		return -1;
	if (c->jwt_jwks_file[0] && !c->jwt_issuer[0])
		return fail_at(L, node_of(doc, "users.jwt"),
		               "users.jwt.issuer: required when jwks_file is set");
	return 0;
}

static struct claimd_config *load(const char *path, FILE *f, const char *buf, size_t len, char *err,
                                  size_t errsz)
{
	struct loader L = {.err = err, .errsz = errsz};
	yaml_parser_t parser;
	yaml_document_t doc;
	bool parser_ok = false, doc_ok = false;
	int rc = -1;

	snprintf(err, errsz, "%s: out of memory", path);
	L.c = calloc(1, sizeof(*L.c));
	if (!L.c)
		return NULL;
	L.c->file = strdup(path);
	const char *slash = strrchr(path, '/');
	L.c->dir =
	    slash ? strndup(path, (size_t)(slash - path == 0 ? 1 : slash - path)) : strdup(".");
	if (!L.c->file || !L.c->dir)
		goto out;
	if (set_defaults(&L) < 0)
		goto out;
	if (!yaml_parser_initialize(&parser))
		goto out;
	parser_ok = true;
	if (f)
		yaml_parser_set_input_file(&parser, f);
	else
		yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errsz, "%s:%zu:%zu: %s%s%s", path, parser.problem_mark.line + 1,
		         parser.problem_mark.column + 1, parser.problem ? parser.problem : "error",
		         parser.context ? " " : "", parser.context ? parser.context : "");
		goto out;
	}
	doc_ok = true;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root) {
		fail_at(&L, NULL, "empty file");
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		fail_at(&L, root, "expected a mapping at the top level");
		goto out;
	}
	if (walk(&L, &doc, root, "") < 0 || validate(&L, &doc) < 0)
		goto out;
	rc = 0;
out:
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (rc < 0) {
		config_free(L.c);
		return NULL;
	}
	err[0] = '\0';
	return L.c;
}

struct claimd_config *config_load(const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* A directory opens for reading on Linux and only fails at the first read. */
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "%s: is a directory, not a config file", path);
		fclose(f);
		return NULL;
	}
	struct claimd_config *c = load(path, f, NULL, 0, err, errsz);
	fclose(f);
	return c;
}

struct claimd_config *config_load_buffer(const char *name, const char *buf, size_t len, char *err,
                                         size_t errsz)
{
	return load(name, NULL, buf, len, err, errsz);
}

void config_free(struct claimd_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].type != K_UINT && keys[i].type != K_LIST)
			free(*field_str(c, &keys[i]));
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].type == K_LIST)
			free_list(*field_list(c, &keys[i]), *field_count(c, &keys[i]));
	free(c->listen_host);
	free(c->admin_listen_host);
	free(c->file);
	free(c->dir);
	free(c);
}

static bool same_value(const struct key *k, const struct claimd_config *a,
                       const struct claimd_config *b)
{
	switch (k->type) {
	case K_UINT:
		return *(const unsigned *)((const char *)a + k->off) ==
		       *(const unsigned *)((const char *)b + k->off);
	case K_LIST: {
		char *const *x = *(char **const *)((const char *)a + k->off);
		char *const *y = *(char **const *)((const char *)b + k->off);
		size_t n = *(const size_t *)((const char *)a + count_off(k));
		if (n != *(const size_t *)((const char *)b + count_off(k)))
			return false;
		for (size_t i = 0; i < n; i++)
			if (strcmp(x[i], y[i]) != 0)
				return false;
		return true;
	}
	case K_STR:
	case K_PATH:
	case K_KEYREF:
	case K_HOST:
		break;
	}
	const char *x = *(char *const *)((const char *)a + k->off);
	const char *y = *(char *const *)((const char *)b + k->off);
	return strcmp(x ? x : "", y ? y : "") == 0;
}

const char *config_next_restart_change(const struct claimd_config *old,
                                       const struct claimd_config *cur, size_t *pos)
{
	while (*pos < NKEYS) {
		const struct key *k = &keys[(*pos)++];
		if (k->when == RESTART && !same_value(k, old, cur))
			return k->name;
	}
	return NULL;
}

/* Number of dot-separated components of @p name that form its section. */
static int section_depth(const char *name)
{
	int d = 0;
	for (const char *p = name; *p; p++)
		d += *p == '.';
	return d;
}

/* Length of component @p idx of @p name. */
static const char *component(const char *name, int idx, int *len)
{
	const char *s = name;
	for (int i = 0; i < idx; i++)
		s = strchr(s, '.') + 1;
	const char *e = strchr(s, '.');
	*len = e ? (int)(e - s) : (int)strlen(s);
	return s;
}

void config_write_example(FILE *out)
{
	static const char *required_examples[][2] = {
	    {"ca.certificate", "/etc/claimd/ca/intermediate.pem"},
	    {"ca.key", "/etc/claimd/ca/intermediate.key"},
	    {"secrets.key_file", "/etc/claimd/secrets.key"},
	};
	const char *prev = NULL;

	fputs("# claimd configuration. Every key is shown with its default; keys marked\n"
	      "# 'required' have none. Unknown keys are errors. Relative paths are relative\n"
	      "# to this file's folder. Check a file with: claimd -t -c FILE\n"
	      "# (This file is generated by 'claimctl config-example'; a test keeps it in step.)\n",
	      out);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		int depth = section_depth(k->name), same = 0, len, plen;

		/* How many leading section components this key shares with the previous one. */
		while (prev && same < depth && same < section_depth(prev)) {
			const char *a = component(k->name, same, &len);
			const char *b = component(prev, same, &plen);
			if (len != plen || strncmp(a, b, (size_t)len) != 0)
				break;
			same++;
		}
		if (same == 0)
			fputc('\n', out);
		for (int d = same; d < depth; d++) {
			const char *c = component(k->name, d, &len);
			fprintf(out, "%*s%.*s:\n", d * 2, "", len, c);
		}
		const char *leaf = component(k->name, depth, &len);
		fprintf(out, "%*s# %s\n", depth * 2, "", k->doc);
		if (k->when == RESTART)
			fprintf(out, "%*s# (read at start-up only: a change needs a restart)\n",
			        depth * 2, "");
		if (!k->def) {
			const char *ex = "";
			for (size_t j = 0; j < 3; j++)
				if (strcmp(required_examples[j][0], k->name) == 0)
					ex = required_examples[j][1];
			fprintf(out, "%*s%s: %s   # required\n", depth * 2, "", leaf, ex);
		} else if (k->type == K_LIST || k->type == K_UINT) {
			fprintf(out, "%*s%s: %s\n", depth * 2, "", leaf, k->def);
		} else {
			fprintf(out, "%*s%s: \"%s\"\n", depth * 2, "", leaf, k->def);
		}
		prev = k->name;
	}
}
