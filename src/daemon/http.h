/*
 * The HTTP server (libmicrohttpd): request context, routing, body limits, replies.
 * Only files in src/daemon include this header, and with it <microhttpd.h>: http.c,
 * reply.c, the handler_* files, and main_claimd.c to start and stop the server.
 * Handlers turn HTTP+JSON into calls of the domain modules.
 */
#ifndef CLAIMD_HTTP_H
#define CLAIMD_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/errors.h"
#include "core/runtime.h"
#include "lib/vocab.h"

struct request {
	struct app *app;
	struct runtime *rt; /* the generation this request started with */
	char id[65];        /* random, or a trusted proxy's X-Request-Id; in the log, the audit
	                     * row and the X-Request-Id reply header */
	char remote[64];    /* client address after trusted-proxy resolution */
	bool peer_trusted;  /* the TCP peer is in server.trusted_proxies */
	char *body;
	size_t len, cap;
	bool too_large;
	bool claim_slot; /* counted in app->claims_in_flight */
	bool matter;     /* a verify with ?matter=true, known from the request line on: the claim
	                  * metrics' flow "matter", also for 405, 413 and other early refusals */
	unsigned retry_after; /* seconds, for 429 replies */
	unsigned status;
	enum claimd_err code;
	uint64_t start_us; /* now_us_monotonic() at the first byte */
	const struct route *route;
	char method[16];
	char path[96];    /* escaped, for the access log */
	char target[256]; /* the path as routed ('/' runs collapsed), for path parameters */
	/* What the request was about, for the access log (escaped; "" when unknown). */
	char mac[MAC_LEN + 1], node_id[NODE_ID_MAX + 1], user[96];
	char actor[ADMIN_TOKEN_NAME_MAX + 7]; /* management API: "admin:<token name>" */
};

typedef enum MHD_Result (*handler_fn)(struct request *rq, struct MHD_Connection *c);

/* Methods a route answers, as bits; anything else gets 405 with an Allow header. */
enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_HEAD = 1 << 1,
	HTTP_POST = 1 << 2,
};

/* What the server does for a route before its handler runs. */
enum route_policy {
	ROUTE_LIMIT_ADDRESS = 1 << 0, /* takes a token from the client address's bucket */
	ROUTE_CLAIM_SLOT = 1 << 1,    /* counts in limits.claims_in_flight from its headers on */
	ROUTE_MATTER_QUERY = 1 << 2,  /* ?matter= other than false asks for a Matter DAC */
};

struct route {
	const char *path;
	unsigned methods; /* enum http_method bits */
	unsigned policy;  /* enum route_policy bits */
	handler_fn fn;
};

struct http_server;

/* Which listener: the same admission and body handling, each with its own routes. */
enum http_site {
	HTTP_PUBLIC, /* server.listen: the claim protocol, health, metrics, CRL */
	HTTP_ADMIN,  /* admin.listen: the management API; every request needs a bearer token */
};

/**
 * Starts listening for @p site: server.listen with server.threads workers, or
 * admin.listen with a small pool of its own. NULL + @p err on failure.
 */
struct http_server *http_start(struct app *app, enum http_site site, char *err, size_t errsz);
/** The port actually bound (useful with port 0). */
unsigned http_port(const struct http_server *s);
/**
 * Stops accepting, waits up to @p drain_ms for in-flight requests to finish, then stops
 * the workers and frees @p s.
 */
void http_stop(struct http_server *s, unsigned drain_ms);

/** Queues @p body (stolen) with @p status. MHD_NO when it cannot be queued. */
enum MHD_Result reply_json(struct request *rq, struct MHD_Connection *c, unsigned status,
                           json_t *body);
/**
 * Queues @p json, a complete JSON text (malloc'd, stolen), as it is, with @p status.
 * MHD_NO when @p json is NULL or it cannot be queued.
 */
enum MHD_Result reply_text(struct request *rq, struct MHD_Connection *c, unsigned status,
                           char *json);
/**
 * Takes a token from @p key's bucket of @p kind under the current limits (address, MAC
 * or user rates). False (with rq->retry_after set) when the client must wait.
 */
bool request_allowed(struct request *rq, enum bucket kind, const char *key);
/** Adds the headers every reply carries (X-Request-Id) to @p r. */
void reply_common_headers(const struct request *rq, struct MHD_Response *r);
/** Queues the failure body of @p e with its status (and Allow/Retry-After headers). */
enum MHD_Result reply_error(struct request *rq, struct MHD_Connection *c, enum claimd_err e);
/**
 * As reply_error(), the fixed description followed by ": " and @p reason: for
 * /readyz only, where a short reason (a category, never a host name or a server's
 * message) is the point.
 */
enum MHD_Result reply_error_reason(struct request *rq, struct MHD_Connection *c, enum claimd_err e,
                                   const char *reason);
/**
 * As reply_error(), with "@p where: " before the fixed description and ": @p reason"
 * after it (either NULL: left out): for the item of a batch that was refused, e.g.
 * "devices[2]: mac: must be 12 hex digits ...". Both are the caller's own words, never
 * a client's bytes unescaped.
 */
enum MHD_Result reply_error_at(struct request *rq, struct MHD_Connection *c, enum claimd_err e,
                               const char *where, const char *reason);
/**
 * Path segment @p idx (0 = the first after the leading '/') of the routed path into
 * @p out. False when there is no such segment or it does not fit.
 */
bool request_segment(const struct request *rq, int idx, char *out, size_t outsz);

enum MHD_Result handle_claim_initiate(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_claim_verify(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_healthz(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_readyz(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_metrics(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_crl(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_mqtt_host(struct request *rq, struct MHD_Connection *c);

/* The management API (handler_admin.c), on the admin listener only. */
enum MHD_Result handle_admin_devices_post(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_admin_device_get(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_admin_node_get(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_admin_verify_signature(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_admin_cert_get(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_admin_revoke(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_admin_release(struct request *rq, struct MHD_Connection *c);

#endif
