/*
 * Minimal blocking HTTP client. Parsing is strict about what it needs (status line,
 * Content-Length, Transfer-Encoding) and bounded (1 MiB); it is test and simulator
 * code, never used by the daemon.
 */
#include "claimd/httpc.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "claimd/util.h"

#define MAX_REPLY (1024 * 1024)

bool http_url_parse(const char *url, struct http_url *u)
{
	const char *p, *slash, *colon;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, "http://", 7) != 0)
		return false;
	p = url + 7;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	if (colon) {
		if ((size_t)(colon - p) >= sizeof(u->host) || (size_t)(slash - colon - 1) >= 8)
			return false;
		memcpy(u->host, p, (size_t)(colon - p));
		memcpy(u->port, colon + 1, (size_t)(slash - colon - 1));
	} else {
		if ((size_t)(slash - p) >= sizeof(u->host))
			return false;
		memcpy(u->host, p, (size_t)(slash - p));
		strcpy(u->port, "80");
	}
	snprintf(u->base, sizeof(u->base), "%s", slash);
	return u->host[0] != '\0';
}

static int dial(const struct http_url *u, char *err, size_t errsz)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	int fd = -1;

	if (getaddrinfo(u->host, u->port, &hints, &ai) != 0 || !ai) {
		snprintf(err, errsz, "cannot resolve %s", u->host);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(err, errsz, "connect %s:%s: %s", u->host, u->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

bool http_header(const struct http_response *r, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	const char *p = r->headers;

	while (p && (p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *end = strstr(v, "\r\n");
			while (*v == ' ')
				v++;
			size_t n = end ? (size_t)(end - v) : strlen(v);
			snprintf(out, outsz, "%.*s", (int)n, v);
			return true;
		}
	}
	return false;
}

static int parse_head(struct http_response *out, char *buf, size_t hlen)
{
	char v[64];

	out->headers = strndup(buf, hlen);
	if (!out->headers || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1)
		return -1;
	out->content_length = -1;
	if (http_header(out, "Content-Length", v, sizeof(v)))
		out->content_length = atol(v);
	if (http_header(out, "Transfer-Encoding", v, sizeof(v)) && strcasestr(v, "chunked"))
		out->chunked = true;
	return 0;
}

/*
 * Sends @p raw on @p fd and reads one reply (up to its Content-Length, or to the close).
 * *@p got_any tells whether the peer sent anything at all, so a caller can tell a
 * kept-alive connection the server had already closed from a real failure.
 */
static int exchange_on(int fd, const char *raw, size_t n, int timeout_ms, struct http_response *out,
                       bool *got_any, char *err, size_t errsz)
{
	char *buf = NULL;
	size_t len = 0, hlen = 0, cap = 16384;
	uint64_t deadline = now_ms_monotonic() + (uint64_t)timeout_ms;
	int rc = -1;

	*got_any = false;
	memset(out, 0, sizeof(*out));
	for (size_t sent = 0; sent < n;) {
		ssize_t w = send(fd, raw + sent, n - sent, MSG_NOSIGNAL);
		if (w < 0)
			break; /* the server may answer early (413) and close: read what it said */
		sent += (size_t)w;
	}
	if (!(buf = malloc(cap + 1)))
		goto out;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = (int64_t)(deadline - now_ms_monotonic());
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			snprintf(err, errsz, "timed out after %d ms", timeout_ms);
			goto out;
		}
		if (len == cap && cap < MAX_REPLY) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb)
				goto out;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = recv(fd, buf + len, cap - len, 0);
		if (r < 0 && errno == ECONNRESET && len > 0)
			r = 0;
		if (r < 0) {
			snprintf(err, errsz, "recv: %s", strerror(errno));
			goto out;
		}
		*got_any |= r > 0;
		len += (size_t)r;
		buf[len] = '\0';
		if (!hlen) {
			char *e = strstr(buf, "\r\n\r\n");
			if (e) {
				hlen = (size_t)(e - buf) + 2;
				if (parse_head(out, buf, hlen) < 0) {
					snprintf(err, errsz, "malformed reply head");
					goto out;
				}
			}
		}
		if (hlen && out->content_length >= 0 &&
		    len >= hlen + 2 + (size_t)out->content_length)
			break;
		if (r == 0 || len == MAX_REPLY)
			break;
	}
	if (!hlen) {
		snprintf(err, errsz, "connection closed before a reply");
		goto out;
	}
	out->len = len - hlen - 2;
	if (out->content_length >= 0 && out->len > (size_t)out->content_length)
		out->len = (size_t)out->content_length;
	/* Bodies may be binary (a DER CRL): copied by length, NUL added for text callers. */
	out->body = malloc(out->len + 1);
	if (out->body) {
		memcpy(out->body, buf + hlen + 2, out->len);
		out->body[out->len] = '\0';
	}
	rc = out->body ? 0 : -1;
out:
	free(buf);
	if (rc < 0)
		http_response_free(out);
	return rc;
}

int http_exchange(const struct http_url *u, const char *raw, size_t n, int timeout_ms,
                  struct http_response *out, char *err, size_t errsz)
{
	bool got_any;
	int fd = dial(u, err, errsz);
	if (fd < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	int rc = exchange_on(fd, raw, n, timeout_ms, out, &got_any, err, errsz);
	close(fd);
	return rc;
}

int http_conn_exchange(struct http_conn *c, const char *raw, size_t n, int timeout_ms,
                       struct http_response *out, char *err, size_t errsz)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		bool fresh = c->fd < 0, got_any = false;
		char v[32];
		if (fresh && (c->fd = dial(&c->url, err, errsz)) < 0) {
			memset(out, 0, sizeof(*out));
			return -1;
		}
		if (exchange_on(c->fd, raw, n, timeout_ms, out, &got_any, err, errsz) == 0) {
			if (http_header(out, "Connection", v, sizeof(v)) &&
			    strcasecmp(v, "close") == 0)
				http_conn_close(c);
			return 0;
		}
		http_conn_close(c);
		/* Only a reused connection that died without a word is worth one more try. */
		if (fresh || got_any)
			return -1;
	}
	return -1;
}

void http_conn_close(struct http_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* "POST <base>/<path>" as esp_http_client writes it, body appended; caller frees. */
static char *build_post(const struct http_url *u, const char *path, const char *extra,
                        const char *body, size_t n, size_t *len)
{
	char *head = NULL, *full;
	int hl =
	    asprintf(&head,
	             "POST %s/%s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: ESP32 HTTP Client/1.0\r\n"
	             "%sContent-Length: %zu\r\n\r\n",
	             u->base, path, u->host, u->port, extra, n);
	if (hl < 0)
		return NULL;
	full = malloc((size_t)hl + n);
	if (full) {
		memcpy(full, head, (size_t)hl);
		memcpy(full + hl, body, n);
		*len = (size_t)hl + n;
	}
	free(head);
	return full;
}

int http_post(const struct http_url *u, const char *path, const char *extra, const char *body,
              size_t n, int timeout_ms, struct http_response *out, char *err, size_t errsz)
{
	size_t len;
	char *full = build_post(u, path, extra, body, n, &len);
	if (!full) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	int rc = http_exchange(u, full, len, timeout_ms, out, err, errsz);
	free(full);
	return rc;
}

int http_conn_post(struct http_conn *c, const char *path, const char *extra, const char *body,
                   size_t n, int timeout_ms, struct http_response *out, char *err, size_t errsz)
{
	size_t len;
	char *full = build_post(&c->url, path, extra, body, n, &len);
	if (!full) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	int rc = http_conn_exchange(c, full, len, timeout_ms, out, err, errsz);
	free(full);
	return rc;
}

void http_response_free(struct http_response *r)
{
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}
