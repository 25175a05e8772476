/*
 * GET /crl: the issuing CA's current CRL, DER, for MQTT brokers and anyone else who
 * checks claimd's certificates (api/openapi.yaml, /crl; docs/mqtt-broker.md). The CRL
 * is the one every replica shares (revocation.c); this file only frames it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"
#include "lib/log.h"

/*
 * Whether If-None-Match value @p inm names @p etag (RFC 9110 13.1.2): "*", or a
 * comma-separated list of entity tags compared weakly (a W/ prefix is ignored).
 */
static bool etag_matches(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = inm;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		size_t n = strcspn(p, ",");
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == elen && memcmp(p, etag, n) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

enum MHD_Result handle_crl(struct request *rq, struct MHD_Connection *c)
{
	struct crl_policy p = {rq->rt->cfg->crl_hours};
	struct db *db = app_db(rq->app);
	uint8_t *der = NULL;
	size_t len = 0;
	int64_t number = 0;
	bool busy = false;
	char etag[32];
	struct MHD_Response *r;
	enum MHD_Result ok;

	if (crl_cache_get(&rq->app->crl, db, rq->rt->signer, &p, &der, &len, &number, &busy) < 0)
		return reply_error(rq, c, busy ? CE_BUSY : CE_INTERNAL);
	/* The CRL number names its content: a cache may keep it until the number moves. */
	snprintf(etag, sizeof(etag), "\"%" PRId64 "\"", number);
	const char *inm =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	unsigned status = inm && etag_matches(inm, etag) ? 304 : 200;
	if (status == 304) {
		free(der);
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	} else {
		r = MHD_create_response_from_buffer(len, der, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(der);
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/pkix-crl");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	reply_common_headers(rq, r);
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	rq->status = status;
	rq->code = CE_OK;
	return ok;
}
