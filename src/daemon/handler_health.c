/*
 * /healthz (the process answers), /readyz (database and signer usable) and /metrics
 * (Prometheus text). Cheap enough to be polled; nothing here writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "daemon/http.h"
#include "lib/log.h"

enum MHD_Result handle_healthz(struct request *rq, struct MHD_Connection *c)
{
	return reply_json(rq, c, 200, json_pack("{s:s}", "status", "ok"));
}

/*
 * Ready means "a claim could be committed now": a database that answers but takes no
 * writes (a standby, a fenced old primary) is not ready, or a load balancer would keep
 * sending devices to an instance that can serve none of them. The reason goes to the
 * log when it changes and into the reply's "reason", for the operator behind the probe.
 */
enum MHD_Result handle_readyz(struct request *rq, struct MHD_Connection *c)
{
	static _Atomic unsigned long last_hash;
	if (atomic_load(&rq->app->startup_waiting))
		return reply_error(rq, c, CE_NOT_READY_DB);
	struct db *db = app_db(rq->app);
	char why[300] = "";

	if (!db)
		snprintf(why, sizeof(why), "database: no connection");
	else if (db_ready(db, why, sizeof(why)) == 0) {
		if (!rq->rt->ca)
			snprintf(why, sizeof(why), "no CA loaded");
		else if (!signer_ready(rq->rt->signer))
			snprintf(why, sizeof(why),
			         "signer: did not answer a ping within signer.timeout_seconds");
	}
	/* Said once per change, not once per probe. */
	unsigned long h = 5381;
	for (const char *p = why; *p; p++)
		h = h * 33 + (unsigned char)*p;
	if (atomic_exchange(&last_hash, h) != h && why[0])
		log_warn("not ready: %s", why);
	if (!why[0])
		return reply_json(rq, c, 200, json_pack("{s:s}", "status", "ready"));
	return reply_error_reason(rq, c, CE_NOT_READY, why);
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
