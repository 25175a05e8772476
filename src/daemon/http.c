/*
 * libmicrohttpd server: a worker thread pool, one request context per request, routing
 * by table, body size limits (413 before the rest is read) and client-address
 * resolution through trusted proxies. Handlers run only once the whole body is in.
 */
#include "daemon/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdint.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "daemon/http_edge.h"
#include "lib/secure.h"
#include "lib/log.h"
#include "lib/util.h"

struct http_server {
	struct MHD_Daemon *d;
	struct http_edge *edge; /* accepts, and checks each connection's first head */
	struct app *app;
	enum http_site site;
	const struct route *routes;
	size_t n_routes;
	unsigned port;
};

/*
 * Every route and what the server does for it before its handler runs. /healthz is the
 * liveness probe: never rate limited, so a flood cannot make a healthy process look dead.
 * Claims hold a slot from their headers on, so slow bodies count too.
 */
static const struct route routes[] = {
    {"/claim/initiate", HTTP_POST, ROUTE_LIMIT_ADDRESS | ROUTE_CLAIM_SLOT, handle_claim_initiate},
    {"/claim/verify", HTTP_POST, ROUTE_LIMIT_ADDRESS | ROUTE_CLAIM_SLOT | ROUTE_MATTER_QUERY,
     handle_claim_verify},
    {"/healthz", HTTP_GET | HTTP_HEAD, 0, handle_healthz},
    {"/readyz", HTTP_GET | HTTP_HEAD, ROUTE_LIMIT_ADDRESS, handle_readyz},
    {"/metrics", HTTP_GET | HTTP_HEAD, ROUTE_LIMIT_ADDRESS, handle_metrics},
    {"/crl", HTTP_GET | HTTP_HEAD, ROUTE_LIMIT_ADDRESS, handle_crl},
    {"/mqtt_host", HTTP_GET, ROUTE_LIMIT_ADDRESS, handle_mqtt_host},
};

/*
 * The management API (api/openapi.yaml), on admin.listen only: the public listener has none
 * of these paths, so they are 404 there. '*' stands for one path segment. No address
 * rate: a factory line registers as fast as it programs; the bearer token is the gate.
 */
static const struct route admin_routes[] = {
    {"/admin/v1/devices", HTTP_POST, 0, handle_admin_devices_post},
    {"/admin/v1/devices/*", HTTP_GET, 0, handle_admin_device_get},
    {"/admin/v1/nodes/*", HTTP_GET, 0, handle_admin_node_get},
    {"/admin/v1/nodes/*/verify-signature", HTTP_POST, 0, handle_admin_verify_signature},
    {"/admin/v1/nodes/*/release", HTTP_POST, 0, handle_admin_release},
    {"/admin/v1/certificates/*", HTTP_GET, 0, handle_admin_cert_get},
    {"/admin/v1/certificates/*/revoke", HTTP_POST, 0, handle_admin_revoke},
    {"/metrics", HTTP_GET | HTTP_HEAD, 0, handle_metrics},
};

/* The management API's workers: it serves operators and test stations, not fleets. */
#define ADMIN_THREADS 2

/* Unknown paths: 404 before any policy applies. */
static const struct route not_found = {"", 0, 0, NULL};

/* @p path matches @p pattern, where '*' matches one non-empty segment. */
static bool path_match(const char *pattern, const char *path)
{
	while (*pattern && *path) {
		if (*pattern == '*') {
			size_t n = strcspn(path, "/");
			if (n == 0)
				return false;
			path += n;
			pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return false;
	}
	return *pattern == '\0' && *path == '\0';
}

static const struct route *route_find(const struct http_server *s, const char *path)
{
	for (size_t i = 0; i < s->n_routes; i++)
		if (path_match(s->routes[i].path, path))
			return &s->routes[i];
	return &not_found;
}

bool request_segment(const struct request *rq, int idx, char *out, size_t outsz)
{
	const char *p = rq->target;
	for (int i = 0; i <= idx; i++) {
		if (*p != '/')
			return false;
		p++;
		if (i < idx)
			p += strcspn(p, "/");
	}
	size_t n = strcspn(p, "/");
	if (n == 0 || n >= outsz)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/*
 * The management API's gate: "Authorization: Bearer <token>" whose SHA-256 is listed in
 * admin.tokens_file. Sets rq->actor to the token's name for the audit trail.
 */
static bool bearer_ok(struct request *rq, struct MHD_Connection *c)
{
	const char *h =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *name;
	size_t n;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	n = strcspn(h, " \t");
	if (h[n + strspn(h + n, " \t")] != '\0')
		return false;
	if (!(name = admin_tokens_check(rq->rt->admin_tokens, h, n)))
		return false;
	snprintf(rq->actor, sizeof(rq->actor), "admin:%s", name);
	return true;
}

/* The method's bit; 0 for methods no route answers. */
static unsigned method_bit(const char *method)
{
	if (strcmp(method, "GET") == 0)
		return HTTP_GET;
	if (strcmp(method, "HEAD") == 0)
		return HTTP_HEAD;
	if (strcmp(method, "POST") == 0)
		return HTTP_POST;
	return 0;
}

/* Collapses runs of '/', so clients whose base URL ends in '/' reach the same route. */
static void normalize_path(char *out, size_t outsz, const char *url)
{
	size_t o = 0;
	for (const char *p = url; *p && o + 1 < outsz; p++) {
		if (*p == '/' && o > 0 && out[o - 1] == '/')
			continue;
		out[o++] = *p;
	}
	out[o] = '\0';
}

static bool in_cidr(const char *addr, const char *cidr)
{
	unsigned char a[16], n[16];
	char net[64];
	const char *slash = strchr(cidr, '/');
	size_t len = slash ? (size_t)(slash - cidr) : strlen(cidr);
	int fam, bits, max;

	if (len >= sizeof(net))
		return false;
	memcpy(net, cidr, len);
	net[len] = '\0';
	if (inet_pton(AF_INET, net, n) == 1)
		fam = AF_INET, max = 32;
	else if (inet_pton(AF_INET6, net, n) == 1)
		fam = AF_INET6, max = 128;
	else
		return false;
	if (inet_pton(fam, addr, a) != 1)
		return false;
	bits = slash ? atoi(slash + 1) : max;
	for (int i = 0; i < bits / 8; i++)
		if (a[i] != n[i])
			return false;
	if (bits % 8) {
		unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));
		if ((a[bits / 8] & mask) != (n[bits / 8] & mask))
			return false;
	}
	return true;
}

static bool trusted(const struct claimd_config *cfg, const char *addr)
{
	for (size_t i = 0; i < cfg->n_trusted_proxies; i++)
		if (in_cidr(addr, cfg->trusted_proxies[i]))
			return true;
	return false;
}

static bool valid_ip(const char *s)
{
	unsigned char b[16];
	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/*
 * The client is the peer, unless the peer is a trusted proxy: then the right-most
 * address of X-Forwarded-For that is not itself a trusted proxy, or X-Real-IP.
 */
static void resolve_remote(struct request *rq, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	const char *xff, *xri;
	char buf[512];

	snprintf(rq->remote, sizeof(rq->remote), "unknown");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, rq->remote,
		          sizeof(rq->remote));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, rq->remote,
		          sizeof(rq->remote));
	if (!(rq->peer_trusted = trusted(rq->rt->cfg, rq->remote)))
		return;
	xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
	if (xff && strlen(xff) < sizeof(buf)) {
		snprintf(buf, sizeof(buf), "%s", xff);
		for (;;) {
			char *comma = strrchr(buf, ',');
			char *item = comma ? comma + 1 : buf;
			while (*item == ' ')
				item++;
			item[strcspn(item, " ")] = '\0';
			if (strlen(item) >= sizeof(rq->remote) || !valid_ip(item))
				return; /* garbage: keep what we have */
			memcpy(rq->remote, item, strlen(item) + 1);
			if (!trusted(rq->rt->cfg, item) || !comma)
				return;
			*comma = '\0';
		}
	}
	xri = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Real-IP");
	if (xri && strlen(xri) < sizeof(rq->remote) && valid_ip(xri))
		memcpy(rq->remote, xri, strlen(xri) + 1);
}

static struct request *request_new(struct app *app, const char *method, const char *path)
{
	struct request *rq = calloc(1, sizeof(*rq));
	uint8_t id[8];

	if (!rq)
		return NULL;
	rq->app = app;
	rq->rt = app_acquire(app);
	rq->start_us = now_us_monotonic();
	secure_random(id, sizeof(id));
	hex_encode_lower(rq->id, id, sizeof(id));
	log_escape(rq->method, sizeof(rq->method), method, strlen(method));
	log_escape(rq->path, sizeof(rq->path), path, strlen(path));
	snprintf(rq->target, sizeof(rq->target), "%s", path);
	atomic_fetch_add(&app->inflight, 1);
	return rq;
}

/*
 * A trusted proxy's X-Request-Id replaces the generated id, so one id follows a request
 * through the proxy's log and ours; anyone else's is not believed. Only 1-64 characters
 * of [A-Za-z0-9_.-] are taken: the id goes into log lines, the audit row and a header.
 */
static void take_request_id(struct request *rq, struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
	size_t n = v ? strlen(v) : 0;

	if (!rq->peer_trusted || n == 0 || n >= sizeof(rq->id))
		return;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
		      (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' || v[i] == '-'))
			return;
	memcpy(rq->id, v, n + 1);
}

static enum MHD_Result add_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
	(void)kind;
	http_framing_add(cls, key, strlen(key), value ? value : "", value ? strlen(value) : 0);
	return MHD_YES;
}

/* ?matter=False (any case) is the normal flow; anything else asks for Matter. Other
 * query parameters (older CLIs send test=True) are not looked at (protocol.md 1). */
static bool matter_requested(struct MHD_Connection *c)
{
	const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "matter");
	return m && strcasecmp(m, "false") != 0;
}

/*
 * The first call for a request, with its headers: the framing rules (http_edge.h: every
 * request, including those after the first on a kept-alive connection, which the edge
 * does not see; a refusal closes the connection), then find the route and apply its
 * policy (method, address rate, claim slot) and the body size the headers announce.
 */
static enum MHD_Result admit(struct http_server *s, struct MHD_Connection *c, const char *url,
                             const char *method, void **con_cls)
{
	struct app *app = s->app;
	struct request *rq;
	char path[256];
	const char *cl;

	normalize_path(path, sizeof(path), url);
	if (!(rq = request_new(app, method, path)))
		return MHD_NO;
	*con_cls = rq;
	resolve_remote(rq, c);
	take_request_id(rq, c);
	log_request_begin(rq->id);
	rq->route = &not_found;
	struct http_framing fr = {0};
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_framing, &fr);
	enum claimd_err fe = http_framing_verdict(&fr);
	if (fe != CE_OK)
		return reply_error(rq, c, fe);
	rq->route = route_find(s, path);
	/* Which flow a claim is, as far as the request line says, before any refusal: a
	 * Matter verify refused for its method or size counts as flow "matter". */
	if (rq->route->policy & ROUTE_MATTER_QUERY)
		rq->matter = matter_requested(c);
	/* server.metrics: admin keeps the counters off the internet-facing listener. */
	if (s->site == HTTP_PUBLIC && rq->route->fn == handle_metrics &&
	    rq->rt->cfg->metrics_where == METRICS_ADMIN)
		rq->route = &not_found;
	/* The management listener answers nothing, not even 404, without a token. */
	if (s->site == HTTP_ADMIN) {
		if (!bearer_ok(rq, c))
			return reply_error(rq, c, CE_ADMIN_TOKEN);
		log_info("remote=%s %s %s by %s", rq->remote, rq->method, rq->path, rq->actor);
	}
	if (!rq->route->fn)
		return reply_error(rq, c, CE_NOT_FOUND);
	if (!(rq->route->methods & method_bit(method)))
		return reply_error(rq, c, CE_METHOD);
	if ((rq->route->policy & ROUTE_LIMIT_ADDRESS) &&
	    !request_allowed(rq, BUCKET_ADDRESS, rq->remote))
		return reply_error(rq, c, CE_RATE_LIMITED);
	if (rq->route->policy & ROUTE_CLAIM_SLOT) {
		rq->claim_slot = true;
		if (atomic_fetch_add(&app->claims_in_flight, 1) >=
		    (long)rq->rt->cfg->claims_in_flight)
			return reply_error(rq, c, CE_BUSY);
	}
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > rq->rt->cfg->max_body_bytes)
		return reply_error(rq, c, CE_BODY_TOO_LARGE);
	return MHD_YES;
}

static bool too_slow(const struct request *rq)
{
	return now_us_monotonic() - rq->start_us >
	       1000000u * (uint64_t)rq->rt->cfg->request_seconds;
}

/*
 * A later call with a piece of the body: append it, or only count it once the body is
 * over the limit (413 on the last call). Past limits.request_seconds a client still
 * sending is cut off, since libmicrohttpd cannot queue a reply in the middle of a body;
 * one whose piece completes the body gets 408 on the last call.
 */
static enum MHD_Result receive(struct request *rq, struct MHD_Connection *c, const char *upload,
                               size_t *upload_size)
{
	size_t n = *upload_size;

	*upload_size = 0;
	if (too_slow(rq)) {
		const char *cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && rq->len + n >= strtoull(cl, NULL, 10))
			return MHD_YES; /* the last of the body: dropped, 408 on the last call */
		rq->status = 408;
		rq->code = CE_REQUEST_TIMEOUT;
		log_info("remote=%s: body too slow, connection closed", rq->remote);
		return MHD_NO;
	}
	if (rq->too_large || rq->len + n > rq->rt->cfg->max_body_bytes) {
		rq->too_large = true;
		return MHD_YES;
	}
	if (rq->len + n + 1 > rq->cap) {
		size_t cap = rq->cap ? rq->cap : 1024;
		while (cap < rq->len + n + 1)
			cap *= 2;
		char *b = realloc(rq->body, cap);
		if (!b)
			return MHD_NO;
		rq->body = b;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, upload, n);
	rq->len += n;
	rq->body[rq->len] = '\0';
	return MHD_YES;
}

/* libmicrohttpd calls this with the headers, with each piece of the body, then once more
 * with none: admission, body, then the handler with the whole body in. */
static enum MHD_Result access_step(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *upload, size_t *upload_size,
                                   void **con_cls)
{
	struct request *rq = *con_cls;

	if (!rq)
		return admit(cls, c, url, method, con_cls);
	log_request_begin(rq->id);
	if (rq->status)
		return MHD_YES; /* replied already (413 while a body keeps coming) */
	if (*upload_size)
		return receive(rq, c, upload, upload_size);
	if (too_slow(rq))
		return reply_error(rq, c, CE_REQUEST_TIMEOUT);
	if (rq->too_large)
		return reply_error(rq, c, CE_BODY_TOO_LARGE);
	return rq->route->fn(rq, c);
}

/* Every line logged while a request's callback runs names the request (log.h): set here,
 * and in admit() once the id is known, and ended before the thread serves another. */
static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
	(void)version;
	enum MHD_Result r = access_step(cls, c, url, method, upload, upload_size, con_cls);
	log_request_end();
	return r;
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct app *app = ((struct http_server *)cls)->app;
	struct request *rq = *con_cls;
	(void)c;

	if (!rq)
		return;
	log_request_begin(rq->id);
	/* Probes poll all day: their lines are debug, so info shows only real traffic. */
	bool probe =
	    rq->route && (rq->route->fn == handle_healthz || rq->route->fn == handle_readyz);
	uint64_t duration_us = now_us_monotonic() - rq->start_us;
	struct log_request lr = {
	    .level = probe ? LOG_DEBUG : LOG_INFO,
	    .request_id = rq->id,
	    .remote = rq->remote,
	    .method = rq->method,
	    .route = rq->route && rq->route->fn ? rq->route->path : "unmatched",
	    .path = rq->path,
	    .status = rq->status,
	    .outcome = err_name(rq->code),
	    .duration_ms = (unsigned long)(duration_us / 1000),
	    .mac = rq->mac,
	    .node_id = rq->node_id,
	    .user = rq->actor[0] ? rq->actor : rq->user, /* management API: the token's name */
	    .aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK,
	};
	log_request(&lr);
	metrics_request(&app->metrics, lr.route, rq->status, duration_us);
	/* Claims are the claim routes' requests; health and metrics requests are not. */
	if (rq->route && (rq->route->policy & ROUTE_CLAIM_SLOT))
		metrics_claim(&app->metrics,
		              rq->matter    ? FLOW_MATTER
		              : rq->user[0] ? FLOW_USER
		                            : FLOW_SELF,
		              rq->code);
	if (rq->claim_slot)
		atomic_fetch_sub(&app->claims_in_flight, 1);
	runtime_release(rq->rt);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
	atomic_fetch_sub(&app->inflight, 1);
	log_request_end();
}

/* A connection the edge handed over is closed: it stops counting against the limits. */
static void connection_cb(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *s = cls;
	const union MHD_ConnectionInfo *ci;
	(void)socket_context;

	if (toe != MHD_CONNECTION_NOTIFY_CLOSED || !s->edge)
		return;
	if ((ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS)) &&
	    ci->client_addr)
		http_edge_closed(s->edge, ci->client_addr);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char raw[512], safe[1024];
	(void)cls;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	raw[strcspn(raw, "\n")] = '\0';
	/* Given an address, libmicrohttpd names "port 0" here; http_start() says it right. */
	if (strncmp(raw, "Failed to bind to port", 22) == 0)
		return;
	log_warn("http: %s", log_escape(safe, sizeof(safe), raw, strlen(raw)));
}

/*
 * libmicrohttpd's unescaping of paths and query arguments, but "%00" is left as it is:
 * decoded, a NUL would end the C string early, so that "/crl%00x" would be routed and
 * logged as "/crl". Kept escaped, such a path matches no route (404). Returns the new
 * length; @p s only shrinks (the callback's contract).
 */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;
	(void)cls;
	(void)c;
	for (const char *r = s; *r; r++) {
		int hi, lo;
		if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0 &&
		    (hi | lo) != 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

struct http_server *http_start(struct app *app, enum http_site site, char *err, size_t errsz)
{
	struct runtime *rt = app_acquire(app);
	const struct claimd_config *cfg = rt->cfg;
	struct http_server *s = calloc(1, sizeof(*s));
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	char port[8];
	/* server.event_loop: libmicrohttpd's epoll mode (0.9.75 and 1.0.1 alike) can miss a
	 * client's half-close (FIN after its request) until the connection times out;
	 * poll(), the default, does not. The edge (http_edge.c) owns the listening socket. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
	                 MHD_USE_NO_LISTEN_SOCKET |
	                 (cfg->loop == EVENT_LOOP_POLL ? MHD_USE_POLL : MHD_USE_EPOLL_LINUX_ONLY);

	const char *key = site == HTTP_ADMIN ? "admin.listen" : "server.listen";
	const char *listen = site == HTTP_ADMIN ? cfg->admin_listen : cfg->listen;
	const char *host = site == HTTP_ADMIN ? cfg->admin_listen_host : cfg->listen_host;
	unsigned threads = site == HTTP_ADMIN ? ADMIN_THREADS : cfg->threads;

	if (!s)
		goto fail;
	s->site = site;
	s->routes = site == HTTP_ADMIN ? admin_routes : routes;
	s->n_routes = site == HTTP_ADMIN ? sizeof(admin_routes) / sizeof(admin_routes[0])
	                                 : sizeof(routes) / sizeof(routes[0]);
	snprintf(port, sizeof(port), "%u",
	         site == HTTP_ADMIN ? cfg->admin_listen_port : cfg->listen_port);
	if (!host || getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
		snprintf(err, errsz, "%s: cannot resolve '%s'", key, host ? host : "");
		goto fail;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The edge enforces limits.max_connections and the per-address share; it counts a
	 * connection back at libmicrohttpd's close notification, a moment before
	 * libmicrohttpd's own count drops, and libmicrohttpd splits its limit evenly over
	 * its workers. libmicrohttpd before 1.0.0 (Debian 12's 0.9.75) leaves a worker's
	 * cleanup lock held when its own limit refuses a connection handed to it: that
	 * worker then serves nothing more and stopping waits for it forever. So each
	 * worker's share is twice everything the edge can hand over, and libmicrohttpd has
	 * no per-address limit of its own (0): only the edge refuses. */
	uint64_t mhd_limit = 2 * (uint64_t)cfg->max_connections * threads;
	s->app = app;
	s->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, access_cb, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
	    MHD_OPTION_NOTIFY_CONNECTION, connection_cb, s, MHD_OPTION_CONNECTION_TIMEOUT,
	    cfg->connection_timeout, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)(mhd_limit < UINT_MAX ? mhd_limit : UINT_MAX),
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)cfg->connection_memory_bytes, MHD_OPTION_UNESCAPE_CALLBACK, unescape_keep_nul,
	    NULL, MHD_OPTION_END);
	if (!s->d) {
		snprintf(err, errsz, "%s: cannot start the HTTP workers", key);
		goto fail;
	}
	struct http_edge_limits lim = {
	    .timeout_s = cfg->connection_timeout,
	    .max_pending = cfg->max_connections,
	    .per_address = cfg->max_connections_per_address,
	    /* libmicrohttpd reads a head into half of its per-connection memory. */
	    .max_head = (size_t)cfg->connection_memory_bytes / 2,
	    .listen_label = key,
	    .shared = cfg->sharing == LISTEN_SHARED,
	};
	char eerr[160];
	if (!(s->edge = http_edge_start(app, s->d, ai->ai_addr, ai->ai_addrlen, &lim, eerr,
	                                sizeof(eerr)))) {
		snprintf(err, errsz, "%s: cannot listen on %s: %s", key, listen, eerr);
		MHD_stop_daemon(s->d);
		goto fail;
	}
	s->port = http_edge_port(s->edge);
	freeaddrinfo(ai);
	runtime_release(rt);
	return s;
fail:
	if (ai)
		freeaddrinfo(ai);
	runtime_release(rt);
	free(s);
	return NULL;
}

unsigned http_port(const struct http_server *s)
{
	return s->port;
}

void http_stop(struct http_server *s, unsigned drain_ms)
{
	uint64_t until = now_ms_monotonic() + drain_ms;

	/* Stop listening now, not when the drain ends: a connection the kernel would queue
	 * meanwhile is never served, so it is better refused at once. */
	http_edge_stop(s->edge);

	while (atomic_load(&s->app->inflight) > 0 && now_ms_monotonic() < until) {
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(s->d);
	http_edge_free(s->edge); /* after libmicrohttpd's last close notification */
	free(s);
}
