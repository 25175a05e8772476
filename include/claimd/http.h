/*
 * The HTTP server (libmicrohttpd): request context, routing, body limits, replies.
 * Only the http*, reply and handler_* files include this header, and with it
 * <microhttpd.h>; handlers turn HTTP+JSON into calls of the domain modules.
 */
#ifndef CLAIMD_HTTP_H
#define CLAIMD_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "claimd/errors.h"
#include "claimd/runtime.h"

struct request {
	struct app *app;
	struct runtime *rt; /* the generation this request started with */
	char id[17];        /* random, in the log and the audit row */
	char remote[64];    /* client address after trusted-proxy resolution */
	char *body;
	size_t len, cap;
	bool too_large;
	bool claim_slot;      /* counted in app->claims_in_flight */
	unsigned retry_after; /* seconds, for 429 replies */
	unsigned status;
	enum claimd_err code;
	uint64_t start_ms;
	const struct route *route;
	char method[16];
	char path[96]; /* escaped, for the access log */
};

typedef enum MHD_Result (*handler_fn)(struct request *rq, struct MHD_Connection *c);

struct route {
	const char *path;
	const char *method;
	handler_fn fn;
};

struct http_server;

/** Starts listening on cfg->listen with cfg->threads workers. NULL + @p err on failure. */
struct http_server *http_start(struct app *app, char *err, size_t errsz);
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
 * Takes a token from the @p kind bucket ('a' address, 'm' MAC, 'u' user) of @p key under
 * the current limits. False (with rq->retry_after set) when the client must wait.
 */
bool request_allowed(struct request *rq, char kind, const char *key);
/** Queues the failure body of @p e with its status (and Allow/Retry-After headers). */
enum MHD_Result reply_error(struct request *rq, struct MHD_Connection *c, enum claimd_err e);

enum MHD_Result handle_claim_initiate(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_claim_verify(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_healthz(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_readyz(struct request *rq, struct MHD_Connection *c);
enum MHD_Result handle_metrics(struct request *rq, struct MHD_Connection *c);

#endif
