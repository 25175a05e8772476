/*
 * The HTTP edge. libmicrohttpd decides some requests before claimd's handler runs, and
 * differently by version: 0.9.75 answers a Content-Length it cannot parse with its
 * status line and headers twice, holds a request with "Transfer-Encoding: gzip" until
 * the timeout and answers a request pipelined behind one that has both Content-Length
 * and Transfer-Encoding; 1.0.x answers some of these with an HTML page. RFC 9112 (6.1,
 * 6.3) asks for one answer and a close. So claimd accepts connections itself, reads the
 * first request head with MSG_PEEK (the bytes stay on the socket for libmicrohttpd),
 * and answers a wrong one with its own failure body and a close; a right one is handed
 * to libmicrohttpd. Later requests on a kept-alive connection are checked by the
 * request handler's admission (http.c), for everything libmicrohttpd lets reach it.
 */
#include "daemon/http_edge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/secure.h"
#include "lib/log.h"
#include "core/runtime.h"
#include "lib/util.h"

/* Connections that got an error reply are read and discarded this long before the
 * close, so a request body still in flight does not turn the close into a reset that
 * destroys the reply in the client's buffers. */
#define DRAIN_MS 2000

#define ID_STOP   UINT32_MAX
#define ID_LISTEN (UINT32_MAX - 1)

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool name_is(const char *name, size_t n, const char *want)
{
	return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

void http_framing_add(struct http_framing *f, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
	if (name_is(name, name_len, "Content-Length")) {
		f->n_length++;
		if (value_len == 0 || value_len > 18)
			f->length_bad = true;
		for (size_t i = 0; i < value_len; i++)
			if (value[i] < '0' || value[i] > '9')
				f->length_bad = true;
	} else if (name_is(name, name_len, "Transfer-Encoding")) {
		f->n_encoding++;
		if (!name_is(value, value_len, "chunked"))
			f->encoding_bad = true;
	}
}

enum claimd_err http_framing_verdict(const struct http_framing *f)
{
	if (f->n_length && f->n_encoding)
		return CE_LENGTH_AND_ENCODING;
	if (f->n_encoding > 1 || f->encoding_bad)
		return CE_TRANSFER_ENCODING;
	if (f->n_length > 1 || f->length_bad)
		return CE_CONTENT_LENGTH;
	return CE_OK;
}

/* Copies @p n bytes of @p s into @p out (@p cap bytes), cut to fit, NUL-terminated. */
static void copy_part(char *out, size_t cap, const char *s, size_t n)
{
	if (!out || cap == 0)
		return;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

/* The request line [p, end): METHOD SP TARGET SP HTTP/x.y. Counts the target's query
 * arguments into *@p fields. */
static enum claimd_err check_request_line(const char *p, const char *end, char *method,
                                          char *target, size_t cap, unsigned *fields)
{
	const char *m = p, *t, *v;

	while (p < end && is_tchar((unsigned char)*p))
		p++;
	if (p == m || p == end || *p != ' ')
		return CE_MALFORMED_REQUEST;
	copy_part(method, cap, m, (size_t)(p - m));
	t = ++p;
	while (p < end && (unsigned char)*p > ' ' && *p != 0x7f) {
		if (*p == '&' || *p == '?')
			(*fields)++;
		p++;
	}
	if (p == t || p == end || *p != ' ')
		return CE_MALFORMED_REQUEST;
	copy_part(target, cap, t, (size_t)(p - t));
	v = ++p;
	if (end - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return CE_MALFORMED_REQUEST;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return CE_HTTP_VERSION;
	return CE_OK;
}

enum claimd_err http_edge_check_head(const char *buf, size_t len, size_t max_head, size_t *head_len,
                                     char *method, char *target, size_t cap)
{
	struct http_framing f = {0};
	const char *p = buf, *end = buf + len, *nl;
	unsigned fields = 0;
	bool http11, host = false;
	enum claimd_err e;

	*head_len = 0;
	copy_part(method, cap, "", 0);
	copy_part(target, cap, "", 0);
	/* RFC 9112 2.2: empty lines before the request line are ignored. */
	while (p < end && (*p == '\r' || *p == '\n')) {
		if (*p == '\r' && (p + 1 == end || p[1] != '\n'))
			break;
		p += *p == '\r' ? 2 : 1;
	}
	if (len > max_head)
		end = buf + max_head;
	/* The whole head must be here before anything is judged but its size: a line is
	 * only read once its end has arrived. */
	for (const char *q = p;; q = nl + 1) {
		if (!(nl = memchr(q, '\n', (size_t)(end - q))))
			return len > max_head ? CE_HEADERS_TOO_LARGE : CE_OK;
		if (nl == q || (nl == q + 1 && *q == '\r'))
			break;
	}
	if (!(nl = memchr(p, '\n', (size_t)(end - p))))
		return CE_MALFORMED_REQUEST;
	e = check_request_line(p, nl > p && nl[-1] == '\r' ? nl - 1 : nl, method, target, cap,
	                       &fields);
	if (e != CE_OK)
		return e;
	http11 = memcmp((nl > p && nl[-1] == '\r' ? nl - 1 : nl) - 3, "1.1", 3) == 0;
	for (p = nl + 1;; p = nl + 1) {
		const char *le, *name = p, *colon, *v, *ve;

		nl = memchr(p, '\n', (size_t)(end - p));
		le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		if (le == p)
			break; /* the empty line: the end of the head */
		if (memchr(p, '\r', (size_t)(le - p)))
			return CE_MALFORMED_REQUEST; /* a bare CR */
		if (*p == ' ' || *p == '\t')
			return CE_MALFORMED_REQUEST; /* obs-fold, RFC 9112 5.2 */
		colon = p;
		while (colon < le && is_tchar((unsigned char)*colon))
			colon++;
		if (colon == name || colon == le || *colon != ':')
			return CE_MALFORMED_REQUEST;
		for (v = colon + 1; v < le && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = le; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		for (const char *c = v; c < ve; c++)
			if ((unsigned char)*c < ' ' && *c != '\t')
				return CE_MALFORMED_REQUEST;
		if (++fields > HTTP_EDGE_MAX_FIELDS)
			return CE_HEADERS_TOO_LARGE;
		if (name_is(name, (size_t)(colon - name), "Host"))
			host = true;
		http_framing_add(&f, name, (size_t)(colon - name), v, (size_t)(ve - v));
	}
	if (fields > HTTP_EDGE_MAX_FIELDS)
		return CE_HEADERS_TOO_LARGE;
	if (http11 && !host)
		return CE_MALFORMED_REQUEST;
	*head_len = (size_t)(nl + 1 - buf);
	return http_framing_verdict(&f);
}

/* A connection waiting for its first head, or draining after an error reply. */
struct pending {
	int fd; /* -1: a free slot */
	bool draining;
	bool watched; /* in the epoll set: its head had not all come when it was accepted */
	uint64_t deadline_ms;
	uint64_t start_us;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	size_t seen; /* bytes peeked last time: progress moves the deadline */
};

/* Open connections of one client address (IPv4 as v4-mapped IPv6). */
struct addr_count {
	struct addr_count *next;
	unsigned char a[16];
	unsigned n;
};

#define ADDR_BUCKETS 4096

struct http_edge {
	struct app *app;
	struct MHD_Daemon *d;
	struct http_edge_limits lim;
	int lfd, ep, stopfd;
	unsigned port;
	pthread_t thread;
	struct pending *p;
	uint32_t n;  /* slots */
	uint32_t in; /* slots in use */
	char *buf;   /* max_head + 1 bytes for MSG_PEEK */
	/* Connections open, here and in libmicrohttpd (its close notification gives them
	 * back): limits.max_connections and max_connections_per_address apply to both. */
	pthread_mutex_t mu;
	unsigned open;
	bool stopped; /* http_edge_stop() ran */
	struct addr_count *by_addr[ADDR_BUCKETS];
};

static void addr_key(const struct sockaddr *sa, unsigned char k[16])
{
	memset(k, 0, 16);
	if (sa->sa_family == AF_INET6) {
		memcpy(k, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		k[10] = k[11] = 0xff;
		memcpy(k + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static struct addr_count **addr_slot(struct http_edge *e, const unsigned char k[16])
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ k[i]) * 16777619u;
	struct addr_count **pp = &e->by_addr[h % ADDR_BUCKETS];
	while (*pp && memcmp((*pp)->a, k, 16) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Counts a new connection from @p sa; false (nothing counted) over either limit. */
static bool count_take(struct http_edge *e, const struct sockaddr *sa)
{
	unsigned char k[16];
	bool ok = false;

	addr_key(sa, k);
	pthread_mutex_lock(&e->mu);
	struct addr_count **pp = addr_slot(e, k);
	if (e->open >= e->lim.max_pending ||
	    (e->lim.per_address && *pp && (*pp)->n >= e->lim.per_address))
		goto out;
	if (!*pp) {
		if (!(*pp = calloc(1, sizeof(**pp))))
			goto out;
		memcpy((*pp)->a, k, 16);
	}
	(*pp)->n++;
	e->open++;
	ok = true;
out:
	pthread_mutex_unlock(&e->mu);
	return ok;
}

void http_edge_closed(struct http_edge *e, const struct sockaddr *sa)
{
	unsigned char k[16];

	addr_key(sa, k);
	pthread_mutex_lock(&e->mu);
	struct addr_count **pp = addr_slot(e, k);
	if (*pp && e->open) {
		e->open--;
		if (--(*pp)->n == 0) {
			struct addr_count *gone = *pp;
			*pp = gone->next;
			free(gone);
		}
	}
	pthread_mutex_unlock(&e->mu);
}

static void slot_close(struct http_edge *e, uint32_t i)
{
	if (e->p[i].watched)
		epoll_ctl(e->ep, EPOLL_CTL_DEL, e->p[i].fd, NULL);
	close(e->p[i].fd);
	e->p[i].fd = -1;
	e->in--;
	http_edge_closed(e, (const struct sockaddr *)&e->p[i].addr);
}

/* The client address as text, for the log. */
static void addr_text(const struct pending *c, char *out, size_t n)
{
	snprintf(out, n, "unknown");
	if (c->addr.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&c->addr)->sin_addr, out,
		          (socklen_t)n);
	else if (c->addr.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&c->addr)->sin6_addr, out,
		          (socklen_t)n);
}

/*
 * One reply for a wrong head: the failure body of @p err, then the connection is shut
 * for writing and read until the client closes or DRAIN_MS pass. Logged and counted
 * like every request (route "unmatched").
 */
static void refuse(struct http_edge *e, uint32_t i, enum claimd_err err, const char *method,
                   const char *target)
{
	struct pending *c = &e->p[i];
	char head[512], body[256], id[17], remote[64], m[64], t[128];
	uint8_t rnd[8];
	unsigned status = err_status(err);
	int bn, hn;

	secure_random(rnd, sizeof(rnd));
	hex_encode_lower(id, rnd, sizeof(rnd));
	bn = snprintf(body, sizeof(body), "{\"status\":\"failure\",\"description\":\"%s\"}",
	              err_description(err));
	hn = snprintf(head, sizeof(head),
	              "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
	              "Cache-Control: no-store\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n",
	              status, MHD_get_reason_phrase_for(status), id, bn);
	if (bn > 0 && hn > 0 && (size_t)bn < sizeof(body) && (size_t)hn < sizeof(head)) {
		struct iovec iov[2] = {{head, (size_t)hn}, {body, (size_t)bn}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		/* A fresh socket's buffer takes these few hundred bytes whole; a client that
		 * filled it with pipelined requests and reads nothing gets what fits. */
		(void)sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	shutdown(c->fd, SHUT_WR);
	c->draining = true;
	c->deadline_ms = now_ms_monotonic() + DRAIN_MS;

	addr_text(c, remote, sizeof(remote));
	uint64_t us = now_us_monotonic() - c->start_us;
	struct log_request lr = {
	    .level = LOG_INFO,
	    .request_id = id,
	    .remote = remote,
	    .method = log_escape(m, sizeof(m), method, strlen(method)),
	    .route = "unmatched",
	    .path = log_escape(t, sizeof(t), target, strlen(target)),
	    .status = status,
	    .outcome = err_name(err),
	    .duration_ms = (unsigned long)(us / 1000),
	};
	log_request(&lr);
	metrics_request(&e->app->metrics, "unmatched", status, us);
	atomic_fetch_add(&e->app->by_code[err], 1);
}

/* Discards what a refused client still sends (all of it: the descriptor is
 * edge-triggered); closes on its end, an error, or once DRAIN_MS have passed. */
static void drain(struct http_edge *e, uint32_t i)
{
	char sink[4096];
	for (;;) {
		ssize_t r = recv(e->p[i].fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (r > 0)
			continue;
		if (r == 0 || (errno != EAGAIN && errno != EINTR))
			slot_close(e, i);
		if (r == 0 || errno != EINTR)
			return;
	}
}

/*
 * New bytes (or the client's end, in @p events) on a waiting connection: judge the head
 * once it is whole. The descriptor is edge-triggered, since the bytes stay in the
 * socket for libmicrohttpd: each arrival wakes the acceptor once, never in a loop.
 */
static void examine(struct http_edge *e, uint32_t i, uint32_t events)
{
	struct pending *c = &e->p[i];
	char method[32], target[256];
	size_t head_len;
	ssize_t n = recv(c->fd, e->buf, e->lim.max_head + 1, MSG_PEEK | MSG_DONTWAIT);
	enum claimd_err err;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) { /* gone, or closed before a whole head */
		slot_close(e, i);
		return;
	}
	err =
	    http_edge_check_head(e->buf, (size_t)n, e->lim.max_head, &head_len, method, target,
	                         sizeof(method) < sizeof(target) ? sizeof(method) : sizeof(target));
	if (err != CE_OK) {
		refuse(e, i, err, method, target);
		drain(e, i); /* what has come already; a client done sending is closed now */
		return;
	}
	if (head_len == 0) {
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
			slot_close(e, i); /* the client ended before its head did */
			return;
		}
		if ((size_t)n > c->seen) {
			c->seen = (size_t)n;
			c->deadline_ms = now_ms_monotonic() + 1000u * e->lim.timeout_s;
		}
		return;
	}
	/* Right: libmicrohttpd takes the connection over (and closes it on failure). */
	int fd = c->fd;
	if (c->watched)
		epoll_ctl(e->ep, EPOLL_CTL_DEL, fd, NULL);
	c->fd = -1;
	e->in--;
	if (MHD_add_connection(e->d, fd, (const struct sockaddr *)&c->addr, c->addrlen) !=
	    MHD_YES) {
		http_edge_closed(e, (const struct sockaddr *)&c->addr);
		log_debug("http: %s: connection not taken by libmicrohttpd: %s",
		          e->lim.listen_label, strerror(errno));
	}
}

static void accept_all(struct http_edge *e)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		int fd = accept4(e->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		uint32_t i;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or out of descriptors: the next event retries */
		}
		/* Over limits.max_connections, or the address's share: closed at once. */
		if (e->in >= e->n || !count_take(e, (const struct sockaddr *)&sa)) {
			close(fd);
			continue;
		}
		for (i = 0; e->p[i].fd >= 0; i++)
			;
		e->p[i] = (struct pending){
		    .fd = fd,
		    .deadline_ms = now_ms_monotonic() + 1000u * e->lim.timeout_s,
		    .start_us = now_us_monotonic(),
		    .addrlen = sl,
		};
		memcpy(&e->p[i].addr, &sa, sl);
		e->in++;
		/* Most clients send their request with the handshake's last packet: such a
		 * connection is judged and handed over (or refused) now, and never enters the
		 * epoll set. The rest are watched; adding a descriptor whose bytes or end came
		 * meanwhile reports them at once, so nothing that arrives is missed. */
		examine(e, i, 0);
		if (e->p[i].fd < 0) /* handed over or closed */
			continue;
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u32 = i};
		if (epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			slot_close(e, i);
			continue;
		}
		e->p[i].watched = true;
	}
}

static void *edge_main(void *arg)
{
	struct http_edge *e = arg;
	struct epoll_event ev[64];
	uint64_t next_sweep = 0;

	for (;;) {
		int n = epoll_wait(e->ep, ev, 64, 250);
		for (int k = 0; k < n; k++) {
			uint32_t i = ev[k].data.u32;
			if (i == ID_STOP)
				return NULL;
			if (i == ID_LISTEN)
				accept_all(e);
			else if (i < e->n && e->p[i].fd >= 0)
				e->p[i].draining ? drain(e, i) : examine(e, i, ev[k].events);
		}
		uint64_t now = now_ms_monotonic();
		if (now < next_sweep)
			continue;
		next_sweep = now + 250;
		for (uint32_t i = 0; i < e->n && e->in; i++)
			if (e->p[i].fd >= 0 && now >= e->p[i].deadline_ms)
				slot_close(e, i);
	}
}

struct http_edge *http_edge_start(struct app *app, struct MHD_Daemon *d,
                                  const struct sockaddr *addr, socklen_t addrlen,
                                  const struct http_edge_limits *l, char *err, size_t errsz)
{
	struct http_edge *e = calloc(1, sizeof(*e));
	struct sockaddr_storage bound;
	socklen_t bl = sizeof(bound);
	int one = 1;

	if (!e) {
		snprintf(err, errsz, "%s: out of memory", l->listen_label);
		return NULL;
	}
	e->app = app;
	e->d = d;
	e->lim = *l;
	e->lfd = e->ep = e->stopfd = -1;
	pthread_mutex_init(&e->mu, NULL);
	e->n = l->max_pending;
	if (!(e->p = calloc(e->n, sizeof(*e->p))) || !(e->buf = malloc(l->max_head + 1))) {
		snprintf(err, errsz, "%s: out of memory", l->listen_label);
		goto fail;
	}
	for (uint32_t i = 0; i < e->n; i++)
		e->p[i].fd = -1;
	e->lfd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* SO_REUSEADDR only, unless the operator asks for sharing: with SO_REUSEPORT a second
	 * claimd on a taken address would silently take half of its connections. */
	if (e->lfd < 0 || setsockopt(e->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (l->shared && setsockopt(e->lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    (addr->sa_family == AF_INET6 &&
	     setsockopt(e->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(e->lfd, addr, addrlen) < 0 || listen(e->lfd, 511) < 0 ||
	    getsockname(e->lfd, (struct sockaddr *)&bound, &bl) < 0) {
		snprintf(err, errsz, "%s",
		         errno == EADDRINUSE
		             ? "address already in use (another process listens there; "
		               "server.listen_sharing: shared in every claimd lets them share it)"
		             : strerror(errno));
		goto fail;
	}
	e->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
	                                            : ((struct sockaddr_in *)&bound)->sin_port);
	struct epoll_event sev = {.events = EPOLLIN, .data.u32 = ID_STOP};
	struct epoll_event lev = {.events = EPOLLIN, .data.u32 = ID_LISTEN};
	if ((e->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (e->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    epoll_ctl(e->ep, EPOLL_CTL_ADD, e->stopfd, &sev) < 0 ||
	    epoll_ctl(e->ep, EPOLL_CTL_ADD, e->lfd, &lev) < 0 ||
	    (errno = pthread_create(&e->thread, NULL, edge_main, e)) != 0) {
		snprintf(err, errsz, "%s: %s", l->listen_label, strerror(errno));
		goto fail;
	}
	return e;
fail:
	if (e->stopfd >= 0)
		close(e->stopfd);
	if (e->ep >= 0)
		close(e->ep);
	if (e->lfd >= 0)
		close(e->lfd);
	free(e->buf);
	free(e->p);
	pthread_mutex_destroy(&e->mu);
	free(e);
	return NULL;
}

unsigned http_edge_port(const struct http_edge *e)
{
	return e->port;
}

void http_edge_stop(struct http_edge *e)
{
	uint64_t one = 1;

	if (!e || e->stopped)
		return;
	e->stopped = true;
	/* Linux: a listening socket shut down refuses new connections and resets those in
	 * its backlog, so nothing waits for a server that is going away. */
	shutdown(e->lfd, SHUT_RDWR);
	if (write(e->stopfd, &one, sizeof(one)) != sizeof(one))
		log_warn("http: %s: cannot wake the acceptor", e->lim.listen_label);
	pthread_join(e->thread, NULL);
	for (uint32_t i = 0; i < e->n; i++)
		if (e->p[i].fd >= 0)
			slot_close(e, i);
	close(e->stopfd);
	close(e->ep);
	close(e->lfd);
}

void http_edge_free(struct http_edge *e)
{
	if (!e)
		return;
	http_edge_stop(e);
	for (size_t b = 0; b < ADDR_BUCKETS; b++)
		while (e->by_addr[b]) {
			struct addr_count *n = e->by_addr[b]->next;
			free(e->by_addr[b]);
			e->by_addr[b] = n;
		}
	free(e->buf);
	free(e->p);
	pthread_mutex_destroy(&e->mu);
	free(e);
}
