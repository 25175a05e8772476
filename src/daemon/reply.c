/*
 * Building and queueing replies. Every reply has a body, so a Content-Length above
 * zero, and is built in full before it is queued, so it is never chunked. Error bodies
 * hold string values only (the iOS app treats anything else as success).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"
#include "lib/log.h"

#include <time.h>

/* The route's methods as an Allow header: "GET, HEAD", "POST". */
static const char *allow_list(char *buf, size_t n, unsigned methods)
{
	static const struct {
		unsigned bit;
		const char *name;
	} m[] = {{HTTP_GET, "GET"}, {HTTP_HEAD, "HEAD"}, {HTTP_POST, "POST"}};
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (methods & m[i].bit)
			o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? ", " : "", m[i].name);
	return buf;
}

void reply_common_headers(const struct request *rq, struct MHD_Response *r)
{
	MHD_add_response_header(r, "X-Request-Id", rq->id);
}

static enum MHD_Result queue(struct request *rq, struct MHD_Connection *c, unsigned status,
                             char *text, enum claimd_err e)
{
	struct MHD_Response *r;
	enum MHD_Result ok;

	if (!text)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	reply_common_headers(rq, r);
	if (e == CE_METHOD) {
		char allow[32];
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
		                        allow_list(allow, sizeof(allow), rq->route->methods));
	}
	/* RFC 6750: a 401 for a bearer token says which scheme it wants. */
	if (e == CE_ADMIN_TOKEN)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"claimd-admin\"");
	/* RFC 9112 6.1, 6.3: after a message whose framing is wrong, nothing on the
	 * connection can be trusted to be a request. */
	if (e == CE_CONTENT_LENGTH || e == CE_LENGTH_AND_ENCODING || e == CE_TRANSFER_ENCODING)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (status == 503 || status == 429) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%u", rq->retry_after ? rq->retry_after : 1);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	rq->status = status;
	rq->code = e;
	atomic_fetch_add(&rq->app->by_code[e], 1);
	return ok;
}

enum MHD_Result reply_json(struct request *rq, struct MHD_Connection *c, unsigned status,
                           json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return queue(rq, c, status, text, CE_OK);
}

enum MHD_Result reply_text(struct request *rq, struct MHD_Connection *c, unsigned status,
                           char *json)
{
	return queue(rq, c, status, json, CE_OK);
}

enum MHD_Result reply_error(struct request *rq, struct MHD_Connection *c, enum claimd_err e)
{
	return reply_error_reason(rq, c, e, NULL);
}

enum MHD_Result reply_error_reason(struct request *rq, struct MHD_Connection *c, enum claimd_err e,
                                   const char *reason)
{
	return reply_error_at(rq, c, e, NULL, reason);
}

enum MHD_Result reply_error_at(struct request *rq, struct MHD_Connection *c, enum claimd_err e,
                               const char *where, const char *reason)
{
	char desc[600];
	snprintf(desc, sizeof(desc), "%s%s%s%s%s", where ? where : "", where ? ": " : "",
	         err_description(e), reason ? ": " : "", reason ? reason : "");
	json_t *body = json_pack("{s:s, s:s}", "status", "failure", "description", desc);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	return queue(rq, c, err_status(e), text, e);
}

bool request_allowed(struct request *rq, enum bucket kind, const char *key)
{
	const struct claimd_config *c = rq->rt->cfg;
	unsigned rate = 0, burst = 1;
	struct timespec ts;

	switch (kind) {
	case BUCKET_ADDRESS:
		rate = c->address_per_minute, burst = c->address_burst;
		break;
	case BUCKET_MAC:
		rate = c->mac_per_minute, burst = c->mac_burst;
		break;
	case BUCKET_USER:
		rate = c->user_per_minute, burst = c->user_burst;
		break;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ratelimit_take(rq->app->limiter, kind, key, rate, burst,
	                      (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, &rq->retry_after);
}
