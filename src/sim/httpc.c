/*
 * Minimal blocking HTTP client, plain or over TLS. Parsing is strict about what it
 * needs (status line, Content-Length, Transfer-Encoding) and bounded (1 MiB); it is
 * test and simulator code, never used by the daemon. TLS changes only the transport:
 * the same bytes go out and the same framing checks apply to what comes back.
 */
#include "sim/httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/util.h"

#define MAX_REPLY (1024 * 1024)

bool http_url_parse(const char *url, struct http_url *u)
{
	const char *p, *slash, *colon;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, "http://", 7) == 0) {
		p = url + 7;
	} else if (strncmp(url, "https://", 8) == 0) {
		p = url + 8;
		u->tls = true;
	} else {
		return false;
	}
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
		strcpy(u->port, u->tls ? "443" : "80");
	}
	snprintf(u->base, sizeof(u->base), "%s", slash);
	return u->host[0] != '\0';
}

/* Names the failing call and the last queued OpenSSL error, and empties the queue. */
static void tls_error(char *err, size_t errsz, const char *call)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "no detail";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errsz, "%s: %s", call, buf);
	ERR_clear_error();
}

int http_url_tls(struct http_url *u, const char *cacert, char *err, size_t errsz)
{
	SSL_CTX *ctx = NULL;

	if (!u->tls)
		return 0;
	if (!(ctx = SSL_CTX_new(TLS_client_method()))) {
		tls_error(err, errsz, "SSL_CTX_new");
		return -1;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		tls_error(err, errsz, "SSL_CTX_set_min_proto_version");
		goto fail;
	}
	if (cacert ? SSL_CTX_load_verify_locations(ctx, cacert, NULL) != 1
	           : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_error(err, errsz, cacert ? cacert : "the system trust store");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* A server that closes without close_notify after a complete, length-delimited
	 * reply is normal HTTP behaviour; the framing checks catch a truncated body. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	u->tls_ctx = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return -1;
}

void http_url_free(struct http_url *u)
{
	SSL_CTX_free(u->tls_ctx);
	u->tls_ctx = NULL;
}

/* Tries each address of the host in turn ("localhost" may be ::1 first). */
static int dial(const struct http_url *u, char *err, size_t errsz)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	int fd = -1;

	if (getaddrinfo(u->host, u->port, &hints, &ai) != 0 || !ai) {
		snprintf(err, errsz, "cannot resolve %s", u->host);
		return -1;
	}
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			snprintf(err, errsz, "connect %s:%s: %s", u->host, u->port,
			         strerror(errno));
			close(fd);
			fd = -1;
		} else if (fd < 0) {
			snprintf(err, errsz, "socket: %s", strerror(errno));
		}
	}
	freeaddrinfo(ai);
	return fd;
}

/*
 * The TLS handshake on @p fd, checking the server as the firmware does. The socket's
 * timeouts bound the blocking handshake and any read that waits for the rest of a
 * record; poll() bounds the rest.
 */
static SSL *tls_connect(const struct http_url *u, int fd, int timeout_ms, char *err, size_t errsz)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	unsigned char ip[16];
	SSL *ssl = NULL;
	bool literal =
	    inet_pton(AF_INET, u->host, ip) == 1 || inet_pton(AF_INET6, u->host, ip) == 1;

	if (!u->tls_ctx) {
		snprintf(err, errsz, "https URL without TLS settings (http_url_tls)");
		return NULL;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		snprintf(err, errsz, "setsockopt: %s", strerror(errno));
		return NULL;
	}
	if (!(ssl = SSL_new(u->tls_ctx))) {
		tls_error(err, errsz, "SSL_new");
		return NULL;
	}
	if (!SSL_set_fd(ssl, fd)) {
		tls_error(err, errsz, "SSL_set_fd");
		goto fail;
	}
	/* SNI carries names only; an address is checked against the iPAddress entries. */
	if (literal) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host)) {
			tls_error(err, errsz, "X509_VERIFY_PARAM_set1_ip_asc");
			goto fail;
		}
	} else {
		if (!SSL_set_tlsext_host_name(ssl, u->host)) {
			tls_error(err, errsz, "SSL_set_tlsext_host_name");
			goto fail;
		}
		if (!SSL_set1_host(ssl, u->host)) {
			tls_error(err, errsz, "SSL_set1_host");
			goto fail;
		}
	}
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK) {
			snprintf(err, errsz, "TLS: server certificate of %s: %s", u->host,
			         X509_verify_cert_error_string(v));
			ERR_clear_error();
		} else {
			tls_error(err, errsz, "SSL_connect");
		}
		goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/* One connection's transport: the socket, and the TLS session over it for https. */
struct io {
	int fd;
	SSL *ssl;
};

static ssize_t io_send(struct io *io, const void *p, size_t n)
{
	if (!io->ssl)
		return send(io->fd, p, n, MSG_NOSIGNAL);
	size_t w = 0;
	if (SSL_write_ex(io->ssl, p, n, &w) != 1) {
		ERR_clear_error();
		return -1;
	}
	return (ssize_t)w;
}

/* Bytes read, 0 at the end of the stream, -1 with errno (EAGAIN: the socket timed out). */
static ssize_t io_recv(struct io *io, void *p, size_t n)
{
	if (!io->ssl)
		return recv(io->fd, p, n, 0);
	size_t r = 0;
	if (SSL_read_ex(io->ssl, p, n, &r) == 1)
		return (ssize_t)r;
	int e = SSL_get_error(io->ssl, 0);
	ERR_clear_error();
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && errno == ECONNRESET)
		return -1;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	errno = EPROTO;
	return -1;
}

/* Whether a read would not block within @p ms: TLS may hold decrypted bytes already. */
static bool io_wait(struct io *io, int ms)
{
	struct pollfd pfd = {.fd = io->fd, .events = POLLIN};
	if (io->ssl && SSL_pending(io->ssl) > 0)
		return true;
	return poll(&pfd, 1, ms) > 0;
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
 * Sends @p raw on @p io and reads one reply (up to its Content-Length, or to the close).
 * *@p got_any tells whether the peer sent anything at all, so a caller can tell a
 * kept-alive connection the server had already closed from a real failure.
 */
static int exchange_on(struct io *io, const char *raw, size_t n, int timeout_ms,
                       struct http_response *out, bool *got_any, char *err, size_t errsz)
{
	char *buf = NULL;
	size_t len = 0, hlen = 0, cap = 16384;
	uint64_t deadline = now_ms_monotonic() + (uint64_t)timeout_ms;
	int rc = -1;

	*got_any = false;
	memset(out, 0, sizeof(*out));
	for (size_t sent = 0; sent < n;) {
		ssize_t w = io_send(io, raw + sent, n - sent);
		if (w < 0)
			break; /* the server may answer early (413) and close: read what it said */
		sent += (size_t)w;
	}
	if (!(buf = malloc(cap + 1)))
		goto out;
	for (;;) {
		int64_t left = (int64_t)(deadline - now_ms_monotonic());
		if (left <= 0 || !io_wait(io, (int)left)) {
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
		ssize_t r = io_recv(io, buf + len, cap - len);
		if (r < 0 && errno == ECONNRESET && len > 0)
			r = 0;
		if (r < 0 && errno == EAGAIN) {
			snprintf(err, errsz, "timed out after %d ms", timeout_ms);
			goto out;
		}
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
		if (len)
			snprintf(err, errsz, "reply cut short after %zu bytes of its head", len);
		else
			snprintf(err, errsz, "connection closed before a reply");
		goto out;
	}
	out->len = len - hlen - 2;
	if (out->content_length >= 0 && out->len > (size_t)out->content_length)
		out->len = (size_t)out->content_length;
	out->cut = out->content_length >= 0 && out->len < (size_t)out->content_length;
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
	struct http_conn c = {.url = *u, .fd = -1};
	bool got_any;
	int rc;

	if (http_conn_open(&c, timeout_ms, err, errsz) < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	struct io io = {c.fd, c.ssl};
	rc = exchange_on(&io, raw, n, timeout_ms, out, &got_any, err, errsz);
	http_conn_close(&c);
	return rc;
}

int http_conn_open(struct http_conn *c, int timeout_ms, char *err, size_t errsz)
{
	if (c->fd >= 0)
		return 0;
	if ((c->fd = dial(&c->url, err, errsz)) < 0)
		return -1;
	if (c->url.tls && !(c->ssl = tls_connect(&c->url, c->fd, timeout_ms, err, errsz))) {
		http_conn_close(c);
		return -1;
	}
	return 0;
}

int http_conn_write(struct http_conn *c, const void *p, size_t n)
{
	struct io io = {c->fd, c->ssl};
	for (size_t sent = 0; sent < n;) {
		ssize_t w = io_send(&io, (const char *)p + sent, n - sent);
		if (w <= 0)
			return -1;
		sent += (size_t)w;
	}
	return 0;
}

int http_conn_shutdown_write(struct http_conn *c)
{
	return c->fd >= 0 ? shutdown(c->fd, SHUT_WR) : -1;
}

bool http_conn_readable(struct http_conn *c, int wait_ms)
{
	struct io io = {c->fd, c->ssl};
	uint64_t deadline = now_ms_monotonic() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
	bool any = false;

	if (c->fd < 0)
		return false;
	if (!c->ssl)
		return io_wait(&io, wait_ms);
	/* Over TLS the socket also turns readable for records that carry no data (TLS 1.3
	 * session tickets): peek without blocking, and wait again after those. */
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return false;
	for (int rounds = 0; rounds < 64 && !any; rounds++) {
		int64_t left = (int64_t)(deadline - now_ms_monotonic());
		char b;
		size_t got;
		if (!io_wait(&io, left > 0 ? (int)left : 0))
			break;
		if (SSL_peek_ex(c->ssl, &b, 1, &got) == 1) {
			any = true;
		} else {
			int e = SSL_get_error(c->ssl, 0);
			ERR_clear_error();
			any = e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
		}
	}
	fcntl(c->fd, F_SETFL, fl);
	return any;
}

int http_conn_exchange(struct http_conn *c, const char *raw, size_t n, int timeout_ms,
                       struct http_response *out, char *err, size_t errsz)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		bool fresh = c->fd < 0, got_any = false;
		char v[32];
		if (http_conn_open(c, timeout_ms, err, errsz) < 0) {
			memset(out, 0, sizeof(*out));
			return -1;
		}
		struct io io = {c->fd, c->ssl};
		if (exchange_on(&io, raw, n, timeout_ms, out, &got_any, err, errsz) == 0) {
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
	if (c->ssl) {
		/* close_notify, without waiting for the peer's; the socket closes anyway. */
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		SSL_free(c->ssl);
	}
	c->ssl = NULL;
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
