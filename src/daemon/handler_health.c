/*
 * /healthz (the process answers), /readyz (database and signer usable) and /metrics
 * (Prometheus text). Cheap enough to be polled; nothing here writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"

enum MHD_Result handle_healthz(struct request *rq, struct MHD_Connection *c)
{
	return reply_json(rq, c, 200, json_pack("{s:s}", "status", "ok"));
}

enum MHD_Result handle_readyz(struct request *rq, struct MHD_Connection *c)
{
	struct db *db = app_db(rq->app);
	if (!db || !db_ping(db) || !rq->rt->ca || !signer_ready(rq->rt->signer))
		return reply_error(rq, c, CE_NOT_READY);
	return reply_json(rq, c, 200, json_pack("{s:s}", "status", "ready"));
}

enum MHD_Result handle_metrics(struct request *rq, struct MHD_Connection *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct MHD_Response *r;
	enum MHD_Result ok;

	if (!f)
		return reply_error(rq, c, CE_INTERNAL);
	fprintf(f, "# HELP claimd_replies_total Replies by outcome code.\n"
	           "# TYPE claimd_replies_total counter\n");
	for (int e = 0; e < CE__COUNT; e++)
		fprintf(f, "claimd_replies_total{code=\"%s\",status=\"%u\"} %ld\n",
		        err_name((enum claimd_err)e), err_status((enum claimd_err)e),
		        atomic_load(&rq->app->by_code[e]));
	fprintf(f,
	        "# HELP claimd_requests_in_flight Requests being handled now.\n"
	        "# TYPE claimd_requests_in_flight gauge\n"
	        "claimd_requests_in_flight %ld\n",
	        atomic_load(&rq->app->inflight));
	struct metrics_gauges g = {CLAIMD_VERSION, ca_not_after(rq->rt->ca),
	                           atomic_load(&rq->app->claims_in_flight)};
	metrics_write(&rq->app->metrics, &g, f);
	fclose(f);
	r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
	reply_common_headers(rq, r);
	ok = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	rq->status = 200;
	rq->code = CE_OK;
	return ok;
}
